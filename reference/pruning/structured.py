"""Structured pruning: whole slices ranked by their Ln norm, and N:M fine-grained sparsity."""

from __future__ import annotations

import math

import numpy as np

from reference import _arrays
from reference.common import shapes, validate
from reference.core.reduce import lp_norm
from reference.core.select import keep_largest
from reference.pruning.magnitude import pruned_count

__all__ = ["ln_structured_mask", "nm_mask"]


def ln_structured_mask(w, sparsity, p=2, axis=0):
    r"""Prune whole slices along `axis` (output channels for `axis=0`) with the smallest $L_p$ norm.

    Slice $c$ is $w$ indexed by $c$ along `axis`; its score is $\|w_c\|_p$ from `lp_norm` (float32, on the exact
    sum). Of the $C$ slices, $k = \operatorname{rne}(\text{sparsity} \cdot C)$ are pruned:

    $$ \text{keep}_c = \operatorname{keep\_largest}(\|w_c\|_p,\ C - k)_c, \qquad
       \text{mask} = \text{keep broadcast along the other axes} $$

    **Arguments:**

    - `w`: a float32 array with at least one dimension, finite.
    - `sparsity`: the fraction of slices to prune, in `[0, 1]`.
    - `p`: `1` or `2`.
    - `axis`: the axis whose slices are pruned.

    **Returns:**

    A bool array shaped like `w`, constant over each slice.

    !!! note
        Equal norms go to the lower slice index. `torch.nn.utils.prune.ln_structured` computes norms in float32
        and selects with `topk`: it agrees wherever norms are well separated.

    !!! note "The default is L2; Li et al. rank filters by L1"
        Li et al. prune the filters with the smallest sum of absolute kernel weights, the L1 norm: `p=1`,
        `axis=0` for a `(out, in, kh, kw)` conv weight. The default `p=2` is kept because this one function serves
        structured pruning of any slice (filters, channels, rows), where the L2 norm is the other established
        ranking (Soft Filter Pruning, He et al. 2018, ranks filters by L2; `torch.nn.utils.prune.ln_structured`
        has no default and takes `n` from the caller); pass `p=1` for the paper's criterion. Changing the default
        would change pinned outputs.

    ??? cite "Li et al., 2017"
        Pruning Filters for Efficient ConvNets. ICLR. arXiv:1608.08710
    """
    w = _arrays.finite_array("w", w)
    if w.ndim == 0:
        raise ValueError("w must have at least one dimension for structured pruning, got a 0-d array")
    axis = validate.axis("axis", axis, w.ndim)
    validate.choice("p", p, (1, 2))
    channels = w.shape[axis]
    k = pruned_count(sparsity, channels)
    rows = np.moveaxis(w, axis, 0).reshape(channels, math.prod(w.shape) // max(channels, 1))
    keep = keep_largest(lp_norm(rows, p, axis=1), channels - k)
    view = shapes.per_axis(w.ndim, axis)
    return np.broadcast_to(keep.reshape(view), w.shape).copy()


def nm_mask(w, n, m, axis=-1):
    r"""N:M sparsity: in every group of `m` consecutive weights along `axis`, keep the `n` largest $|w|$.

    Within a group $g$, weight $i$ has rank
    $\rho_i = \#\{j : |g_j| > |g_i|\} + \#\{j < i : |g_j| = |g_i|\}$ and is kept iff $\rho_i < n$.

    **Arguments:**

    - `w`: a float32 array with at least one dimension, finite; `w.shape[axis]` must be a multiple of `m`.
    - `n`: how many to keep per group, an int in `[0, m]`.
    - `m`: the group size, an int in `[1, 2**40]`. 2:4 is `n=2, m=4` (NVIDIA sparse tensor cores).
    - `axis`: the axis along which groups run (the input dimension, `-1`, for a Linear weight).

    **Returns:**

    A bool array shaped like `w` with exactly `n` True entries in each group.

    !!! note
        Ties go to the lower index in the group: `nm_mask([1, 1, 1, 1], 2, 4)` keeps `[T, T, F, F]`. Axes whose
        length is not a multiple of `m` are rejected, never padded.

    ??? cite "Mishra et al., 2021"
        Accelerating Sparse Deep Neural Networks. arXiv:2104.08378
    """
    w = _arrays.finite_array("w", w)
    n, m, axis = shapes.nm_groups(w.shape, n, m, axis)
    if w.size == 0:  # no groups to rank (and no m x m tie matrix to build for the m of an empty axis)
        return np.zeros(w.shape, dtype=bool)
    a = np.moveaxis(np.abs(w), axis, -1)
    g = a.reshape(a.shape[:-1] + (a.shape[-1] // m, m))
    gi, gj = g[..., :, None], g[..., None, :]  # element i against element j of the same group
    lower = np.arange(m)[None, :] < np.arange(m)[:, None]  # lower[i, j]: j comes before i
    rank = ((gj > gi) | ((gj == gi) & lower)).sum(axis=-1)
    return np.moveaxis((rank < n).reshape(a.shape), -1, axis)
