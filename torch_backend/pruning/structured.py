"""Structured pruning in torch; the semantics are those of `reference.pruning.structured`."""

from __future__ import annotations

import math

import torch

from reference.common import shapes, validate
from torch_backend import _arrays
from torch_backend.core.reduce import lp_norm
from torch_backend.core.select import keep_largest
from torch_backend.pruning.magnitude import pruned_count

__all__ = ["ln_structured_mask", "nm_mask"]


def ln_structured_mask(w, sparsity, p=2, axis=0):
    """Prune whole slices with the smallest Lp norm; see `reference.pruning.structured.ln_structured_mask`."""
    w = _arrays.finite_array("w", w)
    if w.ndim == 0:
        raise ValueError("w must have at least one dimension for structured pruning, got a 0-d array")
    axis = validate.axis("axis", axis, w.ndim)
    validate.choice("p", p, (1, 2))
    channels = w.shape[axis]
    k = pruned_count(sparsity, channels)
    rows = torch.movedim(w.detach(), axis, 0).reshape(channels, math.prod(w.shape) // max(channels, 1))
    keep = keep_largest(lp_norm(rows, p, axis=1), channels - k)
    view = shapes.per_axis(w.ndim, axis)
    return keep.reshape(view).expand(w.shape).clone()


def nm_mask(w, n, m, axis=-1):
    """N:M sparsity with ties to the lower index, by a stable sort; see `reference.pruning.structured.nm_mask`."""
    w = _arrays.finite_array("w", w)
    n, m, axis = shapes.nm_groups(tuple(w.shape), n, m, axis)
    if w.numel() == 0:  # no groups to sort (and no sort along an m-long axis of an empty tensor)
        return torch.zeros(w.shape, dtype=torch.bool, device=w.device)
    a = torch.movedim(torch.abs(w.detach()), axis, -1)
    g = a.reshape(a.shape[:-1] + (a.shape[-1] // m, m))
    if m <= _PAIRWISE_M and w.numel() >= _PAIRWISE_MIN:
        keep = _nm_keep_pairwise(g, n, m)
    else:
        order = torch.sort(g, dim=-1, descending=True, stable=True).indices
        keep = torch.zeros(g.shape, dtype=torch.bool, device=g.device)
        keep.scatter_(-1, order[..., :n], True)
    return torch.movedim(keep.reshape(a.shape), -1, axis)


_PAIRWISE_M = 8  # up to here m * (m - 1) / 2 column comparisons beat a sort of m-long rows ...
_PAIRWISE_MIN = 1 << 13  # ... on this many elements or more (below, the sort's few calls cost less)


def _nm_keep_pairwise(g, n, m):
    """The stable descending sort's top `n` of each row of `g` (`(..., m)`, no NaN), by ranks instead of a sort.

    Element `i` ranks `#{j < i: g_j >= g_i} + #{j > i: g_j > g_i}` (the larger first, ties to the lower index),
    the position a stable descending sort gives it, and is kept when its rank is below `n`. Each pair `i < j`
    is compared once: `g_i >= g_j` adds 1 to `j`'s rank, else 1 to `i`'s; so `i`'s rank starts at `m - 1 - i` (one
    for each later element) and each `g_i >= g_j` moves 1 from `i` to `j` (the comparison's bytes read as int8:
    no negation, no conversion). The columns are made contiguous first (`(m, ...)`): comparisons of strided
    columns cost several times more.
    """
    cols = g.movedim(-1, 0).contiguous().unbind(0)
    start = torch.arange(m - 1, -1, -1, dtype=torch.int8, device=g.device)
    rank = start.reshape((m,) + (1,) * (g.ndim - 1)).expand((m,) + cols[0].shape).clone()
    ranks = rank.unbind(0)
    for i in range(m):
        for j in range(i + 1, m):
            ge = (cols[i] >= cols[j]).view(torch.int8)
            ranks[j].add_(ge)
            ranks[i].sub_(ge)
    return (rank < n).movedim(0, -1)
