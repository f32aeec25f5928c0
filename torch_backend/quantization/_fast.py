"""Bit-exact forms of two steps that torch's CPU loops run slowly, shared by the quantization, codec and
post-training families (package-private): a `where` by bit patterns, and per-channel parameters laid out so
that broadcasting them runs long inner loops."""

from __future__ import annotations

import math

import torch

from reference.common import shapes
from torch_backend import _arrays

SELECT_MIN = _arrays.WHERE_KEPT_MIN  # from this many mask elements `select` combines bit patterns

_INTS = {torch.float32: torch.int32, torch.float64: torch.int64}


def select(mask, a, b):
    """`torch.where(mask, a, b)` with the same bits, for float32 or float64 tensors `a` and `b` of one dtype
    (either may be 0-d; a Python float becomes a constant of the other's dtype). No autograd through it.

    Large masks (`SELECT_MIN` elements or more) take `b ^ ((a ^ b) & keep)` on the bit patterns, `keep` all ones
    where `mask` holds and all zeros elsewhere: `a`'s bits where it holds, `b`'s elsewhere, exactly `where`'s
    choice (a NaN or a signed zero is copied, not computed), about twice as fast as torch's CPU `where`.
    """
    if not isinstance(a, torch.Tensor):
        a = _arrays.constant(float(a), b)
    if not isinstance(b, torch.Tensor):
        b = _arrays.constant(float(b), a)
    kind = _INTS.get(a.dtype)
    if mask.numel() < SELECT_MIN or kind is None or b.dtype != a.dtype:
        return torch.where(mask, a, b)
    keep = mask.to(kind).neg_()  # -1: every bit set
    ai, bi = a.detach().view(kind), b.detach().view(kind)
    return torch.bitwise_xor(ai, bi).bitwise_and_(keep).bitwise_xor_(bi).view(a.dtype)


FLAT_INNER = 64  # per-channel parameters are repeated over inner runs shorter than this
FLAT_MIN = 1 << 14  # in tensors of at least this many elements (smaller ones: the repeat costs more than it saves)


def channels(x, k, *params):
    """`x` and its per-channel parameters (each `(C,)` along axis `k`; 0-d, or anything, for `k` None) shaped to
    broadcast against each other; a result computed on the returned `x` is reshaped to `x.shape` by the caller.

    Broadcasting `(1, C, 1)` against `(A, C, B)` runs torch's inner loop over the `B` elements of one run: slow
    for short runs. When `B < FLAT_INNER` and `x` is contiguous, with `FLAT_MIN` elements or more in at least 8
    channel blocks (`A >= 8`), `x` is viewed as `(A, C B)` and each parameter repeated to `(C B,)` (at most an
    eighth of `x`): element `(a, c, j)` meets parameter `c` as before, so every elementwise result is the same,
    bit for bit. Otherwise the parameters are viewed along `k` (`shapes.per_axis`).
    """
    if k is None:
        return (x, *params)
    c = x.shape[k]
    inner = math.prod(x.shape[k + 1 :])
    if 1 < inner < FLAT_INNER and x.numel() >= max(FLAT_MIN, 8 * c * inner) and x.is_contiguous():
        return (x.reshape(-1, c * inner), *(p.reshape(c, 1).expand(c, inner).reshape(c * inner) for p in params))
    view = shapes.per_axis(x.ndim, k)
    return (x, *(p.reshape(view) for p in params))


BLOCK = 1 << 17  # elements per block of `blocks`: a few float32 operands of this size stay in a core's cache


def blocks(n, size=None):
    """Slices `[s, s + size)` covering `range(n)` in order (`size` defaults to `BLOCK`): elementwise steps run
    block by block give each element the same operations, so the same bits, while their operands stay in cache."""
    size = size or BLOCK
    return [slice(s, min(s + size, n)) for s in range(0, n, size)]
