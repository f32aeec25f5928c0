"""Random pruning in torch; the semantics are those of `reference.pruning.random`."""

from __future__ import annotations

from reference.common import validate
from torch_backend import _arrays
from torch_backend.core.random import random_bits
from torch_backend.core.select import keep_largest
from torch_backend.pruning.magnitude import pruned_count

__all__ = ["random_mask"]


def random_mask(w, sparsity, key):
    """Prune exactly round(sparsity * n) weights chosen from the key; see `reference.pruning.random.random_mask`."""
    w = _arrays.finite_array("w", w)
    k = pruned_count(sparsity, w.numel())
    key = validate.key("key", key)
    return keep_largest(random_bits(key, tuple(w.shape), w.device), w.numel() - k)
