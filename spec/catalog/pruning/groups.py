"""Registry entries for `reference.pruning.groups` and its torch twin: group_scores, group_masks."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from spec import strategies as S
from spec.entry import Bad, Case, Entry, Golden, Invariant

T, F = True, False
INF = float("inf")
MAX = float(np.finfo(np.float32).max)

FANG = "Fang et al., 2023. DepGraph: Towards Any Structural Pruning. CVPR. arXiv:2301.12900"
LIU = "Liu et al., 2017. Learning Efficient Convolutional Networks through Network Slimming. ICCV. arXiv:1708.06519"


def _a(values, dtype=np.float32):
    return np.array(values, dtype=dtype)


def _i(values):
    return np.array(values, dtype=np.int64)


def _m(values):
    return np.array(values, dtype=bool)


def _bits(x):
    return np.asarray(x, dtype=np.float32).view(np.uint32)


def _fsum64(terms) -> float:
    """The exact sum rounded once to float64, by an independent route (`math.fsum` is correctly rounded)."""
    return math.fsum(float(t) for t in terms)


def _nearest_root(r: np.float32, s: float) -> bool:
    """Whether float32 `r` is the float32 nearest to sqrt(s) (ties to even), by exact rational comparisons."""
    if math.isinf(s):
        return bool(np.isinf(r))
    q = Fraction(s)
    if np.isinf(r):
        top = Fraction(2) ** 128 - Fraction(2) ** 103  # the midpoint between FLT_MAX and 2**128
        return q >= top * top
    with np.errstate(over="ignore"):
        lo, hi = np.nextafter(r, np.float32(0)), np.nextafter(r, np.float32(np.inf))
    below = (Fraction(float(lo)) + Fraction(float(r))) / 2 if r > 0 else Fraction(0)
    above = (Fraction(float(r)) + (Fraction(float(hi)) if np.isfinite(hi) else Fraction(2) ** 128)) / 2
    even = int(_bits(r)) % 2 == 0
    ok_low = q > below * below or (q == below * below and even) or r == 0
    ok_high = q < above * above or (q == above * above and even)
    return ok_low and ok_high


def _score_args(case):
    values, units, count = case.args[:3]
    if len(case.args) > 3:
        criterion, reduction, grads = case.args[3:6]
    else:
        criterion, reduction, grads = case.kwargs["criterion"], case.kwargs.get("reduction", "mean"), None
    return values, units, count, criterion, reduction, grads


def _scores_by_fsum(call, case, out):
    values, units, count, criterion, reduction, grads = _score_args(case)
    assert out.dtype == np.float32 and out.shape == (count,)
    v = np.concatenate([np.zeros(0, np.float64)] + [x.astype(np.float64) for x in values])
    u = np.concatenate([np.zeros(0, np.int64)] + list(units))
    g = None if grads is None else np.concatenate([np.zeros(0, np.float64)] + [x.astype(np.float64) for x in grads])
    for unit in range(count):
        own = u == unit
        k = sum(bool(np.any(x == unit)) for x in units)
        terms = {"l1": np.abs(v[own]), "l2": v[own] * v[own], "taylor": None if g is None else v[own] * g[own]}
        total = _fsum64(terms[criterion])  # the exact sum rounded once to float64
        if reduction == "mean" and k:
            total = float(Fraction(total) / k)  # one rounding of the exact quotient, as IEEE division does
        if criterion == "l2":
            assert _nearest_root(out[unit], total), f"unit {unit}: not the nearest float32 to the root"
            continue
        with np.errstate(over="ignore"):
            want = np.float32(total) if criterion == "l1" else np.float32(np.float64(total) * np.float64(total))
        assert _bits(out[unit]) == _bits(want), f"unit {unit}: {out[unit]!r}, want {want!r}"
        if not own.any():
            assert _bits(out[unit]) == 0, "a unit without entries must score +0.0"


def _scores_ignore_order(call, case, out):
    values, units, count, criterion, reduction, grads = _score_args(case)
    back = [x[::-1].copy() for x in values][::-1], [x[::-1].copy() for x in units][::-1]
    if grads is None:
        again = call(Case((*back, count), case.kwargs))
    else:
        again = call(Case((*back, count, criterion, reduction, [x[::-1].copy() for x in grads][::-1])))
    assert np.array_equal(_bits(again), _bits(out)), "the scores depend on the order of the entries or slices"


def _one_slice_mean_is_sum(call, case, out):
    """With one member slice every unit is held by at most one slice: mean and sum agree."""
    values, units, count, criterion, reduction, grads = _score_args(case)
    if len(values) == 1 and reduction == "mean":
        if grads is None:
            other = call(Case((values, units, count), {**case.kwargs, "reduction": "sum"}))
        else:
            other = call(Case((values, units, count, criterion, "sum", grads)))
        assert np.array_equal(_bits(other), _bits(out)), "one slice: mean and sum must agree"


def _masks_valid(call, case, out):
    scores, ratio = case.args
    m = case.kwargs.get("min_channels", 1)
    assert [o.shape for o in out] == [s.shape for s in scores] and all(o.dtype == bool for o in out)
    total = sum(s.size for s in scores)
    k = round(ratio * total)
    kept = sum(int(o.sum()) for o in out)
    assert total - kept <= k, "pruned more than the ratio asks"
    short = False
    for s, o in zip(scores, out, strict=True):
        assert o.sum() >= min(m, s.size), "a group kept fewer than min_channels"
        if o.any() and (~o).any():
            assert s[o].min() >= s[~o].max(), "within a group a pruned score is larger than a kept one"
            tied = np.flatnonzero(s == s[o].min())
            assert np.all(np.diff(o[tied].astype(int)) <= 0), "among ties a higher unit was kept"
        short = short or o.sum() == min(m, s.size)
    if not short:
        assert total - kept == k, "no group is at its minimum, so exactly k must be pruned"


def _masks_global_rule(call, case, out):
    """min_channels = 0 is keep_largest over the concatenated scores; the minimum only adds units."""
    from reference.core.select import keep_largest

    scores, ratio = case.args
    plain = call(Case((scores, ratio), {"min_channels": 0}))
    flat = np.concatenate(scores)
    want = keep_largest(flat, flat.size - round(ratio * flat.size))
    assert np.array_equal(np.concatenate(plain), want), "min_channels=0 must be one global keep_largest"
    for p, o in zip(plain, out, strict=True):
        assert not np.any(p & ~o), "the per-group minimum may only add units"


def _masks_are_slimming(call, case, out):
    """On non-negative scores (|gamma|), group_masks is slimming_masks."""
    from reference.pruning.slimming import slimming_masks

    scores, ratio = case.args
    if all(np.all(np.isfinite(s)) and not np.any(s < 0) for s in scores):
        want = slimming_masks(scores, ratio, case.kwargs.get("min_channels", 1))
        assert all(np.array_equal(w, o) for w, o in zip(want, out, strict=True)), "differs from slimming_masks"


def _masks_nested(call, case, out):
    scores, ratio = case.args
    denser = call(Case((scores, min(1.0, ratio + 0.25)), case.kwargs))
    for d, o in zip(denser, out, strict=True):
        assert not np.any(d & ~o), "masks must be nested as the ratio grows"


ENTRIES = [
    Entry(
        name="group_scores",
        family="pruning",
        module="pruning.groups",
        summary="Importance of each unit of a channel group: the l1 / l2 norm or Taylor score of its entries in all "
        "member slices, as a mean over the slices or a sum.",
        strategy=S.group_score_cases,
        semantics=(
            "S_u is the exact sum over every entry of unit u in every member slice, rounded once to float64 "
            "(exact_sum) of |v| (l1), v * v (l2) or v * g (taylor); squares and products are exact in float64.",
            "reduction 'mean' (the default): fl64(S_u / k_u), k_u the number of slices that hold unit u; 'sum': S_u.",
            "l1: fl32(S); l2: the float32 nearest to sqrt(S); taylor: fl32(fl64(S * S)).",
            "A unit that owns no entry scores +0.0. The result depends on the multiset of each unit's entries and "
            "on how many slices hold it, not on their order.",
            "values and units: lists of 1-D float32 / int64 arrays, paired; units in [0, count); grads only with "
            "criterion 'taylor' (TypeError otherwise, and without).",
        ),
        invariants=(
            Invariant("equals math.fsum rounded once; nearest root", _scores_by_fsum),
            Invariant("independent of the order of the entries and slices", _scores_ignore_order),
            Invariant("one slice: mean is sum", _one_slice_mean_is_sum),
        ),
        golden=(
            Golden(
                Case(([_a([3, -4]), _a([1])], [_i([0, 0]), _i([0])], 2), {"criterion": "l1", "reduction": "sum"}),
                _a([8, 0]),
                "the union of both slices; unit 1 owns nothing",
            ),
            Golden(
                Case(([_a([3, -4]), _a([1])], [_i([0, 0]), _i([0])], 2), {"criterion": "l1"}),
                _a([4, 0]),
                "mean over the 2 slices holding unit 0",
            ),
            Golden(Case(([_a([3, -4, 1])], [_i([0, 0, 1])], 2)), _a([5, 1]), "l2: sqrt(9 + 16)"),
            Golden(
                Case(([_a([1, 2])], [_i([0, 0])], 1, "taylor", "mean", [_a([2, -1])])),
                _a([0]),
                "w . g = 2 - 2 cancels exactly",
            ),
            Golden(
                Case(([_a([MAX, MAX]), _a([-MAX])], [_i([0, 0]), _i([0])], 1), {"criterion": "l1", "reduction": "sum"}),
                _a([INF]),
                "3 * FLT_MAX is beyond float32: inf",
            ),
            Golden(
                Case(([_a([MAX]), _a([MAX]), _a([-MAX])], [_i([0]), _i([0]), _i([0])], 1), {"criterion": "l1"}),
                _a([MAX]),
                "the mean over 3 slices brings it back: 3 * FLT_MAX / 3 is FLT_MAX exactly",
            ),
            Golden(
                Case(([_a([2.0**100, 1.0, -(2.0**100)])], [_i([0, 0, 0])], 1, "taylor", "sum", [_a([1, 1, 1])])),
                _a([1.0]),
                "exact sum: 2**100 + 1 - 2**100 = 1 in any order",
            ),
            Golden(Case(([_a([-0.0])], [_i([0])], 1), {"criterion": "l2"}), _a([0.0]), "a zero norm is +0.0"),
            Golden(Case(([], [], 2)), _a([0, 0]), "no slices: every unit scores +0.0"),
        ),
        bad=(
            Bad(Case((_a([1.0]), [_i([0])], 1)), TypeError, "values must be a list of arrays (one per member slice)"),
            Bad(Case(([_a([[1.0]])], [_i([0])], 1)), ValueError, "values[0] must be 1-D"),
            Bad(Case(([_a([1.0])], [np.int32([0])], 1)), TypeError, "units[0] must have dtype int64, got int32"),
            Bad(Case(([_a([1.0])], [], 1)), ValueError, "units has 0 arrays but values has 1"),
            Bad(
                Case(([_a([1.0, 2.0])], [_i([0])], 1)),
                ValueError,
                "units[0] has shape (1,) but values[0] needs shape (2,)",
            ),
            Bad(Case(([_a([1.0])], [_i([1])], 1)), ValueError, "units[0] must be in [0, 0], got 1 at flat index 0"),
            Bad(Case(([_a([1.0])], [_i([0])], -1)), ValueError, "count must be in [0, 1099511627776], got -1"),
            Bad(Case(([_a([1.0])], [_i([0])], 1), {"criterion": "l3"}), ValueError, "criterion must be one of"),
            Bad(Case(([_a([1.0])], [_i([0])], 1), {"reduction": "max"}), ValueError, "reduction must be one of"),
            Bad(
                Case(([_a([1.0])], [_i([0])], 1), {"criterion": "taylor"}), TypeError, "criterion 'taylor' needs grads"
            ),
            Bad(
                Case(([_a([1.0])], [_i([0])], 1, "l1", "mean", [_a([1.0])])),
                TypeError,
                "grads is used with criterion 'taylor' only",
            ),
            Bad(Case(([_a([np.nan])], [_i([0])], 1)), ValueError, "values[0] must be finite, got nan at flat index 0"),
        ),
        paper=FANG,
    ),
    Entry(
        name="group_masks",
        family="pruning",
        module="pruning.groups",
        summary="Unit masks of several channel groups: one global threshold on their scores, a minimum per group.",
        strategy=S.group_mask_cases,
        semantics=(
            "k = round_half_even(ratio * N) over all N units; keep the N - k largest scores (keep_largest over the "
            "concatenation in list order): ties to the earlier group, then the lower unit; +0.0 and -0.0 tie.",
            "Then each group keeps at least min(min_channels, C): its mask is or-ed with its own "
            "min(min_channels, C) largest scores (ties to the lower unit).",
            "Scores are ranked by value (+-inf are ordinary scores, NaN is rejected); on |gamma| this is "
            "slimming_masks.",
        ),
        invariants=(
            Invariant("count bound, minimum, order, ties", _masks_valid),
            Invariant("min_channels=0 is one global keep_largest", _masks_global_rule),
            Invariant("on non-negative scores it is slimming_masks", _masks_are_slimming),
            Invariant("nested as the ratio grows", _masks_nested),
        ),
        golden=(
            Golden(
                Case(([_a([0.1, 0.2]), _a([0.3, 0.05])], 0.5)),
                [_m([F, T]), _m([T, F])],
                "prunes 0.05 and 0.1 across groups",
            ),
            Golden(
                Case(([_a([1, 1]), _a([1, 1])], 0.5), {"min_channels": 0}),
                [_m([T, T]), _m([F, F])],
                "all tie: the earlier group wins",
            ),
            Golden(
                Case(([_a([-1.0, 2.0]), _a([-INF])], 2 / 3), {"min_channels": 0}),
                [_m([F, T]), _m([F])],
                "ranked by value: -1 is below 2, -inf below everything",
            ),
            Golden(
                Case(([_a([5.0]), _a([1, 2, 3])], 0.75), {"min_channels": 2}),
                [_m([T]), _m([F, T, T])],
                "k = 3 keeps only 5; the second group gets its 2 best back",
            ),
            Golden(Case(([_a([]), _a([1.0, 2.0])], 0.5)), [_m([]), _m([F, T])], "a group with no units"),
            Golden(
                Case(([_a([0.0, -0.0]), _a([-0.0])], 2 / 3), {"min_channels": 0}),
                [_m([T, F]), _m([F])],
                "+0.0 and -0.0 tie: keep 1 of 3, the earlier group's lower unit",
            ),
        ),
        bad=(
            Bad(Case(([], 0.5)), ValueError, "scores must hold at least one array, got an empty list"),
            Bad(Case((_a([1.0]), 0.5)), TypeError, "scores must be a list of arrays, got a single array"),
            Bad(Case(([_a([[1.0]])], 0.5)), ValueError, "scores[0] must be 1-D"),
            Bad(Case(([_a([np.nan])], 0.5)), ValueError, "scores[0] must not contain NaN, got nan at flat index 0"),
            Bad(Case(([_a([1.0], np.float64)], 0.5)), TypeError, "scores[0] must have dtype float32, got float64"),
            Bad(Case(([_a([1.0])], 1.5)), ValueError, "ratio must be in [0.0, 1.0], got 1.5"),
            Bad(Case(([_a([1.0])], 0.5), {"min_channels": -1}), ValueError, "min_channels must be in [0, inf], got -1"),
        ),
        paper=LIU,
    ),
]
