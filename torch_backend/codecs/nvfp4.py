"""NVFP4 in torch; the semantics (both global-scale directions) are those of `reference.codecs.nvfp4`."""

from __future__ import annotations

import bisect
import math

import torch

from reference.codecs.nvfp4 import BLOCK, DIRECTIONS, E2M1, E4M3, ENCODE_RECIPROCAL_OVERFLOWS, ONE_E4M3
from reference.common import shapes, validate
from torch_backend import _arrays
from torch_backend.codecs._bytes import HOST_MAX, host_bytes, host_finite, on_host
from torch_backend.core._host import float32
from torch_backend.quantization import _floats

__all__ = ["nvfp4_global_scale", "nvfp4_quantize", "nvfp4_dequantize"]


def nvfp4_global_scale(x, *, direction):
    """The float32 per-tensor NVFP4 scale amax / 2688 (decode) or 2688 / amax (encode); see the reference."""
    direction = validate.choice("direction", direction, DIRECTIONS)
    x = _arrays.array("x", x)
    if 0 < x.numel() <= HOST_MAX and on_host(x):
        g = _global_scale_host(x, direction)
        if g is not None:  # None: x not finite, or g not a finite float32 > 0: raised below
            return g
    x = _arrays.finite("x", x)
    if x.numel() == 0:
        raise ValueError(f"x has shape {tuple(x.shape)}: an NVFP4 global scale needs at least one element")
    amax = torch.max(torch.abs(x.detach()))
    if bool(amax == 0):
        return torch.ones((), dtype=torch.float32, device=x.device)
    r = _arrays.scalar(6.0 * 448.0, amax)
    g = amax / r if direction == "decode" else r / amax
    if not bool(torch.isfinite(g) & (g > 0)):
        raise ValueError(
            f"x has amax {amax.item()!r}: its {direction} global scale {g.item()!r} is not a finite float32 > 0"
        )
    return g


def nvfp4_quantize(x, global_scale, *, direction):
    """NVFP4 block scale codes (E4M3) and element codes (E2M1); see `reference.codecs.nvfp4.nvfp4_quantize`."""
    direction, x, g, values = _check_quantize(x, global_scale, direction)
    if values is not None:
        return _quantize_host(values, tuple(x.shape), g.item(), direction)
    x = x.detach()
    blocks = x.reshape(x.shape[:-1] + (x.shape[-1] // BLOCK, BLOCK))
    amax = torch.abs(blocks).amax(dim=-1) if blocks.numel() else torch.zeros(blocks.shape[:-1], device=x.device)
    six = _arrays.scalar(6.0, amax)
    t = amax / (six * g) if direction == "decode" else g * (amax / six)
    scales, _ = _floats.encode(t, E4M3, True, "half_even", None)
    scales = torch.where(amax == 0, ONE_E4M3, scales.to(torch.int64)).to(torch.uint8)
    spread = torch.repeat_interleave(_block_scale(scales, g, direction), BLOCK, dim=-1)
    zero = spread == 0
    u = torch.where(zero, 0.0, x / torch.where(zero, 1.0, spread))
    u = torch.where(torch.signbit(x), -torch.abs(u), torch.abs(u))  # a zero scale keeps the sign of x
    codes, _ = _floats.encode(u, E2M1, True, "half_even", None)
    return scales, codes


def nvfp4_dequantize(scales, codes, global_scale, *, direction):
    """NVFP4 back to float32, dec(q) * S_b in float32; see `reference.codecs.nvfp4.nvfp4_dequantize`."""
    direction = validate.choice("direction", direction, DIRECTIONS)
    g = _check_global(global_scale)
    codes = _arrays.within("codes", _arrays.array("codes", codes, ("uint8",)), 0, 15)
    shapes.nvfp4_last_axis("codes", codes.shape, BLOCK)
    scales = _arrays.array("scales", scales, ("uint8",))
    expected = tuple(codes.shape[:-1]) + (codes.shape[-1] // BLOCK,)
    _arrays.shaped("scales", scales, expected, f"codes of shape {tuple(codes.shape)} in blocks of {BLOCK}")
    _arrays.same_device("scales", scales, "codes", codes)
    _arrays.same_device("global_scale", g, "codes", codes)
    s = torch.repeat_interleave(_block_scale(scales, g, direction), BLOCK, dim=-1)
    return _floats.decode(codes.to(torch.int64), E2M1) * s


# ---------------------------------------------------------------------------------------------------------------


def _check_global(global_scale):
    g = _arrays.finite_array("global_scale", global_scale)
    _arrays.shaped("global_scale", g, (), "a per-tensor scale")
    return _arrays.positive("global_scale", g).detach()


def _check_quantize(x, global_scale, direction):
    """The reference's checks, in its order; also the flat values of `x` (Python floats) when `nvfp4_quantize`
    runs on the host (`x` and `g` plain CPU tensors, `x` of at most `HOST_MAX` elements), else None."""
    direction = validate.choice("direction", direction, DIRECTIONS)
    g = _check_global(global_scale)
    host = on_host(g)
    if direction == "encode":
        # fl32(1 / g) = fl32(fl64(1 / g)) (rounding twice through float64 is innocuous for a quotient of float32
        # values, 53 >= 2 * 24 + 2 bits; `float32` gives Inf from halfway past the largest float32 on)
        overflows = math.isinf(float32(1.0 / g.item())) if host else bool(torch.isinf(torch.ones_like(g) / g))
        if overflows:
            raise ValueError(ENCODE_RECIPROCAL_OVERFLOWS.format(float(g)))
    x = _arrays.array("x", x)
    values = host_finite(x) if host and x.numel() <= HOST_MAX and on_host(x) else None
    if values is None:
        _arrays.finite("x", x)
    shapes.nvfp4_last_axis("x", x.shape, BLOCK)
    _arrays.same_device("global_scale", g, "x", x)
    return direction, x, g, values


def _block_scale(scales, g, direction):
    d = _floats.decode(scales.to(torch.int64), E4M3)
    return d * g if direction == "decode" else d / g


# ---- the host route: at most HOST_MAX CPU elements on Python floats


def _grid(form):
    """The values of a signed float format's magnitude codes 0..max_code (increasing) and the midpoints between
    neighbours (exact in float64: a few significant bits): code `c = e 2**m + f` is `f 2**(1 - bias - m)` for
    `e = 0`, else `(2**m + f) 2**(e - bias - m)`."""
    m = form.mbits
    values = [
        math.ldexp(c & ((1 << m) - 1), 1 - form.bias - m)
        if c >> m == 0
        else math.ldexp((1 << m) + (c & ((1 << m) - 1)), (c >> m) - form.bias - m)
        for c in range(form.max_code + 1)
    ]
    return values, [(a + b) / 2 for a, b in zip(values, values[1:], strict=False)]


_E4M3_VALUES, _E4M3_MIDS = _grid(E4M3)
_E2M1_VALUES, _E2M1_MIDS = _grid(E2M1)


def _encode_host(a, mids):
    """`_floats.encode(.., saturate=True, "half_even")`'s magnitude code of a float32 value `a >= 0` (or +Inf):
    the nearest code, a tie (`a` on a midpoint, exact comparisons) to the even one, anything past the last
    midpoint the largest code. `bisect_left` counts the midpoints below `a`: that is the nearest code off a
    midpoint, and the lower one on it. The reference rounds the significand to the format's grid (unbounded
    above), ties to the even significand, whose parity is the code's, and saturates a code above the largest:
    the same code."""
    i = bisect.bisect_left(mids, a)
    if i < len(mids) and mids[i] == a and i % 2:
        i += 1
    return i


def _global_scale_host(x, direction):
    """`nvfp4_global_scale` of a small CPU `x` on Python floats, or None when an element is not finite or the scale
    is not a finite float32 > 0 (the tensor route raises the reference's error).

    amax is a float32 value read exactly; fl32(amax / 2688) and fl32(2688 / amax) are the float64 quotients
    rounded to float32 (`float32`): rounding twice is innocuous for a quotient of float32 values (53 >= 2 * 24 + 2
    bits), and a quotient past float32's range rounds to Inf in both.
    """
    values = host_finite(x)
    if values is None:
        return None
    amax = max(map(abs, values))
    if amax == 0:
        return torch.ones((), dtype=torch.float32)
    g = float32(amax / 2688.0 if direction == "decode" else 2688.0 / amax)
    if not (math.isfinite(g) and g > 0):
        return None
    return torch.tensor(g, dtype=torch.float32)


def _quantize_host(values, shape, g, direction):
    """`nvfp4_quantize` of checked flat float32 `values` (Python floats, exact), blocks of 16 consecutive ones
    along the last axis, with the float32 global scale `g > 0`, on Python floats.

    Each float32 operation of the reference is the exact float64 result rounded once to float32, or the float64
    result rounded twice (innocuous): 6 g and dec(c) g (at most 24 + 4 significant bits) are exact in float64;
    a / fl32(6 g), a / 6, dec(c) / g and x / S_b are quotients of float32 values (53 >= 2 * 24 + 2 bits: the
    double rounding gives the float32 quotient, Inf past the range, in `float32`); g fl32(a / 6) has at most
    48 significant bits, exact. A zero block scale gives a zero element; an infinite one x / Inf = +-0.0 (as
    IEEE); the sign of every element is then that of x (`copysign`), and its code's sign bit too. amax is the
    largest magnitude, exact. The codes are `_encode_host`'s, the decoded E4M3 scales the grid's values.
    """
    scales, codes = [], []
    six_g = float32(6.0 * g)
    for start in range(0, len(values), BLOCK):
        block = values[start : start + BLOCK]
        amax = max(map(abs, block))
        if amax == 0:
            code = ONE_E4M3
        else:
            t = float32(amax / six_g) if direction == "decode" else float32(g * float32(amax / 6.0))
            code = _encode_host(t, _E4M3_MIDS)
        scales.append(code)
        d = _E4M3_VALUES[code]
        s = float32(d * g) if direction == "decode" else float32(d / g)
        for v in block:
            u = 0.0 if s == 0 else float32(v / s)
            sign = 8 if math.copysign(1.0, v) < 0 else 0
            codes.append(sign | _encode_host(abs(u), _E2M1_MIDS))
    return host_bytes(scales, shape[:-1] + (shape[-1] // BLOCK,)), host_bytes(codes, shape)
