"""Registry entries for `reference.codecs.nvfp4` and its torch twin: nvfp4_global_scale, nvfp4_quantize,
nvfp4_dequantize.
"""

from __future__ import annotations

import numpy as np

from spec import strategies as S
from spec.catalog.common import array as _a
from spec.catalog.common import u8 as _u8
from spec.entry import Bad, Case, Entry, Golden, Invariant

F = np.float32


NVFP4 = (
    "NVIDIA, 2025. Introducing NVFP4 for Efficient and Accurate Low-Precision Inference (NVIDIA technical blog); "
    "the NVFP4 recipes of TensorRT Model Optimizer (global scale amax / 2688, 'decode') and compressed-tensors "
    "(global scale 2688 / amax, 'encode')"
)
NVFP4_SEMANTICS = (
    "Blocks of 16 consecutive values along the last axis; E2M1 element codes (0..15, unpacked), one E4M3 block scale "
    "code, one float32 per-tensor global scale g. amax_b is the block's largest magnitude.",
    "direction='decode' (ModelOpt weight_scale_2): g = fl(amax / 2688); t_b = fl(amax_b / fl(6 g)); "
    "S_b = fl(dec(c_b) * g).",
    "direction='encode' (compressed-tensors weight_global_scale): g = fl(2688 / amax); t_b = fl(g * fl(amax_b / 6)); "
    "S_b = fl(dec(c_b) / g). No default: a checkpoint does not say which.",
    "c_b = E4M3 encoding of t_b, round to nearest even, saturating at 448; an all-zero block gets 0x38 (1.0).",
    "q_i = E2M1 encoding of fl(x_i / S_b), ties to even, saturating at 6; a block with S_b = 0 stores signed zeros.",
    "Decoding: y_i = fl(dec(q_i) * S_b). Global scale of an all-zero tensor: 1.0; one that rounds to 0 or Inf: "
    "ValueError.",
)
_G1 = np.asarray(F(1.0))
_G2 = np.asarray(F(2.0))
_NV_X = _a([0.25, 0.75, 2.5, 5.0, 6.0, -1.0, -0.0, 0.0, 1.5, 3.0, 4.0, 0.5, -6.0, 5.5, 1.0, 0.1])
_NV_Q = np.array([0, 2, 4, 6, 7, 10, 8, 0, 3, 5, 6, 1, 15, 7, 2, 0], dtype=np.uint8)
DEC, ENC = {"direction": "decode"}, {"direction": "encode"}


def _nvfp4_layout(call, case, out):
    x = case.args[0]
    scales, codes = out
    assert scales.dtype == np.uint8 and codes.dtype == np.uint8 and codes.shape == x.shape
    assert scales.shape == x.shape[:-1] + (x.shape[-1] // 16,) and np.all(codes <= 15)
    assert not np.any(scales & 0x80), "block scales are never negative"
    assert np.array_equal((codes >> 3).astype(bool), np.signbit(x)), "the sign bit of each element is that of x"


def _nvfp4_error(call, case, out):
    """Each decoded element is the float32 rounding of `dec(q_i) * S_b` (exact in float64), and that product is one
    of the two E2M1 neighbours of x / S_b (or the saturated end). The rounding may overflow: a block whose amax
    is near float32's largest value can decode to +-inf when its E4M3 scale rounds up."""
    from reference.codecs.nvfp4 import nvfp4_dequantize
    from reference.quantization.floats import float_decode

    x, g = case.args
    scales, codes = out
    y = nvfp4_dequantize(scales, codes, g, **case.kwargs)
    d = float_decode(scales, "float8_e4m3fn")
    with np.errstate(over="ignore", under="ignore"):
        s32 = d * g if case.kwargs["direction"] == "decode" else d / g
    s = np.repeat(s32.astype(np.float64), 16, axis=-1)
    ok = (s > 0) & np.isfinite(s)
    exact = float_decode(codes, "float4_e2m1fn").astype(np.float64) * s
    with np.errstate(over="ignore"):
        assert np.array_equal(y[ok], exact[ok].astype(np.float32)), "the decoded value is not the rounded product"
    err = np.abs(exact - x.astype(np.float64))
    bound = np.maximum(np.abs(x.astype(np.float64)) - 6 * s, 0) + 2 * s  # saturation plus the widest spacing
    assert np.all(err[ok] <= bound[ok] * (1 + 2**-20)), "an element is farther than one E2M1 step"


def _a_scale(scales, g, direction):
    from reference.quantization.floats import float_decode

    d = float_decode(scales, "float8_e4m3fn").astype(np.float64)
    return d * float(g) if direction == "decode" else d / float(g)


def _nvfp4_global_def(call, case, out):
    (x,) = case.args
    assert out.dtype == np.float32 and out.shape == ()
    amax = float(np.max(np.abs(x)))
    if amax == 0:
        assert out == 1
    elif case.kwargs["direction"] == "decode":
        assert out == F(np.float64(amax) / 2688)
    else:
        assert out == F(2688 / np.float64(amax))


def _nvfp4_decode_def(call, case, out):
    from reference.quantization.floats import float_decode

    scales, codes, g = case.args
    with np.errstate(over="ignore", invalid="ignore"):
        s = np.repeat(_a_scale(scales, g, case.kwargs["direction"]).astype(F), 16, axis=-1)
        want = float_decode(codes, "float4_e2m1fn") * s
    assert np.array_equal(out.view(np.uint32), want.astype(F).view(np.uint32)), "y = fl(dec(q) * S_b)"


ENTRIES = [
    Entry(
        name="nvfp4_global_scale",
        family="quantization",
        module="codecs.nvfp4",
        summary="NVFP4's float32 per-tensor scale, amax / 2688 ('decode', ModelOpt) or 2688 / amax ('encode').",
        strategy=S.nvfp4_global_cases,
        semantics=NVFP4_SEMANTICS,
        invariants=(Invariant("one float32 division of amax", _nvfp4_global_def),),
        golden=(
            Golden(Case((_a([6.0, -3.0]),), DEC), np.asarray(F(6 / 2688)), "6 / 2688"),
            Golden(Case((_a([6.0, -3.0]),), ENC), np.asarray(F(448.0)), "2688 / 6"),
            Golden(Case((_a([0.0, -0.0]),), ENC), np.asarray(F(1.0)), "an all-zero tensor: 1"),
        ),
        bad=(
            Bad(Case((_a([1e-40]),), ENC), ValueError, "its encode global scale inf is not a finite float32 > 0"),
            Bad(Case((_a([1.0]),), {"direction": "up"}), ValueError, "direction must be one of 'decode', 'encode'"),
            Bad(Case((_a([]),), DEC), ValueError, "an NVFP4 global scale needs at least one element"),
        ),
        paper=NVFP4,
        peers=(
            (
                "NVFP4 toolchains",
                "store the per-tensor scale in opposite directions (amax / 2688 as ModelOpt, or its inverse); `direction` names both.",
            ),
        ),
    ),
    Entry(
        name="nvfp4_quantize",
        family="quantization",
        module="codecs.nvfp4",
        summary="NVFP4 quantization: E4M3 scale codes per 16 values, E2M1 element codes, either global direction.",
        strategy=S.nvfp4_quantize_cases,
        semantics=NVFP4_SEMANTICS,
        invariants=(Invariant("codes, shapes and signs", _nvfp4_layout), Invariant("within one step", _nvfp4_error)),
        golden=(
            Golden(
                Case((_NV_X, _G1), DEC),
                (_u8([0x38]), _NV_Q),
                "amax 6, g = 1: t = 1, S = 1; 0.25, 0.75, 2.5, 5 tie to even; 5.5 saturates at 6",
            ),  # fmt: skip
            Golden(Case((_NV_X, _G2), DEC), (_u8([0x30]), _NV_Q), "g = 2 as decode: t = 6 / 12 = 0.5, S = 1"),
            Golden(Case((_NV_X, _G2), ENC), (_u8([0x40]), _NV_Q), "the same g = 2 as encode: t = 2, S = 1"),
            Golden(Case((np.zeros(16, F), _G1), ENC), (_u8([0x38]), np.zeros(16, np.uint8)), "zero block: 1.0"),
        ),
        bad=(
            Bad(Case((_a([1.0] * 8), _G1), DEC), ValueError, "NVFP4 needs a last axis that is a multiple of 16"),
            Bad(Case((_NV_X, np.asarray(F(0.0))), DEC), ValueError, "global_scale must be > 0, got 0.0"),
            Bad(
                Case((np.zeros(16, F), np.asarray(F(1e-45))), ENC),
                ValueError,
                "1 / global_scale overflows float32, so the scale of a zero block (1 / global_scale) would decode",
            ),
            Bad(Case((_NV_X, _a([1.0])), DEC), ValueError, "global_scale has shape (1,) but a per-tensor scale"),
            Bad(Case((_NV_X, _G1), {"direction": "both"}), ValueError, "direction must be one of"),
        ),
        paper=NVFP4,
    ),
    Entry(
        name="nvfp4_dequantize",
        family="quantization",
        module="codecs.nvfp4",
        summary="NVFP4 back to float32: dec(q) * S_b, S_b from the E4M3 code and the global scale in either direction.",
        strategy=S.nvfp4_dequantize_cases,
        semantics=NVFP4_SEMANTICS,
        invariants=(Invariant("y = fl(dec(q) * S_b)", _nvfp4_decode_def),),
        golden=(
            Golden(
                Case((_u8([0x40]), _NV_Q, _G2), ENC),
                _a([0, 1, 2, 4, 6, -1, -0.0, 0, 1.5, 3, 4, 0.5, -6, 6, 1, 0]),
                "S = 2 / 2 = 1",
            ),  # fmt: skip
            Golden(
                Case((_u8([0x40]), _NV_Q, _G2), DEC),
                _a([0, 4, 8, 16, 24, -4, -0.0, 0, 6, 12, 16, 2, -24, 24, 4, 0]),
                "the same bits read as decode: S = 2 * 2 = 4, every value four times too large",
            ),  # fmt: skip
        ),
        bad=(
            Bad(
                Case((_u8([0x40, 0x40]), _NV_Q, _G2), ENC),
                ValueError,
                "scales has shape (2,) but codes of shape (16,) in blocks of 16 needs shape (1,)",
            ),  # fmt: skip
            Bad(Case((_u8([0x40]), _NV_Q + 1, _G2), ENC), ValueError, "codes must be in [0, 15], got 16"),
        ),
        paper=NVFP4,
    ),
]
