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
from reference._reduce import sqrt_to_float32
from reference.common import shapes, validate
from reference.core.exact import exact_sum
from reference.core.select import keep_largest
from reference.pruning.magnitude import pruned_count

__all__ = ["group_scores", "group_masks"]

CRITERIA = ("l1", "l2", "taylor")
REDUCTIONS = ("mean", "sum")


def group_scores(values, units, count, criterion="l2", reduction="mean", grads=None):
    r"""The importance of each unit of a channel group, from the entries it owns in every member slice.

    A group's members are tensor slices (a producer's rows, a batch norm's scales, a consumer's columns); slice
    $m$ passes its entries `values[m]` and the unit of each, `units[m]`. With $E_u$ all entries of unit $u$, $k_u$
    the number of slices that hold any of them, and every sum exact, rounded once to float64 (`exact_sum`):

    $$ S_u = \operatorname{fl}_{64} \sum_{i \in E_u} t_i, \qquad
       \bar S_u = \begin{cases} S_u & \text{reduction} = \text{sum} \\
       \operatorname{fl}_{64}(S_u / k_u) & \text{reduction} = \text{mean} \end{cases} $$

    with $t_i = |v_i|$ for `"l1"` ($I_u = \operatorname{fl}_{32}(\bar S_u)$), $t_i = v_i^2$ for `"l2"`
    ($I_u = \operatorname{fl}_{32}(\sqrt{\bar S_u})$, correctly rounded as `lp_norm`) and $t_i = v_i g_i$ for
    `"taylor"` ($I_u = \operatorname{fl}_{32}(\operatorname{fl}_{64}(\bar S_u \cdot \bar S_u))$). Squares and
    products of float32 values are exact in float64.

    **Arguments:**

    - `values`: a list (or tuple) of 1-D float32 arrays, finite, one per member slice: the entries its units own
      (for network slimming, the batch-norm scales $\gamma$; for Ln pruning, the weights).
    - `units`: a list of 1-D int64 arrays, as many as `values`, `units[m]` shaped like `values[m]`: the unit of each
      entry, in `[0, count)`.
    - `count`: the number of units $C$, an int in `[0, 2**40]`.
    - `criterion`: `"l1"`, `"l2"` or `"taylor"`.
    - `reduction`: `"mean"` (over the member slices that hold the unit) or `"sum"` (the norm of the union).
    - `grads`: for `"taylor"`, a list of float32 arrays shaped like `values`, finite: the loss gradient of each
      entry; `None` otherwise.

    **Returns:**

    A float32 array of shape `(count,)`, every entry $\ge +0$; a unit that owns no entry scores `+0.0`; a score
    beyond the float32 range is `inf`.

    !!! note "The aggregation rule"
        `"mean"` divides the sum over all of a unit's entries by the number of member slices it has: for `"l1"`
        the mean of the slices' L1 norms. It keeps units of different groups comparable: a channel of a residual
        stream is scaled in several batch norms, an inner channel in one; with `"sum"` the stream channels would
        outrank every inner channel (DepGraph's default is also a mean over members). For one slice per unit both
        rules agree, and for one batch norm per unit `"l1"` is $|\gamma|$ exactly, so `group_masks` then gives
        `slimming_masks`. An entry that two slices contain is counted once per slice.

        Example: unit 0 owns `[3, -4]` in one slice and `[1]` in another, unit 1 owns nothing:

            >>> values, units = [np.float32([3, -4]), np.float32([1])], [np.int64([0, 0]), np.int64([0])]
            >>> group_scores(values, units, 2, "l1", "sum")
            array([8., 0.], dtype=float32)
            >>> group_scores(values, units, 2, "l1", "mean")
            array([4., 0.], dtype=float32)

    ??? cite "Fang et al., 2023"
        DepGraph: Towards Any Structural Pruning. CVPR. arXiv:2301.12900
    """
    values = _slices("values", values, ("float32",))
    units = _slices("units", units, ("int64",), like=values)
    count = shapes.size("count", count, lo=0)
    validate.choice("criterion", criterion, CRITERIA)
    validate.choice("reduction", reduction, REDUCTIONS)
    if criterion == "taylor":
        if grads is None:
            raise TypeError("criterion 'taylor' needs grads, the gradient of every entry")
        grads = _slices("grads", grads, ("float32",), like=values)
    elif grads is not None:
        raise TypeError(f"grads is used with criterion 'taylor' only, got criterion {criterion!r}")
    for m, u in enumerate(units):
        _arrays.within(f"units[{m}]", u, 0, count - 1)
    v = np.concatenate([np.zeros(0, np.float64)] + [x.astype(np.float64) for x in values])
    u = np.concatenate([np.zeros(0, np.int64)] + units)
    if criterion == "l1":
        terms = np.abs(v)
    elif criterion == "l2":
        terms = v * v
    else:
        terms = v * np.concatenate([np.zeros(0, np.float64)] + [g.astype(np.float64) for g in grads])
    s = _unit_sums(terms, u, count)
    if reduction == "mean":
        k = np.zeros(count, dtype=np.int64)
        for slice_units in units:
            k[np.unique(slice_units)] += 1
        s = np.where(k > 0, s / np.maximum(k, 1).astype(np.float64), s)
    with np.errstate(over="ignore"):
        if criterion == "l1":
            return np.asarray(s.astype(np.float32))
        if criterion == "l2":
            return np.asarray(sqrt_to_float32(s))
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

        Example: at `ratio=0.5` the two smallest of all four scores go, 0.05 and 0.1:

            >>> group_masks([np.float32([0.1, 0.2]), np.float32([0.3, 0.05])], 0.5)
            [array([False,  True]), array([ True, False])]

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


def _slices(name, arrays, dtypes, like=None):
    """A list of 1-D arrays of `dtypes` (finite if float), one per member slice, shaped like `like`'s if given."""
    if isinstance(arrays, np.ndarray) or not isinstance(arrays, list | tuple):
        kind = "a single array" if isinstance(arrays, np.ndarray) else type(arrays).__name__
        raise TypeError(f"{name} must be a list of arrays (one per member slice), got {kind}")
    if like is not None and len(arrays) != len(like):
        raise ValueError(f"{name} has {len(arrays)} arrays but values has {len(like)}; they pair up one to one")
    out = []
    for m, a in enumerate(arrays):
        a = _arrays.array(f"{name}[{m}]", a, dtypes)
        if a.dtype.kind == "f":
            a = _arrays.finite(f"{name}[{m}]", a)
        if like is not None:
            a = _arrays.shaped(f"{name}[{m}]", a, like[m].shape, f"values[{m}]")
        elif a.ndim != 1:
            raise ValueError(f"{name}[{m}] must be 1-D (the entries of one member slice), got shape {a.shape}")
        out.append(a)
    return out


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
