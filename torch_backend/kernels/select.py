"""Fast exact selection: radix select on the float bit patterns instead of a full sort, same tie rule.

`torch_backend.core.select.keep_largest` sorts small inputs (stable) to keep `count` of them. Here, at every size,
the radix select of `torch_backend.core._radix` runs: the scores become order-preserving integer keys (the IEEE bit pattern, with the negative half mirrored and `-0.0` merged
into `+0.0`), the key of rank `count` is found by histograms of 16-bit digits (one pass over all keys, then
passes over the few keys left in the chosen bucket), and the mask is `key > T`, plus the lowest-index keys
equal to `T` up to `count`. Everything is integer work in torch ops (no `topk`, no sort), so the mask is the
same on every device and equal, bit for bit, to the stable-sort mask. `magnitude_mask`,
`magnitude_mask_by_count` and `global_magnitude_masks` use it on `|w|` (the bit pattern with the sign cleared,
never materialising `|w|` or the concatenation of all weights); `nm_mask` ranks each group by comparisons in
a Triton kernel on CUDA (elsewhere it is `torch_backend.pruning.structured.nm_mask`).
"""

from __future__ import annotations

import math

import torch

from reference.common import shapes, validate
from torch_backend import _arrays
from torch_backend.core import _radix
from torch_backend.kernels import _dispatch
from torch_backend.pruning import _weights
from torch_backend.pruning import magnitude as _magnitude
from torch_backend.pruning import structured as _structured

__all__ = ["keep_largest", "magnitude_mask", "magnitude_mask_by_count", "global_magnitude_masks", "nm_mask"]


def keep_largest(scores, count):
    """A mask of the `count` largest scores, ties to the lower flat index, by radix select.

    See `reference.core.select.keep_largest`; equal to `torch_backend.core.select.keep_largest` bit for bit.
    """
    return _radix.keep_largest(scores, count)


def magnitude_mask(w, sparsity):
    """Keep the largest-magnitude weights, by radix select; see `reference.pruning.magnitude.magnitude_mask`."""
    w = _arrays.array("w", w)
    try:
        k = _magnitude.pruned_count(sparsity, w.numel())
    except (TypeError, ValueError):
        _arrays.finite("w", w)
        raise
    return _radix.magnitude_masks([("w", w)], w.numel() - k)[0]


def magnitude_mask_by_count(w, count):
    """Prune exactly `count` smallest-magnitude weights, by radix select; see the reference for the semantics."""
    w = _arrays.array("w", w)
    try:
        count = validate.integer("count", count, lo=0, hi=w.numel())
    except (TypeError, ValueError):
        _arrays.finite("w", w)
        raise
    return _radix.magnitude_masks([("w", w)], w.numel() - count)[0]


def global_magnitude_masks(ws, sparsity):
    """Magnitude pruning over several tensors ranked together, by radix select; see the reference."""
    named, count = _weights.named_weights(ws, sparsity)
    return _radix.magnitude_masks(named, count)


def nm_mask(w, n, m, axis=-1):
    """N:M sparsity with ties to the lower index, by ranking each group; see `reference.pruning.structured.nm_mask`.

    A Triton kernel on CUDA for m <= 16 (one read of `w`, one write of the mask); elsewhere
    `torch_backend.pruning.structured.nm_mask` (a stable sort per group).
    """
    if not _dispatch.use_triton(w):
        return _structured.nm_mask(w, n, m, axis)
    w = _arrays.array("w", w)
    try:  # the same checks as the eager function; w's finiteness is checked by the kernel (or first, on error)
        n, m, axis = shapes.nm_groups(tuple(w.shape), n, m, axis)
    except (TypeError, ValueError):
        _arrays.finite("w", w)
        raise
    if m == 1 or m > 16 or w.numel() == 0:
        return _structured.nm_mask(w, n, m, axis)
    a = torch.movedim(w.detach(), axis, -1)
    keep, bad = _nm_triton(a.contiguous(), n, m)
    _arrays.check_flag(bad.any(), lambda: _arrays.finite("w", w))  # the kernel saw a non-finite weight
    return torch.movedim(keep, -1, axis)


# ---- radix select -------------------------------------------------------------------------------------------


# ---- N:M ----------------------------------------------------------------------------------------------------


def nm_config(m: int) -> tuple[int, int]:
    """`(MP, BG)` for an nm_kernel launch with groups of `m` (`torch_backend.kernels.audit` compiles each)."""
    mp = 1 << (m - 1).bit_length()
    return mp, max(16, 4096 // (mp * mp))


def _nm_triton(a, n, m):
    k = _dispatch.kernels()
    groups = a.numel() // m
    mp, bg = nm_config(m)
    grid = (math.ceil(groups / bg),)
    out = torch.empty(a.shape, dtype=torch.bool, device=a.device)
    bad = torch.empty(grid, dtype=torch.int32, device=a.device)
    k.nm_kernel[grid](a, out, bad, groups, m, n, MP=mp, BG=bg, num_warps=4, **k.EXACT)
    return out, bad  # bad[i] = 1: program i saw a non-finite weight (the caller raises the error)
