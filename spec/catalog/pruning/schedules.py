"""Registry entries for `reference.pruning.schedules` and its torch twin: agp_sparsity, linear_sparsity,
cosine_sparsity, exponential_sparsity, iterative_sparsities, prune_remaining_mask, prune_total_mask.
"""

from __future__ import annotations

import numpy as np

from spec import strategies as S
from spec.catalog.common import array as _a
from spec.catalog.common import mask as _m
from spec.entry import Bad, Case, Entry, Golden, Invariant

T, F = True, False


ZHU = (
    "Zhu & Gupta, 2017. To prune, or not to prune: exploring the efficacy of pruning for model compression. "
    "arXiv:1710.01878"
)
FRANKLE = "Frankle & Carbin, 2019. The Lottery Ticket Hypothesis. ICLR. arXiv:1803.03635"
HAN = "Han et al., 2015. Learning both Weights and Connections for Efficient Neural Networks. NeurIPS. arXiv:1506.02626"


def _schedule_endpoints(call, case, out):
    (t,), kw = case.args, case.kwargs
    s_i, s_f = float(kw["s_i"]), float(kw["s_f"])
    assert type(out) is float
    assert min(s_i, s_f) <= out <= max(s_i, s_f), "the schedule left the interval between s_i and s_f"
    if t < kw["t0"] + kw["dt"]:
        assert out == s_i, "before the first update the sparsity is s_i"
    if t >= kw["t0"] + kw["n"] * kw["dt"]:
        assert out == s_f, "from t0 + n * dt on the sparsity is s_f"


def _schedule_monotone(call, case, out):
    (t,), kw = case.args, case.kwargs
    rising = kw["s_f"] >= kw["s_i"]
    for other_t, later in ((t + 1, True), (t + kw["dt"], True), (t - 1, False)):
        if other_t < 0:
            continue
        other = call(Case((other_t,), kw))
        if later == rising:
            assert other >= out, f"not monotone between t={t} and t={other_t}"
        else:
            assert other <= out, f"not monotone between t={t} and t={other_t}"


def _schedule_steps(call, case, out):
    (t,), kw = case.args, case.kwargs
    if t >= kw["t0"]:
        last = kw["t0"] + (t - kw["t0"]) // kw["dt"] * kw["dt"]
        assert call(Case((last,), kw)) == out, "the schedule must be constant between pruning steps"


def _iterative_valid(call, case, out):
    fraction, steps = case.args
    assert isinstance(out, list) and len(out) == steps and all(type(s) is float for s in out)
    assert all(0.0 <= s <= 1.0 for s in out) and all(a <= b for a, b in zip(out, out[1:], strict=False)), (
        "not in [0, 1], rising"
    )
    if case.kwargs["mode"] == "total":
        assert out == [k * fraction for k in range(1, steps + 1)]
    else:
        for k, s in enumerate(out, start=1):
            assert abs(s - (1.0 - (1.0 - fraction) ** k)) <= 1e-12, "remaining mode is 1 - (1 - f)**k"


def _mask_round(call, case, out, total):
    w, mask, fraction = case.args
    kept = int(mask.sum())
    k = round(fraction * (w.size if total else kept))
    assert out.dtype == bool and out.shape == w.shape
    assert not np.any(out & ~mask), "a pruned weight came back"
    assert int(out.sum()) == kept - k, "wrong number kept"
    a = np.abs(w)[mask]
    o = out[mask]
    if o.any() and (~o).any():
        assert a[o].min() >= a[~o].max(), "a newly pruned weight is larger than a kept one"
        tied = np.flatnonzero(a == a[o].min())
        assert np.all(np.diff(o[tied].astype(int)) <= 0), "among ties a higher index was kept over a lower one"


def _remaining_round(call, case, out):
    _mask_round(call, case, out, total=False)


def _total_round(call, case, out):
    _mask_round(call, case, out, total=True)


def _remaining_nested(call, case, out):
    w, mask, fraction = case.args
    more = call(Case((w, mask, min(1.0, fraction + 0.25))))
    assert not np.any(more & ~out), "masks must be nested as the fraction grows"


_SCHED = {"s_i": 0.0, "s_f": 1.0, "t0": 0, "n": 4, "dt": 10}


SCHEDULE_BAD = (
    Bad(Case((5,), {**_SCHED, "n": 0}), ValueError, "n must be in [1, inf], got 0"),
    Bad(Case((5,), {**_SCHED, "dt": 0}), ValueError, "dt must be in [1, inf], got 0"),
    Bad(Case((5,), {**_SCHED, "s_f": 1.5}), ValueError, "s_f must be in [0.0, 1.0], got 1.5"),
    Bad(Case((5,), {**_SCHED, "s_i": -0.1}), ValueError, "s_i must be in [0.0, 1.0], got -0.1"),
    Bad(Case((-1,), _SCHED), ValueError, "t must be in [0, inf], got -1"),
    Bad(Case((1.5,), _SCHED), TypeError, "t must be an int, got float 1.5"),
    Bad(Case((5,), {**_SCHED, "t0": -2}), ValueError, "t0 must be in [0, inf], got -2"),
)


SCHEDULE_COMMON = (
    "k = floor((t - t0) / dt) (Python floor division): the last pruning step reached; constant between steps.",
    "k <= 0 (t < t0 + dt) gives exactly s_i; k >= n (t >= t0 + n * dt) gives exactly s_f.",
    "In between the float64 formula is clamped to the closed interval between s_i and s_f.",
    "Pure Python float64 arithmetic in both backends, the same operations in the same order; returns a Python float.",
    "t, t0 are ints >= 0; n, dt ints >= 1; s_i, s_f in [0, 1] (s_i > s_f allowed: a falling schedule).",
)


ENTRIES = [
    Entry(
        name="agp_sparsity",
        family="pruning",
        module="pruning.schedules",
        summary="Zhu & Gupta's gradual pruning: s_f + (s_i - s_f) * (1 - k / n)**3 every dt steps from t0.",
        strategy=S.schedule_cases,
        semantics=(
            "r = 1.0 - k / n (k / n: Python's correctly rounded int division); s = s_f + (s_i - s_f) * (r * r * r).",
            *SCHEDULE_COMMON,
        ),
        invariants=(
            Invariant("endpoints and range", _schedule_endpoints),
            Invariant("monotone in t", _schedule_monotone),
            Invariant("constant between pruning steps", _schedule_steps),
        ),
        golden=(
            Golden(Case((5,), _SCHED), 0.0, "before the first update"),
            Golden(Case((10,), _SCHED), 0.578125, "k = 1: 1 - (3/4)**3"),
            Golden(Case((29,), _SCHED), 0.875, "k = 2 until step 29: 1 - (1/2)**3"),
            Golden(Case((39,), _SCHED), 0.984375, "k = 3: 1 - (1/4)**3"),
            Golden(Case((40,), _SCHED), 1.0, "t0 + n * dt: s_f"),
            Golden(Case((12,), {**_SCHED, "t0": 20}), 0.0, "before t0: s_i"),
        ),
        bad=SCHEDULE_BAD,
        paper=ZHU,
    ),
    Entry(
        name="linear_sparsity",
        family="pruning",
        module="pruning.schedules",
        summary="A linear ramp s_f + (s_i - s_f) * (1 - k / n) every dt steps from t0.",
        strategy=S.schedule_cases,
        semantics=("s = s_f + (s_i - s_f) * (1.0 - k / n).", *SCHEDULE_COMMON),
        invariants=(
            Invariant("endpoints and range", _schedule_endpoints),
            Invariant("monotone in t", _schedule_monotone),
            Invariant("constant between pruning steps", _schedule_steps),
        ),
        golden=(
            Golden(Case((2,), {"s_i": 0.0, "s_f": 0.5, "t0": 0, "n": 4, "dt": 1}), 0.25, "k = 2 of 4"),
            Golden(Case((25,), {**_SCHED, "s_i": 1.0, "s_f": 0.0}), 0.5, "falling: k = 2"),
        ),
        bad=SCHEDULE_BAD,
        paper=ZHU,
    ),
    Entry(
        name="cosine_sparsity",
        family="pruning",
        module="pruning.schedules",
        summary="A half cosine s_f + (s_i - s_f) * (1 + cos(pi * k / n)) / 2 every dt steps from t0.",
        strategy=S.schedule_cases,
        semantics=(
            "s = s_f + (s_i - s_f) * (0.5 * (1.0 + math.cos(math.pi * (k / n)))).",
            "math.cos is the C library's cos, called identically by both backends (not guaranteed correctly "
            "rounded: another machine may differ in the last bit).",
            *SCHEDULE_COMMON,
        ),
        invariants=(
            Invariant("endpoints and range", _schedule_endpoints),
            Invariant("monotone in t", _schedule_monotone),
            Invariant("constant between pruning steps", _schedule_steps),
        ),
        golden=(
            Golden(Case((1,), {"s_i": 0.0, "s_f": 1.0, "t0": 0, "n": 2, "dt": 1}), 0.5, "1 + cos(pi/2) rounds to 1"),
            Golden(Case((3,), {"s_i": 0.0, "s_f": 1.0, "t0": 0, "n": 2, "dt": 1}), 1.0, "past the end"),
        ),
        bad=SCHEDULE_BAD,
        paper="Loshchilov & Hutter, 2017. SGDR: Stochastic Gradient Descent with Warm Restarts. ICLR. arXiv:1608.03983",
    ),
    Entry(
        name="exponential_sparsity",
        family="pruning",
        module="pruning.schedules",
        summary="Geometric decay of the density: 1 - s = (1 - s_i) * ((1 - s_f) / (1 - s_i))**(k / n).",
        strategy=lambda: S.schedule_cases(exponential=True),
        semantics=(
            "s = 1.0 - (1.0 - s_i) * ((1.0 - s_f) / (1.0 - s_i)) ** (k / n); ** is the C library's pow.",
            "s_i = 1 or s_f = 1 (density 0) is rejected: a geometric path cannot reach or leave 0.",
            *SCHEDULE_COMMON,
        ),
        invariants=(
            Invariant("endpoints and range", _schedule_endpoints),
            Invariant("monotone in t", _schedule_monotone),
            Invariant("constant between pruning steps", _schedule_steps),
        ),
        golden=(
            Golden(Case((1,), {"s_i": 0.0, "s_f": 0.75, "t0": 0, "n": 2, "dt": 1}), 0.5, "1 - 0.25**(1/2)"),
            Golden(Case((2,), {"s_i": 0.0, "s_f": 0.75, "t0": 0, "n": 2, "dt": 1}), 0.75, "the end: s_f"),
        ),
        bad=(
            *SCHEDULE_BAD,
            Bad(Case((5,), _SCHED), ValueError, "exponential_sparsity needs s_i < 1 and s_f < 1"),
        ),
        paper=FRANKLE,
    ),
    Entry(
        name="iterative_sparsities",
        family="pruning",
        module="pruning.schedules",
        summary="Cumulative sparsity after each round of a fraction of the remaining weights, or of all weights.",
        strategy=S.iterative_sparsities_cases,
        semantics=(
            "mode='remaining': d_k = d_{k-1} * (1 - f) in float64 from d_0 = 1, s_k = 1 - d_k (torch.nn.utils.prune "
            "applied repeatedly).",
            "mode='total': s_k = k * f (one float64 product); steps * f > 1 is rejected.",
            "Returns a list of `steps` Python floats s_1..s_steps; steps = 0 gives [].",
        ),
        invariants=(Invariant("length, range, rising, formula", _iterative_valid),),
        golden=(
            Golden(Case((0.5, 3)), [0.5, 0.75, 0.875], "halve the rest each round"),
            Golden(Case((0.25, 4), {"mode": "total"}), [0.25, 0.5, 0.75, 1.0], "a quarter of all each round"),
            Golden(Case((0.2, 2)), [0.19999999999999996, 0.3599999999999999], "1 - 0.8 and 1 - 0.8 * 0.8 in float64"),
        ),
        bad=(
            Bad(Case((0.5, 3), {"mode": "total"}), ValueError, "more than all of them"),
            Bad(Case((0.5, 3), {"mode": "bogus"}), ValueError, "mode must be one of 'remaining', 'total'"),
            Bad(Case((0.5, -1)), ValueError, "steps must be in [0, 10000], got -1"),
            Bad(Case((1.5, 2)), ValueError, "fraction must be in [0.0, 1.0], got 1.5"),
        ),
        paper=HAN,
    ),
    Entry(
        name="prune_remaining_mask",
        family="pruning",
        module="pruning.schedules",
        summary="One round of iterative magnitude pruning: prune a fraction of the weights still kept.",
        strategy=S.iterative_mask_cases,
        semantics=(
            "k = round_half_even(fraction * m) of the m kept weights, the smallest |w| among them; pruned stay pruned.",
            "torch.nn.utils.prune semantics: l1_unstructured on a pruned tensor counts the unpruned entries only.",
            "Ties among kept weights go to the lower flat index; +0.0 and -0.0 tie.",
        ),
        invariants=(
            Invariant("nested, count, order, ties", _remaining_round),
            Invariant("nested as the fraction grows", _remaining_nested),
        ),
        golden=(
            Golden(Case((_a([4, 3, 2, 1]), _m([T, T, T, F]), 0.5)), _m([T, F, F, F]), "m = 3, k = rne(1.5) = 2"),
            Golden(Case((_a([1, -1, 1, 1]), _m([F, T, T, T]), 0.34)), _m([F, T, T, F]), "k = rne(1.02) = 1; ties"),
            Golden(
                Case((_a([4, 3, 2, 1, 0.5, 0.25]), _m([T, T, T, T, F, F]), 0.5)),
                _m([T, T, F, F, F, F]),
                "half of the 4 kept",
            ),
            Golden(
                Case((_a([-0.0, 0.0, 1.0, 0.0]), _m([T, T, T, F]), 0.34)),
                _m([T, F, T, F]),
                "k = rne(1.02) = 1 of the 3 kept; +0.0 and -0.0 tie and the lower index (the -0.0) stays",
            ),
        ),
        bad=(
            Bad(Case((_a([1.0, 2.0]), _m([T]), 0.5)), ValueError, "mask has shape (1,) but w needs shape (2,)"),
            Bad(Case((_a([1.0]), _m([T]), -0.1)), ValueError, "fraction must be in [0.0, 1.0], got -0.1"),
            Bad(Case((_a([1.0]), _a([1.0]), 0.5)), TypeError, "mask must have dtype bool, got float32"),
        ),
        paper=HAN,
    ),
    Entry(
        name="prune_total_mask",
        family="pruning",
        module="pruning.schedules",
        summary="One round of iterative magnitude pruning: prune a fraction of all weights, among those still kept.",
        strategy=lambda: S.iterative_mask_cases(total=True),
        semantics=(
            "k = round_half_even(fraction * N) of all N weights, pruned among the kept ones by smallest |w|.",
            "k greater than the number still kept is rejected, never clipped.",
            "Ties among kept weights go to the lower flat index; +0.0 and -0.0 tie.",
        ),
        invariants=(Invariant("nested, count, order, ties", _total_round),),
        golden=(
            Golden(
                Case((_a([4, 3, 2, 1, 0.5, 0.25]), _m([T, T, T, T, F, F]), 0.5)),
                _m([T, F, F, F, F, F]),
                "rne(0.5 * 6) = 3 of the 4 kept",
            ),
            Golden(Case((_a([4, 3, 2, 1]), _m([T, T, T, F]), 0.25)), _m([T, T, F, F]), "k = 1"),
            Golden(
                Case((_a([-0.0, 0.0, 1.0, 5.0]), _m([T, T, T, T]), 0.25)),
                _m([T, F, T, T]),
                "k = rne(0.25 * 4) = 1: +0.0 and -0.0 tie as the smallest; the lower index (the -0.0) stays",
            ),
        ),
        bad=(
            Bad(
                Case((_a([4, 3, 2, 1]), _m([T, F, F, F]), 0.5)),
                ValueError,
                "fraction 0.5 of 4 weights prunes 2 more, but only 1 remain unpruned",
            ),
        ),
        paper=FRANKLE,
    ),
]
