"""Saliency pruning: scores beyond |w| (movement, SNIP, Taylor, Wanda, FPGM, blocks) and the masks they rank.

Every score is a float32 array settled by IEEE operations in a pinned order (and the exact sum, rounded once to
float64, wherever something is summed), so both backends compute the same bits. Every mask ranks its scores with
`keep_largest`: the largest scores are kept and equal scores go to the lower flat index, as in magnitude pruning.
Masks are bool arrays, True where the weight is kept.
"""

from __future__ import annotations

import math

import numpy as np

from reference import _arrays
from reference._reduce import sqrt_to_float32
from reference.common import shapes, validate
from reference.core.exact import exact_sum
from reference.core.reduce import lp_norm
from reference.core.select import keep_largest
from reference.pruning.magnitude import pruned_count

__all__ = [
    "score_mask",
    "movement_scores",
    "snip_scores",
    "taylor_scores",
    "taylor_mask",
    "wanda_scores",
    "wanda_mask",
    "fpgm_scores",
    "fpgm_mask",
    "block_scores",
    "block_mask",
]


def score_mask(scores, sparsity):
    r"""Keep the largest scores, pruning the fraction `sparsity` of them: magnitude pruning's rule for any score.

    $$ k = \operatorname{rne}(\text{sparsity} \cdot n), \qquad
       \text{mask} = \operatorname{keep\_largest}(\text{scores},\ n - k) $$

    Use it on `movement_scores` (movement pruning keeps the largest accumulated scores), on `snip_scores`, or on
    per-channel scores such as `taylor_scores` (the result is then a per-channel keep vector). For one ranking over
    several layers, concatenate their flattened scores first.

    **Arguments:**

    - `scores`: a float32 array, any shape, without NaN; $\pm\infty$ are ordinary scores (an overflowed score is
      the largest there is).
    - `sparsity`: the fraction to prune, in `[0, 1]`.

    **Returns:**

    A bool array shaped like `scores` with exactly $n - k$ True entries.

    !!! note
        Equal scores go to the lower flat index (C order), `+0.0` and `-0.0` tie:
        `score_mask([2, 5, 2, 2], 0.5)` keeps indices 0 and 1. The count is `pruned_count`'s (ties to even):
        sparsity 0.5 of 5 scores prunes 2.
    """
    scores = _arrays.not_nan("scores", _arrays.array("scores", scores))
    k = pruned_count(sparsity, scores.size)
    return keep_largest(scores, scores.size - k)


def movement_scores(scores, w, grad):
    r"""One step of movement pruning's score accumulation: add $-w \cdot \partial L / \partial w$.

    $$ S' = \operatorname{fl}_{32}\big(S - \operatorname{fl}_{32}(w \cdot g)\big) $$

    Weights moving away from zero ($w g < 0$) gain score, weights moving toward zero lose it. Start from
    `scores = zeros_like(w)` and call once per optimizer step; `score_mask(scores, sparsity)` is then the
    (hard) movement pruning mask. A learning rate for the scores is the caller's: scale `grad` before the call
    ($w \cdot (\eta g)$ is then the one product).

    **Arguments:**

    - `scores`: a float32 array, finite: the accumulated scores $S$.
    - `w`: a float32 array of the same shape, finite: the weights at this step.
    - `grad`: a float32 array of the same shape, finite: the loss gradient $g$ with respect to `w`.

    **Returns:**

    A float32 array shaped like `w`: the new scores $S'$.

    !!! note
        Two float32 roundings, the product then the difference, never fused into one multiply-add.
        $S - wg$ is bit for bit $S + (-(wg))$. A product beyond the float32 range overflows to $\pm\infty$ and so
        does the score (IEEE; it cannot be NaN since $S$ is finite). Shapes must be equal, never broadcast.
        Example: $S = 0.5$, $w = 2$, $g = -0.25$ gives $0.5 - (-0.5)$:

            >>> movement_scores(np.float32([0.5]), np.float32([2]), np.float32([-0.25]))
            array([1.], dtype=float32)

    ??? cite "Sanh et al., 2020"
        Movement Pruning: Adaptive Sparsity by Fine-Tuning. NeurIPS. arXiv:2005.07683
    """
    scores = _arrays.finite_array("scores", scores)
    w = _arrays.finite_array("w", w)
    _arrays.shaped("scores", scores, w.shape, "w")
    grad = _arrays.shaped("grad", _arrays.finite_array("grad", grad), w.shape, "w")
    with np.errstate(over="ignore"):
        return np.asarray(scores - w * grad)


def snip_scores(w, grad):
    r"""SNIP's connection sensitivity: $|w \cdot g|$, one float32 rounding per weight.

    $$ s = \big|\operatorname{fl}_{32}(w \cdot g)\big| $$

    **Arguments:**

    - `w`: a float32 array, finite: the weights at initialization.
    - `grad`: a float32 array of the same shape, finite: the loss gradient with respect to `w` on one batch.

    **Returns:**

    A float32 array shaped like `w`, every entry $\ge +0$ (never `-0.0`).

    !!! note
        SNIP divides by $\sum_k |w_k g_k|$; that division does not change the ranking and is left out (in float32
        it could only merge nearly equal scores into ties). Rank with `score_mask`, which keeps the largest
        sensitivities; SNIP ranks all layers together (concatenate the flattened scores). A product beyond the
        float32 range is `inf`. Example: $|{-3} \cdot 0.5|$:

            >>> snip_scores(np.float32([-3]), np.float32([0.5]))
            array([1.5], dtype=float32)

    ??? cite "Lee et al., 2019"
        SNIP: Single-shot Network Pruning based on Connection Sensitivity. ICLR. arXiv:1810.02340
    """
    w = _arrays.finite_array("w", w)
    grad = _arrays.shaped("grad", _arrays.finite_array("grad", grad), w.shape, "w")
    with np.errstate(over="ignore"):
        return np.asarray(np.abs(w * grad))


def taylor_scores(w, grad, axis=0):
    r"""First-order Taylor importance of each slice along `axis`: the squared sum of $w \cdot g$ over the slice.

    $$ I_c = \operatorname{fl}_{32}\Big(\operatorname{fl}_{64}\big(s_c \cdot s_c\big)\Big), \qquad
       s_c = \operatorname{exact\_sum}\big(w_c \odot g_c\big) $$

    Each product $w_i g_i$ of two float32 values is exact in float64; $s_c$ is their exact sum rounded once to
    float64; the square is rounded to float64, then to float32.

    **Arguments:**

    - `w`: a float32 array with at least one dimension, finite.
    - `grad`: a float32 array of the same shape, finite: the loss gradient with respect to `w`.
    - `axis`: the axis whose slices are scored (`0`: the output channels, filters of a conv weight).

    **Returns:**

    A float32 array of shape `(w.shape[axis],)`, every entry $\ge +0$; a square beyond the float32 range is `inf`.

    !!! note
        The two roundings of the square (float64, then float32) are pinned: the result is not the exact square
        rounded once, but it is the same on every backend. A slice whose products cancel exactly scores `+0.0`:
        $w = [[1, 2]]$, $g = [[2, -1]]$ gives $(2 - 2)^2 = 0$, although each weight has a nonzero gradient.

    ??? cite "Molchanov et al., 2019"
        Importance Estimation for Neural Network Pruning. CVPR. arXiv:1906.10771
    """
    w = _arrays.finite_array("w", w)
    grad = _arrays.shaped("grad", _arrays.finite_array("grad", grad), w.shape, "w")
    if w.ndim == 0:
        raise ValueError("w must have at least one dimension for per-slice scores, got a 0-d array")
    axis = validate.axis("axis", axis, w.ndim)
    products = _slices(w, axis).astype(np.float64) * _slices(grad, axis).astype(np.float64)
    s = exact_sum(products, axis=1)
    return np.asarray((s * s).astype(np.float32))


def taylor_mask(w, grad, sparsity, axis=0):
    r"""Prune the whole slices along `axis` with the smallest first-order Taylor importance.

    $$ k = \operatorname{rne}(\text{sparsity} \cdot C), \qquad
       \text{keep} = \operatorname{keep\_largest}(\operatorname{taylor\_scores}(w, g, \text{axis}),\ C - k) $$

    broadcast along the other axes.

    **Arguments:**

    - `w`, `grad`, `axis`: as for `taylor_scores`.
    - `sparsity`: the fraction of slices to prune, in `[0, 1]`.

    **Returns:**

    A bool array shaped like `w`, constant over each slice, with exactly $C - k$ slices kept.

    !!! note
        Equal importances go to the lower slice index.

    ??? cite "Molchanov et al., 2019"
        Importance Estimation for Neural Network Pruning. CVPR. arXiv:1906.10771
    """
    scores = taylor_scores(w, grad, axis)
    axis = axis % w.ndim
    keep = keep_largest(scores, scores.size - pruned_count(sparsity, scores.size))
    return _broadcast_slices(keep, w.shape, axis)


def wanda_scores(w, x):
    r"""Wanda's score: each weight's magnitude times the L2 norm of its input feature over the calibration tokens.

    $$ S_{ij} = |W_{ij}| \cdot \|X_{:, j}\|_2 $$

    $\|X_{:, j}\|_2$ is `lp_norm(x, 2, axis=0)`, the correctly rounded float32 norm of the canonical float64 sum
    of squares; the product is one float32 multiplication.

    **Arguments:**

    - `w`: a float32 array of shape `(out, in)`, finite: a Linear weight.
    - `x`: a float32 array of shape `(tokens, in)` with `tokens >= 1`, finite: the layer's calibration inputs
      (flatten batch and sequence into `tokens`).

    **Returns:**

    A float32 array of shape `(out, in)`, every entry $\ge +0$.

    !!! note
        A zero weight scores `+0.0` even where the feature norm overflows to `inf` (never $0 \cdot \infty$ = NaN);
        a product beyond the float32 range is `inf`. An empty calibration set (`tokens = 0`) is rejected.
        Example: the feature norms of $X$ are $[5, 1]$:

            >>> wanda_scores(np.float32([[1, -2]]), np.float32([[3, 0], [4, 1]]))
            array([[5., 2.]], dtype=float32)

    ??? cite "Sun et al., 2023"
        A Simple and Effective Pruning Approach for Large Language Models. arXiv:2306.11695
    """
    w, x = _check_wanda(w, x)
    a = np.abs(w)
    with np.errstate(over="ignore", invalid="ignore"):  # 0 * inf is replaced by +0 below
        product = a * lp_norm(x, 2, axis=0).reshape(1, -1)
    return np.asarray(np.where(a == 0, np.float32(0), product))


def wanda_mask(w, x, sparsity):
    r"""Wanda pruning: in every output row, prune the fraction `sparsity` of the weights with the smallest score.

    $$ k = \operatorname{rne}(\text{sparsity} \cdot \text{in}), \qquad
       \text{mask}_{i,:} = \operatorname{keep\_largest}(S_{i,:},\ \text{in} - k) $$

    with $S$ = `wanda_scores(w, x)`. Weights compete only within their output row, as in the paper.

    **Arguments:**

    - `w`, `x`: as for `wanda_scores`.
    - `sparsity`: the fraction to prune in each row, in `[0, 1]`.

    **Returns:**

    A bool array of shape `(out, in)` with exactly $\text{in} - k$ True entries in every row.

    !!! note
        Equal scores go to the lower input index within the row, and the count rounds half to even. The authors'
        code differs on both: it prunes `int(sparsity * in)` (truncated) by an ascending stable sort, so among
        equal scores it prunes the *lower* indices. They agree whenever a row has no ties and
        $\text{sparsity} \cdot \text{in}$ is an integer (tested).

    ??? cite "Sun et al., 2023"
        A Simple and Effective Pruning Approach for Large Language Models. arXiv:2306.11695
    """
    scores = wanda_scores(w, x)
    n_in = scores.shape[1]
    k = pruned_count(sparsity, n_in)
    rows = [keep_largest(row, n_in - k) for row in scores]
    return np.stack(rows) if rows else np.zeros(scores.shape, dtype=bool)


def fpgm_scores(w, axis=0):
    r"""FPGM's score of each filter: the sum of its Euclidean distances to all filters (small = near the median).

    $$ d_{ij} = \operatorname{fl}_{32}\sqrt{\operatorname{exact\_sum}\big(\operatorname{fl}_{64}(f_i - f_j)^2\big)},
       \qquad \text{score}_i = \operatorname{fl}_{32}\Big(\operatorname{exact\_sum}_{j}\, d_{ij}\Big) $$

    Filter $f_i$ is the slice $i$ along `axis`, flattened in C order. Every step is pinned:

    1. $f_i - f_j$ in float64, per element: exact whenever the binary exponents of the two float32 values differ
       by at most 29 (always when one is zero); otherwise one float64 rounding.
    2. its square in float64: one rounding (exact when the difference has at most 26 significant bits, as it has
       when both values share a binary exponent).
    3. the exact sum over the elements rounded once to float64, then the correctly rounded float32 square root
       (`lp_norm`'s, settled by exact arithmetic; a distance beyond the float32 range is `inf`).
    4. the exact sum of the float32 distances over $j = 0, \ldots, C-1$ (including $d_{ii} = 0$), rounded to
       float64, then to float32; any infinite distance makes the score `inf`.

    The paper's criterion: the filter minimizing $\sum_j \|f_i - f_j\|_2$ is the one nearest the geometric median
    of the layer, the most replaceable by the others.

    **Arguments:**

    - `w`: a float32 array with at least one dimension, finite.
    - `axis`: the axis of the filters (`0` for the output channels of a conv weight).

    **Returns:**

    A float32 array of shape `(w.shape[axis],)`, every entry $\ge +0$.

    !!! note
        $d_{ij} = d_{ji}$ exactly ($f_i - f_j$ and $f_j - f_i$ round to opposite values). Example: filters
        $[0, 0]$, $[3, 4]$, $[6, 8]$ are $5$, $5$, $10$ apart, so the middle filter is pruned first:

            >>> fpgm_scores(np.float32([[0, 0], [3, 4], [6, 8]]))
            array([15., 10., 15.], dtype=float32)

        Memory is $O(C^2 D)$: written to be read, not for large layers.

    ??? cite "He et al., 2019"
        Filter Pruning via Geometric Median for Deep Convolutional Neural Networks Acceleration. CVPR.
        arXiv:1811.00250
    """
    w = _arrays.finite_array("w", w)
    if w.ndim == 0:
        raise ValueError("w must have at least one dimension for per-slice scores, got a 0-d array")
    axis = validate.axis("axis", axis, w.ndim)
    f = _slices(w, axis).astype(np.float64)
    diff = f[:, None, :] - f[None, :, :]
    d = sqrt_to_float32(exact_sum(diff * diff, axis=2))
    infinite = np.isinf(d).any(axis=1)
    total = exact_sum(np.where(np.isinf(d), np.float32(0), d), axis=1).astype(np.float32)
    return np.asarray(np.where(infinite, np.float32(np.inf), total))


def fpgm_mask(w, sparsity, axis=0):
    r"""FPGM pruning: prune the filters along `axis` nearest the geometric median (the smallest `fpgm_scores`).

    $$ k = \operatorname{rne}(\text{sparsity} \cdot C), \qquad
       \text{keep} = \operatorname{keep\_largest}(\operatorname{fpgm\_scores}(w, \text{axis}),\ C - k) $$

    broadcast along the other axes.

    **Arguments:**

    - `w`, `axis`: as for `fpgm_scores`.
    - `sparsity`: the fraction of filters to prune, in `[0, 1]`.

    **Returns:**

    A bool array shaped like `w`, constant over each filter, with exactly $C - k$ filters kept.

    !!! note
        Equal scores go to the lower filter index (so among identical filters the later ones are pruned first).
        The authors' code ranks with `np.argsort` (quicksort), whose order among equal sums is unspecified.

    ??? cite "He et al., 2019"
        Filter Pruning via Geometric Median for Deep Convolutional Neural Networks Acceleration. CVPR.
        arXiv:1811.00250
    """
    scores = fpgm_scores(w, axis)
    axis = axis % w.ndim
    keep = keep_largest(scores, scores.size - pruned_count(sparsity, scores.size))
    return _broadcast_slices(keep, w.shape, axis)


def block_scores(w, block):
    r"""The L2 norm of every `block[0]` x `block[1]` tile of a 2-D weight.

    $$ \text{score}_{rc} = \big\| w[r b_0 : (r+1) b_0,\ c b_1 : (c+1) b_1] \big\|_2 $$

    computed by `lp_norm` (canonical float64 sum of squares over the tile in row-major order, correctly rounded
    float32 square root).

    **Arguments:**

    - `w`: a float32 array of shape `(rows, cols)`, finite.
    - `block`: a tuple of two ints $(b_0, b_1)$ in `[1, 2**40]` that divide `rows` and `cols` (never padded).

    **Returns:**

    A float32 array of shape `(rows // b0, cols // b1)`; a norm beyond the float32 range is `inf`.

    !!! note
        Example: the L2 norms of `[3, 4]` and `[0, 1]`:

            >>> block_scores(np.float32([[3, 4, 0, 1]]), (1, 2))
            array([[5., 1.]], dtype=float32)

    ??? cite "Gray et al., 2017"
        GPU Kernels for Block-Sparse Weights. OpenAI technical report.
    """
    w = _arrays.finite_array("w", w)
    b0, b1 = shapes.block_grid(w.shape, block)
    return lp_norm(_tiles(w, b0, b1), 2, axis=2)


def block_mask(w, sparsity, block):
    r"""Block sparsity: prune whole tiles of a 2-D weight, those with the smallest L2 norm.

    $$ k = \operatorname{rne}(\text{sparsity} \cdot B), \qquad
       \text{keep} = \operatorname{keep\_largest}(\operatorname{block\_scores}(w, \text{block}),\ B - k) $$

    with $B$ the number of tiles; each tile's decision is repeated over its $b_0 \times b_1$ weights.

    **Arguments:**

    - `w`, `block`: as for `block_scores`.
    - `sparsity`: the fraction of tiles to prune, in `[0, 1]`.

    **Returns:**

    A bool array shaped like `w`, constant over each tile, with exactly $B - k$ tiles kept.

    !!! note
        Equal norms go to the lower tile index, tiles numbered row-major over the tile grid. Shapes that the block
        does not divide are rejected: `block_mask(w of shape (3, 4), 0.5, (2, 2))` raises `ValueError`.

    ??? cite "Gray et al., 2017"
        GPU Kernels for Block-Sparse Weights. OpenAI technical report.
    """
    scores = block_scores(w, block)
    b0, b1 = block
    keep = keep_largest(scores, scores.size - pruned_count(sparsity, scores.size))
    return np.repeat(np.repeat(keep, b0, axis=0), b1, axis=1)


def _slices(w, axis):
    """`w` as a 2-D array `(C, D)`: row c is slice c along `axis`, flattened in C order."""
    channels = w.shape[axis]
    return np.moveaxis(w, axis, 0).reshape(channels, math.prod(w.shape) // max(channels, 1))


def _broadcast_slices(keep, shape, axis):
    view = shapes.per_axis(len(shape), axis)
    return np.broadcast_to(keep.reshape(view), shape).copy()


def _check_wanda(w, x):
    w = _arrays.finite_array("w", w)
    x = _arrays.finite_array("x", x)
    if w.ndim != 2:
        raise ValueError(f"w must be 2-D (out, in), got shape {tuple(w.shape)}")
    if x.ndim != 2:
        raise ValueError(f"x must be 2-D (tokens, in), got shape {tuple(x.shape)}")
    _arrays.shaped("x", x, (x.shape[0], w.shape[1]), f"w with {w.shape[1]} input features")
    if x.shape[0] == 0:
        raise ValueError("x must hold at least one calibration token (row), got 0")
    return w, x


def _tiles(w, b0, b1):
    """`(rows // b0, cols // b1, b0 * b1)`: every tile flattened row-major."""
    r, c = w.shape[0] // b0, w.shape[1] // b1
    return w.reshape(r, b0, c, b1).transpose(0, 2, 1, 3).reshape(r, c, b0 * b1)
