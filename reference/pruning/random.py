"""Random pruning: exactly the requested count, chosen uniformly from an explicit key."""

from __future__ import annotations

from reference import _arrays
from reference.common import validate
from reference.core.random import random_bits
from reference.core.select import keep_largest
from reference.pruning.magnitude import pruned_count

__all__ = ["random_mask"]


def random_mask(w, sparsity, key):
    r"""Prune a uniformly random subset of exactly $k = \operatorname{rne}(\text{sparsity} \cdot n)$ weights.

    Each weight draws a 32-bit score $b = \operatorname{random\_bits}(\text{key}, \text{shape}(w))$ by its flat
    index; the $n - k$ largest scores are kept, ties (probability below $n^2 / 2^{33}$) to the lower index.

    **Arguments:**

    - `w`: a float32 array, finite; only its shape and device are used.
    - `sparsity`: the fraction to prune, in `[0, 1]`.
    - `key`: a random key from `make_key`.

    **Returns:**

    A bool array shaped like `w` with exactly $n - k$ True entries; the same key gives the same mask on every
    backend and device.
    """
    w = _arrays.finite_array("w", w)
    k = pruned_count(sparsity, w.size)
    key = validate.key("key", key)
    return keep_largest(random_bits(key, w.shape), w.size - k)
