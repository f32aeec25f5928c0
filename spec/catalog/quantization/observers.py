"""Registry entries for `reference.quantization.observers` and its torch twin: minmax_observer, ema_minmax_observer,
percentile_amax, mse_amax.
"""

from __future__ import annotations

import numpy as np

from spec import strategies as S
from spec.catalog.common import array as _a
from spec.catalog.common import plus_zeros as _plus_zeros
from spec.catalog.common import scalar as _s
from spec.entry import Bad, Case, Entry, Golden, Invariant

JACOB = (
    "Jacob et al., 2018. Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-Only "
    "Inference. CVPR. arXiv:1712.05877"
)
WU = (
    "Wu et al., 2020. Integer Quantization for Deep Learning Inference: Principles and Empirical Evaluation. "
    "arXiv:2004.09602"
)


def _rows(x, axis):
    return x.reshape(1, -1) if axis is None else np.moveaxis(x, axis, 0).reshape(x.shape[axis], -1)


def _minmax_bounds(call, case, out):
    (x, state), axis = case.args, case.kwargs["axis"]
    lo, hi = out
    rows = _rows(x, axis)
    lo1, hi1 = lo.reshape(-1), hi.reshape(-1)
    _plus_zeros(lo, "min_val")
    _plus_zeros(hi, "max_val")
    assert np.all(lo1 <= rows.min(axis=1)) and np.all(hi1 >= rows.max(axis=1)), "the state covers the batch"
    if state is None:
        assert np.all(lo1 == rows.min(axis=1)) and np.all(hi1 == rows.max(axis=1)), "first batch: its min and max"
    else:
        assert np.all(lo <= state[0]) and np.all(hi >= state[1]), "the range only grows"


def _ema_between(call, case, out):
    (x, state), axis = case.args, case.kwargs["axis"]
    rows = _rows(x, axis)
    cur = (rows.min(axis=1), rows.max(axis=1))
    for new, old, c in zip(out, state or cur, cur, strict=True):
        new, old = new.reshape(-1), old.reshape(-1)
        ulp = 2 * np.spacing(np.maximum(np.abs(old), np.abs(c)))  # the three roundings can overshoot a little
        ok = ~np.isfinite(new) | ((np.minimum(old, c) - ulp <= new) & (new <= np.maximum(old, c) + ulp))
        assert np.all(ok), "the moving average lies between the old state and the batch statistic, within 2 ulp"


def _percentile_bounds(call, case, out):
    (x, p), axis = case.args, case.kwargs["axis"]
    rows = np.abs(_rows(x, axis))
    v = out.reshape(-1)
    assert np.all((rows.min(axis=1) <= v) & (v <= rows.max(axis=1))), "min|x| <= amax <= max|x|"
    if p == 100:
        assert np.array_equal(v, rows.max(axis=1)), "the 100th percentile is max|x|"
    higher = call(Case((x, min(100.0, p + 7.5)), case.kwargs)).reshape(-1)
    assert np.all(higher >= v), "monotone in the percentile"


def _mse_candidate(call, case, out):
    x, kw = case.args[0], case.kwargs
    rows = np.abs(_rows(x, kw["axis"]))
    amax = rows.max(axis=1).astype(np.float64)
    grid = np.arange(1, kw["grid"] + 1, dtype=np.float64)
    candidates = (amax[:, None] * grid / np.float64(kw["grid"])).astype(np.float32)
    v = out.reshape(-1)
    assert np.all([v[r] in candidates[r] for r in range(v.size)]), "the result is one of the grid candidates"
    assert np.all((0 <= v) & (v <= amax)), "0 <= c <= max|x|"


_STATE = (_a([-2, 0]), _a([1, 3]))


ENTRIES = [
    Entry(
        name="minmax_observer",
        family="quantization",
        module="quantization.observers",
        summary="Running min-max observer with explicit state, per tensor or per channel.",
        strategy=S.observer_cases,
        semantics=(
            "state None: (min x, max x); else (min(old_min, min x), max(old_max, max x)).",
            "axis=k: one statistic per index along k, over all other axes. Zero statistics are +0.0.",
            "The state must be a tuple of two finite float32 arrays of the statistic shape with min_val <= max_val.",
        ),
        invariants=(Invariant("covers the batch, only grows", _minmax_bounds),),
        golden=(
            Golden(Case((_a([[1, -2], [3, 0]]), None), {"axis": 0}), (_a([-2, 0]), _a([1, 3])), "per row"),
            Golden(Case((_a([[0, 5], [-1, 1]]), _STATE), {"axis": 0}), (_a([-2, -1]), _a([5, 3])), "second batch"),
            Golden(Case((_a([-0.0, -0.0]), None)), (_s(0.0), _s(0.0)), "-0.0 statistics become +0.0"),
        ),
        bad=(
            Bad(Case((_a([1.0]), [_s(0), _s(1)])), TypeError, "state must be None or a tuple (min_val, max_val)"),
            Bad(Case((_a([1.0]), (_s(2), _s(1)))), ValueError, "min_val must be <= max_val, got 2.0 > 1.0"),
            Bad(
                Case((_a([[1.0, 2.0]]), (_s(0), _s(1))), {"axis": 1}),
                ValueError,
                "min_val has shape () but axis=1 needs shape (2,)",
            ),
            Bad(Case((_a([]), None)), ValueError, "the statistics need at least one element"),
            Bad(Case((_a(0.0), None), {"axis": 0}), ValueError, "axis 0 is out of range"),
        ),
        paper=JACOB,
    ),
    Entry(
        name="ema_minmax_observer",
        family="quantization",
        module="quantization.observers",
        summary="Moving-average min-max observer in torch.ao's float32 arithmetic, with explicit state.",
        strategy=lambda: S.observer_cases(ema=True),
        semantics=(
            "state None: (min x, max x); else min' = min + c * (min x - min), three float32 ops in that order.",
            "c = float32(averaging_constant) (default 0.01), in (0, 1]: torch.ao MovingAverageMinMaxObserver.",
            "Overflow of the difference gives an infinite state (as torch.ao), which the next call rejects.",
            "Rounding can overshoot the batch statistic by an ulp and leave min > max; such a state is accepted.",
        ),
        invariants=(Invariant("between the old state and the batch, within 2 ulp", _ema_between),),
        golden=(
            Golden(
                Case((_a([2, 6]), (_s(0), _s(4))), {"averaging_constant": 0.5}),
                (_s(1), _s(5)),
                "min' = 0 + 0.5 (2 - 0), max' = 4 + 0.5 (6 - 4)",
            ),
            Golden(
                Case((_a([[2, 6], [-1, 5]]), (_a([0, 1]), _a([4, 3]))), {"averaging_constant": 0.5, "axis": 0}),
                (_a([1, 0]), _a([5, 4])),
                "per row: each channel's state moves halfway to its own batch min and max",
            ),
            Golden(Case((_a([1]), (_s(0), _s(0)))), (_s(0.01), _s(0.01)), "c = float32(0.01) = 0.0099999998"),
            Golden(Case((_a([3, -1]), None)), (_s(-1), _s(3)), "the first batch"),
            Golden(
                Case((_a([-0.49999997]), (_s(0), _s(1))), {"averaging_constant": 1.0}),
                (_s(-0.49999997), _s(-0.5)),
                "c = 1, yet max' = 1 + float32(-1.49999997) = -0.5 < min': rounding, as torch.ao",
            ),
        ),
        bad=(
            Bad(Case((_a([1.0]), None), {"averaging_constant": 0}), ValueError, "averaging_constant must be in (0.0"),
            Bad(Case((_a([1.0]), None), {"averaging_constant": 1.5}), ValueError, "got 1.5"),
            Bad(Case((_a([1.0]), (_s(np.inf), _s(1)))), ValueError, "min_val must be finite, got inf"),
        ),
        paper=JACOB,
    ),
    Entry(
        name="percentile_amax",
        family="quantization",
        module="quantization.observers",
        summary="Percentile calibration: the p-th percentile of |x| with NumPy's linear interpolation, in float64.",
        strategy=S.percentile_cases,
        semantics=(
            "v = sorted |x|; h = (p / 100) * (n - 1), i = floor(h), g = h - i, all float64.",
            "g < 0.5: v_i + (v_i+1 - v_i) * g; else v_i+1 - (v_i+1 - v_i) * (1 - g) (NumPy's _lerp); float32 once.",
            "Per tensor (shape ()) or per channel along axis; p in [0, 100].",
        ),
        invariants=(Invariant("within [min|x|, max|x|], monotone in p", _percentile_bounds),),
        golden=(
            Golden(Case((_a([1, -2, 3, -4, 5]), 90)), _s(4.6), "h = 3.6: 5 - 1 * 0.4"),
            Golden(Case((_a([1, -2, 3, -4, 5]), 50)), _s(3), "the median"),
            Golden(Case((_a([1, -2, 3, -4, 5]), 100)), _s(5), "the maximum"),
            Golden(Case((_a([[1, 2], [3, -8]]), 50), {"axis": 0}), _a([1.5, 5.5]), "per channel, g = 0.5"),
        ),
        bad=(
            Bad(Case((_a([1.0]), 100.5)), ValueError, "percentile must be in [0.0, 100.0], got 100.5"),
            Bad(Case((_a([]), 50)), ValueError, "need at least one element"),
        ),
        paper=WU,
    ),
    Entry(
        name="mse_amax",
        family="quantization",
        module="quantization.observers",
        summary="MSE-optimal symmetric clipping range over a fixed grid amax * i / n, per tensor or per channel.",
        strategy=S.mse_cases,
        semantics=(
            "Candidates c_i = float32(amax * i / n), i = 1..n; s_i = float32(c_i / (2**(bits-1) - 1)) (1.0 if tiny).",
            "q = clip(rne(float32(x / s_i)), -2**(bits-1), 2**(bits-1) - 1); error = exact_sum((q * s_i - x)**2), float64.",
            "The least error wins; ties go to the first (smallest) candidate. All-zero x gives +0.0.",
        ),
        invariants=(Invariant("a grid candidate in [0, max|x|]", _mse_candidate),),
        golden=(
            Golden(Case((_a([1, 1, 1, 1, 1, 1, 5]),), {"bits": 3, "grid": 5}), _s(4), "clipping 5 to 4 wins"),
            Golden(
                Case((_a([[1, 1, 1, 1, 1, 1, 5], [0, 0, 0, 0, 0, 0, 0]]),), {"bits": 3, "grid": 5, "axis": 0}),
                _a([4, 0]),
                "per channel; an all-zero channel gives 0",
            ),
            Golden(
                Case((_a([-2]),), {"bits": 2, "grid": 2}),
                _s(1),
                "a tie: candidates 1 and 2 both give -2 exactly (code -2 of step 1, code -1 of step 2), error 0: "
                "the first wins",
            ),
            Golden(Case((_a([1, -1]),)), _s(1), "8 bits, 100 candidates: the full range"),
        ),
        bad=(
            Bad(Case((_a([1.0]),), {"bits": 1}), ValueError, "bits must be in [2, 16], got 1"),
            Bad(Case((_a([1.0]),), {"grid": 0}), ValueError, "grid must be in [1, 10000], got 0"),
            Bad(Case((_a([1.0]),), {"axis": 1}), ValueError, "axis 1 is out of range"),
        ),
        paper=WU,
    ),
]
