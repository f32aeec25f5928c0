"""Registry entries for `reference.quantization.ternary` and its torch twin: twn_params, twn_ternarize,
twn_ternarize_vjp, ttq_quantize, ttq_quantize_vjp.
"""

from __future__ import annotations

import math

import numpy as np

from spec import strategies as S
from spec.catalog.common import AXIS_RULE, FINITE_RULE
from spec.catalog.common import array as _a
from spec.catalog.common import exact_mean as _exact_mean
from spec.catalog.common import float32_bits as _bits
from spec.catalog.common import rows as _rows
from spec.catalog.common import scalar as _s
from spec.catalog.common import spacing as _spacing
from spec.entry import Bad, Case, Entry, Golden, Invariant

F = np.float32


TWN = "Li et al., 2016. Ternary Weight Networks. arXiv:1605.04711"
TTQ = "Zhu et al., 2017. Trained Ternary Quantization. ICLR. arXiv:1612.01064"


def _twn_params(call, case, out):
    w, axis = case.args[0], case.kwargs["axis"]
    delta, alpha = (np.asarray(v).reshape(-1) for v in out)
    for row, d, a in zip(_rows(np.abs(w), axis), delta, alpha, strict=True):
        assert abs(float(d) - 0.7 * _exact_mean(row)) <= _spacing(d), "delta must be 0.7 mean|w| within 1 ulp"
        kept = row[row > d]
        if kept.size:
            assert a > d, "alpha, a mean of values above delta, must be above delta"
            assert abs(float(a) - _exact_mean(kept)) <= _spacing(a), "alpha must be the mean of the kept |w|"
        else:
            assert _bits(a) == 0, "an all-pruned slice has alpha = +0.0"


def _ternary(call, case, out):
    """Three values per slice, +0.0 zeros, signs of w, and the kept set is an upper set of |w| in each slice."""
    w, axis = case.args[-1], case.kwargs.get("axis")
    assert out.dtype == np.float32 and out.shape == w.shape
    assert not np.any(_bits(out) == 0x80000000), "zeros must be +0.0"
    nonzero = out != 0
    assert np.array_equal((out > 0)[nonzero], (w > 0)[nonzero]), "the sign of the output is the sign of w"
    for o, a in zip(_rows(out, axis), _rows(np.abs(w), axis), strict=True):
        assert len(np.unique(np.abs(o[o != 0]))) <= 1, "one magnitude per slice"
        if (o != 0).any() and (o == 0).any():
            assert a[o != 0].min() > a[o == 0].max(), "a pruned weight is larger than a kept one"


def _twn_idempotent(call, case, out):
    if np.all(np.abs(out[out != 0]) > F(1.4e-45)):
        again = call(Case((out,), case.kwargs))
        assert np.array_equal(_bits(again), _bits(out)), "ternarizing a TWN output must change nothing"


def _identity_grad(call, case, out):
    assert np.array_equal(_bits(out), _bits(case.args[0])), "the gradient passes unchanged"


def _ttq_values(call, case, out):
    w, wp, wn = case.args
    t = case.kwargs["t"]
    allowed = {int(_bits(wp)), int(_bits(-wn)), 0}
    assert set(_bits(out).reshape(-1).tolist()) <= allowed, "values are +wp, -wn or +0.0"
    order = np.argsort(w.reshape(-1), kind="stable")
    assert np.all(np.diff(out.reshape(-1)[order].astype(np.float64)) >= 0), "TTQ is monotone in w"
    if t <= 0.5 and np.abs(w).max() > 0:
        assert out.reshape(-1)[np.argmax(np.abs(w))] != 0, "the largest |w| is never zeroed for t <= 1/2"


def _ttq_grads(call, case, out):
    grad, w, wp, wn = case.args
    grad_w, grad_wp, grad_wn = out
    assert grad_wp.shape == () and grad_wn.shape == () and grad_w.shape == w.shape
    delta = np.float32(np.float64(case.kwargs["t"]) * float(np.abs(w).max()))
    pos, neg = w > delta, w < -delta
    with np.errstate(over="ignore"):
        expected = np.where(pos, wp * grad, np.where(neg, wn * grad, grad))
    assert np.array_equal(_bits(grad_w), _bits(expected)), "Eq. 8: wp * g, g, wn * g"
    for got, region in ((grad_wp, grad[pos]), (grad_wn, -grad[neg])):
        with np.errstate(over="ignore"):  # the exact sum (math.fsum: rounded once to float64), then float32
            want = np.float32(math.fsum(region.tolist()) + 0.0)
        assert _bits(np.asarray(got)) == _bits(np.asarray(want)), (got, want)


ENTRIES = [
    Entry(
        name="twn_params",
        family="quantization",
        module="quantization.ternary",
        summary="TWN's threshold delta = 0.7 mean|w| and scale alpha = mean of |w| above delta.",
        strategy=S.twn_cases,
        semantics=(
            "delta = fl32(0.7 * m), m = fl64(exact_sum(|w|) / n): the float64 nearest 0.7 times the float64 mean.",
            "Kept iff |w| > delta, strictly, in float32: the returned delta is the threshold used.",
            "alpha = fl32(exact_sum(where(kept, |w|, +0)) / count): the exact sum of the kept magnitudes.",
            "A slice with nothing kept (all zero, or a lone tiny subnormal) has alpha = +0.0.",
            AXIS_RULE,
            "An empty w raises ValueError.",
            FINITE_RULE,
        ),
        invariants=(Invariant("delta = 0.7 mean, alpha = mean above delta", _twn_params),),
        golden=(
            Golden(
                Case((_a([1, -1, 0.25, 0]),)),
                (_s(0.39375), _s(1.0)),
                "mean 0.5625, delta = fl32(0.39375); 1 and -1 kept",
            ),
            Golden(
                Case((_a([2, -0.875, 0.875]),)),
                (_s(0.875), _s(2.0)),
                "mean 1.25, 0.7 * 1.25 rounds to 0.875 exactly: the 0.875s sit on delta and are pruned",
            ),
            Golden(Case((_a([1e-45]),)), (_s(1e-45), _s(0.0)), "0.7 * 1.4e-45 rounds up to 1.4e-45: nothing kept"),
            Golden(
                Case((_a([[1, -1, 0.25, 0], [3, 1, -1, 0]]),), {"axis": 0}),
                (_a([0.39375, 0.875]), _a([1.0, 5 / 3])),
                "row 1: mean 1.25, delta 0.875, alpha = 5 / 3",
            ),
        ),
        bad=(
            Bad(Case((_a([]),)), ValueError, "w has shape (0,): the TWN threshold needs at least one element"),
            Bad(Case((_a([np.nan]),)), ValueError, "w must be finite, got nan at flat index 0"),
            Bad(Case((_a([[1.0]]),), {"axis": -3}), ValueError, "axis -3 is out of range"),
        ),
        paper=TWN,
    ),
    Entry(
        name="twn_ternarize",
        family="quantization",
        module="quantization.ternary",
        summary="Ternary Weight Networks: w to {-alpha, 0, +alpha} with delta = 0.7 mean|w|.",
        strategy=S.twn_cases,
        vjp="twn_ternarize_vjp",
        semantics=(
            "+alpha where w > delta, -alpha where w < -delta, +0.0 where |w| <= delta (strict threshold).",
            "(delta, alpha) = twn_params(w, axis), broadcast along axis.",
            "Zeros of the output are +0.0.",
            FINITE_RULE,
        ),
        invariants=(
            Invariant("three values, +0.0 zeros, an upper set of |w|", _ternary),
            Invariant("idempotent", _twn_idempotent),
        ),
        golden=(
            Golden(
                Case((_a([1, -1, 0.25, 0]),)),
                _a([1, -1, 0, 0]),
                "delta = 0.7 mean|w| = 0.39375: 0.25 and 0 go to +0.0; alpha = mean(1, 1) = 1",
            ),
            Golden(Case((_a([3, 1, -1, 0]),)), _a([5 / 3, 5 / 3, -5 / 3, 0]), "delta 0.875, alpha 5/3"),
            Golden(Case((_a([2, -0.875, 0.875]),)), _a([2, 0, 0]), "|w| = delta is pruned"),
            Golden(Case((_a([-0.0, 0.0]),)), _a([0.0, 0.0]), "all zero: +0.0"),
            Golden(
                Case((_a([[1, -1, 0.25, 0], [3, 1, -1, 0]]),), {"axis": 0}),
                _a([[1, -1, 0, 0], [5 / 3, 5 / 3, -5 / 3, 0]]),
                "per row: (delta, alpha) = (0.39375, 1) and (0.875, 5/3), each row's own",
            ),
        ),
        bad=(Bad(Case((_a([1.0], np.float16),)), TypeError, "w must have dtype float32, got float16"),),
        paper=TWN,
    ),
    Entry(
        name="twn_ternarize_vjp",
        family="quantization",
        module="quantization.ternary",
        summary="The gradient of twn_ternarize: straight through, unchanged (TWN's Algorithm 1).",
        strategy=lambda: S.twn_cases(with_grad=True),
        semantics=("dL/dw = dL/dw^t, bit for bit; delta and alpha are constants.", FINITE_RULE),
        invariants=(Invariant("the cotangent unchanged", _identity_grad),),
        golden=(
            Golden(Case((_a([1, -0.0, 3]), _a([1, 2, 3]))), _a([1, -0.0, 3]), "unchanged, -0.0 included"),
            Golden(
                Case((_a([[1, -0.0], [3, 4]]), _a([[1, 2], [3, 4]])), {"axis": 0}),
                _a([[1, -0.0], [3, 4]]),
                "per row: still the cotangent, bit for bit",
            ),
        ),
        bad=(Bad(Case((_a([1.0]), _a([1.0, 2.0]))), ValueError, "grad has shape (1,) but w needs shape (2,)"),),
        paper=TWN,
    ),
    Entry(
        name="ttq_quantize",
        family="quantization",
        module="quantization.ternary",
        summary="Trained Ternary Quantization: w to {-wn, 0, +wp} with delta = t * max|w| and learned scales.",
        strategy=S.ttq_cases,
        vjp="ttq_quantize_vjp",
        semantics=(
            "delta = fl32(t * max|w|): one float64 product rounded once; comparisons in float32.",
            "+wp where w > delta, -wn where w < -delta, +0.0 where |w| <= delta (the paper's; the authors' code "
            "leaves |w| = delta at +-1).",
            "wp, wn: float32 arrays of shape (), finite, > 0; t in [0, 1] (the paper uses 0.05); one delta per tensor.",
            "An empty w raises ValueError.",
            FINITE_RULE,
        ),
        invariants=(Invariant("values, monotone, the largest kept", _ttq_values),),
        golden=(
            Golden(
                Case((_a([1, -0.5, 0.05, -0.04]), _s(2), _s(3))),
                _a([2, -3, 0, 0]),
                "delta = 0.05 * 1: 0.05 sits on delta and is zeroed",
            ),
            Golden(
                Case((_a([4, -1, 1, -2, 0]), _s(1.5), _s(0.5)), {"t": 0.25}),
                _a([1.5, 0, 0, -0.5, 0]),
                "delta = 1: +-1 are zeroed (|w| <= delta)",
            ),
            Golden(
                Case((_a([0, -0.0, 1e-45, -3]), _s(1.5), _s(0.5)), {"t": 0.0}),
                _a([0, 0, 1.5, -0.5]),
                "t = 0 zeroes only the zeros",
            ),
            Golden(Case((_a([1, -1]), _s(1), _s(1)), {"t": 1.0}), _a([0, 0]), "t = 1 zeroes everything"),
        ),
        bad=(
            Bad(Case((_a([1.0]), _s(1), _s(1)), {"t": 1.5}), ValueError, "t must be in [0.0, 1.0], got 1.5"),
            Bad(Case((_a([1.0]), _s(1), _s(1)), {"t": float("nan")}), ValueError, "t must be finite, got nan"),
            Bad(Case((_a([1.0]), _s(1), _s(1)), {"t": True}), TypeError, "t must be a real number, got bool"),
            Bad(Case((_a([1.0]), _s(0), _s(1))), ValueError, "wp must be > 0, got 0.0 at flat index 0"),
            Bad(Case((_a([1.0]), _s(1), _s(-1))), ValueError, "wn must be > 0, got -1.0 at flat index 0"),
            Bad(
                Case((_a([1.0]), _a([1]), _s(1))), ValueError, "wp has shape (1,) but a per-tensor scale needs shape ()"
            ),
            Bad(Case((_a([1.0]), _s(1), _s(np.inf))), ValueError, "wn must be finite, got inf at flat index 0"),
            Bad(Case((_a([1.0]), _s(1).astype(np.float64), _s(1))), TypeError, "wp must have dtype float32"),
            Bad(Case((_a([]), _s(1), _s(1))), ValueError, "w has shape (0,): the TTQ threshold"),
            Bad(Case((_a([np.nan]), _s(1), _s(1))), ValueError, "w must be finite, got nan at flat index 0"),
        ),
        paper=TTQ,
    ),
    Entry(
        name="ttq_quantize_vjp",
        family="quantization",
        module="quantization.ternary",
        summary="The TTQ gradients (grad_w, grad_wp, grad_wn): Eq. 8 for w, region sums for the scales.",
        strategy=lambda: S.ttq_cases(with_grad=True),
        semantics=(
            "grad_w = wp * g where w > delta, g where |w| <= delta, wn * g where w < -delta (float32 products).",
            "grad_wp = sum of g over w > delta; grad_wn = -(sum of g over w < -delta): the chain rule of -wn "
            "(the authors' code); the paper's Eq. 7 prints it without the minus sign.",
            "Scale gradients: the exact sum over the whole tensor (where(region, +-g, +0.0)), rounded to float64, "
            "then to float32; an empty region gives +0.0.",
            FINITE_RULE,
        ),
        invariants=(Invariant("Eq. 8 exactly, the sums exact: rounded to float64, then float32", _ttq_grads),),
        golden=(
            Golden(
                Case((_a([1, 1, 1, 1]), _a([1, -0.5, 0.05, -0.04]), _s(2), _s(3))),
                (_a([2, 3, 1, 1]), _s(1), _s(-1)),
                "one weight in each region; grad_wn = -1",
            ),
            Golden(
                Case((_a([1, 2, 4, 8, 16]), _a([4, -1, 1, -2, 0]), _s(1.5), _s(0.5)), {"t": 0.25}),
                (_a([1.5, 2, 4, 4, 16]), _s(1), _s(-8)),
                "delta = 1: 4 -> 1.5 * 1, -2 -> 0.5 * 8, the rest pass",
            ),
            Golden(
                Case((_a([3]), _a([1]), _s(2), _s(5))),
                (_a([6]), _s(3), _s(0)),
                "no negative weights: grad_wn = +0.0",
            ),
        ),
        bad=(
            Bad(Case((_a([1, 1]), _a([1.0]), _s(1), _s(1))), ValueError, "grad has shape (2,) but w needs shape (1,)"),
            Bad(Case((_a([np.nan]), _a([1.0]), _s(1), _s(1))), ValueError, "grad must be finite, got nan"),
        ),
        paper=TTQ,
    ),
]
