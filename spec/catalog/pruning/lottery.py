"""Registry entries for `reference.pruning.lottery` and its torch twin: imp_mask, lottery_rewind, imp_schedule."""

from __future__ import annotations

import numpy as np

from spec import strategies as S
from spec.catalog.common import TIE_RULE
from spec.catalog.common import array as _a
from spec.catalog.common import kept as _kept
from spec.catalog.common import mask as _m
from spec.catalog.common import ranked as _ranked
from spec.entry import Bad, Case, Entry, Golden, Invariant

T, F = True, False


FRANKLE = (
    "Frankle & Carbin, 2019. The Lottery Ticket Hypothesis: Finding Sparse, Trainable Neural Networks. ICLR. "
    "arXiv:1803.03635"
)
FRANKLE_2020 = (
    "Frankle et al., 2020. Linear Mode Connectivity and the Lottery Ticket Hypothesis. ICML. arXiv:1912.05671"
)


def _imp(call, case, out):
    w, mask, fraction = case.args
    alive = int(mask.sum())
    assert out.shape == w.shape and not np.any(out & ~mask), "a pruned weight came back"
    assert out.sum() == _kept(alive, fraction), "wrong number kept"
    _ranked(np.abs(w)[mask], out[mask])


def _imp_nested(call, case, out):
    w, mask, fraction = case.args
    denser = call(Case((w, mask, min(1.0, fraction + 0.25))))
    assert not np.any(denser & ~out), "masks must be nested as the fraction grows"


def _imp_rounds(call, case, out):
    """Two rounds from an all-True mask keep the counts of imp_schedule."""
    from reference.pruning.lottery import imp_schedule

    w, _, fraction = case.args
    first = call(Case((w, np.ones(w.shape, dtype=bool), fraction)))
    second = call(Case((w, first, fraction)))
    assert [w.size, int(first.sum()), int(second.sum())] == imp_schedule(w.size, fraction, 2)


def _rewind(call, case, out):
    w, mask = case.args
    assert out.dtype == np.float32 and out.shape == w.shape
    assert np.array_equal(out[mask].view(np.uint32), w[mask].view(np.uint32)), "kept values must be the snapshot's"
    assert np.all(out[~mask].view(np.uint32) == 0), "pruned values must be +0.0"


def _schedule(call, case, out):
    n, fraction, rounds = case.args
    assert isinstance(out, list) and len(out) == rounds + 1 and out[0] == n
    for a, b in zip(out, out[1:], strict=False):
        assert 0 <= b <= a and a - b == round(fraction * a), "each round prunes rne(fraction * survivors)"


ENTRIES = [
    Entry(
        name="imp_mask",
        family="pruning",
        module="pruning.lottery",
        summary="One round of iterative magnitude pruning: prune a fraction of the surviving weights by |w|.",
        strategy=S.imp_mask_cases,
        semantics=(
            "k = round_half_even(fraction * survivors); the survivors - k largest |w| among the survivors stay.",
            "Pruned weights stay pruned whatever their value. " + TIE_RULE,
            "Divergence: the lottery-ticket codebases prune |w| <= sorted|w|[rne(p m)] (Frankle & Carbin) or "
            "|w| <= sorted|w|[ceil(p m)] (OpenLTH, global): one more than their count, and every tie at the cutoff.",
        ),
        invariants=(
            Invariant("subset, count, order among survivors", _imp),
            Invariant("nested as the fraction grows", _imp_nested),
            Invariant("rounds follow imp_schedule", _imp_rounds),
        ),
        golden=(
            Golden(Case((_a([4, 1, 3, 2]), _m([T, T, T, F]), 0.5)), _m([T, F, F, F]), "3 survivors, k = rne(1.5) = 2"),
            Golden(Case((_a([9, 1, 2]), _m([F, T, T]), 0.5)), _m([F, F, T]), "the pruned 9 never comes back"),
            Golden(Case((_a([1, -1, 1, 1]), _m([T, T, T, T]), 0.5)), _m([T, T, F, F]), "ties to the lower index"),
            Golden(
                Case((_a([-0.0, 0.0, 1.0, 0.0]), _m([T, T, T, T]), 0.5)),
                _m([T, F, T, F]),
                "+0.0 and -0.0 tie: the -0.0 at index 0 survives as the lower index",
            ),
        ),
        bad=(
            Bad(Case((_a([1, 2]), _m([T]), 0.5)), ValueError, "mask has shape (1,) but w needs shape (2,)"),
            Bad(Case((_a([1, 2]), _m([T, T]), 1.5)), ValueError, "fraction must be in [0.0, 1.0], got 1.5"),
        ),
        paper=FRANKLE,
        peers=(
            (
                "lottery-ticket codebases",
                "prune |w| <= sorted|w|[rne(p m)] (Frankle & Carbin) or |w| <= sorted|w|[ceil(p m)] (OpenLTH, global): one more than their count, and every tie at the threshold.",
            ),
        ),
    ),
    Entry(
        name="lottery_rewind",
        family="pruning",
        module="pruning.lottery",
        summary="Rewind the surviving weights to a snapshot (w_0 or w_k) and zero the pruned ones.",
        strategy=S.rewind_cases,
        semantics=(
            "where(mask, w_rewind, +0.0): rewinding to initialization or to step k differs only in the snapshot.",
            "Pruned entries are +0.0 (never -0.0); the snapshot must be finite.",
        ),
        invariants=(Invariant("kept = snapshot bits, pruned = +0.0", _rewind),),
        golden=(
            Golden(Case((_a([-1, 2, -3]), _m([F, T, T]))), _a([0, 2, -3]), "the pruned -1 becomes +0.0"),
            Golden(
                Case((_a([-0.0, 2, -3, -0.0]), _m([T, T, F, F]))),
                _a([-0.0, 2, 0, 0]),
                "a kept -0.0 stays -0.0; the pruned -3 and -0.0 become +0.0",
            ),
        ),
        bad=(
            Bad(Case((_a([1.0]), _a([1.0]))), TypeError, "mask must have dtype bool, got float32"),
            Bad(Case((_a([np.nan]), _m([T]))), ValueError, "w_rewind must be finite, got nan at flat index 0"),
        ),
        paper=FRANKLE_2020,
    ),
    Entry(
        name="imp_schedule",
        family="pruning",
        module="pruning.lottery",
        summary="Survivor counts of iterative magnitude pruning: m_{r+1} = m_r - rne(fraction * m_r).",
        strategy=S.imp_schedule_cases,
        semantics=(
            "Counts are Python ints; each round prunes round_half_even(fraction * survivors).",
            "The lottery-ticket codebases prune rne(p m) + 1 (Frankle & Carbin) or ceil(p m) + 1 (OpenLTH) per "
            "round on distinct magnitudes: from 10 at p = 0.2 they keep [10, 7, 5, 3] and [10, 7, 4, 2].",
        ),
        invariants=(Invariant("length, start, per-round counts", _schedule),),
        golden=(
            Golden(Case((10, 0.2, 3)), [10, 8, 6, 5], "1.6 rounds to 2, 1.2 to 1"),
            Golden(Case((5, 0.5, 2)), [5, 3, 1], "2.5 and 1.5 round to even 2"),
            Golden(Case((4, 1.0, 2)), [4, 0, 0], "everything pruned in one round"),
        ),
        bad=(
            Bad(Case((10, 0.2, -1)), ValueError, "rounds must be in [0, 10000], got -1"),
            Bad(Case((1.5, 0.2, 1)), TypeError, "n must be an int, got float 1.5"),
            Bad(Case((10, float("nan"), 1)), ValueError, "fraction must be finite, got nan"),
        ),
        paper=FRANKLE,
    ),
]
