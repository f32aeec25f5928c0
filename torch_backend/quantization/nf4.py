"""NF4 in torch; the semantics are those of `reference.quantization.nf4` (IEEE division, exact nearest entry)."""

from __future__ import annotations

import math

import torch

from reference.common import shapes
from torch_backend import _arrays
from torch_backend.core.exact import exact_sum
from torch_backend.quantization._codes import count_below, midpoint_keys

__all__ = ["nf4_quantize", "nf4_dequantize", "nf4_double_quantize", "nf4_double_dequantize"]

NF4 = (
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
)  # fmt: skip
TINY = 2.0**-126
KEYS = midpoint_keys(NF4)  # 2u > v_j + v_j+1 (the reference, in float64) is u > KEYS[0][j]: see `codebook_assign`


def nf4_quantize(x, *, block_size=64):
    """NF4 codes and block absmax scales; see `reference.quantization.nf4.nf4_quantize`."""
    block_size = shapes.size("block_size", block_size)
    x = _arrays.finite_array("x", x)
    flat = x.detach().reshape(-1)
    if not flat.numel():  # no blocks: no codes, no scales
        return torch.zeros(x.shape, dtype=torch.uint8, device=x.device), flat.clone()
    absmax = _block_max(torch.abs(flat), block_size)
    absmax.masked_fill_(absmax == 0, 1.0)
    u = _blockwise(torch.div, flat, absmax, block_size)
    return count_below(u, *KEYS).reshape(x.shape), absmax


def nf4_dequantize(codes, absmax, *, block_size=64):
    """NF4 codes back to float32, one float32 product; see `reference.quantization.nf4.nf4_dequantize`."""
    block_size = shapes.size("block_size", block_size)
    codes = _arrays.array("codes", codes, ("uint8",))
    if not codes.numel() or codes.max().item() > 15:  # one reduction when all is well
        _arrays.within("codes", codes, 0, 15)
    absmax = _blocks_of("absmax", absmax, codes.numel(), block_size)
    _arrays.same_device("absmax", absmax, "codes", codes)
    v = torch.take(_table(codes), codes.to(torch.int64))
    return _blockwise(torch.mul, v.reshape(-1), absmax.detach(), block_size).reshape(codes.shape)


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
    q = torch.clamp(torch.round(_blockwise(torch.div, d, scale, block_size)), -127, 127)
    return q.to(torch.int8), scale, offset


def nf4_double_dequantize(q, scale, offset, *, block_size=256):
    """Block scales back from their double quantization; see `reference.quantization.nf4`."""
    block_size = shapes.size("block_size", block_size)
    q = _arrays.array("q", q, ("int8",))
    if q.numel():  # one reduction when all is well
        small, large = torch.aminmax(q)
        if not -127 <= small.item() <= large.item() <= 127:
            _arrays.within("q", q, -127, 127)
    if q.ndim != 1:
        raise ValueError(f"q must be 1-D, got shape {tuple(q.shape)}")
    scale = _blocks_of("scale", scale, q.shape[0], block_size)
    offset = _arrays.shaped("offset", _arrays.finite_array("offset", offset), (), "the mean of the scales")
    _arrays.same_device("scale", scale, "q", q)
    _arrays.same_device("offset", offset, "q", q)
    return _blockwise(torch.mul, q.to(torch.float32), scale.detach(), block_size).add_(offset.detach())


_TABLES = {}


def _table(like):
    """The 16 NF4 values as float32 on `like`'s device (cached)."""
    if like.device not in _TABLES:
        _TABLES[like.device] = torch.tensor(NF4, dtype=torch.float32, device=like.device)
    return _TABLES[like.device]


def _blocks_of(name, s, n, block_size):
    """Check a per-block array for `n` values: finite, > 0, shape (ceil(n / block_size),).

    One reduction and its host read when all is well: a minimum above 0 and a finite maximum prove both
    (a NaN makes both NaN); otherwise the checks run in the reference's order, for its error."""
    s = _arrays.array(name, s)
    small, large = torch.aminmax(s.detach()) if s.numel() else (None, None)
    if small is None or not (small.item() > 0 and math.isfinite(large.item())):
        s = _arrays.positive(name, _arrays.finite(name, s))
    return _arrays.shaped(name, s, (-(-n // block_size),), f"{n} values in blocks of {block_size}")


def _block_max(v, block_size):
    """The maximum of each run of `block_size` consecutive elements of the 1-D `v` (the last run may be short)."""
    full = v.numel() // block_size * block_size
    if full == v.numel():
        return v.reshape(-1, block_size).amax(dim=1)
    if not full:
        return v.amax().reshape(1)
    return torch.cat([v[:full].reshape(-1, block_size).amax(dim=1), v[full:].amax().reshape(1)])


def _blockwise(op, v, per_block, block_size):
    """`op(v, the value of each element's block)` for the 1-D `v`: broadcast over a (blocks, block_size) view
    (and the short last block), without an index per element."""
    n = v.numel()
    full = n // block_size * block_size
    if full == n:
        return op(v.reshape(-1, block_size), per_block[:, None]).reshape(-1)
    if not full:
        return op(v, per_block[0])
    out = torch.empty_like(v)
    op(v[:full].reshape(-1, block_size), per_block[: full // block_size, None], out=out[:full].view(-1, block_size))
    op(v[full:], per_block[-1], out=out[full:])
    return out
