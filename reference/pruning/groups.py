r"""Channel groups: the importance of each prunable unit of a dependency group, and one global threshold over groups.

A *dependency group* is a set of parameter slices that must be pruned together: the output channel of a
convolution, the batch-norm channel after it, the same channel of the shortcut it is added to, and the input columns
of every layer that reads the sum (`torch_backend.nn.graph` finds them with `torch.fx`). Each group has $C$
*units* (its channels, or its attention heads); a unit owns entries of several tensors. These two functions are
the arithmetic of structured pruning over such groups; which entries a unit owns is the caller's (an integer array
`units`), so the functions stay small and testable on their own.
"""

from __future__ import annotations

import numpy as np

from reference import _arrays
from reference.common import shapes, validate
from reference.core.exact import exact_sum
from reference.core.reduce import _sqrt_to_float32
from reference.core.select import keep_largest
from reference.pruning.magnitude import pruned_count

__all__ = ["group_scores", "group_masks"]

CRITERIA = ("l1", "l2", "taylor")


def group_scores(values, units, count, criterion="l2", grads=None):
    r"""The importance of each unit: a norm (or first-order Taylor score) of every entry the unit owns.

    With $E_u = \{ i : \text{units}_i = u \}$ the entries of unit $u$ (its slices in every member tensor of the
    group, flattened and concatenated by the caller), and exact sums rounded once to float64 (`exact_sum`):

    $$ \text{l1}: \ I_u = \operatorname{fl}_{32}\Big(\operatorname{fl}_{64} \sum_{i \in E_u} |v_i|\Big), \qquad
       \text{l2}: \ I_u = \operatorname{fl}_{32}\Big(\sqrt{\operatorname{fl}_{64} \textstyle\sum_{i \in E_u}
       v_i^2}\Big), $$

    $$ \text{taylor}: \ I_u = \operatorname{fl}_{32}\big(\operatorname{fl}_{64}(s_u \cdot s_u)\big), \qquad
       s_u = \operatorname{fl}_{64} \sum_{i \in E_u} v_i \, g_i . $$

    Squares and products of float32 values are exact in float64, so each sum is the exact real sum rounded once;
    the square root is the correctly rounded float32 root of that float64 sum (as `lp_norm`).

    **Arguments:**

    - `values`: a 1-D float32 array, finite: every entry owned by some unit (for network slimming: the batch-norm
      scales $\gamma$ of the group's members; for Ln pruning: the weights).
    - `units`: a 1-D int64 array shaped like `values`: the unit of each entry, in `[0, count)`.
    - `count`: the number of units $C$, an int in `[0, 2**40]`.
    - `criterion`: `"l1"`, `"l2"` or `"taylor"`.
    - `grads`: for `"taylor"`, a 1-D float32 array shaped like `values`, finite: the loss gradient of each entry;
      `None` otherwise.

    **Returns:**

    A float32 array of shape `(count,)`, every entry $\ge +0$; a unit that owns no entry scores `+0.0`; a score
    beyond the float32 range is `inf`.

    !!! note "The aggregation rule"
        A unit's score is the norm of the union of its entries, over all members at once, not an average of
        per-member norms (DepGraph's default is the mean of the members' norms): a channel shared by a residual
        addition owns the slices of every layer it couples, and they all count. An entry that two member slices
        contain (a square weight whose rows and columns fall in one group) is passed, and counted, once per slice.
        For one batch norm per unit, `"l1"` is $|\gamma|$ exactly, so `group_masks` then gives `slimming_masks`.
        Example: `values=[3, -4, 1]`, `units=[0, 0, 1]`, `count=3`: l1 `[7, 1, 0]`, l2 `[5, 1, 0]`.

    ??? cite "Fang et al., 2023"
        DepGraph: Towards Any Structural Pruning. CVPR. arXiv:2301.12900
    """
    values = _arrays.finite_array("values", values)
    if values.ndim != 1:
        raise ValueError(f"values must be 1-D (the entries of every unit, concatenated), got shape {values.shape}")
    units = _arrays.shaped("units", _arrays.array("units", units, ("int64",)), values.shape, "values")
    count = shapes.size("count", count, lo=0)
    validate.choice("criterion", criterion, CRITERIA)
    if criterion == "taylor":
        if grads is None:
            raise TypeError("criterion 'taylor' needs grads, the gradient of every entry")
        grads = _arrays.shaped("grads", _arrays.finite_array("grads", grads), values.shape, "values")
    elif grads is not None:
        raise TypeError(f"grads is used with criterion 'taylor' only, got criterion {criterion!r}")
    _arrays.within("units", units, 0, count - 1)
    v = values.astype(np.float64)
    if criterion == "l1":
        with np.errstate(over="ignore"):
            return np.asarray(_unit_sums(np.abs(v), units, count).astype(np.float32))
    if criterion == "l2":
        return np.asarray(_sqrt_to_float32(_unit_sums(v * v, units, count)))
    s = _unit_sums(v * grads.astype(np.float64), units, count)
    with np.errstate(over="ignore"):
        return np.asarray((s * s).astype(np.float32))


def group_masks(scores, ratio, min_channels=1):
    r"""Unit masks from one global threshold on the scores of several groups, keeping a minimum per group.

    1. Concatenate the scores of all groups in list order ($N$ units in total) and prune the
       $k = \operatorname{rne}(\text{ratio} \cdot N)$ smallest: the mask is
       $\operatorname{keep\_largest}(\text{scores}, N - k)$, ties to the earlier group, then the lower unit.
    2. A group $g$ with $C_g$ units keeps at least $m_g = \min(\text{min\_channels}, C_g)$: its mask is or-ed with
       $\operatorname{keep\_largest}(\text{scores}_g, m_g)$, so it keeps its $\max(\text{kept}_g, m_g)$ best
       units (ties to the lower unit).

    **Arguments:**

    - `scores`: a non-empty list (or tuple) of 1-D float32 arrays without NaN (`+-inf` are ordinary scores): the
      unit scores of each group (`group_scores`). A group may have 0 units.
    - `ratio`: the fraction of all units to prune, in `[0, 1]`.
    - `min_channels`: the fewest units a group keeps, an int >= 0; a group with fewer units keeps all.

    **Returns:**

    A list of bool arrays shaped like `scores`, True where a unit is kept.

    !!! note
        Scores are ranked by value, not magnitude (`slimming_masks` is this function on $|\gamma|$). Step 2 only
        adds units back, so the total pruned can be smaller than $k$: `ratio` is an upper bound, reached exactly
        when no group falls below its minimum. The masks are nested as `ratio` grows; `+0.0` and `-0.0` tie.
        Example: `[[0.1, 0.2], [0.3, 0.05]]` at `ratio=0.5` prunes 0.05 and 0.1: `[[F, T], [T, F]]`.

    ??? cite "Liu et al., 2017"
        Learning Efficient Convolutional Networks through Network Slimming. ICCV. arXiv:1708.06519
    """
    scores = _score_list(scores)
    ratio = validate.fraction("ratio", ratio)
    min_channels = validate.integer("min_channels", min_channels, lo=0)
    flat = np.concatenate(scores)
    keep = keep_largest(flat, flat.size - pruned_count(ratio, flat.size))
    bounds = np.cumsum([0] + [s.size for s in scores])
    return [
        keep[a:b] | keep_largest(s, min(min_channels, s.size))
        for s, a, b in zip(scores, bounds[:-1], bounds[1:], strict=True)
    ]


def _unit_sums(v, units, count):
    """`exact_sum` of the float64 values of each unit: the units' entries laid out as rows padded with `+0.0`
    (which adds nothing to an exact sum), then summed along the rows."""
    order = np.argsort(units, kind="stable")
    sorted_units = units[order]
    bounds = np.searchsorted(sorted_units, np.arange(count + 1), side="left")
    width = int((bounds[1:] - bounds[:-1]).max()) if count else 0
    rows = np.zeros((count, width), dtype=np.float64)
    rows[sorted_units, np.arange(units.size) - bounds[sorted_units]] = v[order]
    return exact_sum(rows, axis=1)


def _score_list(scores):
    if isinstance(scores, np.ndarray):
        raise TypeError("scores must be a list of arrays, got a single array")
    if not isinstance(scores, list | tuple):
        raise TypeError(f"scores must be a list of arrays, got {type(scores).__name__}")
    if len(scores) == 0:
        raise ValueError(f"scores must hold at least one array, got an empty {type(scores).__name__}")
    out = [_arrays.not_nan(f"scores[{i}]", _arrays.array(f"scores[{i}]", s)) for i, s in enumerate(scores)]
    for i, s in enumerate(out):
        if s.ndim != 1:
            raise ValueError(f"scores[{i}] must be 1-D (one score per unit), got shape {tuple(s.shape)}")
    return out
