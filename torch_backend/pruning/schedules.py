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
from torch_backend.codecs._bytes import host_mask
from torch_backend.core import _host, _radix
from torch_backend.core.select import RADIX_MIN, keep_largest
from torch_backend.pruning import _weights
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
    w, mask, values = _weights.weights_and_mask(w, mask, PYTHON_MAX)
    fraction = validate.fraction("fraction", fraction)
    if values is not None:
        keep = mask.reshape(-1).tolist()
        kept = sum(keep)
        return _prune_kept_host(values, keep, kept - pruned_count(fraction, kept), mask.shape)
    kept = int(torch.count_nonzero(mask))  # summing bools costs 5 times more
    return _prune_kept(w, mask, kept - pruned_count(fraction, kept))


def prune_total_mask(w, mask, fraction):
    """Prune rne(fraction * w.numel()) more of the kept weights; see `reference.pruning.schedules.prune_total_mask`."""
    w, mask, values = _weights.weights_and_mask(w, mask, PYTHON_MAX)
    fraction = validate.fraction("fraction", fraction)
    keep = mask.reshape(-1).tolist() if values is not None else None
    kept = sum(keep) if keep is not None else int(torch.count_nonzero(mask))  # summing bool tensors costs 5x more
    k = pruned_count(fraction, w.numel())
    if k > kept:
        raise ValueError(
            f"fraction {fraction!r} of {w.numel()} weights prunes {k} more, but only {kept} remain unpruned"
        )
    if keep is not None:
        return _prune_kept_host(values, keep, kept - k, mask.shape)
    return _prune_kept(w, mask, kept - k)


PYTHON_MAX = 256  # up to this many CPU weights, the masks are computed on Python numbers


def _prune_kept_host(values, keep, count, shape):
    """`_prune_kept` on Python numbers: the scores `|w|` where kept and `-1.0` where pruned (`abs(-0.0)` is
    `+0.0`: both zeros tie), the `count` largest by `_host.keep_largest` (Python's stable sort, ties to the
    lower index), returned as a bool tensor of `shape`."""
    scores = [abs(v) if k else -1.0 for v, k in zip(values, keep, strict=True)]
    return host_mask(_host.keep_largest(scores, count), shape)


def _prune_kept(w, mask, count):
    """Keep the `count` largest |w| among the kept weights (pruned ones score -1, below every magnitude).

    From `RADIX_MIN` weights the scores are integer keys for radix select: the float32 bit pattern with the sign
    cleared (ordered as |w|, both zeros 0), -1 where pruned; the same order, so the same mask."""
    if w.numel() >= RADIX_MIN:
        keys = (w.view(torch.int32) & 0x7FFFFFFF).masked_fill_(~mask, -1)  # in place: cheaper than `where`
        return _radix.keep_largest_keys(keys.reshape(-1), count).reshape(w.shape)
    return keep_largest(torch.where(mask, torch.abs(w), -1.0), count)
