"""Sparsity schedules and iterative pruning in torch; the semantics are those of `reference.pruning.schedules`.

The schedules take and return Python numbers, so they are the reference's own functions, re-exported (array-free
code is written once); the masks run on the weights' device.
"""

from __future__ import annotations

import torch

from reference.common import validate
from reference.pruning.schedules import (
    agp_sparsity,
    cosine_sparsity,
    exponential_sparsity,
    iterative_sparsities,
    linear_sparsity,
)
from torch_backend import _arrays
from torch_backend.core import _radix
from torch_backend.core.select import RADIX_MIN, keep_largest
from torch_backend.pruning.magnitude import pruned_count

__all__ = [
    "agp_sparsity",
    "linear_sparsity",
    "cosine_sparsity",
    "exponential_sparsity",
    "iterative_sparsities",
    "prune_remaining_mask",
    "prune_total_mask",
]


def prune_remaining_mask(w, mask, fraction):
    """Prune rne(fraction * kept) more of the kept weights; see `reference.pruning.schedules.prune_remaining_mask`."""
    w, mask = _weights_and_mask(w, mask)
    fraction = validate.fraction("fraction", fraction)
    kept = int(torch.count_nonzero(mask))  # summing bools costs 5 times more
    return _prune_kept(w, mask, kept - pruned_count(fraction, kept))


def prune_total_mask(w, mask, fraction):
    """Prune rne(fraction * w.numel()) more of the kept weights; see `reference.pruning.schedules.prune_total_mask`."""
    w, mask = _weights_and_mask(w, mask)
    fraction = validate.fraction("fraction", fraction)
    kept = int(torch.count_nonzero(mask))  # summing bools costs 5 times more
    k = pruned_count(fraction, w.numel())
    if k > kept:
        raise ValueError(
            f"fraction {fraction!r} of {w.numel()} weights prunes {k} more, but only {kept} remain unpruned"
        )
    return _prune_kept(w, mask, kept - k)


def _weights_and_mask(w, mask):
    w = _arrays.finite_array("w", w)
    mask = _arrays.shaped("mask", _arrays.array("mask", mask, ("bool",)), w.shape, "w")
    _arrays.same_device("mask", mask, "w", w)
    return w.detach(), mask


def _prune_kept(w, mask, count):
    """Keep the `count` largest |w| among the kept weights (pruned ones score -1, below every magnitude).

    From `RADIX_MIN` weights the scores are integer keys for radix select: the float32 bit pattern with the sign
    cleared (ordered as |w|, both zeros 0), -1 where pruned; the same order, so the same mask."""
    if w.numel() >= RADIX_MIN:
        keys = (w.view(torch.int32) & 0x7FFFFFFF).masked_fill_(~mask, -1)  # in place: cheaper than `where`
        return _radix.keep_largest_keys(keys.reshape(-1), count).reshape(w.shape)
    return keep_largest(torch.where(mask, torch.abs(w), -1.0), count)
