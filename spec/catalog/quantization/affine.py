"""Registry entries for `reference.quantization.affine` and its torch twin: integer_range, qparams_from_range,
minmax_qparams, quantize, dequantize, fake_quantize, fake_quantize_vjp.
"""

from __future__ import annotations

import numpy as np

from spec import strategies as S
from spec.entry import Bad, Case, Entry, Golden, Invariant

F = np.float32
JACOB = (
    "Jacob et al., 2018. Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-Only "
    "Inference. CVPR. arXiv:1712.05877"
)
INT8 = {"qmin": -128, "qmax": 127}


def _a(values, dtype=np.float32):
    return np.array(values, dtype=dtype)


def _s(v):
    return np.array(v, dtype=np.float32)


def _z(v):
    return np.array(v, dtype=np.int32)


def _code_count(call, case, out):
    bits, kw = case.args[0], case.kwargs
    qmin, qmax = out
    assert qmax - qmin + 1 == 2**bits - int(kw.get("narrow_range", False))


def _valid_qparams(call, case, out):
    scale, zero_point = out
    kw = case.kwargs
    assert scale.dtype == np.float32 and zero_point.dtype == np.int32
    assert np.all(scale >= F(2.0**-126)) and np.all(np.isfinite(scale)), "scale must be a finite normal float"
    assert np.all((kw["qmin"] <= zero_point) & (zero_point <= kw["qmax"])), "zero point out of range"
    if kw["symmetric"]:
        assert np.all(zero_point == kw["qmin"] + (kw["qmax"] - kw["qmin"] + 1) // 2), "symmetric zero point"


def _codes_in_range(call, case, out):
    kw = case.kwargs
    assert out.dtype == np.int32 and np.all((kw["qmin"] <= out) & (out <= kw["qmax"])), "code out of range"


def _monotone(call, case, out):
    x, kw = case.args[0], case.kwargs
    if kw["axis"] is None and kw["rounding"] != "stochastic" and x.size > 1:
        order = np.argsort(x.reshape(-1), kind="stable")
        assert np.all(np.diff(out.reshape(-1)[order].astype(np.int64)) >= 0), "quantize must be monotone in x"


def _idempotent(call, case, out):
    kw = case.kwargs
    if kw["rounding"] in ("half_even", "half_away") and np.all(np.isfinite(out)):
        again = call(Case((out, *case.args[1:]), kw))
        assert np.array_equal(again.view(np.uint32), out.view(np.uint32)), "fake_quantize must be idempotent"


def _grad_or_zero(call, case, out):
    grad = case.args[0]
    passed = out.view(np.uint32) == grad.view(np.uint32)
    blocked = out.view(np.uint32) == np.uint32(0)
    assert np.all(passed | blocked), "the gradient must be the cotangent or +0.0"


ENTRIES = [
    Entry(
        name="integer_range",
        family="quantization",
        module="quantization.affine",
        summary="The integer code range of a bit width, signed or unsigned, optionally narrow.",
        strategy=S.integer_range_cases,
        semantics=("signed: [-2**(b-1), 2**(b-1) - 1]; unsigned: [0, 2**b - 1]; narrow_range drops the lowest code.",),
        invariants=(Invariant("2**bits codes (minus one if narrow)", _code_count),),
        golden=(
            Golden(Case((8,)), (-128, 127), "signed 8 bits: [-2**7, 2**7 - 1]"),
            Golden(Case((8,), {"signed": False}), (0, 255), "unsigned 8 bits: [0, 2**8 - 1]"),
            Golden(Case((8,), {"narrow_range": True}), (-127, 127), "narrow: -128 dropped, symmetric around 0"),
            Golden(Case((4,), {"signed": False, "narrow_range": True}), (1, 15), "narrow unsigned: code 0 dropped"),
        ),
        bad=(
            Bad(Case((0,)), ValueError, "bits must be in [1, 16], got 0"),
            Bad(Case((17,)), ValueError, "bits must be in [1, 16], got 17"),
            Bad(Case((8.0,)), TypeError, "bits must be an int, got float 8.0"),
            Bad(Case((1,), {"narrow_range": True}), ValueError, "narrow_range needs bits >= 2"),
        ),
    ),
    Entry(
        name="qparams_from_range",
        family="quantization",
        module="quantization.affine",
        summary="Scale and zero point from a real range, symmetric or asymmetric, elementwise.",
        strategy=S.qparams_range_cases,
        semantics=(
            "The range is widened to contain 0; the scale is computed in float64 and rounded once to float32.",
            "Asymmetric: s = (hi - lo) / (qmax - qmin), z = clip(qmin - rne(lo / s), qmin, qmax).",
            "Symmetric: z = qmin + (qmax - qmin + 1) // 2, s = amax / (qmax - z): int8 gives s = amax / 127.",
            "A scale below 2**-126 (the all-zero range included) becomes 1.0.",
        ),
        invariants=(Invariant("valid scale and zero point", _valid_qparams),),
        golden=(
            Golden(Case((_a([-1.0]), _a([1.0])), {**INT8, "symmetric": True}), (_a([1 / 127]), _z([0])), "amax/127"),
            Golden(
                Case((_a([-1.0]), _a([3.0])), {"qmin": 0, "qmax": 255}),
                (_a([4 / 255]), _z([64])),
                "z = 0 - rne(-1 / (4/255)) = rne(63.75) = 64",
            ),
            Golden(Case((_a([0.0]), _a([0.0])), {"qmin": 0, "qmax": 255}), (_a([1.0]), _z([0])), "degenerate"),
            Golden(
                Case((_a([2.0]), _a([5.0])), {"qmin": 0, "qmax": 255, "symmetric": True}),
                (_a([5 / 127]), _z([128])),
                "widened to [0, 5]; symmetric uint8",
            ),
        ),  # fmt: skip
        bad=(
            Bad(Case((_a([1.0]), _a([0.0])), INT8), ValueError, "min_val must be <= max_val"),
            Bad(Case((_a([0.0]), _a([1.0])), {"qmin": 5, "qmax": 4}), ValueError, "qmin must be <= qmax"),
            Bad(Case((_a([0.0]), _a([1.0])), {"qmin": 0, "qmax": 0}), ValueError, "at least 2 codes"),
            Bad(
                Case((_a([0.0]), _a([1.0])), {"qmin": -1, "qmax": 0, "symmetric": True}), ValueError, "at least 3 codes"
            ),
            Bad(
                Case((_a([0.0]), _a([1.0, 2.0])), INT8),
                ValueError,
                "max_val has shape (2,) but min_val needs shape (1,)",
            ),
        ),
        paper=JACOB,
    ),
    Entry(
        name="minmax_qparams",
        family="quantization",
        module="quantization.affine",
        summary="Min-max calibration per tensor, per channel or per group.",
        strategy=S.minmax_qparams_cases,
        semantics=(
            "axis=None: one scale; axis=k: one per index along k; axis=k, group_size=g: one per g elements along k.",
            "Scales of a per-group calibration keep x's rank (ONNX blocked layout).",
        ),
        invariants=(Invariant("valid scale and zero point", _valid_qparams),),
        golden=(
            Golden(
                Case((_a([[-1, 1], [0, 2]]),), {**INT8, "symmetric": True, "axis": 0}),
                (_a([1 / 127, 2 / 127]), _z([0, 0])),
                "per row amax / 127",
            ),
            Golden(
                Case((_a([[-1, 1, 0, 4], [2, 2, -3, 1]]),), {"qmin": 0, "qmax": 15, "axis": 1, "group_size": 2}),
                (_a([[2 / 15, 4 / 15], [2 / 15, 4 / 15]]), _z([[7, 0], [0, 11]])),
                "per group of 2 along axis 1, scales keep x's rank: ranges [-1, 1], [0, 4], [0, 2] (widened to "
                "contain 0), [-3, 1]; z = -rne(-1 / fl32(2/15)) = -rne(-7.4999996) = 7, just short of the tie 7.5",
            ),
        ),  # fmt: skip
        bad=(
            Bad(
                Case((_a([1, 2, 3]),), {**INT8, "axis": 0, "group_size": 2}), ValueError, "group_size 2 does not divide"
            ),
            Bad(Case((_a([1, 2]),), {**INT8, "group_size": 2}), ValueError, "needs an axis"),
            Bad(Case((_a([]),), INT8), ValueError, "needs at least one element"),
        ),
        paper=JACOB,
    ),
    Entry(
        name="quantize",
        family="quantization",
        module="quantization.affine",
        summary="q = clip(round(x / s) + z, qmin, qmax) with IEEE float32 division.",
        strategy=S.affine_cases,
        semantics=(
            "x / s is a correctly rounded float32 division, never a multiplication by 1 / s.",
            "Default rounding is half to even; half_away, floor, ceil and stochastic (with a key) are options.",
            "round(x / s) + z is formed in float64, clipped to [qmin, qmax], converted to int32.",
            "Overflow of x / s saturates to qmin or qmax.",
        ),
        invariants=(Invariant("codes in range", _codes_in_range), Invariant("monotone", _monotone)),
        golden=(
            Golden(Case((_a([0.25, 0.75, -1.0, 9.0]), _s(0.5), _z(0)), INT8), _z([0, 2, -2, 18]), "0.5 -> 0, 1.5 -> 2"),
            Golden(
                Case((_a([0.25, 0.75]), _s(0.5), _z(0)), {**INT8, "rounding": "half_away"}),
                _z([1, 2]),
                "the ties 0.5 and 1.5 away from zero",
            ),
            Golden(Case((_a([100.0, -100.0, 3e38]), _s(0.5), _z(0)), INT8), _z([127, -128, 127]), "saturation"),
            Golden(
                Case((_a([[1.0, 1.0], [1.0, 1.0]]), _a([0.5, 0.25]), _z([0, 10])), {**INT8, "axis": 0}),
                _z([[2, 2], [14, 14]]),
                "per channel along axis 0",
            ),
            Golden(
                Case(
                    (_a([[0.3, 0.3, 0.3, 0.3]]), _a([[0.5, 0.25]]), _z([[0, 1]])), {**INT8, "axis": 1, "group_size": 2}
                ),
                _z([[1, 1, 2, 2]]),
                "per group of 2 along axis 1: 0.3 / 0.5 = 0.6 -> 1; 0.3 / 0.25 = 1.2 -> 1, + z = 2",
            ),
            Golden(
                Case(
                    (_a([0.25, 0.25, 0.25, 0.25, -0.25, 1.0]), _s(0.5), _z(0)),
                    {**INT8, "rounding": "stochastic", "key": (0, 0)},
                ),
                _z([1, 0, 1, 0, -1, 2]),
                "x / s = 0.5 (four times), -0.5, 2 against u = uniform((0, 0), (6,)) = [0.418, 0.600, 0.216, 0.804, "
                "0.965, 0.633]: up where u < 0.5; -0.5 stays at -1; the integer 2 never moves",
            ),
        ),  # fmt: skip
        bad=(
            Bad(Case((_a([1.0]), _s(0.0), _z(0)), INT8), ValueError, "scale must be > 0, got 0.0 at flat index 0"),
            Bad(Case((_a([1.0]), _s(-1.0), _z(0)), INT8), ValueError, "scale must be > 0, got -1.0"),
            Bad(Case((_a([1.0]), _s(np.inf), _z(0)), INT8), ValueError, "scale must be finite, got inf"),
            Bad(Case((_a([1.0]), _s(0.5), _z(200)), INT8), ValueError, "zero_point must be in [-128, 127], got 200"),
            Bad(Case((_a([1.0]), _s(0.5), _z(0)), {"qmin": 3, "qmax": 1}), ValueError, "qmin must be <= qmax"),
            Bad(Case((_a([1.0]), _s(0.5), _z(0)), {"qmin": -(2**20), "qmax": 1}), ValueError, "qmin must be in"),
            Bad(Case((_a([np.nan]), _s(0.5), _z(0)), INT8), ValueError, "x must be finite, got nan at flat index 0"),
            Bad(
                Case((_a([1.0], np.float16), _s(0.5), _z(0)), INT8), TypeError, "x must have dtype float32, got float16"
            ),
            Bad(
                Case((_a([1.0]), _a([0.5]), _z([0])), INT8),
                ValueError,
                "scale has shape (1,) but axis=None needs shape ()",
            ),
            Bad(
                Case((_a([1.0]), _s(0.5), _z(0).astype(np.int64)), INT8), TypeError, "zero_point must have dtype int32"
            ),
            Bad(
                Case((_a([1.0, 2.0]), _a([0.5]), _z([0])), {**INT8, "axis": 0, "group_size": 3}),
                ValueError,
                "group_size 3 does not divide x.shape[0] = 2",
            ),
            Bad(Case((_a([1.0]), _s(0.5), _z(0)), {**INT8, "rounding": "stochastic"}), ValueError, "needs a key"),
            Bad(Case((_a([1.0]), _s(0.5), _z(0)), {**INT8, "axis": 2}), ValueError, "axis 2 is out of range"),
        ),  # fmt: skip
        paper=JACOB,
        peers=(
            (
                "torchao",
                "integer quantization computes `x * (1 / scale)` (its fp8 path divides, as pqref does everywhere).",
            ),
        ),
    ),
    Entry(
        name="dequantize",
        family="quantization",
        module="quantization.affine",
        summary="x = float32(q - z) * s.",
        strategy=S.dequantize_cases,
        semantics=("q - z is exact in int32 and in float32; the only rounding is the float32 product.",),
        golden=(
            Golden(Case((_z([0, 2, -2, 18]), _s(0.5), _z(0))), _a([0, 1, -1, 9]), "(q - 0) * 0.5, exact"),
            Golden(
                Case((_z([[0, 2], [4, -2]]), _a([0.5, 0.25]), _z([0, 2])), {"axis": 0}),
                _a([[0, 1], [0.5, -1]]),
                "per channel along axis 0: (q - 0) * 0.5 and (q - 2) * 0.25",
            ),
            Golden(
                Case((_z([[1, 1, 1, 1]]), _a([[0.5, 0.25]]), _z([[0, -3]])), {"axis": 1, "group_size": 2}),
                _a([[0.5, 0.5, 1, 1]]),
                "per group of 2 along axis 1: (1 - 0) * 0.5 and (1 + 3) * 0.25",
            ),
        ),
        bad=(
            Bad(Case((_a([1.0]), _s(0.5), _z(0))), TypeError, "q must have dtype int32, got float32"),
            Bad(Case((_z([2**20]), _s(0.5), _z(0))), ValueError, "q must be in [-32768, 65535]"),
        ),
        paper=JACOB,
    ),
    Entry(
        name="fake_quantize",
        extra=(("kernels", "torch_backend.kernels.fake_quant:fake_quantize"),),
        family="quantization",
        module="quantization.affine",
        summary="Quantize then dequantize, with a straight-through gradient.",
        strategy=S.affine_cases,
        vjp="fake_quantize_vjp",
        semantics=(
            "dequantize(quantize(x)) with the same parameters.",
            "Gradient to x: passes where qmin <= round(x / s) + z <= qmax (before clipping), else +0.0.",
        ),
        invariants=(Invariant("idempotent under nearest rounding", _idempotent),),
        golden=(
            Golden(Case((_a([0.3, 0.7, 100.0]), _s(0.5), _z(0)), INT8), _a([0.5, 0.5, 63.5]), "0.6 -> 1; 1.4 -> 1"),
            Golden(
                Case((_a([0.25, 0.75, 1.25, -0.25, -0.75, -0.0]), _s(0.5), _z(0)), INT8),
                _a([0, 1, 1, 0, -1, 0]),
                "ties x / s = 0.5, 1.5, 2.5, -0.5, -1.5 to even; codes are integers, so -0.25 and -0.0 give +0.0",
            ),
            Golden(
                Case((_a([0.25, 0.75, 1.25, -0.25, -0.75, -0.0]), _s(0.5), _z(0)), {**INT8, "rounding": "half_away"}),
                _a([0.5, 1, 1.5, -0.5, -1, 0]),
                "the same ties away from zero; -0.0 still gives +0.0",
            ),
            Golden(
                Case((_a([0.3, -0.3, 0.75]), _s(0.5), _z(0)), {**INT8, "rounding": "floor"}),
                _a([0, -0.5, 0.5]),
                "floor: 0.6 -> 0, -0.6 -> -1, 1.5 -> 1",
            ),
            Golden(
                Case(
                    (_a([[0.3, 0.7, 2.0], [0.3, 0.7, 2.0]]), _a([0.5, 0.25]), _z([0, 2])),
                    {"qmin": -4, "qmax": 3, "axis": 0},
                ),
                _a([[0.5, 0.5, 1.5], [0.25, 0.25, 0.25]]),
                "per channel, codes [-4, 3]: row 0 (s = 0.5, z = 0) clips 2.0 at code 3 = 1.5; row 1 (s = 0.25, "
                "z = 2) clips from 0.7 on at (3 - 2) * 0.25",
            ),
            Golden(
                Case(
                    (_a([[0.3, 0.7, 0.3, 0.7]]), _a([[0.5, 0.25]]), _z([[0, 1]])), {**INT8, "axis": 1, "group_size": 2}
                ),
                _a([[0.5, 0.5, 0.25, 0.75]]),
                "per group of 2: s = 0.5, z = 0 for the first pair; s = 0.25, z = 1 for the second (1.2 -> 1, "
                "2.8 -> 3)",
            ),
            Golden(
                Case(
                    (_a([0.25, 0.25, 0.25, 0.25, -0.25, 1.0]), _s(0.5), _z(0)),
                    {**INT8, "rounding": "stochastic", "key": (0, 0)},
                ),
                _a([0.5, 0, 0.5, 0, -0.5, 1]),
                "stochastic, key (0, 0): u = [0.418, 0.600, 0.216, 0.804, 0.965, 0.633] against the fractional parts "
                "0.5: up, down, up, down; -0.5 down to -1; 2 stays",
            ),
        ),
        bad=(
            Bad(
                Case((_a([1.0]), _s(0.5), _z(0)), {**INT8, "rounding": "half_even", "key": (1, 2)}),
                ValueError,
                "key is only used with rounding='stochastic'",
            ),
        ),  # fmt: skip
        paper=JACOB,
        peers=(
            (
                "torch.ao",
                "`torch.fake_quantize_per_tensor_affine` and `torch.fake_quantize_per_channel_affine` multiply by `1 / scale` instead of dividing, so they differ next to rounding midpoints whenever `1 / scale` is inexact (counts on the divergence page); the per-channel op returns `qmin` once `x / s >= 2**63` (torch 2.13).",
            ),
        ),
    ),
    Entry(
        name="fake_quantize_vjp",
        extra=(("kernels", "torch_backend.kernels.fake_quant:fake_quantize_vjp"),),
        family="quantization",
        module="quantization.affine",
        summary="The straight-through gradient of fake_quantize; torch's is computed by autograd.",
        strategy=lambda: S.affine_cases(with_grad=True),
        semantics=(
            "where(qmin <= round(x / s) + z <= qmax, grad, +0.0): inclusive at both ends, before clipping.",
            "No gradient to scale or zero point.",
        ),
        invariants=(Invariant("grad or +0.0", _grad_or_zero),),
        golden=(
            Golden(
                Case((_a([1, 1, 1]), _a([63.5, 63.75, 64.0]), _s(0.5), _z(0)), INT8),
                _a([1, 0, 0]),
                "x/s = 127 passes; 127.5 rounds (to even) to 128 and is blocked; 128 is blocked",
            ),
            Golden(
                Case(
                    (
                        _a([[1, 1, 1], [1, 1, 1]]),
                        _a([[1.75, 1.8, -2.0], [0.2, 0.3, -1.1]]),
                        _a([0.5, 0.25]),
                        _z([0, 2]),
                    ),
                    {"qmin": -4, "qmax": 3, "axis": 0},
                ),
                _a([[0, 0, 1], [1, 1, 1]]),
                "per channel, codes [-4, 3]: row 0 rounds 3.5 (a tie, to even) and 3.6 to 4, blocked, -4 passes; "
                "row 1 (z = 2) gives codes 3, 3, -2: all pass",
            ),
            Golden(
                Case(
                    (_a([[1, 1, 1, 1]]), _a([[1.75, 1.8, 0.25, 0.5]]), _a([[0.5, 0.25]]), _z([[0, 1]])),
                    {"qmin": -4, "qmax": 3, "axis": 1, "group_size": 2},
                ),
                _a([[0, 0, 1, 1]]),
                "per group: the first pair rounds to code 4 (blocked), the second to codes 2 and 3 (pass)",
            ),
            Golden(
                Case(
                    (_a([1, 1, 1]), _a([1.5, 1.75, -2.25]), _s(0.5), _z(0)),
                    {"qmin": -4, "qmax": 3, "rounding": "half_away"},
                ),
                _a([1, 0, 0]),
                "the region follows the rounding: the tie -4.5 goes away to -5, blocked (half to even would give -4 "
                "and pass)",
            ),
            Golden(
                Case((_a([1, 1]), _a([1.9, -2.1]), _s(0.5), _z(0)), {"qmin": -4, "qmax": 3, "rounding": "floor"}),
                _a([1, 0]),
                "floor: 3.8 -> 3 passes, -4.2 -> -5 is blocked",
            ),
            Golden(
                Case(
                    (_a([1, 1, 1, 1]), _a([1.75, 1.75, 1.75, 1.75]), _s(0.5), _z(0)),
                    {"qmin": -4, "qmax": 3, "rounding": "stochastic", "key": (0, 0)},
                ),
                _a([0, 1, 0, 1]),
                "3.5 rounds up (code 4, blocked) where u = uniform((0, 0), (4,)) < 0.5 (0.418, 0.216), down (code 3, "
                "passes) elsewhere: the same draws as the forward pass",
            ),
        ),  # fmt: skip
        bad=(
            Bad(
                Case((_a([1, 1]), _a([1.0]), _s(0.5), _z(0)), INT8),
                ValueError,
                "grad has shape (2,) but x needs shape (1,)",
            ),
        ),
        paper="Bengio et al., 2013. Estimating or Propagating Gradients Through Stochastic Neurons. arXiv:1308.3432",
    ),
]
