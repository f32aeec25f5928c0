"""NF4 in torch; the semantics are those of `reference.quantization.nf4` (IEEE division, exact nearest entry)."""

from __future__ import annotations

import torch

from reference.common import shapes
from torch_backend import _arrays
from torch_backend.core.exact import exact_sum

__all__ = ["nf4_quantize", "nf4_dequantize", "nf4_double_quantize", "nf4_double_dequantize"]

NF4 = (
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
)  # fmt: skip
TINY = 2.0**-126


def nf4_quantize(x, *, block_size=64):
    """NF4 codes and block absmax scales; see `reference.quantization.nf4.nf4_quantize`."""
    block_size = shapes.size("block_size", block_size)
    x = _arrays.finite_array("x", x)
    flat = x.detach().reshape(-1)
    absmax = _block_max(torch.abs(flat), block_size)
    absmax = torch.where(absmax == 0, 1.0, absmax)
    u2 = (flat / _spread(absmax, flat.numel(), block_size)).to(torch.float64) * 2.0
    codes = (u2[:, None] > _pair_sums(flat)).sum(dim=1)  # a count of booleans: exact
    return codes.to(torch.uint8).reshape(x.shape), absmax


def nf4_dequantize(codes, absmax, *, block_size=64):
    """NF4 codes back to float32, one float32 product; see `reference.quantization.nf4.nf4_dequantize`."""
    block_size = shapes.size("block_size", block_size)
    codes = _arrays.within("codes", _arrays.array("codes", codes, ("uint8",)), 0, 15)
    absmax = _blocks_of("absmax", absmax, codes.numel(), block_size)
    _arrays.same_device("absmax", absmax, "codes", codes)
    scale = _spread(absmax.detach(), codes.numel(), block_size).reshape(codes.shape)
    return _table(codes)[codes.to(torch.int64)] * scale


def nf4_double_quantize(absmax, *, block_size=256):
    """Mean-subtracted symmetric int8 quantization of the block scales; see the reference for the semantics."""
    block_size = shapes.size("block_size", block_size)
    a = _arrays.finite_array("absmax", absmax)
    if a.ndim != 1 or a.shape[0] == 0:
        raise ValueError(f"absmax must be 1-D and non-empty, got shape {tuple(a.shape)}")
    _arrays.positive("absmax", a)
    a = a.detach()
    s = exact_sum(a)
    offset = (s / _arrays.scalar(float(a.numel()), s)).to(torch.float32)
    d = a - offset
    amax = _block_max(torch.abs(d), block_size).to(torch.float64)
    scale = (amax / _arrays.scalar(127.0, amax)).to(torch.float32)
    scale = torch.where(scale < TINY, 1.0, scale)
    q = torch.clamp(torch.round(d / _spread(scale, a.shape[0], block_size)), -127, 127)
    return q.to(torch.int8), scale, offset


def nf4_double_dequantize(q, scale, offset, *, block_size=256):
    """Block scales back from their double quantization; see `reference.quantization.nf4`."""
    block_size = shapes.size("block_size", block_size)
    q = _arrays.within("q", _arrays.array("q", q, ("int8",)), -127, 127)
    if q.ndim != 1:
        raise ValueError(f"q must be 1-D, got shape {tuple(q.shape)}")
    scale = _blocks_of("scale", scale, q.shape[0], block_size)
    offset = _arrays.shaped("offset", _arrays.finite_array("offset", offset), (), "the mean of the scales")
    _arrays.same_device("scale", scale, "q", q)
    _arrays.same_device("offset", offset, "q", q)
    return q.to(torch.float32) * _spread(scale.detach(), q.shape[0], block_size) + offset.detach()


def _table(like):
    return torch.tensor(NF4, dtype=torch.float32, device=like.device)


def _pair_sums(like):
    """v[j] + v[j+1] in float64: exact."""
    v = _table(like).to(torch.float64)
    return v[:-1] + v[1:]


def _blocks_of(name, s, n, block_size):
    """Check a per-block array for `n` values: finite, > 0, shape (ceil(n / block_size),)."""
    s = _arrays.positive(name, _arrays.finite_array(name, s))
    return _arrays.shaped(name, s, (-(-n // block_size),), f"{n} values in blocks of {block_size}")


def _block_max(v, block_size):
    """The maximum of each run of `block_size` consecutive elements of the 1-D `v` (the last run may be short)."""
    full = v.numel() // block_size * block_size
    parts = [v[:full].reshape(-1, block_size).amax(dim=1) if full else v[:0]]
    if v.numel() > full:
        parts.append(v[full:].amax().reshape(1))
    return torch.cat(parts)


def _spread(per_block, n, block_size):
    """The value of each element's block, for `n` elements."""
    return per_block[torch.arange(n, device=per_block.device) // block_size]
