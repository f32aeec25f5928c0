"""Registry entries for `reference.quantization.lsq` and its torch twin: lsq_grad_scale, lsq_init_scale, lsq_quantize,
lsq_quantize_vjp, lsq_plus_quantize, lsq_plus_quantize_vjp.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from spec import strategies as S
from spec.catalog.common import array as _a
from spec.catalog.common import bits_of as _bits_of
from spec.catalog.common import grad_or_zero as _grad_or_zero
from spec.catalog.common import in_levels as _in_levels
from spec.catalog.common import linear_in_cotangent as _linear_in_cotangent
from spec.catalog.common import scalar as _s
from spec.entry import Bad, Case, Entry, Golden, Invariant

F = np.float32
F_MAX = float(np.finfo(np.float32).max)


LSQ = "Esser et al., 2020. Learned Step Size Quantization. ICLR. arXiv:1902.08153"
LSQ_PLUS = (
    "Bhalgat et al., 2020. LSQ+: Improving low-bit quantization through learnable offsets and better "
    "initialization. CVPR Workshops. arXiv:2004.09576"
)


def _lsq_init_steps(call, case, out):
    (w,) = case.args
    axis = case.kwargs.get("axis")
    assert out.dtype == np.float32 and out.shape == (() if axis is None else (w.shape[axis],)), "parameter shape"
    assert np.all(np.isfinite(out) & (out > 0)), "every step is a valid LSQ scale"


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
    """Every element inside the pass region: no gradient to the offset (an exact zero sum: +0.0)."""
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


SIGNED3 = {"bits": 3, "signed": True}


ENTRIES = [
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
            Golden(Case((4, 1)), 0.5, "1/sqrt(4) = 0.5 exactly"),
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
            "m = fl64(exact_sum(|w|) / n) per slice (all of w, or each index along axis); 2m is exact.",
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
            "grad_scale = fl32(exact_sum(g d) * gs), d = rne(v) - v in P, -Qn below, Qp above; at v = Qp, d = 0.",
            "gs = lsq_grad_scale(N, Qp): N = x.size per tensor, x.size / C per channel (the elements of one step).",
            "Per channel: each channel's terms summed exactly on their own, rounded to float64, then to float32.",
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
            Golden(
                Case(
                    (_a([[1, 1, 1], [1, 1, 1]]), _a([[0.2, 0.8, 5.0], [0.2, 0.8, 5.0]]), _a([0.5, 1.0])),
                    {**SIGNED3, "axis": 0},
                ),
                (_a([[1, 1, 0], [1, 1, 0]]), _a([1.0, 1.0])),
                "per channel (N = 3 per step, g_s = fl32(1/3)): row 0 as the per-tensor case; row 1 (s = 1): d = "
                "[-0.2, 0.2, 3], sum 2.99999999..., times 1/3 rounds to 1",
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
            Golden(
                Case(
                    (_a([[-1.0, 0.0, 0.6, 2.0], [-1.0, 0.0, 0.6, 2.0]]), _a([0.5, 1.0]), _a([-0.25, 0.5])),
                    {"bits": 2, "signed": False, "axis": 0},
                ),
                _a([[-0.25, -0.25, 0.75, 1.25], [0.5, 0.5, 0.5, 2.5]]),
                "per channel: row 0 as above; row 1 (s = 1, beta = 0.5): v = [-1.5, -0.5, 0.1, 1.5], the tie 1.5 "
                "to even: codes [0, 0, 0, 2]",
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
        peers=(
            (
                "torch.ao",
                "`_LearnableFakeQuantize` rounds its zero point half to even in the forward pass and half up in the backward pass; LSQ+'s offset is never rounded here.",
            ),
        ),
    ),
    Entry(
        name="lsq_plus_quantize_vjp",
        family="quantization",
        module="quantization.lsq",
        summary="LSQ+'s gradients to x, the step and the offset, both parameters with the gradient scale.",
        strategy=lambda: S.lsq_cases(plus=True, with_grad=True),
        semantics=(
            "P, grad_x and grad_scale as for lsq_quantize_vjp, with v = (x - beta) / s.",
            "grad_offset = fl32(exact_sum(where(P, +0.0, g)) * gs): 0 inside (1 - 1), 1 outside.",
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
            Golden(
                Case(
                    (_a([[1, 1], [1, 1]]), _a([[0.0, 2.0], [0.0, 2.0]]), _a([0.5, 1.0]), _a([-0.25, 0.5])),
                    {"bits": 2, "signed": False, "axis": 0},
                ),
                (
                    _a([[1, 0], [0, 1]]),
                    _a([2.5 * np.float64(F(1 / np.sqrt(6))), 0.5 * np.float64(F(1 / np.sqrt(6)))]),
                    _a([F(1 / np.sqrt(6)), F(1 / np.sqrt(6))]),
                ),
                "per channel, N = 2 per step: row 0 as above; row 1 (s = 1, beta = 0.5): v = [-0.5, 1.5], the "
                "first below 0 (d = -Qn = 0, offset 1), the tie 1.5 inside (d = 2 - 1.5)",
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
