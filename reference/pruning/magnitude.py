"""Unstructured magnitude pruning: by sparsity, by count, by threshold, and globally over many tensors.

Masks are bool arrays, True where the weight is kept.
"""

from __future__ import annotations

import numpy as np

from reference import _arrays
from reference.common import shapes, validate
from reference.core.select import keep_largest

__all__ = [
    "pruned_count",
    "magnitude_mask",
    "magnitude_mask_by_count",
    "magnitude_mask_by_threshold",
    "global_magnitude_masks",
    "apply_mask",
    "apply_mask_vjp",
]


def pruned_count(sparsity, n):
    r"""How many of `n` units a sparsity prunes: $k = \operatorname{rne}(\text{sparsity} \cdot n)$ in float64.

    This is the count of `torch.nn.utils.prune` (Python's `round`, ties to even), so sparsity 0.5 of 5 prunes 2
    and of 7 prunes 4 (3.5 rounds to 4), and 0.25 of 2 prunes 0.

    **Arguments:**

    - `sparsity`: a real number in `[0, 1]`.
    - `n`: an int in `[0, 2**40]`.

    **Returns:**

    A Python int in `[0, n]`.
    """
    sparsity = validate.fraction("sparsity", sparsity)
    n = shapes.size("n", n, lo=0)
    return round(sparsity * n)


def magnitude_mask(w, sparsity):
    r"""Keep the largest-magnitude weights, pruning the fraction `sparsity` of them.

    $$ k = \operatorname{rne}(\text{sparsity} \cdot n), \qquad
       \text{mask} = \operatorname{keep\_largest}(|w|,\ n - k) $$

    **Arguments:**

    - `w`: a float32 array, any shape, finite.
    - `sparsity`: the fraction to prune, in `[0, 1]`.

    **Returns:**

    A bool array shaped like `w`, True where kept, with exactly $n - k$ True entries.

    !!! note
        Ties in $|w|$ go to the lower flat index (C order): `magnitude_mask([1, -1, 1, 0.5], 0.5)` keeps indices
        0 and 1. `+0.0` and `-0.0` tie. `torch.nn.utils.prune.l1_unstructured` picks among ties with `topk`,
        which differs between CPU and CUDA.

    ??? cite "Han et al., 2015"
        Learning both Weights and Connections for Efficient Neural Networks. NeurIPS. arXiv:1506.02626
    """
    w = _arrays.finite_array("w", w)
    k = pruned_count(sparsity, w.size)
    return keep_largest(np.abs(w), w.size - k)


def magnitude_mask_by_count(w, count):
    r"""Prune exactly `count` weights of smallest magnitude: $\operatorname{keep\_largest}(|w|, n - \text{count})$.

    **Arguments:**

    - `w`: a float32 array, finite.
    - `count`: the number to prune, an int in `[0, w.size]`.

    **Returns:**

    A bool array shaped like `w`, True where kept; ties as for `magnitude_mask`.
    """
    w = _arrays.finite_array("w", w)
    count = validate.integer("count", count, lo=0, hi=w.size)
    return keep_largest(np.abs(w), w.size - count)


def magnitude_mask_by_threshold(w, threshold):
    r"""Keep the weights whose magnitude is strictly above a threshold: $\text{mask} = |w| > t$.

    **Arguments:**

    - `w`: a float32 array, finite.
    - `threshold`: a real number >= 0, compared with $|w|$ in float64 (exact for float32 weights).

    **Returns:**

    A bool array shaped like `w`, True where kept. `threshold=0` prunes exactly the zeros (of either sign).
    """
    w = _arrays.finite_array("w", w)
    t = validate.real("threshold", threshold, lo=0.0)
    return np.asarray(np.abs(w).astype(np.float64) > t)


def global_magnitude_masks(ws, sparsity):
    r"""Magnitude pruning over several tensors ranked together, as `torch.nn.utils.prune.global_unstructured`.

    All weights are flattened and concatenated in list order, so the flat index runs through `ws[0]`, then
    `ws[1]`, and so on; then $k = \operatorname{rne}(\text{sparsity} \cdot N)$ of the $N$ weights are pruned
    by `magnitude_mask`'s rule, and the mask is split back.

    **Arguments:**

    - `ws`: a non-empty list (or tuple) of float32 arrays, finite, any shapes.
    - `sparsity`: the fraction of all weights to prune, in `[0, 1]`.

    **Returns:**

    A list of bool arrays shaped like `ws`. Ties go to the earlier tensor, then the lower index.

    ??? cite "Frankle & Carbin, 2019"
        The Lottery Ticket Hypothesis: Finding Sparse, Trainable Neural Networks. ICLR. arXiv:1803.03635
    """
    ws = _arrays.finite_arrays("ws", ws)
    scores = np.concatenate([np.abs(w).reshape(-1) for w in ws])
    keep = keep_largest(scores, scores.size - pruned_count(sparsity, scores.size))
    bounds = np.cumsum([0] + [w.size for w in ws])
    return [keep[a:b].reshape(w.shape) for w, a, b in zip(ws, bounds[:-1], bounds[1:], strict=True)]


def apply_mask(w, mask):
    r"""Zero the pruned weights: $\operatorname{where}(\text{mask}, w, +0)$.

    **Arguments:**

    - `w`: a float32 array; any values, NaN and Inf included (kept ones pass through unchanged).
    - `mask`: a bool array of exactly `w`'s shape (no broadcasting).

    **Returns:**

    A float32 array shaped like `w`.

    !!! note
        A pruned entry is always `+0.0`. `w * mask` would give `-0.0` for a pruned negative weight and NaN for a
        pruned Inf or NaN.
    """
    w = _arrays.array("w", w)
    mask = _arrays.shaped("mask", _arrays.array("mask", mask, ("bool",)), w.shape, "w")
    return np.where(mask, w, np.float32(0))


def apply_mask_vjp(grad, w, mask):
    r"""The gradient of `apply_mask` with respect to `w`: $\operatorname{where}(\text{mask}, g, +0)$.

    Pruned weights receive exactly `+0.0`, so a dense master weight under a fixed mask does not move.

    **Arguments:**

    - `grad`: a float32 array shaped like `w`, the cotangent $g$ of the output.
    - `w`: a float32 array.
    - `mask`: a bool array of `w`'s shape.

    **Returns:**

    A float32 array shaped like `w`.
    """
    w = _arrays.array("w", w)
    mask = _arrays.shaped("mask", _arrays.array("mask", mask, ("bool",)), w.shape, "w")
    grad = _arrays.shaped("grad", _arrays.array("grad", grad), w.shape, "w")
    return np.where(mask, grad, np.float32(0))
