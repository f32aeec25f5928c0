"""Low-bit float formats in torch; the semantics are those of `reference.quantization.floats`.

Every conversion works on float32 bit patterns held in int64 tensors (`x.view(torch.int32)`, masked to 32 bits):
no `.to(torch.float8_*)` cast is used, since those casts differ between torch versions and devices out of range.
The format table `FORMATS` is the reference's (pure data).
"""

from __future__ import annotations

import torch

from reference.common import validate
from reference.quantization.floats import FORMATS, QNAN, ROUNDINGS
from torch_backend import _arrays
from torch_backend.core.random import random_bits

__all__ = ["float_encode", "float_decode", "float_quantize", "float_quantize_vjp"]

_MASK32 = 0xFFFFFFFF


def float_encode(x, fmt, *, saturate=True, rounding="half_even", key=None):
    """Encode float32 values as uint8 codes of a low-bit float format; see `reference.quantization.floats`."""
    form, saturate, mode, key = _check_options(fmt, saturate, rounding, key)
    x = _check_x(x, fmt, form)
    code, _ = _encode(x.detach(), form, saturate, mode, key)
    return code


def float_decode(codes, fmt):
    """Decode uint8 codes of a low-bit float format to float32; see `reference.quantization.floats.float_decode`."""
    form = FORMATS[validate.choice("fmt", fmt, tuple(FORMATS))]
    codes = _arrays.array("codes", codes, ("uint8",))
    _arrays.within("codes", codes, 0, 2**form.bits - 1)
    return _decode(codes.to(torch.int64), form)


def float_quantize(x, fmt, *, saturate=True, rounding="half_even", key=None):
    """decode(encode(x)) with a straight-through gradient; see `reference.quantization.floats.float_quantize`."""
    form, saturate, mode, key = _check_options(fmt, saturate, rounding, key)
    x = _check_x(x, fmt, form)
    return _FloatQuantize.apply(x, form, saturate, mode, key)


def float_quantize_vjp(grad, x, fmt, *, saturate=True, rounding="half_even", key=None):
    """The gradient of `float_quantize` with respect to `x`, computed by torch autograd through `float_quantize`."""
    form, saturate_, mode, key_ = _check_options(fmt, saturate, rounding, key)
    x = _check_x(x, fmt, form)
    grad = _arrays.shaped("grad", _arrays.array("grad", grad), x.shape, "x")
    _arrays.same_device("grad", grad, "x", x)
    return _arrays.vjp(lambda v: float_quantize(v, fmt, saturate=saturate, rounding=rounding, key=key), (x,), grad)


class _FloatQuantize(torch.autograd.Function):
    """Forward: decode(encode(x)). Backward: the gradient where x is finite and its rounding did not overflow."""

    @staticmethod
    def forward(ctx, x, form, saturate, mode, key):
        code, passes = _encode(x, form, saturate, mode, key)
        ctx.save_for_backward(passes)
        return _decode(code.to(torch.int64), form)

    @staticmethod
    def backward(ctx, grad):
        (passes,) = ctx.saved_tensors
        return torch.where(passes, grad, 0.0), None, None, None, None


# ---------------------------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------------------------


def _check_options(fmt, saturate, rounding, key):
    form = FORMATS[validate.choice("fmt", fmt, tuple(FORMATS))]
    saturate = validate.boolean("saturate", saturate)
    if not saturate and not (form.has_inf or form.has_nan):
        raise ValueError(f"{fmt} has neither Inf nor NaN, so only saturate=True is defined; got saturate=False")
    mode = validate.choice("rounding", rounding, ROUNDINGS)
    if mode == "stochastic":
        if key is None:
            raise ValueError("rounding='stochastic' needs a key; pass key=make_key(seed)")
        key = validate.key("key", key)
    elif key is not None:
        raise ValueError(f"key is only used with rounding='stochastic', got rounding={mode!r}")
    return form, saturate, mode, key


def _check_x(x, fmt, form):
    x = _arrays.array("x", x)
    if not form.has_nan:
        bad = torch.isnan(x.detach())
        if bool(bad.any()):
            i = int(bad.reshape(-1).nonzero()[0])
            raise ValueError(f"x must not contain NaN: {fmt} has no NaN encoding, got nan at flat index {i}")
    return x


# ---------------------------------------------------------------------------------------------------------------
# Bit manipulation (shared with torch_backend.quantization.mx)
# ---------------------------------------------------------------------------------------------------------------


def _fields(x):
    """Sign, biased exponent field, and `|x| = sig * 2**E` with `sig` an int < 2**24, from the float32 bits."""
    u = x.detach().view(torch.int32).to(torch.int64) & _MASK32
    sign = u >> 31
    biased = (u >> 23) & 0xFF
    frac = u & 0x7FFFFF
    sig = torch.where(biased > 0, frac | (1 << 23), frac)
    exp = torch.clamp(biased, min=1) - 150
    return sign, biased, frac, sig, exp


def _floor_log2(n):
    """floor(log2(n)) of int64 values in [1, 2**32), by binary search on the bits; 0 for n = 0."""
    p = torch.zeros_like(n)
    for s in (16, 8, 4, 2, 1):
        p = torch.where((n >> (p + s)) > 0, p + s, p)
    return p


def _pow2(r):
    return torch.bitwise_left_shift(torch.ones_like(r), r)


def _round_shift(sig, r, parity, mode, rbits):
    """`sig / 2**r` rounded to an integer; see the reference's `_round_shift`."""
    n0 = sig >> r
    rem = sig & (_pow2(r) - 1)
    if mode == "half_even":
        half = _pow2(r - 1)
        up = (rem > half) | ((rem == half) & ((parity & 1) == 1))
    elif mode == "half_away":  # MX elements with rounding="half_away" (float_encode has no such mode)
        up = rem >= _pow2(r - 1)
    else:
        frac32 = (rem << torch.clamp(32 - r, min=0)) >> torch.clamp(r - 32, min=0)
        up = (frac32 + rbits) >= 2**32
    return n0 + up.to(torch.int64)


def _encode_magnitude(sig, exp, mbits, emin, mode, rbits):
    """Magnitude code of `sig * 2**exp`, unbounded above; see the reference's `_encode_magnitude`."""
    k = _floor_log2(sig) + exp
    top = torch.clamp(k, min=emin)
    r = torch.clamp(top - mbits - exp, 1, 56)
    n = _round_shift(sig, r, sig >> r, mode, rbits)
    return torch.where(sig == 0, 0, ((top - emin) << mbits) + n)


def _encode_e8m0(sig, exp, mode, rbits):
    """E8M0 code (unbounded above) of `sig * 2**exp > 0`: the nearest power of two, ties up."""
    lead = _floor_log2(sig)
    k = lead + exp
    frac = (sig << (23 - lead)) & 0x7FFFFF
    if mode == "half_even":
        up = frac >= (1 << 22)
    else:
        up = ((frac << 9) + rbits) >= 2**32
    return k + 127 + up.to(torch.int64)


def _encode(x, form, saturate, mode, key, shift=None):
    """Codes (uint8) of `x / 2**shift` and the straight-through pass mask; see the reference's `_encode`."""
    sign, biased, frac, sig, exp = _fields(x)
    if shift is not None:
        exp = exp - shift
    rbits = random_bits(key, tuple(x.shape), x.device) if mode == "stochastic" else None
    is_nan = (biased == 0xFF) & (frac != 0)
    is_inf = (biased == 0xFF) & (frac == 0)
    if not form.signed:
        raw = _encode_e8m0(sig, exp, mode, rbits)
        positive = (sign == 0) & (sig > 0) & ~is_nan & ~is_inf
        passes = positive & (raw >= 0) & (raw <= form.max_code)
        over = (raw > form.max_code) | is_inf
        code = torch.clamp(raw, min=0)
        code = torch.where(over, form.max_code if saturate else form.nan_code, code)
        code = torch.where(positive | (is_inf & (sign == 0)), code, form.nan_code)
        return code.to(torch.uint8), passes
    mag = _encode_magnitude(sig, exp, form.mbits, 1 - form.bias, mode, rbits)
    over = (mag > form.max_code) | is_inf
    passes = ~over & ~is_nan
    if saturate:
        mag = torch.where(over, form.max_code, mag)
    else:
        mag = torch.where(over, form.inf_code if form.has_inf else form.nan_code, mag)
    if form.has_nan:
        mag = torch.where(is_nan, form.nan_code, mag)
    code = (sign << (form.bits - 1)) | mag
    return code.to(torch.uint8), passes


def _decode(code, form):
    """float32 values of int64 codes, assembled as float32 bits."""
    if not form.signed:
        bits = torch.where(code == 0, 1 << 22, code << 23)
        bits = torch.where(code == form.nan_code, QNAN, bits)
        return _from_bits(bits)
    m = form.mbits
    sign = (code >> (form.bits - 1)) & 1
    mag = code & ((1 << (form.bits - 1)) - 1)
    e = mag >> m
    f = mag & ((1 << m) - 1)
    lead = _floor_log2(f)
    sub = ((lead + 1 - form.bias - m + 127) << 23) | ((f - _pow2(lead)) << (23 - lead))
    normal = ((e - form.bias + 127) << 23) | (f << (23 - m))
    bits = torch.where(e > 0, normal, torch.where(f > 0, sub, 0))
    if form.has_inf:
        bits = torch.where(mag == form.inf_code, 0x7F800000, bits)
    if form.has_nan:
        nan = (mag == form.nan_code) if not form.has_inf else (mag > form.inf_code)
        bits = torch.where(nan, QNAN, bits)
    return _from_bits((sign << 31) | bits)


def _from_bits(bits):
    """float32 tensor from int64 bit patterns in [0, 2**32): wrapped to int32 first, then viewed."""
    signed = bits - ((bits >> 31) << 32)
    return signed.to(torch.int32).view(torch.float32)
