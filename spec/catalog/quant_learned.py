"""Registry entries for the learned and trainable quantizers: DoReFa, PACT, LSQ, LSQ+."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from spec import strategies as S
from spec.entry import Bad, Case, Entry, Golden, Invariant

F = np.float32
F_MAX = float(np.finfo(np.float32).max)
DOREFA = (
    "Zhou et al., 2016. DoReFa-Net: Training Low Bitwidth Convolutional Neural Networks with Low Bitwidth "
    "Gradients. arXiv:1606.06160"
)
PACT = "Choi et al., 2018. PACT: Parameterized Clipping Activation for Quantized Neural Networks. arXiv:1805.06085"
LSQ = "Esser et al., 2020. Learned Step Size Quantization. ICLR. arXiv:1902.08153"
LSQ_PLUS = (
    "Bhalgat et al., 2020. LSQ+: Improving low-bit quantization through learnable offsets and better "
    "initialization. CVPR Workshops. arXiv:2004.09576"
)


def _a(values, dtype=np.float32):
    return np.array(values, dtype=dtype)


def _s(v):
    return np.array(v, dtype=np.float32)


def _bits_of(a):
    return np.ascontiguousarray(a, dtype=F).view(np.uint32)


# ---- invariants ---------------------------------------------------------------------------------------------


def _lsq_init_steps(call, case, out):
    (w,) = case.args
    axis = case.kwargs.get("axis")
    assert out.dtype == np.float32 and out.shape == (() if axis is None else (w.shape[axis],)), "parameter shape"
    assert np.all(np.isfinite(out) & (out > 0)), "every step is a valid LSQ scale"


def _in_levels(out, levels):
    assert np.all(np.isin(_bits_of(out.reshape(-1)), _bits_of(levels))), "an output is not one of the levels"


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


def _monotone(call, case, out):
    x = case.args[0]
    if x.size > 1:
        order = np.argsort(x.reshape(-1), kind="stable")
        assert np.all(np.diff(out.reshape(-1)[order].astype(np.float64)) >= 0), "must be monotone in the input"


def _dorefa_activation_levels(call, case, out):
    _, bits = case.args
    n = F(2**bits - 1)
    _in_levels(out, np.arange(2**bits, dtype=F) / n)


def _grad_or_zero(call, case, out):
    grad = case.args[0]
    got = out[0] if isinstance(out, tuple) else out
    passed = _bits_of(got) == _bits_of(grad)
    blocked = _bits_of(got) == np.uint32(0)
    assert np.all(passed | blocked), "the input gradient must be the cotangent or +0.0"


def _linear_in_cotangent(call, case, out):
    """Doubling the cotangent doubles every gradient exactly (float64 arithmetic and one rounding scale by 2),
    wherever the doubled float32 result is normal and finite."""
    grad = case.args[0]
    if np.any(np.abs(grad) > F(F_MAX / 2)):
        return
    doubled = call(Case((grad * F(2), *case.args[1:]), case.kwargs))
    outs = out if isinstance(out, tuple) else (out,)
    twice = doubled if isinstance(doubled, tuple) else (doubled,)
    for o, d in zip(outs, twice, strict=True):
        with np.errstate(over="ignore"):
            expected = o * F(2)
        ok = (np.abs(expected) >= F(2.0**-125)) & np.isfinite(expected) & (np.abs(o) < F(F_MAX / 2))
        assert np.array_equal(_bits_of(d)[ok], _bits_of(expected)[ok]), "gradient not linear in the cotangent"


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


def _lsq_levels(call, case, out):
    x, scale = case.args[:2]
    offset = case.args[2] if len(case.args) > 2 else None
    kw = case.kwargs
    bits, signed, axis = kw["bits"], kw["signed"], kw["axis"]
    qn, qp = (2 ** (bits - 1), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    codes = np.arange(-qn, qp + 1, dtype=F)
    if axis is None:
        rows, params = [out], [(scale, offset)]
    else:
        k = axis % x.ndim
        rows = list(np.moveaxis(out, k, 0))
        params = [(scale[i], None if offset is None else offset[i]) for i in range(x.shape[k])]
    for row, (s, b) in zip(rows, params, strict=True):
        _in_levels(np.asarray(row), codes * s if b is None else codes * s + b)


def _lsq_offset_inside(call, case, out):
    """Every element inside the pass region: no gradient to the offset (+0.0, or -0.0 from an empty tree)."""
    grad_x = out[0]
    grad = case.args[0]
    if np.array_equal(_bits_of(grad_x), _bits_of(grad)) and np.all(grad != 0):
        assert np.all(out[2] == 0), "offset gradient must be 0 when every element passes"


def _nearest_inverse_sqrt(call, case, out):
    numel, qp = case.args
    m = numel * qp
    assert isinstance(out, float)
    if m == 0:
        assert out == 0.0
        return
    y = F(out)
    assert float(y) == out, "must be a float32 value"
    up, down = np.nextafter(y, F(np.inf)), np.nextafter(y, F(0))
    assert (Fraction(float(y)) + Fraction(float(up))) ** 2 * m >= 4, "1/sqrt(m) is above the upper midpoint"
    assert (Fraction(float(y)) + Fraction(float(down))) ** 2 * m <= 4, "1/sqrt(m) is below the lower midpoint"


# ---- goldens that need a line of arithmetic ---------------------------------------------------------------------

_T3 = np.float64(F(np.tanh(3.0)))  # t = fl32(tanh 3) = 0.9950548
_T2 = np.float64(F(np.tanh(2.0)))  # t = fl32(tanh 2) = 0.9640276

# ---- entries ------------------------------------------------------------------------------------------------

SIGNED3 = {"bits": 3, "signed": True}

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
            "k = 1: w_q = E sign(w), E = fl32(tree_mean(|w|)), sign(w) = +1 for w >= 0 (-0.0 included).",
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
            "All in float64 from float32 g, t, m; the sum is tree_sum; one rounding to float32 at the end.",
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
            "grad_alpha = fl32(tree_sum(where(x >= alpha, grad, +0.0))): x = alpha counts for both.",
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
        ),
        bad=(
            Bad(
                Case((_a([1.0, 1.0]), _a([1.0]), _s(1.0), 2)), ValueError, "grad has shape (2,) but x needs shape (1,)"
            ),
        ),
        paper=PACT,
    ),
    Entry(
        name="lsq_grad_scale",
        family="quantization",
        module="quantization.lsq",
        summary="LSQ's gradient scale 1 / sqrt(N Qp), the float32 nearest the exact value.",
        strategy=S.lsq_grad_scale_cases,
        semantics=(
            "The float32 nearest 1 / sqrt(numel * qp), settled by exact rational comparisons with the midpoints.",
            "Returned as a Python float; numel = 0 gives 0.0.",
        ),
        invariants=(Invariant("the float32 nearest 1/sqrt(N Qp)", _nearest_inverse_sqrt),),
        golden=(
            Golden(Case((4, 1)), 0.5),
            Golden(Case((1, 3)), float(F(0.5773502691896258)), "1/sqrt(3) = 0.57735026918..."),
            Golden(Case((12, 1)), float(F(0.2886751345948129)), "1/sqrt(12)"),
            Golden(Case((0, 7)), 0.0, "no elements"),
        ),
        bad=(
            Bad(Case((-1, 3)), ValueError, "numel must be in [0, 1099511627776], got -1"),
            Bad(Case((4, 0)), ValueError, "qp must be in [1, 65535], got 0"),
            Bad(Case((4.0, 3)), TypeError, "numel must be an int, got float 4.0"),
        ),
        paper=LSQ,
    ),
    Entry(
        name="lsq_init_scale",
        family="quantization",
        module="quantization.lsq",
        summary="LSQ's initial step fl32(2 mean|w| / sqrt(Qp)), per tensor or per channel, the same on every device.",
        strategy=S.lsq_init_cases,
        semantics=(
            "m = tree_mean(|w|) in float64 per slice (all of w, or each index along axis); 2m is exact.",
            "sqrt(Qp) is the correctly rounded float64 square root of the integer Qp (host-side IEEE sqrt).",
            "One IEEE float64 division 2m / sqrt(Qp), then one rounding to float32.",
            "A step that rounds to 0 becomes 1.0 (a valid scale); a step beyond float32 raises ValueError.",
        ),
        invariants=(Invariant("positive finite steps of the parameter shape", _lsq_init_steps),),
        golden=(
            Golden(
                Case((_a([1.0, -3.0]),), {"bits": 4, "signed": True}),
                _s(float(4 / np.sqrt(7))),
                "m = 2, 2m / sqrt(7) = 1.511857892..., to float32",
            ),
            Golden(
                Case((_a([[1.0, -1.0], [0.0, 0.0]]),), {"bits": 2, "signed": False, "axis": 0}),
                _a([2 / np.sqrt(3), 1.0]),
                "per row: m = [1, 0]; Qp = 3; the all-zero row gets 1.0",
            ),
            Golden(
                Case((_a([0.5, 0.5, 0.5, 0.5]),), {"bits": 3, "signed": True}),
                _s(float(1 / np.sqrt(3))),
                "ties: m = 0.5, 1 / sqrt(3)",
            ),
        ),
        bad=(
            Bad(
                Case((_a([]),), {"bits": 4, "signed": True}),
                ValueError,
                "the LSQ initial step needs at least one element",
            ),
            Bad(
                Case((_a([3e38, 3e38]),), {"bits": 2, "signed": True}), ValueError, "the initial step overflows float32"
            ),
            Bad(Case((_a([1.0]),), {"bits": 1, "signed": True}), ValueError, "signed LSQ needs bits >= 2"),
            Bad(Case((_a([1.0]),), {"bits": 4, "signed": True, "axis": 1}), ValueError, "axis 1 is out of range"),
        ),
        paper=LSQ,
    ),
    Entry(
        name="lsq_quantize",
        family="quantization",
        module="quantization.lsq",
        summary="LSQ fake quantization rne(clip(x / s, -Qn, Qp)) * s, per tensor or per channel.",
        strategy=S.lsq_cases,
        vjp="lsq_quantize_vjp",
        semantics=(
            "Signed b bits: [-2**(b-1), 2**(b-1) - 1] (b >= 2); unsigned: [0, 2**b - 1].",
            "v = x / s is an IEEE float32 division (overflow to +-inf clips); clip exact; rne; one float32 product.",
            "Code 0 is +0.0 (codes are integers): x = -0.0 and rne(-0.3) give +0.0, as affine fake_quantize.",
            "Per channel: scale has shape (x.shape[axis],). Levels -Qn s and Qp s must be finite, else ValueError.",
        ),
        invariants=(Invariant("outputs are levels q s", _lsq_levels),),
        golden=(
            Golden(
                Case((_a([0.2, 0.25, 0.8, 1.4, -3.0]), _s(0.5)), SIGNED3),
                _a([0, 0, 1, 1.5, -2]),
                "v = [.4, .5, 1.6, 2.8, -6]: .5 ties to 0, -6 clips to -4",
            ),
            Golden(
                Case((_a([-0.0, -1.0, -0.3]), _s(1.0)), {"bits": 2, "signed": True}),
                _a([0.0, -1.0, 0.0]),
                "code 0 is +0.0: -0.0 and rne(-0.3) = -0 give +0.0",
            ),
            Golden(
                Case((_a([[1.0, -1.0], [1.0, -1.0]]), _a([0.5, 0.25])), {"bits": 2, "signed": True, "axis": 0}),
                _a([[0.5, -1.0], [0.25, -0.5]]),
                "per channel, signed 2 bits [-2, 1]",
            ),
        ),
        bad=(
            Bad(Case((_a([1.0]), _s(1.0)), {"bits": 1, "signed": True}), ValueError, "signed LSQ needs bits >= 2"),
            Bad(Case((_a([1.0]), _s(1.0)), {"bits": 17, "signed": False}), ValueError, "bits must be in [1, 16]"),
            Bad(Case((_a([1.0]), _s(1.0)), {"bits": 4, "signed": 1}), TypeError, "signed must be a bool, got int 1"),
            Bad(Case((_a([1.0]), _s(0.0)), SIGNED3), ValueError, "scale must be > 0, got 0.0 at flat index 0"),
            Bad(Case((_a([1.0]), _s(-2.0)), SIGNED3), ValueError, "scale must be > 0, got -2.0"),
            Bad(Case((_a([1.0]), _s(np.nan)), SIGNED3), ValueError, "scale must be finite, got nan"),
            Bad(Case((_a([np.inf]), _s(1.0)), SIGNED3), ValueError, "x must be finite, got inf at flat index 0"),
            Bad(
                Case((_a([[1.0, 2.0]]), _a([1.0])), {**SIGNED3, "axis": 1}),
                ValueError,
                "scale has shape (1,) but axis=1 needs shape (2,)",
            ),
            Bad(Case((_a([1.0]), _a([1.0])), {**SIGNED3, "axis": 1}), ValueError, "axis 1 is out of range"),
            Bad(Case((_s(1.0), _a([1.0])), {**SIGNED3, "axis": 0}), ValueError, "needs an array with at least one"),
            Bad(Case((_a([1.0]), _s(1e37)), {"bits": 8, "signed": True}), ValueError, "extreme levels"),
        ),
        paper=LSQ,
    ),
    Entry(
        name="lsq_quantize_vjp",
        family="quantization",
        module="quantization.lsq",
        summary="LSQ's gradients to x and to the step, with the gradient scale 1 / sqrt(N Qp).",
        strategy=lambda: S.lsq_cases(with_grad=True),
        semantics=(
            "One pass region P = {-Qn <= x / s <= Qp}, inclusive, before rounding (autograd through torch.clamp).",
            "grad_x = where(P, grad, +0.0).",
            "grad_scale = fl32(tree_sum(g d) * gs), d = rne(v) - v in P, -Qn below, Qp above; at v = Qp, d = 0.",
            "gs = lsq_grad_scale(N, Qp): N = x.size per tensor, x.size / C per channel (the elements of one step).",
            "Per channel: each channel's terms in C order through its own tree; one rounding to float32.",
        ),
        invariants=(
            Invariant("grad or +0.0", _grad_or_zero),
            Invariant("linear in the cotangent", _linear_in_cotangent),
        ),
        golden=(
            Golden(
                Case((_a([1, 1, 1]), _a([0.2, 0.8, 5.0]), _s(0.5)), SIGNED3),
                (_a([1, 1, 0]), _s(1.0)),
                "d = [-.40000001, .39999998, 3] (exact), sum 2.99999997, times fl32(1/3) rounds to 1",
            ),
            Golden(
                Case((_a([1, 1, 1, 1]), _a([3.0, 3.0000002, -4.0, -4.0000005]), _s(1.0)), SIGNED3),
                (_a([1, 0, 1, 0]), _s(-F(0.2886751345948129))),
                "bounds pass with d = 0; beyond: d = 3, -4; sum -1 times 1/sqrt(12)",
            ),
        ),
        bad=(
            Bad(
                Case((_a([1.0, 2.0]), _a([1.0]), _s(1.0)), SIGNED3),
                ValueError,
                "grad has shape (2,) but x needs shape (1,)",
            ),
            Bad(Case((_a([np.inf]), _a([1.0]), _s(1.0)), SIGNED3), ValueError, "grad must be finite"),
        ),
        paper=LSQ,
    ),
    Entry(
        name="lsq_plus_quantize",
        family="quantization",
        module="quantization.lsq",
        summary="LSQ+ fake quantization rne(clip((x - beta) / s, -Qn, Qp)) * s + beta with a learned offset.",
        strategy=lambda: S.lsq_cases(plus=True),
        vjp="lsq_plus_quantize_vjp",
        semantics=(
            "float32 in order: x - beta, / s, clip, rne, * s, + beta. beta is never rounded (forward or backward).",
            "offset has scale's shape; levels -Qn s + beta and Qp s + beta must be finite, else ValueError.",
        ),
        invariants=(Invariant("outputs are levels q s + beta", _lsq_levels),),
        golden=(
            Golden(
                Case((_a([-1.0, 0.0, 0.6, 2.0]), _s(0.5), _s(-0.25)), {"bits": 2, "signed": False}),
                _a([-0.25, -0.25, 0.75, 1.25]),
                "v = [-1.5, .5, 1.7, 4.5] -> codes [0, 0, 2, 3]",
            ),
        ),
        bad=(
            Bad(Case((_a([1.0]), _s(1.0), _s(np.nan)), SIGNED3), ValueError, "offset must be finite"),
            Bad(
                Case((_a([1.0]), _s(1.0), _a([0.0])), SIGNED3),
                ValueError,
                "offset has shape (1,) but axis=None needs shape ()",
            ),
            Bad(Case((_a([1.0]), _s(1e37), _s(F_MAX)), SIGNED3), ValueError, "extreme levels"),
        ),
        paper=LSQ_PLUS,
    ),
    Entry(
        name="lsq_plus_quantize_vjp",
        family="quantization",
        module="quantization.lsq",
        summary="LSQ+'s gradients to x, the step and the offset, both parameters with the gradient scale.",
        strategy=lambda: S.lsq_cases(plus=True, with_grad=True),
        semantics=(
            "P, grad_x and grad_scale as for lsq_quantize_vjp, with v = (x - beta) / s.",
            "grad_offset = fl32(tree_sum(where(P, +0.0, g)) * gs): 0 inside (1 - 1), 1 outside.",
            "The offset gradient carries the same gradient scale gs as the step's.",
        ),
        invariants=(
            Invariant("grad or +0.0", _grad_or_zero),
            Invariant("linear in the cotangent", _linear_in_cotangent),
            Invariant("no offset gradient inside", _lsq_offset_inside),
        ),
        golden=(
            Golden(
                Case((_a([1, 1]), _a([0.0, 2.0]), _s(0.5), _s(-0.25)), {"bits": 2, "signed": False}),
                (_a([1, 0]), _s(2.5 * np.float64(F(1 / np.sqrt(6)))), _s(F(1 / np.sqrt(6)))),
                "v = [.5, 4.5]: d = [-.5, 3], sum 2.5; offset gets the outside element; gs = fl32(1/sqrt(6))",
            ),
        ),
        bad=(
            Bad(
                Case((_a([1.0]), _a([1.0]), _s(1.0), _s(0.0)), {"bits": 0, "signed": False}),
                ValueError,
                "bits must be in [1, 16], got 0",
            ),
        ),
        paper=LSQ_PLUS,
    ),
]
