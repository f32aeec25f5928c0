"""Registry entries for `reference.posttraining.adaround` and its torch twin: rectified_sigmoid(_vjp),
adaround_regularizer(_vjp), adaround_beta, adaround_init, adaround_step, adaround_quantize."""

from __future__ import annotations

import math

import numpy as np

from spec import strategies as S
from spec.catalog.common import array as _a
from spec.entry import Bad, Case, Entry, Golden, Invariant

F = np.float32
ADAROUND = (
    "Nagel, Amjad, van Baalen, Louizos and Blankevoort, 2020. Up or Down? Adaptive Rounding for Post-Training "
    "Quantization. ICML. arXiv:2004.10568; the reference code's schedule from Li et al., 2021, BRECQ, ICLR, "
    "arXiv:2102.05426"
)
STRETCH = "h(V) = clip(fl32(fl32(cr_sigmoid(V) * fl32(zeta - gamma)) + fl32(gamma)), 0, 1); zeta = 1.1, gamma = -0.1."


def _in_unit(call, case, out):
    assert out.dtype == np.float32 and np.all((out >= 0) & (out <= 1))
    v = case.args[0]
    order = np.argsort(v.reshape(-1), kind="stable")
    assert np.all(np.diff(out.reshape(-1)[order].astype(np.float64)) >= 0), "h is non-decreasing in V"


def _vjp_formula(call, case, out):
    """The float64 formula grad * sigma (1 - sigma) (zeta - gamma), within float32 rounding; exactly +0.0 where the
    float64 pre-clip value is clearly outside [0, 1]."""
    grad, v = case.args
    zeta, gamma = case.kwargs.get("zeta", 1.1), case.kwargs.get("gamma", -0.1)
    with np.errstate(over="ignore"):
        sig = 1 / (1 + np.exp(-v.astype(np.float64)))
    pre = sig * (zeta - gamma) + gamma
    want = grad.astype(np.float64) * sig * (1 - sig) * (zeta - gamma)
    outside = (pre < -1e-6) | (pre > 1 + 1e-6)
    assert np.all(out[outside].view(np.uint32) == 0), "no gradient where the clip is active"
    inside = (pre > 1e-6) & (pre < 1 - 1e-6)
    got = out.astype(np.float64)
    assert np.all(np.abs(got - want)[inside] <= 1e-5 * np.abs(want[inside]) + 1e-38), "the formula"


def _regularizer_range(call, case, out):
    (v,) = case.args
    assert out.dtype == np.float32 and out.shape == () and 0 <= float(out) <= v.size


def _beta_schedule(call, case, out):
    step, iterations = case.args
    start, end = case.kwargs.get("start", 20.0), case.kwargs.get("end", 2.0)
    assert isinstance(out, float) and end <= out <= start
    if step == iterations:
        assert out == end


def _init_reproduces_w(call, case, out):
    """h(V0) is close to the fractional part of w / s (so training starts near w)."""
    from reference.posttraining.adaround import rectified_sigmoid

    w, scale = case.args
    s = np.repeat(scale, w.shape[1] // scale.shape[1], axis=1)
    r = w / s
    rest = r - np.floor(r)
    h = rectified_sigmoid(out, **case.kwargs)
    assert np.all(np.abs(h.astype(np.float64) - rest) <= 1e-5 + 1e-5 * np.abs(rest))


def _step_shapes(call, case, out):
    w = case.args[0]
    assert all(x.dtype == np.float32 and x.shape == w.shape for x in out)
    assert np.all(out.s >= 0), "Adam's second moment stays >= 0"


def _codes_in_range(call, case, out):
    kw = case.kwargs
    assert out.dtype == np.int32 and np.all((out >= kw["qmin"]) & (out <= kw["qmax"]))


def _state(v, m, s):
    from reference.posttraining.adaround import AdaRoundState

    return AdaRoundState(_a(v), _a(m), _a(s))


_G = F(0.25) * F(1.2)  # sigma'(0) * (zeta - gamma) in float32

ENTRIES = [
    Entry(
        name="rectified_sigmoid",
        family="quantization",
        module="posttraining.adaround",
        summary="AdaRound's soft rounding h(V) = clip(sigmoid(V) (zeta - gamma) + gamma, 0, 1), correctly rounded sigmoid.",
        strategy=S.rectified_cases,
        semantics=(STRETCH,),
        invariants=(Invariant("in [0, 1], non-decreasing", _in_unit),),
        golden=(Golden(Case((_a([0, 10, -10]),)), _a([0.5, 1, 0]), "0.5 * 1.2 - 0.1; clipped at 1 and 0"),),
        bad=(
            Bad(Case((_a([0.0]),), {"zeta": 0.9}), ValueError, "zeta must be in (1.0, 100.0], got 0.9"),
            Bad(Case((_a([0.0]),), {"gamma": 0.0}), ValueError, "gamma must be in [-100.0, 0.0), got 0.0"),
        ),
        vjp="rectified_sigmoid_vjp",
        paper=ADAROUND,
    ),
    Entry(
        name="rectified_sigmoid_vjp",
        family="quantization",
        module="posttraining.adaround",
        summary="The VJP of rectified_sigmoid: grad * sigma (1 - sigma) (zeta - gamma) where the clip passes (inclusive).",
        strategy=S.rectified_vjp_cases,
        semantics=(
            "fl32(grad * fl32(fl32(sigma * fl32(1 - sigma)) * c)) where 0 <= fl32(sigma c) + gamma <= 1, else +0.0.",
        ),
        invariants=(Invariant("the float64 formula; zero where clipped", _vjp_formula),),
        golden=(
            Golden(
                Case((_a([1, 1]), _a([0, 10]))),
                _a([_G, 0]),
                "sigma(0) = 0.5: 0.25 * 1.2; at V = 10, h is clipped at 1: no gradient",
            ),  # fmt: skip
        ),
        bad=(Bad(Case((_a([1.0]), _a([0.0, 1.0]))), ValueError, "grad has shape (1,) but v needs shape (2,)"),),
        paper=ADAROUND,
    ),
    Entry(
        name="adaround_regularizer",
        family="quantization",
        module="posttraining.adaround",
        summary="AdaRound's regularizer sum(1 - |2h - 1|**beta), cr_pow and an exact sum.",
        strategy=S.regularizer_cases,
        semantics=("R = fl32(exact_sum(fl32(1 - cr_pow(|fl32(2h - 1)|, fl32(beta))))), 0 when every h is 0 or 1.",),
        invariants=(Invariant("in [0, numel]", _regularizer_range),),
        golden=(Golden(Case((_a([0, 10]),), {"beta": 2.0}), _a(1.0), "h = [0.5, 1]: 1 - 0 + 1 - 1"),),
        bad=(Bad(Case((_a([0.0]),), {"beta": 0.5}), ValueError, "beta must be in [1.0, 1000.0], got 0.5"),),
        vjp="adaround_regularizer_vjp",
        paper=ADAROUND,
    ),
    Entry(
        name="adaround_regularizer_vjp",
        family="quantization",
        module="posttraining.adaround",
        summary="The VJP of adaround_regularizer for a scalar cotangent.",
        strategy=S.regularizer_vjp_cases,
        semantics=(
            "dR/dh = fl32(fl32(fl32(-2 beta) * cr_pow(|u|, fl32(beta - 1))) * sign(u)), u = fl32(2h - 1); then "
            "rectified_sigmoid_vjp of fl32(grad * dR/dh).",
        ),
        golden=(
            Golden(
                Case((_a(1.0), _a([0, 10])), {"beta": 2.0}),
                _a([-0.0, 0.0]),
                "h = 0.5: -4 * 0 * sign(0) = -0.0; h clipped at 1: the clip stops the gradient",
            ),  # fmt: skip
        ),
        bad=(Bad(Case((_a([1.0]), _a([0.0])), {"beta": 2.0}), ValueError, "grad must be 0-d"),),
        paper=ADAROUND,
    ),
    Entry(
        name="adaround_beta",
        family="quantization",
        module="posttraining.adaround",
        summary="The annealed regularizer exponent: start during the warm-up, then linear to end (LinearTempDecay).",
        strategy=S.beta_cases,
        semantics=(
            "t0 = warmup * T; beta = start for t < t0, else end + (start - end) * max(0, 1 - (t - t0) / (T - t0)), "
            "in Python floats in this order.",
        ),
        invariants=(Invariant("between end and start; end at T", _beta_schedule),),
        golden=(
            Golden(Case((10, 100)), 20.0, "the warm-up (t < 20)"),
            Golden(Case((60, 100)), 11.0, "2 + 18 * (1 - 40 / 80)"),
            Golden(Case((100, 100)), 2.0, "the end"),
        ),
        bad=(
            Bad(Case((101, 100)), ValueError, "step must be in [0, 100], got 101"),
            Bad(Case((1, 100), {"warmup": 1.0}), ValueError, "warmup must be in [0.0, 1.0), got 1.0"),
            Bad(Case((1, 100), {"end": 30.0}), ValueError, "end must be in [1.0, 20.0], got 30.0"),
        ),
        paper=ADAROUND,
    ),
    Entry(
        name="adaround_init",
        family="quantization",
        module="posttraining.adaround",
        summary="AdaRound's initial V: h(V) = the fractional part of w / s (-log((zeta - gamma) / (rest - gamma) - 1)).",
        strategy=S.adaround_init_cases,
        semantics=(
            "r = fl32(w / s), rest = r - floor(r) (exact), V = -cr_log(fl32(fl32(c / fl32(rest - gamma)) - 1)).",
        ),
        invariants=(Invariant("h(V0) is the fractional part of w / s", _init_reproduces_w),),
        golden=(
            Golden(
                Case((_a([[0, 0.25]]), _a([[0.5]]))),
                _a([[-math.log(11), -0.0]]),
                "rest 0: -ln(1.2 / 0.1 - 1) = -ln 11; rest 0.5: -ln(1.2 / 0.6 - 1) = -ln 1 = -0.0",
            ),  # fmt: skip
        ),
        bad=(
            Bad(
                Case((_a([[1.0, 2.0]]), _a([[1.0, 1.0, 1.0]]))),
                ValueError,
                "scale must have shape (out_features, n_groups)",
            ),
            Bad(Case((_a([[1.0]]), _a([[0.0]]))), ValueError, "scale must be > 0, got 0.0 at flat index 0"),
        ),
        paper=ADAROUND,
    ),
    Entry(
        name="adaround_step",
        family="quantization",
        module="posttraining.adaround",
        summary="One Adam step on AdaRound's layer-wise loss (Hessian reconstruction + regularizer), bit for bit.",
        strategy=S.adaround_step_cases,
        semantics=(
            "Soft weight fl32(fl32(clip(fl32(fl32(floor(w / s) + h(V)) + z), qmin, qmax) - z) * s); "
            "D = fl64(soft - W); G_W = fl32 of the exact D H (certified float64 product, exact_dot where undecided).",
            "G = fl32(rectified_sigmoid_vjp(G_W * s where the clip passes) + adaround_regularizer_vjp(fl32(lam))); "
            "no regularizer while beta is None.",
            "Adam (0.9, 0.999, eps 1e-8, t = step + 1) in torch.optim.Adam's order, float32, cr_sqrt; "
            "fl32(lr / (1 - 0.9**t)) and fl32(sqrt(1 - 0.999**t)) from Python floats.",
        ),
        invariants=(Invariant("shapes, s >= 0", _step_shapes),),
        golden=(
            Golden(
                Case(
                    (_a([[0.1]]), np.eye(1), _a([[0]]), _a([[0]]), _a([[0]]), _a([[0.5]]), _a([[0]], np.int32)),
                    {"step": 0, "qmin": -2, "qmax": 1},
                ),
                _state([[-0.0009999994654208422]], [[0.002250000135973096]], [[5.062500463282049e-07]]),
                "h(0) = 0.5: soft weight 0.25, D = 0.15, G = 0.15 * 0.5 * 0.3 = 0.0225; Adam's first step moves V by "
                "about lr against the gradient",
            ),  # fmt: skip
            Golden(
                Case(
                    (_a([[0.1]]), np.zeros((1, 1)), _a([[1]]), _a([[0]]), _a([[0]]), _a([[0.5]]), _a([[0]], np.int32)),
                    {"step": 3, "qmin": -2, "qmax": 1},
                ),
                _state([[1]], [[0]], [[0]]),
                "H = 0 and no regularizer: a zero gradient leaves V where it is",
            ),  # fmt: skip
        ),
        bad=(
            Bad(
                Case(
                    (_a([[0.1]]), np.eye(1), _a([[0]]), _a([[0]]), _a([[-1]]), _a([[0.5]]), _a([[0]], np.int32)),
                    {"step": 0, "qmin": -2, "qmax": 1},
                ),
                ValueError,
                "s must be in [0.0, inf], got -1.0 at flat index 0",
            ),  # fmt: skip
            Bad(
                Case(
                    (_a([[0.1]]), np.eye(1), _a([[0]]), _a([[0]]), _a([[0]]), _a([[0.5]]), _a([[5]], np.int32)),
                    {"step": 0, "qmin": -2, "qmax": 1},
                ),
                ValueError,
                "zero_point must be in [-2, 1], got 5 at flat index 0",
            ),  # fmt: skip
        ),
        paper=ADAROUND,
    ),
    Entry(
        name="adaround_quantize",
        family="quantization",
        module="posttraining.adaround",
        summary="AdaRound's final codes: clip(floor(w / s) + [V >= 0] + z, qmin, qmax).",
        strategy=S.adaround_quantize_cases,
        semantics=("Round up where V >= 0 (h >= 0.5), down elsewhere; integers formed in float64, exact.",),
        invariants=(Invariant("codes in range", _codes_in_range),),
        golden=(
            Golden(
                Case(
                    (_a([[0.1, 0.4, -0.1]]), _a([[1, -1, 0]]), _a([[0.5]]), _a([[0]], np.int32)),
                    {"qmin": -2, "qmax": 1},
                ),
                np.array([[1, 0, 0]], np.int32),
                "floor(w / 0.5) = [0, 0, -1], plus [V >= 0] = [1, 0, 1]",
            ),  # fmt: skip
        ),
        bad=(
            Bad(
                Case((_a([[0.1]]), _a([[0.0, 1.0]]), _a([[0.5]]), _a([[0]], np.int32)), {"qmin": -2, "qmax": 1}),
                ValueError,
                "v has shape (1, 2) but w needs shape (1, 1)",
            ),  # fmt: skip
        ),
        paper=ADAROUND,
    ),
]
