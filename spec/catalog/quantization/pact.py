"""Registry entries for `reference.quantization.pact` and its torch twin: pact_quantize, pact_quantize_vjp."""

from __future__ import annotations

import numpy as np

from spec import strategies as S
from spec.catalog.common import array as _a
from spec.catalog.common import bits_of as _bits_of
from spec.catalog.common import grad_or_zero as _grad_or_zero
from spec.catalog.common import in_levels as _in_levels
from spec.catalog.common import linear_in_cotangent as _linear_in_cotangent
from spec.catalog.common import monotone as _monotone
from spec.catalog.common import scalar as _s
from spec.entry import Bad, Case, Entry, Golden, Invariant

F = np.float32
F_MAX = float(np.finfo(np.float32).max)


PACT = "Choi et al., 2018. PACT: Parameterized Clipping Activation for Quantized Neural Networks. arXiv:1805.06085"


def _pact_levels(call, case, out):
    _, alpha, bits = case.args
    n = 2**bits - 1
    s = alpha / F(n)
    _in_levels(out, np.arange(n + 1, dtype=F) * s)
    assert np.all(_bits_of(out[case.args[0] <= 0]) == 0), "x <= 0 must give +0.0"


def _pact_alpha_grad(call, case, out):
    grad, x, alpha, _ = case.args
    if not np.any(x >= alpha):
        assert _bits_of(out[1]) == 0, "no element at or above alpha: the alpha gradient is +0.0"


ENTRIES = [
    Entry(
        name="pact_quantize",
        family="quantization",
        module="quantization.pact",
        summary="PACT: clip to a learned [0, alpha], quantize to k bits with step s = alpha / (2**k - 1).",
        strategy=S.pact_cases,
        vjp="pact_quantize_vjp",
        semantics=(
            "s = alpha / n, one float32 division computed once, n = 2**k - 1.",
            "y = clip(x, 0, alpha) with x <= 0 (-0.0 included) giving +0.0; y_q = rne(y / s) * s.",
            "y / s is an IEEE division (never y * (1/s)); ties to even; the top level n s may differ from alpha "
            "by an ulp.",
            "alpha: a 0-d float32, finite, > 0, with s >= 2**-126 and n s finite; else ValueError.",
        ),
        invariants=(Invariant("outputs are the levels c s", _pact_levels), Invariant("monotone", _monotone)),
        golden=(
            Golden(
                Case((_a([-1.0, 0.4, 1.5, 2.5, 7.0]), _s(3.0), 2)),
                _a([0, 0, 2, 2, 3]),
                "s = 1: 1.5 and 2.5 tie to 2",
            ),
            Golden(Case((_a([5.0, -0.0]), _s(0.1), 2)), _a([0.10000001, 0]), "top level 3 fl(0.1 / 3) > alpha"),
        ),
        bad=(
            Bad(Case((_a([1.0]), _s(0.0), 2)), ValueError, "alpha must be > 0, got 0.0 at flat index 0"),
            Bad(Case((_a([1.0]), _s(-1.0), 2)), ValueError, "alpha must be > 0, got -1.0"),
            Bad(Case((_a([1.0]), _s(np.inf), 2)), ValueError, "alpha must be finite, got inf"),
            Bad(
                Case((_a([1.0]), _a([1.0]), 2)),
                ValueError,
                "alpha has shape (1,) but PACT's single clipping level needs shape ()",
            ),
            Bad(Case((_a([1.0]), _s(1e-38), 2)), ValueError, "alpha / (2**bits - 1) must be a normal float32"),
            Bad(Case((_a([1.0]), _s(F_MAX), 5)), ValueError, "alpha is too large: the top level"),
            Bad(Case((_a([1.0]), _s(1.0), 0)), ValueError, "bits must be in [1, 16], got 0"),
            Bad(Case((_a([np.nan]), _s(1.0), 2)), ValueError, "x must be finite, got nan at flat index 0"),
            Bad(Case((_a([1.0]), _s(1.0).astype(np.float64), 2)), TypeError, "alpha must have dtype float32"),
        ),
        paper=PACT,
    ),
    Entry(
        name="pact_quantize_vjp",
        family="quantization",
        module="quantization.pact",
        summary="PACT's gradients: straight through to x on [0, alpha]; alpha collects the gradient of x >= alpha.",
        strategy=lambda: S.pact_cases(with_grad=True),
        semantics=(
            "grad_x = where(0 <= x <= alpha, grad, +0.0), inclusive at both ends (-0.0 passes).",
            "grad_alpha = fl32(exact_sum(where(x >= alpha, grad, +0.0))): x = alpha counts for both.",
            "alpha is not differentiated through the step s (the paper's dy_q/dalpha = [x >= alpha]).",
        ),
        invariants=(
            Invariant("grad or +0.0", _grad_or_zero),
            Invariant("linear in the cotangent", _linear_in_cotangent),
            Invariant("no alpha gradient below alpha", _pact_alpha_grad),
        ),
        golden=(
            Golden(
                Case((_a([1, 2, 4, 8]), _a([-1.0, 0.0, 3.0, 7.0]), _s(3.0), 2)),
                (_a([0, 2, 4, 0]), _s(12.0)),
                "x = alpha passes to both; alpha gets 4 + 8",
            ),
            Golden(Case((_a([]), _a([]), _s(1.0), 4)), (_a([]), _s(0.0)), "empty: +0.0"),
            Golden(
                Case((_a([1, 2, 3]), _a([-0.0, 0.0, -1e-45]), _s(3.0), 2)),
                (_a([1, 2, 0]), _s(0.0)),
                "x = -0.0 and +0.0 are in [0, alpha] and pass; the negative subnormal is below 0: +0.0",
            ),
        ),
        bad=(
            Bad(
                Case((_a([1.0, 1.0]), _a([1.0]), _s(1.0), 2)), ValueError, "grad has shape (2,) but x needs shape (1,)"
            ),
        ),
        paper=PACT,
    ),
]
