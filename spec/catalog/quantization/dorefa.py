"""Registry entries for `reference.quantization.dorefa` and its torch twin: dorefa_weight, dorefa_weight_vjp,
dorefa_activation, dorefa_activation_vjp.
"""

from __future__ import annotations

import numpy as np

from spec import strategies as S
from spec.catalog.common import array as _a
from spec.catalog.common import grad_or_zero as _grad_or_zero
from spec.catalog.common import in_levels as _in_levels
from spec.catalog.common import linear_in_cotangent as _linear_in_cotangent
from spec.catalog.common import monotone as _monotone
from spec.entry import Bad, Case, Entry, Golden, Invariant

F = np.float32
F_MAX = float(np.finfo(np.float32).max)
DOREFA = (
    "Zhou et al., 2016. DoReFa-Net: Training Low Bitwidth Convolutional Neural Networks with Low Bitwidth "
    "Gradients. arXiv:1606.06160"
)


def _dorefa_weight_levels(call, case, out):
    w, bits = case.args
    assert out.dtype == np.float32 and out.shape == w.shape
    if w.size == 0:
        return
    if bits == 1:
        e = np.max(np.abs(out))
        _in_levels(out, _a([e, -e]))
        return
    n = F(2**bits - 1)
    _in_levels(out, (F(2) * np.arange(2**bits, dtype=F) - n) / n)
    if np.any(w != 0):
        assert np.any(np.abs(out) == 1), "the weight with the largest |tanh w| must map to +-1"


def _dorefa_activation_levels(call, case, out):
    _, bits = case.args
    n = F(2**bits - 1)
    _in_levels(out, np.arange(2**bits, dtype=F) / n)


def _dorefa_scale_invariance(call, case, out):
    """r(t) = t / (2 max|t|) + 1/2 is invariant under t -> c t, so sum_i (dL/dt_i) t_i = 0: checked on
    dL/dt = grad_w / (1 - t^2), to the float32 rounding of grad_w (each |dL/dt_i| <= |g_i| / m + |share|, and the
    shares sum to |sum_j g_j t_j| / m, so the error is below 2**-23 sum_j |g_j t_j| / m, plus subnormal slack)."""
    grad, w, bits = case.args
    if bits == 1 or w.size == 0 or not np.all(np.isfinite(out)):
        return
    t = np.tanh(w.astype(np.float64)).astype(F).astype(np.float64)
    m = np.max(np.abs(t))
    if m == 0 or np.any(np.abs(t) == 1):  # saturated: dL/dt cannot be recovered from dL/dw = dL/dt * 0
        return
    scale = 1 - t * t
    terms = out.astype(np.float64) / scale * t
    tol = 1e-6 * np.sum(np.abs(grad.astype(np.float64) * t)) / m + w.size * 2.0**-149 / np.min(scale)
    assert abs(np.sum(terms)) <= tol, "sum_i dL/dt_i t_i must vanish"


_T3 = np.float64(F(np.tanh(3.0)))  # t = fl32(tanh 3) = 0.9950548
_T2 = np.float64(F(np.tanh(2.0)))  # t = fl32(tanh 2) = 0.9640276


ENTRIES = [
    Entry(
        name="dorefa_weight",
        family="quantization",
        module="quantization.dorefa",
        summary="DoReFa k-bit weights: tanh, normalise by max |tanh w|, quantize, map to [-1, 1]; k = 1: E|w| sign(w).",
        strategy=S.dorefa_weight_cases,
        vjp="dorefa_weight_vjp",
        semantics=(
            "t = fl32(tanh w): float64 tanh rounded once, the float32 nearest the exact tanh for every float32 w.",
            "k >= 2, float32 in order: r = t / (2 max|t|) + 0.5; c = rne(n r), n = 2**k - 1; w_q = (2c - n) / n.",
            "w_q is the float32 nearest the real level 2c/n - 1: symmetric levels (tensorpack's 2 fl(c/n) - 1 is not).",
            "n is odd, so there is no zero level: w = +-0 gives the .5 tie n/2, rounded to even: w_q = +1/n.",
            "All weights +-0 (max|t| = 0): r = 0.5 everywhere, w_q = +1/n (tensorpack gives NaN).",
            "k = 1: w_q = E sign(w), E = fl32(fl64(exact_sum(|w|) / n)), sign(w) = +1 for w >= 0 (-0.0 included).",
            "Empty w gives an empty result; non-finite w raises ValueError; bits outside [1, 16] raise.",
        ),
        invariants=(
            Invariant("outputs are the 2**k levels, +-1 reached", _dorefa_weight_levels),
            Invariant("monotone", _monotone),
        ),
        golden=(
            Golden(
                Case((_a([0.0, 0.5, -1.0, 3.0]), 2)),
                _a([1, 1, -3, 3]) / F(3),
                "t = [0, .462, -.762, .995], r = [.5, .732, .117, 1], 3r -> c = [2, 2, 0, 3] (1.5 ties to 2)",
            ),
            Golden(Case((_a([-2.0, 2.0, 0.0]), 2)), _a([-1, 1, 1]) / _a([1, 1, 3]), "max |t| tied: -m -> -1, m -> 1"),
            Golden(Case((_a([0.0, -0.0]), 3)), _a([1, 1]) / F(7), "all zero: r = 1/2, 7/2 ties to 4, (8 - 7) / 7"),
            Golden(Case((_a([-2.0, -0.0, 0.5, 1.5]), 1)), _a([-1, 1, 1, 1]), "k = 1: E = mean|w| = 1; -0.0 -> +E"),
            Golden(Case((_a([]), 4)), _a([]), "empty"),
        ),
        bad=(
            Bad(Case((_a([1.0]), 0)), ValueError, "bits must be in [1, 16], got 0"),
            Bad(Case((_a([1.0]), 17)), ValueError, "bits must be in [1, 16], got 17"),
            Bad(Case((_a([1.0]), 2.0)), TypeError, "bits must be an int, got float 2.0"),
            Bad(Case((_a([1.0, np.nan]), 2)), ValueError, "w must be finite, got nan at flat index 1"),
            Bad(Case((_a([np.inf]), 1)), ValueError, "w must be finite, got inf at flat index 0"),
            Bad(Case((_a([1.0], np.float64), 2)), TypeError, "w must have dtype float32, got float64"),
        ),
        paper=DOREFA,
        peers=(
            (
                "tensorpack, Distiller",
                "evaluate 2 * fl(c / n) - 1, which rounds twice: for k = 2 it gives -0.3333333 and 0.33333337 where pqref gives -+0.33333334.",
            ),
        ),
    ),
    Entry(
        name="dorefa_weight_vjp",
        family="quantization",
        module="quantization.dorefa",
        summary="The gradient of dorefa_weight: straight through the rounding, through max|tanh w| and tanh.",
        strategy=lambda: S.dorefa_weight_cases(with_grad=True),
        semantics=(
            "k >= 2: dL/dt_i = g_i / m + [|t_i| = m] sign(t_i) (-sum_j g_j t_j / m**2) / K, K = #{|t_j| = m}.",
            "The max is differentiated (as tensorpack and Distiller do), its gradient split evenly among ties.",
            "dL/dw_i = dL/dt_i (1 - t_i**2), from the float32 t (autograd's tanh backward uses the output).",
            "All in float64 from float32 g, t, m; the sum is exact_sum; one rounding to float32 at the end.",
            "k = 1: the identity (E held constant).",
            "All weights +-0: +0.0 everywhere. A result beyond the float32 range is +-inf.",
        ),
        invariants=(
            Invariant("linear in the cotangent", _linear_in_cotangent),
            Invariant("invariant under scaling of t", _dorefa_scale_invariance),
        ),
        golden=(
            Golden(
                Case((_a([1, 1]), _a([0.0, 3.0]), 2)),
                _a([1 / _T3, 0]),
                "m = t_1, K = 1: dL/dt = [1/m, 1/m - m/m**2 = 0]; times 1 - t**2 = [1, ...]",
            ),
            Golden(
                Case((_a([1, 1]), _a([-2.0, 2.0]), 2)),
                _a([(1 / _T2) * (1 - _T2 * _T2)] * 2),
                "tied max, sum g t = 0: dL/dt = g/m, times 1 - m**2",
            ),
            Golden(Case((_a([1.5, -2.0]), _a([100.0, -0.0]), 1)), _a([1.5, -2.0]), "k = 1: identity"),
            Golden(Case((_a([1.0, 2.0]), _a([0.0, -0.0]), 3)), _a([0, 0]), "all zero: +0.0"),
        ),
        bad=(
            Bad(Case((_a([1, 1]), _a([1.0]), 2)), ValueError, "grad has shape (2,) but w needs shape (1,)"),
            Bad(Case((_a([np.nan]), _a([1.0]), 2)), ValueError, "grad must be finite, got nan at flat index 0"),
            Bad(Case((_a([1.0]), _a([1.0]), 0)), ValueError, "bits must be in [1, 16], got 0"),
        ),
        paper=DOREFA,
    ),
    Entry(
        name="dorefa_activation",
        family="quantization",
        module="quantization.dorefa",
        summary="DoReFa k-bit activations: clip to [0, 1], then rne(n y) / n.",
        strategy=S.dorefa_activation_cases,
        vjp="dorefa_activation_vjp",
        semantics=(
            "y = clip(x, 0, 1), every x <= 0 (-0.0 included) giving +0.0.",
            "c = rne(n y) with n y one float32 product, n = 2**k - 1; a_q = c / n, one float32 division.",
            "Non-finite x raises ValueError; bits outside [1, 16] raise.",
        ),
        invariants=(
            Invariant("outputs are the levels c / n", _dorefa_activation_levels),
            Invariant("monotone", _monotone),
        ),
        golden=(
            Golden(
                Case((_a([-1.0, 0.2, 0.5, 0.9, 2.0]), 2)),
                _a([0, 1, 2, 3, 3]) / F(3),
                "3y = [0, .6, 1.5, 2.7, 3]: 1.5 ties to 2",
            ),
            Golden(Case((_a([0.49999997, 0.5, 0.50000006]), 1)), _a([0, 0, 1]), "k = 1: 0.5 ties to 0"),
            Golden(Case((_a([-0.0, -1.4e-45]), 3)), _a([0, 0]), "non-positive input gives +0.0"),
        ),
        bad=(
            Bad(Case((_a([1.0]), 17)), ValueError, "bits must be in [1, 16], got 17"),
            Bad(Case((_a([-np.inf]), 2)), ValueError, "x must be finite, got -inf at flat index 0"),
            Bad(Case(([0.5], 2)), TypeError, "x must be an array"),
        ),
        paper=DOREFA,
    ),
    Entry(
        name="dorefa_activation_vjp",
        family="quantization",
        module="quantization.dorefa",
        summary="The straight-through gradient of dorefa_activation: passes on [0, 1], inclusive.",
        strategy=lambda: S.dorefa_activation_cases(with_grad=True),
        semantics=("where(0 <= x <= 1, grad, +0.0): x = -0.0, 0 and 1 pass; 1.0000001 does not.",),
        invariants=(Invariant("grad or +0.0", _grad_or_zero),),
        golden=(
            Golden(
                Case((_a([1, 2, 3, 4, 5]), _a([-0.0, 0.0, 1.0, 1.0000001, -1.4e-45]), 2)),
                _a([1, 2, 3, 0, 0]),
                "inclusive at 0 and 1",
            ),
        ),
        bad=(Bad(Case((_a([1.0, 2.0]), _a([1.0]), 2)), ValueError, "grad has shape (2,) but x needs shape (1,)"),),
        paper=DOREFA,
    ),
]
