"""Registry entries for `reference.quantization.conventions` and its torch twin: symmetric_scale, affine_zero_point."""

from __future__ import annotations

import numpy as np

from spec import strategies as S
from spec.catalog.common import array as _a
from spec.entry import Bad, Case, Entry, Golden, Invariant

F = np.float32


CONVENTIONS = (
    "Conventions of torch.ao (observers), ONNX (DynamicQuantizeLinear), TensorFlow (FakeQuant nudging) and "
    "pqref's qparams_from_range; Jacob et al., 2018, arXiv:1712.05877"
)


def _scale_def(call, case, out):
    (amax,) = case.args
    b, d = case.kwargs["bits"], case.kwargs["divisor"]
    div = (2 ** (b - 1) - 1) if d == "qmax" else (2**b - 1) / 2
    want = (amax.astype(np.float64) / div).astype(F)
    want = np.where(want < F(2.0**-126), F(1), want)
    assert np.array_equal(out.view(np.uint32), want.astype(F).view(np.uint32))


def _zero_point_in_range(call, case, out):
    kw = case.kwargs
    assert out.dtype == np.int32 and out.shape == case.args[0].shape
    assert np.all((out >= kw["qmin"]) & (out <= kw["qmax"]))
    others = [call(Case(case.args, {**kw, "convention": c})) for c in ("pqref", "torch_ao", "onnx", "tflite")]
    assert all(np.all(np.abs(o.astype(np.int64) - out) <= 1) for o in others), "conventions differ by one at most"


_ZP = _a([-0.5, -2.5, -1.0, 3.0])
_ONES = _a([1, 1, 1, 1])
_TIE32 = (_a([-61.551544189453125]), _a([0.1751110851764679]))  # quotient -351.49998715 in float64, -351.5 in float32


ENTRIES = [
    Entry(
        name="symmetric_scale",
        family="quantization",
        module="quantization.conventions",
        summary="Symmetric scale amax / (2**(b-1) - 1) ('qmax') or amax / ((2**b - 1) / 2) ('half_range', torch.ao).",
        strategy=S.symmetric_scale_cases,
        semantics=(
            "divisor='qmax': s = fl32(amax / (2**(b-1) - 1)): +-amax on codes +-127 (int8); pqref, ONNX Runtime, "
            "TensorRT, llm-compressor.",
            "divisor='half_range': s = fl32(amax / ((2**b - 1) / 2)) = amax / 127.5 for int8 (torch.ao): +-amax on "
            "the tie +-127.5.",
            "One correctly rounded division; a scale below 2**-126 (amax 0 included) becomes 1.0.",
        ),
        invariants=(Invariant("one rounding of amax / divisor", _scale_def),),
        golden=(
            Golden(
                Case((_a([127, 0, 255, 1]),), {"bits": 8, "divisor": "qmax"}),
                _a([1, 1, 2.007874, 0.007874016]),
                "127 / 127 = 1; amax 0 -> 1.0",
            ),  # fmt: skip
            Golden(
                Case((_a([127, 0, 255, 1]),), {"bits": 8, "divisor": "half_range"}),
                _a([0.99607843, 1, 2, 0.007843138]),
                "255 / 127.5 = 2: +-amax lands on the tie +-127.5 (torch.ao's convention)",
            ),  # fmt: skip
        ),
        bad=(
            Bad(Case((_a([-1.0]),), {"bits": 8, "divisor": "qmax"}), ValueError, "amax must be >= 0, got -1.0"),
            Bad(Case((_a([1.0]),), {"bits": 8, "divisor": "127.5"}), ValueError, "divisor must be one of"),
            Bad(Case((_a([1.0]),), {"bits": 1, "divisor": "qmax"}), ValueError, "bits must be in [2, 16], got 1"),
        ),
        paper=CONVENTIONS,
        peers=(
            (
                "torch.ao",
                "symmetric observers divide amax by (2**b - 1) / 2 (127.5 for int8), which puts +-amax on the tie +-127.5; pqref, ONNX Runtime, TensorRT and llm-compressor divide by 2**(b-1) - 1.",
            ),
        ),
    ),
    Entry(
        name="affine_zero_point",
        family="quantization",
        module="quantization.conventions",
        summary="The asymmetric zero point by convention: pqref, torch.ao, ONNX or TensorFlow; they differ at ties.",
        strategy=S.zero_point_cases,
        semantics=(
            "l = min(min_val, 0); clip to [qmin, qmax].",
            "pqref (qparams_from_range): z = clip(qmin - rne(l / s)), the quotient in float64 (exact rounding).",
            "torch_ao: z = clip(qmin - rne(fl32(l / s))).",
            "onnx (DynamicQuantizeLinear): z = rne(clip(fl32(qmin - fl32(l / s)))).",
            "tflite (FakeQuant nudging): z = round_half_away(clip(fl32(qmin - fl32(l / s)))).",
        ),
        invariants=(Invariant("in range, conventions within one", _zero_point_in_range),),
        golden=(
            Golden(
                Case((_ZP, _ONES), {"qmin": 0, "qmax": 255, "convention": "pqref"}),
                _a([0, 2, 1, 0], np.int32),
                "0 - rne(-0.5) = 0, 0 - rne(-2.5) = 2",
            ),  # fmt: skip
            Golden(
                Case((_ZP, _ONES), {"qmin": 0, "qmax": 255, "convention": "tflite"}),
                _a([1, 3, 1, 0], np.int32),
                "std::round(0.5) = 1, std::round(2.5) = 3",
            ),  # fmt: skip
            Golden(
                Case((_ZP, _ONES), {"qmin": -127, "qmax": 127, "convention": "onnx"}),
                _a([-126, -124, -126, -127], np.int32),
                "rne(-126.5) = -126, rne(-124.5) = -124",
            ),  # fmt: skip
            Golden(
                Case((_ZP, _ONES), {"qmin": -127, "qmax": 127, "convention": "torch_ao"}),
                _a([-127, -125, -126, -127], np.int32),
                "-127 - rne(-0.5) = -127",
            ),  # fmt: skip
            Golden(
                Case(_TIE32, {"qmin": 0, "qmax": 65535, "convention": "pqref"}),
                _a([351], np.int32),
                "float64 quotient -351.49998715: 351",
            ),  # fmt: skip
            Golden(
                Case(_TIE32, {"qmin": 0, "qmax": 65535, "convention": "torch_ao"}),
                _a([352], np.int32),
                "the float32 quotient rounds onto the tie -351.5, then to even: 352",
            ),  # fmt: skip
        ),
        bad=(
            Bad(
                Case((_ZP, _ONES * 0), {"qmin": 0, "qmax": 255, "convention": "onnx"}),
                ValueError,
                "scale must be > 0, got 0.0 at flat index 0",
            ),  # fmt: skip
            Bad(
                Case((_ZP, _ONES), {"qmin": 0, "qmax": 255, "convention": "tf"}),
                ValueError,
                "convention must be one of 'pqref', 'torch_ao', 'onnx', 'tflite'",
            ),  # fmt: skip
            Bad(Case((_ZP, _ONES), {"qmin": 3, "qmax": 3, "convention": "onnx"}), ValueError, "at least 2 codes"),
        ),
        paper=CONVENTIONS,
        peers=(
            (
                "torch.ao",
                "rounds the float32 quotient `fl32(l / s)` (pqref: the float64 quotient): the two differ where `l / s` is within a rounding of a tie.",
            ),
            (
                "ONNX DynamicQuantizeLinear",
                "clips `qmin - l / s` in float32 and then rounds half to even: with qmin = -127 and l / s = -0.5 it gives -126 where pqref gives -127.",
            ),
            ("TensorFlow FakeQuant", "nudges the zero point with `std::round`, ties away from zero."),
        ),
    ),
]
