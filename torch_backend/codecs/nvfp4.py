"""NVFP4 in torch; the semantics (both global-scale directions) are those of `reference.codecs.nvfp4`."""

from __future__ import annotations

import torch

from reference.codecs.nvfp4 import BLOCK, DIRECTIONS, E2M1, E4M3, ENCODE_RECIPROCAL_OVERFLOWS, ONE_E4M3
from reference.common import shapes, validate
from torch_backend import _arrays
from torch_backend.quantization import _floats

__all__ = ["nvfp4_global_scale", "nvfp4_quantize", "nvfp4_dequantize"]


def nvfp4_global_scale(x, *, direction):
    """The float32 per-tensor NVFP4 scale amax / 2688 (decode) or 2688 / amax (encode); see the reference."""
    direction = validate.choice("direction", direction, DIRECTIONS)
    x = _arrays.finite_array("x", x)
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
    direction, x, g = _check_quantize(x, global_scale, direction)
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
    direction = validate.choice("direction", direction, DIRECTIONS)
    g = _check_global(global_scale)
    if direction == "encode" and bool(torch.isinf(torch.ones_like(g) / g)):
        raise ValueError(ENCODE_RECIPROCAL_OVERFLOWS.format(float(g)))
    x = _arrays.finite_array("x", x)
    shapes.nvfp4_last_axis("x", x.shape, BLOCK)
    _arrays.same_device("global_scale", g, "x", x)
    return direction, x, g


def _block_scale(scales, g, direction):
    d = _floats.decode(scales.to(torch.int64), E4M3)
    return d * g if direction == "decode" else d / g
