"""Registry entries for `reference.posttraining.scaling` and its torch twin: awq_act_scale, awq_scales, awq,
smoothquant_scales, smoothquant."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from spec import strategies as S
from spec.catalog.common import array as _a
from spec.entry import Bad, Case, Entry, Golden, Invariant

F = np.float32
AWQ = (
    "Lin, Tang, Tang, Yang, Chen, Wang, Xiao, Dang, Gan and Han, 2024. AWQ: Activation-aware Weight Quantization for "
    "LLM Compression and Acceleration. MLSys. arXiv:2306.00978"
)
SMOOTHQUANT = (
    "Xiao, Lin, Seznec, Wu, Demouth and Han, 2023. SmoothQuant: Accurate and Efficient Post-Training Quantization "
    "for Large Language Models. ICML. arXiv:2211.10438"
)


def _quadratic(d, h):
    """The exact sum over rows of d_r^T h d_r, from float64 values (Fractions)."""
    hf = [[Fraction(float(v)) for v in row] for row in h]
    total = Fraction(0)
    for row in d:
        r = [Fraction(float(v)) for v in row]
        total += sum(r[i] * hf[i][j] * r[j] for i in range(len(r)) for j in range(len(r)) if r[i] and r[j])
    return total


def _mean_abs(call, case, out):
    (x,) = case.args
    n = x.shape[0]
    for j in range(x.shape[1]):
        total = sum((abs(Fraction(float(v))) for v in x[:, j]), Fraction(0))
        want = np.float32(np.float64(float(total)) / np.float64(n))  # exact sum rounded once, one division, fl32
        assert out[j].tobytes() == want.tobytes(), f"column {j}: {out[j]!r} vs {want!r}"


def _normalized(call, case, out):
    """s = t / cr_sqrt(max t * min t) with t = max(cr_pow(s_x, alpha), 1e-4) (the reference's cr_* functions)."""
    from reference.core.transcendental import cr_pow, cr_sqrt

    a, alpha = case.args
    t = np.maximum(cr_pow(a, np.array(np.float32(alpha))), np.float32(1e-4))
    root = cr_sqrt(np.array(float(t.max()) * float(t.min())))
    assert out.tobytes() == (t / root).tobytes()
    assert np.all(out > 0)


def _awq_consistent(call, case, out):
    """The result decodes to its weight, and the chosen alpha and thresholds minimize the exact losses (Fractions),
    ties to the lower alpha and to less clipping."""
    from reference.posttraining.scaling import awq_scales
    from reference.quantization.affine import dequantize, fake_quantize, integer_range, minmax_qparams

    w, h, s_x = case.args
    kw = case.kwargs
    out_f, d = w.shape
    g = kw.get("group_size") or d
    qmin, qmax = integer_range(kw.get("bits", 4), True, kw.get("symmetric", False))
    sym = kw.get("symmetric", False)
    deq = dequantize(out.codes, out.scale, out.zero_point, axis=1, group_size=g)
    assert out.weight.tobytes() == (deq / out.smooth[None, :]).tobytes(), "weight = dequantize(codes) / smooth"
    assert out.codes.min() >= qmin and out.codes.max() <= qmax

    def loss(s, m=None):
        ws = w * s[None, :]
        if m is not None:
            mm = np.repeat(m, g, axis=1)
            ws = np.minimum(np.maximum(ws, -mm), mm)
        sc, zp = minmax_qparams(ws, qmin=qmin, qmax=qmax, symmetric=sym, axis=1, group_size=g)
        cand = fake_quantize(ws, sc, zp, qmin=qmin, qmax=qmax, axis=1, group_size=g) / s[None, :]
        return w.astype(np.float64) - cand.astype(np.float64)

    grid = kw.get("grid", 20)
    losses = [_quadratic(loss(awq_scales(s_x, k / grid)), h) for k in range(grid)]
    k = losses.index(min(losses))
    assert out.alpha.tobytes() == np.float32(k / grid).tobytes(), f"alpha {out.alpha} vs exact argmin {k}/{grid}"
    assert out.smooth.tobytes() == awq_scales(s_x, k / grid).tobytes()
    amax = np.abs(w * out.smooth[None, :]).reshape(out_f, d // g, g).max(axis=2)
    assert np.all(out.clip <= amax) and np.all(out.clip >= 0)


def _smooth_formula(call, case, out):
    from reference.core.transcendental import cr_pow

    a, w = case.args
    alpha = case.kwargs.get("alpha", 0.5)
    m = np.maximum(np.abs(w).max(axis=0, initial=np.float32(0)), np.float32(1e-5))
    want = np.maximum(cr_pow(a, np.array(np.float32(alpha))) / cr_pow(m, np.array(np.float32(1 - alpha))), F(1e-5))
    assert out.tobytes() == want.tobytes()


def _smoothquant_consistent(call, case, out):
    from reference.quantization.affine import dequantize, integer_range

    bits = case.kwargs.get("bits", 8)
    qmin, qmax = integer_range(bits, True, True)
    assert out.codes.min() >= qmin and out.codes.max() <= qmax, "narrow symmetric range"
    assert out.weight.tobytes() == dequantize(out.codes, out.scale, np.zeros_like(out.codes[:, 0]), axis=0).tobytes()
    w, a = case.args
    other = call(Case((w, a), {**case.kwargs}))
    assert out.smooth.tobytes() == other.smooth.tobytes()


def _awq_result(weight, codes, scale, zero_point, smooth, alpha, clip):
    from reference.posttraining.scaling import AWQResult

    i32 = np.int32
    return AWQResult(_a(weight), _a(codes, i32), _a(scale), _a(zero_point, i32), _a(smooth), _a(alpha), _a(clip))


def _sq_result(weight, codes, scale, smooth):
    from reference.posttraining.scaling import SmoothQuantResult

    return SmoothQuantResult(_a(weight), _a(codes, np.int32), _a(scale), _a(smooth))


_S127 = F(4) / F(127)
ONES = _a([1, 1, 1, 1])

ENTRIES = [
    Entry(
        name="awq_act_scale",
        family="quantization",
        module="posttraining.scaling",
        summary="AWQ's activation statistic: mean |x| per input channel, the exact sum rounded once.",
        strategy=S.act_scale_cases,
        semantics=("s_x[j] = fl32(fl64(exact_sum_t |x[t, j]| / n)): independent of how the rows are batched.",),
        invariants=(Invariant("fl32(fl64(exact sum / n)) by Fractions", _mean_abs),),
        golden=(
            Golden(Case((_a([[1, -2], [3, 0]]),)), _a([2, 1]), "(1 + 3) / 2, (2 + 0) / 2"),
            Golden(
                Case((_a([[0.1], [0.2], [0.3]]),)),
                _a([0.20000000298023224]),
                "the float32 values 0.1, 0.2, 0.3 sum exactly to 0.6000000089406967, / 3, rounded to float32",
            ),  # fmt: skip
        ),
        bad=(
            Bad(Case((_a(np.zeros((0, 2))),)), ValueError, "x must have shape (n, in_features) with n >= 1"),
            Bad(Case((_a([1.0, 2.0]),)), ValueError, "x must have shape (n, in_features) with n >= 1, got (2,)"),
        ),
        paper=AWQ,
    ),
    Entry(
        name="awq_scales",
        family="quantization",
        module="posttraining.scaling",
        summary="AWQ's scales for one alpha: max(cr_pow(s_x, alpha), 1e-4), normalized by cr_sqrt(max * min).",
        strategy=S.awq_scales_cases,
        semantics=(
            "t = max(cr_pow(s_x, fl32(alpha)), fl32(1e-4)); s = t / cr_sqrt(fl64(max t * min t)) (IEEE float32 "
            "division): the paper's code's normalization, every step correctly rounded.",
        ),
        invariants=(Invariant("the formula with the cr_ functions", _normalized),),
        golden=(
            Golden(Case((_a([4, 1]), 0.5)), _a([1.4142135, 0.70710677]), "t = [2, 1]; s = t / sqrt 2"),
            Golden(
                Case((_a([0, 1, 4]), 0.5)),
                _a([0.0070710680447518826, 70.71067810058594, 141.42135620117188]),
                "a dead channel: 0 ** 0.5 = 0, floored to 1e-4; t = [1e-4, 1, 2], sqrt(2e-4) = 0.01414...",
            ),  # fmt: skip
            Golden(Case((_a([0, 3]), 0.0)), _a([1, 1]), "alpha = 0: every t = 1 (0 ** 0 = 1 too)"),
        ),
        bad=(
            Bad(Case((_a([1.0]), 1.5)), ValueError, "alpha must be in [0.0, 1.0], got 1.5"),
            Bad(Case((_a([-1.0]), 0.5)), ValueError, "act_scale must be in [0.0, inf], got -1.0 at flat index 0"),
            Bad(Case((_a([[1.0]]), 0.5)), ValueError, "act_scale must have shape (in_features,)"),
        ),
        paper=AWQ,
    ),
    Entry(
        name="awq",
        family="quantization",
        module="posttraining.scaling",
        summary="AWQ on one layer: exact grid search of alpha and of the clipping thresholds, then the quantized weight.",
        strategy=S.awq_cases,
        semantics=(
            "Candidate for scales s: W_hat = fl32(Q(W * s) / s), Q = fake_quantize with minmax_qparams(axis=1, "
            "group_size), integer_range(bits, signed=True, narrow_range=symmetric). Loss: the exact sum_o D_o^T H D_o, "
            "D = fl64(W - W_hat), never rounded: compared exactly.",
            "alpha_k = fl32(k / grid), k < grid; the smallest exact loss wins, ties to the lower alpha.",
            "Clipping per output row and group of W * s: m_i = fl32(amax * fl32(1 - i / clip_grid)), "
            "i < floor(max_shrink * clip_grid); loss D_og^T H_gg D_og of the group; ties to the lower i.",
            "Result: codes of clip(W * s, -m, m) (min-max of the clipped groups); weight = fl32(dequantize / s): 1/s "
            "folded into the weight; smooth = s for folding it into the previous operation instead.",
            "Losses are float64 products with a rigorous error bound; comparisons it cannot decide are exact "
            "(integers), so no BLAS, thread count or device changes the choice.",
        ),
        invariants=(Invariant("decodes; alpha is the exact argmin (Fractions)", _awq_consistent),),
        golden=(
            Golden(
                Case((_a([[0.1, 0.5, -1.0, 0.25]]), np.eye(4), ONES), {"bits": 2, "clip": False}),
                _awq_result([[0, 0.5, -1, 0]], [[0, 1, -2, 0]], [[0.5]], [[0]], ONES, 0, [[1]]),
                "act_scale all 1: every alpha gives s = 1, identical candidates, a tie: the lowest alpha (0) wins; "
                "then round to nearest: range [-1, 0.5] on [-2, 1], scale 0.5",
            ),  # fmt: skip
            Golden(
                Case(
                    (_a([[0.25, 0.5, -1.0, 0.5]]), np.eye(4), ONES),
                    {"bits": 2, "group_size": 2, "symmetric": True, "clip": False},
                ),
                _awq_result([[0, 0.5, -1, 0]], [[0, 1, -1, 0]], [[0.5, 1]], [[0, 0]], ONES, 0, [[0.5, 1]]),
                "symmetric groups of 2 on [-1, 1]: scales 0.5 and 1; 0.25 / 0.5 = 0.5 and 0.5 / 1 = 0.5 are ties, "
                "to even 0",
            ),  # fmt: skip
            Golden(
                Case(
                    (_a([[1, 0.5, 0.5, 0.25]]), np.diag([0.01, 1.0, 1.0, 1.0]), ONES),
                    {"bits": 2, "grid": 1, "clip_grid": 4},
                ),
                _awq_result([[0.75, 0.5, 0.5, 0.25]], [[1, 0, 0, -1]], [[0.25]], [[-2]], ONES, 0, [[0.75]]),
                "thresholds 1 and 0.75: unclipped, scale 1/3 misses 0.5 (-> 2/3) and 0.25 (-> 1/3), loss 0.0625; "
                "clipped at 0.75, scale 0.25 hits 0.5 and 0.25 exactly and only 1 -> 0.75 errs, weighted 0.01: "
                "loss 0.000625 wins",
            ),  # fmt: skip
        ),
        bad=(
            Bad(
                Case((_a([[1.0, 2.0]]), np.eye(2), _a([1.0])), {}),
                ValueError,
                "act_scale has shape (1,) but w with in_features 2 needs shape (2,)",
            ),  # fmt: skip
            Bad(
                Case((_a([[1.0, 2.0]]), np.eye(2), _a([1.0, 1.0])), {"group_size": 3}),
                ValueError,
                "group_size=3 must divide in_features=2",
            ),  # fmt: skip
            Bad(
                Case((_a([[1.0, 2.0]]), np.eye(2), _a([1.0, 1.0])), {"grid": 0}),
                ValueError,
                "grid must be in [1, 1000]",
            ),
            Bad(
                Case((_a([[1.0, 2.0]]), np.eye(2), _a([1.0, 1.0])), {"max_shrink": 1.0}),
                ValueError,
                "max_shrink must be in [0.0, 1.0), got 1.0",
            ),  # fmt: skip
            Bad(
                Case((_a([[1.0, 2.0]]), np.eye(2, dtype=np.float32), _a([1.0, 1.0]))),
                TypeError,
                "h must have dtype float64",
            ),
            Bad(
                Case((_a([[1.0, 2.0]]), np.array([[1.0, 2.0], [0.0, 1.0]]), _a([1.0, 1.0]))),
                ValueError,
                "h must be symmetric",
            ),  # fmt: skip
        ),
        paper=AWQ,
    ),
    Entry(
        name="smoothquant_scales",
        family="quantization",
        module="posttraining.scaling",
        summary="SmoothQuant's factors max|X_j|**alpha / max|W_j|**(1 - alpha), with the paper's 1e-5 floors.",
        strategy=S.smoothquant_scales_cases,
        semantics=(
            "m_j = max(max_o |W_oj|, fl32(1e-5)); s_j = max(cr_pow(a_j, fl32(alpha)) / cr_pow(m_j, fl32(1 - alpha)), "
            "fl32(1e-5)) with IEEE float32 division.",
            "Zero maxima: a zero weight column counts as 1e-5; a dead input channel gives 0, floored to 1e-5; 0**0 = 1.",
        ),
        invariants=(Invariant("the formula with cr_pow", _smooth_formula),),
        golden=(
            Golden(Case((_a([16, 1]), _a([[1, 0.25]]))), _a([4, 2]), "sqrt 16 / sqrt 1, sqrt 1 / sqrt 0.25"),
            Golden(
                Case((_a([0, 4]), _a([[0, 1]])), {"alpha": 0.5}),
                _a([1e-5, 2]),
                "a dead input channel and a zero weight column: 0 / sqrt(1e-5) = 0, floored to 1e-5",
            ),  # fmt: skip
        ),
        bad=(
            Bad(
                Case((_a([1.0, 2.0]), _a([[1.0]]))), ValueError, "w must have shape (out_features, 2) to match act_max"
            ),
            Bad(Case((_a([1.0]), _a([[1.0]])), {"alpha": -0.1}), ValueError, "alpha must be in [0.0, 1.0], got -0.1"),
        ),
        paper=SMOOTHQUANT,
    ),
    Entry(
        name="smoothquant",
        family="quantization",
        module="posttraining.scaling",
        summary="SmoothQuant's weight side: W * s quantized per output channel, symmetric (W8A8 with per-token inputs).",
        strategy=S.smoothquant_cases,
        semantics=(
            "s = smoothquant_scales(act_max, w, alpha); codes = quantize(W * s) with minmax_qparams(symmetric=True, "
            "axis=0) on integer_range(bits, True, narrow_range=True); weight = dequantize(codes).",
            "The layer computes per_token_fake_quantize(fl32(X / s), bits) @ weight^T (the training layer divides the "
            "input; a deployment folds 1/s into the preceding norm).",
        ),
        invariants=(Invariant("narrow range, decodes", _smoothquant_consistent),),
        golden=(
            Golden(
                Case((_a([[1, 0.25]]), _a([16, 1]))),
                _sq_result([[F(127) * _S127, F(16) * _S127]], [[127, 16]], [_S127], [4, 2]),
                "s = [4, 2]: W * s = [4, 0.5]; scale 4/127; 0.5 / scale = 15.875 -> 16",
            ),  # fmt: skip
        ),
        bad=(Bad(Case((_a([[1.0]]), _a([1.0])), {"bits": 1}), ValueError, "bits must be in [2, 16], got 1"),),
        paper=SMOOTHQUANT,
    ),
]
