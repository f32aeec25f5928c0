"""Registry entries for the checkpoint codecs: GPTQ (v1 and v2 zero points), ..."""

from __future__ import annotations

import numpy as np

from spec import strategies as S
from spec.entry import Bad, Case, Entry, Golden, Invariant

F = np.float32
H = np.float16
GPTQ = (
    "Frantar et al., 2023. GPTQ: Accurate Post-Training Quantization for Generative Pre-trained Transformers. ICLR. "
    "arXiv:2210.17323 (layout: AutoGPTQ QuantLinear.pack; v2: GPTQModel gptq_v2)"
)

GPTQ_SEMANTICS = (
    "qweight int32 (in_features // p, out_features): codes packed along the input axis, p = 32 / bits, code k of a "
    "run in bits [k*bits, (k+1)*bits), the first code lowest; the word is read as two's complement.",
    "qzeros int32 (n_groups, out_features // p): stored zero points packed along the output axis, same order.",
    "scales float16 (n_groups, out_features) in the checkpoint, (out_features, n_groups) on pqref's side; g_idx "
    "int32 (in_features,), the group of each input channel.",
    "zero_format='v1' (GPTQ checkpoints on disk): qzeros hold z - 1, so z in [1, 2**bits]; 'v2' (GPTQModel's "
    "gptq_v2): qzeros hold z, z in [0, 2**bits - 1]. No default: the tensors cannot tell them apart.",
    "w[j, i] = scales[g_idx[i], j] * (q[j, i] - z[g_idx[i], j]), exact in float32 (at most 20 significant bits).",
    "bits in {2, 4, 8}; out_features and in_features multiples of p. pack and unpack are inverse bijections.",
)


def _a(values, dtype=np.float32):
    return np.array(values, dtype=dtype)


def _u8(values):
    return np.array(values, dtype=np.uint8)


def _gptq_example(zero):
    """8 x 8, 4 bits, one group: codes q[j, i] = i, scale 0.5, zero point `zero`."""
    codes = np.tile(np.arange(8, dtype=np.uint8), (8, 1))
    return codes, np.full((8, 1), 0.5, H), np.full((8, 1), zero, np.int32), np.zeros(8, np.int32)


_CODES, _SCALES, _ZEROS, _GIDX = _gptq_example(8)
_QW = np.full((1, 8), 0x76543210, np.int32)
_QZ_V1 = _a([[0x77777777]], np.int32)
_QZ_V2 = np.array([[0x88888888]], dtype=np.uint32).view(np.int32)
V1 = {"bits": 4, "zero_format": "v1"}
V2 = {"bits": 4, "zero_format": "v2"}


# ---- invariants ---------------------------------------------------------------------------------------------


def _gptq_pack_roundtrip(call, case, out):
    from reference.codecs.gptq import gptq_unpack

    codes, scales, zeros, g_idx = case.args
    qweight, qzeros, s, g = out
    assert qweight.dtype == np.int32 and qzeros.dtype == np.int32 and s.dtype == np.float16
    back = gptq_unpack(qweight, qzeros, s, g, **case.kwargs)
    for want, got in zip((codes, scales, zeros, g_idx), back, strict=True):
        assert np.array_equal(want.view(np.uint8), np.ascontiguousarray(got).view(np.uint8)), "unpack(pack) differs"


def _gptq_unpack_roundtrip(call, case, out):
    from reference.codecs.gptq import gptq_pack

    packed = gptq_pack(*out, **case.kwargs)
    for want, got in zip(case.args, packed, strict=True):
        assert np.array_equal(want.view(np.uint8), np.ascontiguousarray(got).view(np.uint8)), "pack(unpack) differs"


def _gptq_decode_exact(call, case, out):
    """w = s * (q - z) with Python integers and float16 values: exact."""
    from reference.codecs.gptq import gptq_unpack

    codes, scales, zeros, g_idx = gptq_unpack(*case.args, **case.kwargs)
    gi = g_idx.astype(np.int64)
    exact = scales.astype(np.float64)[:, gi] * (codes.astype(np.float64) - zeros[:, gi])
    assert out.dtype == np.float32 and np.array_equal(out.astype(np.float64), exact), "decode is not the exact product"


def _v1_v2_one_step(call, case, out):
    """Reading the same tensors as the other zero format moves every weight by one scale step."""
    kw = dict(case.kwargs)
    other = {"v1": "v2", "v2": "v1"}[kw["zero_format"]]
    twin = call(Case(case.args, {**kw, "zero_format": other}))
    _, _, scales, g_idx = case.args
    step = scales.astype(np.float64)[g_idx.astype(np.int64)].T
    sign = 1 if other == "v2" else -1  # v2 reads z - 1 where v1 reads z: the weight grows by one step
    assert np.array_equal(twin.astype(np.float64) - out.astype(np.float64), sign * step), "v1 and v2 differ by s"


ENTRIES = [
    Entry(
        name="gptq_pack",
        family="quantization",
        module="codecs.gptq",
        summary="GPTQ checkpoint packing: codes, scales, zero points (v1 or v2) and g_idx to qweight/qzeros/scales.",
        strategy=S.gptq_pack_cases,
        semantics=GPTQ_SEMANTICS,
        invariants=(Invariant("unpack(pack(x)) == x", _gptq_pack_roundtrip),),
        golden=(
            Golden(
                Case((_CODES, _SCALES, _ZEROS, _GIDX), V1),
                (_QW, _QZ_V1, _SCALES.T.copy(), _GIDX),
                "codes 0..7 in one word; v1 stores 8 - 1 = 7 in every nibble",
            ),  # fmt: skip
            Golden(
                Case((_CODES, _SCALES, _ZEROS, _GIDX), V2),
                (_QW, _QZ_V2, _SCALES.T.copy(), _GIDX),
                "v2 stores 8 itself: 0x88888888 is negative as int32",
            ),  # fmt: skip
            Golden(
                Case(
                    (
                        np.full((4, 4), 255, np.uint8),
                        _a([[1.0]] * 4, H),
                        _a([[256]] * 4, np.int32),
                        _a([0, 0, 0, 0], np.int32),
                    ),
                    {"bits": 8, "zero_format": "v1"},
                ),
                (_a([[-1, -1, -1, -1]], np.int32), _a([[-1]], np.int32), _a([[1.0] * 4], H), _a([0] * 4, np.int32)),
                "8 bits, v1 zero point 2**8 (stored 255)",
            ),  # fmt: skip
        ),
        bad=(
            Bad(
                Case((_CODES, _SCALES, np.zeros((8, 1), np.int32), _GIDX), V1),
                ValueError,
                "zeros must be in [1, 16], got 0 at flat index 0",
            ),  # fmt: skip
            Bad(
                Case((_CODES, _SCALES, _ZEROS, _GIDX), {"bits": 3, "zero_format": "v1"}),
                ValueError,
                "bits must be one of 2, 4, 8 (3-bit GPTQ is not covered), got 3",
            ),  # fmt: skip
            Bad(
                Case((_CODES, _SCALES, _ZEROS, _GIDX), {"bits": 4, "zero_format": "v3"}),
                ValueError,
                "zero_format must be one of 'v1', 'v2'; got 'v3'",
            ),  # fmt: skip
            Bad(
                Case((_CODES[:, :4], _SCALES, _ZEROS, _GIDX[:4]), V1),
                ValueError,
                "codes.shape[1] (in_features) = 4 must be a multiple of 8",
            ),  # fmt: skip
            Bad(Case((_CODES + 9, _SCALES, _ZEROS, _GIDX), V1), ValueError, "codes must be in [0, 15], got 16"),
            Bad(Case((_CODES, _SCALES, _ZEROS, _GIDX + 1), V1), ValueError, "g_idx must be in [0, 0], got 1"),
            Bad(
                Case((_CODES, _SCALES.astype(F), _ZEROS, _GIDX), V1),
                TypeError,
                "scales must have dtype float16, got float32",
            ),  # fmt: skip
            Bad(
                Case((_CODES, np.full((8, 1), np.inf, H), _ZEROS, _GIDX), V1),
                ValueError,
                "scales must be finite, got inf at flat index 0",
            ),  # fmt: skip
        ),
        paper=GPTQ,
    ),
    Entry(
        name="gptq_unpack",
        family="quantization",
        module="codecs.gptq",
        summary="GPTQ checkpoint unpacking: qweight/qzeros/scales/g_idx to codes, scales, zero points, g_idx.",
        strategy=S.gptq_packed_cases,
        semantics=GPTQ_SEMANTICS,
        invariants=(Invariant("pack(unpack(t)) == t", _gptq_unpack_roundtrip),),
        golden=(
            Golden(
                Case((_QW, _QZ_V1, _SCALES.T.copy(), _GIDX), V1),
                (_CODES, _SCALES, _ZEROS, _GIDX),
                "0x77777777 read as v1: zero points 8",
            ),  # fmt: skip
            Golden(
                Case((_QW, _QZ_V1, _SCALES.T.copy(), _GIDX), V2),
                (_CODES, _SCALES, _ZEROS - 1, _GIDX),
                "the same tensors read as v2: zero points 7",
            ),  # fmt: skip
        ),
        bad=(
            Bad(
                Case((_QW, _QZ_V1, _SCALES.T.copy(), _GIDX[:4]), V1),
                ValueError,
                "g_idx has shape (4,) but in_features = 8 needs shape (8,)",
            ),  # fmt: skip
            Bad(
                Case((_QW, _a([[0, 0]], np.int32), _SCALES.T.copy(), _GIDX), V1),
                ValueError,
                "qzeros has shape (1, 2) but scales of shape (1, 8) needs shape (1, 1)",
            ),  # fmt: skip
            Bad(
                Case((_QW.astype(np.uint32), _QZ_V1, _SCALES.T.copy(), _GIDX), V1),
                TypeError,
                "qweight must have dtype int32, got uint32",
            ),  # fmt: skip
        ),
        paper=GPTQ,
    ),
    Entry(
        name="gptq_decode",
        family="quantization",
        module="codecs.gptq",
        summary="The exact float32 weight of a GPTQ checkpoint: scales[g_idx] * (q - z), NumPy only.",
        strategy=S.gptq_packed_cases,
        semantics=GPTQ_SEMANTICS,
        invariants=(
            Invariant("exact s * (q - z)", _gptq_decode_exact),
            Invariant("v1 and v2 differ by one step", _v1_v2_one_step),
        ),
        golden=(
            Golden(
                Case((_QW, _QZ_V1, _SCALES.T.copy(), _GIDX), V1),
                np.tile((np.arange(8, dtype=F) - 8) * F(0.5), (8, 1)),
                "0.5 * (i - 8)",
            ),  # fmt: skip
            Golden(
                Case((_QW, _QZ_V1, _SCALES.T.copy(), _GIDX), V2),
                np.tile((np.arange(8, dtype=F) - 7) * F(0.5), (8, 1)),
                "read as v2: 0.5 * (i - 7)",
            ),  # fmt: skip
        ),
        bad=(
            Bad(
                Case((_QW[:, :4], _QZ_V1, _SCALES.T.copy(), _GIDX), V1),
                ValueError,
                "qweight.shape[1] (out_features) = 4 must be a multiple of 8",
            ),  # fmt: skip
        ),
        paper=GPTQ,
    ),
]


# ---- NVFP4 ----------------------------------------------------------------------------------------------------

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
    """Each decoded element is one of the two E2M1 neighbours of x / S_b (or the saturated end)."""
    from reference.codecs.nvfp4 import nvfp4_dequantize

    x, g = case.args
    scales, codes = out
    y = nvfp4_dequantize(scales, codes, g, **case.kwargs).astype(np.float64)
    d = _a_scale(scales, g, case.kwargs["direction"])
    s = np.repeat(d, 16, axis=-1)
    ok = (s > 0) & np.isfinite(s)
    err = np.abs(y - x.astype(np.float64))
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


ENTRIES += [
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


# ---- nibble order ---------------------------------------------------------------------------------------------

NIBBLES = (
    "Nibble orders: low_first is ONNX INT4/UINT4/FLOAT4E2M1, OCP MX and NVFP4 (ModelOpt, compressed-tensors); "
    "high_first is bitsandbytes' and torchao's NF4/FP4"
)
NIBBLE_SEMANTICS = (
    "Pairs of 4-bit codes along the last axis, two to a byte: low_first b = c[2j] + 16 c[2j+1]; high_first "
    "b = 16 c[2j] + c[2j+1]. No default order.",
    "pack rejects codes above 15 and an odd last axis; unpack accepts every byte. The two are inverse bijections.",
)


def _nibble_roundtrip(call, case, out):
    from reference.codecs.nibbles import unpack_nibbles

    assert np.array_equal(unpack_nibbles(out, **case.kwargs), case.args[0]), "unpack(pack(c)) == c"


def _nibble_roundtrip_back(call, case, out):
    from reference.codecs.nibbles import pack_nibbles

    assert np.all(out <= 15) and np.array_equal(pack_nibbles(out, **case.kwargs), case.args[0])


LOW, HIGH = {"order": "low_first"}, {"order": "high_first"}

ENTRIES += [
    Entry(
        name="pack_nibbles",
        family="quantization",
        module="codecs.nibbles",
        summary="Two 4-bit codes per byte along the last axis, first code in the low or in the high nibble.",
        strategy=S.nibble_pack_cases,
        semantics=NIBBLE_SEMANTICS,
        invariants=(Invariant("unpack(pack(c)) == c", _nibble_roundtrip),),
        golden=(
            Golden(Case((_u8([1, 2, 3, 4]),), LOW), _u8([0x21, 0x43]), "ONNX, MX, NVFP4"),
            Golden(Case((_u8([1, 2, 3, 4]),), HIGH), _u8([0x12, 0x34]), "bitsandbytes, torchao NF4"),
        ),
        bad=(
            Bad(Case((_u8([1, 2, 3]),), LOW), ValueError, "nibbles pack in pairs along an even last axis"),
            Bad(Case((_u8([16, 0]),), LOW), ValueError, "codes must be in [0, 15], got 16"),
            Bad(Case((_u8([1, 2]),), {"order": "big"}), ValueError, "order must be one of 'low_first', 'high_first'"),
        ),
        paper=NIBBLES,
    ),
    Entry(
        name="unpack_nibbles",
        family="quantization",
        module="codecs.nibbles",
        summary="Bytes back to two 4-bit codes each, in the low-first or high-first order.",
        strategy=S.nibble_unpack_cases,
        semantics=NIBBLE_SEMANTICS,
        invariants=(Invariant("pack(unpack(b)) == b", _nibble_roundtrip_back),),
        golden=(
            Golden(Case((_u8([0x21, 0x43]),), LOW), _u8([1, 2, 3, 4]), "low nibble first"),
            Golden(Case((_u8([0x21, 0x43]),), HIGH), _u8([2, 1, 4, 3]), "read in the other order: pairs swap"),
        ),
        bad=(Bad(Case((np.array(3, np.uint8),), LOW), ValueError, "packed must have at least one dimension"),),
        paper=NIBBLES,
    ),
]


# ---- quantization conventions -----------------------------------------------------------------------------------

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

ENTRIES += [
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
                "255 / 127.5 = 2",
            ),  # fmt: skip
        ),
        bad=(
            Bad(Case((_a([-1.0]),), {"bits": 8, "divisor": "qmax"}), ValueError, "amax must be >= 0, got -1.0"),
            Bad(Case((_a([1.0]),), {"bits": 8, "divisor": "127.5"}), ValueError, "divisor must be one of"),
            Bad(Case((_a([1.0]),), {"bits": 1, "divisor": "qmax"}), ValueError, "bits must be in [2, 16], got 1"),
        ),
        paper=CONVENTIONS,
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
    ),
]


# ---- GGUF -----------------------------------------------------------------------------------------------------

GGML = (
    "Gerganov et al., llama.cpp / ggml: ggml-quants.c (quantize_row_q8_0_ref, quantize_row_q4_0_ref, "
    "quantize_row_q4_K_ref, make_qkx2_quants, dequantize_row_*), the GGUF file format"
)
GGUF_SEMANTICS = (
    "Blocks along the last axis; float16 fields little-endian, rounded to nearest even. Q8_0: 32 values, d (f16) "
    "+ 32 int8; Q4_0: 32 values, d + 16 bytes (q[j] | q[j+16] << 4); Q4_K: 256 values, d, dmin, 12 bytes of "
    "6-bit scales and mins, 128 bytes of 4-bit codes (q[64i + l] | q[64i + 32 + l] << 4).",
    "Q8_0: d = fl(amax / 127), q = roundf(x * fl(1/d)) (ties away; 1/d = 0 when d = 0).",
    "Q4_0: M = the first element of largest magnitude (+0.0 for an all-zero block, so d = -0.0 there), "
    "d = fl(M / -8), q = min(15, trunc(fl(fl(x * fl(1/d)) + 8.5))).",
    "Q4_K: llama.cpp's quantize_row_q4_K_ref operation for operation in float32, sums in index order, unfused "
    "(an FMA-contracting build of ggml differs on some blocks); nearest_int is ties-to-even via 1.5 * 2**23 "
    "(NaN gives 0); sqrtf correctly rounded.",
    "Decoding: d * q, d * (q - 8), fl((d s_j) q - dmin m_j): products exact in float32, so FMA-safe.",
)
_Q8X = np.zeros(32, F)
_Q8X[:3] = [1.0, -2.0, 0.5]
_D8 = 0.0157470703125  # float16 0x2408, the nearest to 2 / 127
_Q8B = np.concatenate([_u8([0x08, 0x24, 64, 129, 32]), np.zeros(29, np.uint8)])
_Q4X = np.zeros(32, F)
_Q4X[[0, 1, 2, 3, 16]] = [8.0, -4.0, 0.0, 1.0, 3.0]
_Q4B = _u8([0x00, 0xBC, 0x50, 0x8C, 0x88, 0x87] + [0x88] * 12)
_Q4KB = np.concatenate([_u8([86, 20, 0, 0] + [255] * 4 + [0] * 4 + [15] * 4), np.full(128, 255, np.uint8)])


def _gguf_decode_error(call, case, out):
    """Decoding the blocks gives values within one code step (plus rounding) of x, block by block."""
    from reference.codecs.gguf import QTYPES, gguf_dequantize

    x, qtype = case.args
    block, nbytes = QTYPES[qtype]
    assert out.dtype == np.uint8 and out.shape == x.shape[:-1] + (x.shape[-1] // block * nbytes,)
    if qtype == "Q4_K" or x.size == 0:
        return  # the search's error is bounded by the min-max start, not by a fixed step
    y = gguf_dequantize(out, qtype).astype(np.float64).reshape(-1, block)
    xr = x.astype(np.float64).reshape(-1, block)
    amax = np.abs(xr).max(axis=1, keepdims=True)
    step = amax / (127 if qtype == "Q8_0" else 8)
    normal = (step >= 2.0**-14) & (step <= 65504)  # d is a normal float16: its rounding is relative
    assert np.all(~normal | (np.abs(y - xr) <= step * 0.5001 + step * 2.0**-10 * 128)), "beyond half a step"


def _gguf_decode_def(call, case, out):
    from reference.codecs.gguf import QTYPES

    data, qtype = case.args
    block, nbytes = QTYPES[qtype]
    assert out.dtype == np.float32 and out.shape == data.shape[:-1] + (data.shape[-1] // nbytes * block,)
    if qtype == "Q8_0" and data.size:
        b = data.reshape(-1, nbytes)
        d = b[:, :2].copy().view("<f2").astype(np.float64)
        want = (d * b[:, 2:].view(np.int8)).astype(F)
        with np.errstate(invalid="ignore"):
            assert np.array_equal(out.reshape(-1, block).view(np.uint32), want.view(np.uint32)) or np.array_equal(
                np.isnan(out.reshape(-1, block)), np.isnan(want)
            )


ENTRIES += [
    Entry(
        name="gguf_quantize",
        family="quantization",
        module="codecs.gguf",
        summary="GGUF Q8_0, Q4_0 and Q4_K blocks with llama.cpp's reference quantizers, bit for bit.",
        strategy=S.gguf_quantize_cases,
        semantics=GGUF_SEMANTICS,
        invariants=(Invariant("layout, within half a step", _gguf_decode_error),),
        golden=(
            Golden(Case((_Q8X, "Q8_0")), _Q8B, "d = 2/127 -> f16 0x2408; 1 * 63.5 ties away to 64"),
            Golden(Case((_Q4X, "Q4_0")), _Q4B, "M = 8, d = -1 (0xBC00): 8 -> 0, -4 -> 12, 0 -> 8, 1 -> 7, 3 -> 5"),
            Golden(
                Case((np.ones(256, F), "Q4_K")),
                _Q4KB,
                "all ones: scales 63, mins 0, codes 15; decodes to 1.0003567 (d = f16(fl(1/15) / 63))",
            ),  # fmt: skip
            Golden(
                Case((np.array([[-0.0] + [0.0] * 31], F), "Q4_0")),
                _u8([[0x00, 0x80] + [0x88] * 16]),
                "all zeros: d = +0.0 / -8 = -0.0 (C keeps +0.0 as the maximum; gguf-py's argmax takes -0.0)",
            ),  # fmt: skip
        ),
        bad=(
            Bad(Case((_Q8X, "Q4_1")), ValueError, "qtype must be one of 'Q8_0', 'Q4_0', 'Q4_K'; got 'Q4_1'"),
            Bad(Case((_Q8X[:16], "Q8_0")), ValueError, "its last axis must be a multiple of 32 (elements per block)"),
            Bad(Case((_Q8X, "Q4_K")), ValueError, "its last axis must be a multiple of 256"),
            Bad(Case((_Q8X.astype(np.float16), "Q8_0")), TypeError, "x must have dtype float32, got float16"),
        ),
        paper=GGML,
    ),
    Entry(
        name="gguf_dequantize",
        family="quantization",
        module="codecs.gguf",
        summary="GGUF Q8_0, Q4_0 and Q4_K blocks back to float32, as llama.cpp's dequantize_row_*.",
        strategy=S.gguf_dequantize_cases,
        semantics=GGUF_SEMANTICS,
        invariants=(Invariant("d * q for Q8_0", _gguf_decode_def),),
        golden=(
            Golden(
                Case((_Q8B, "Q8_0")),
                _a([64 * _D8, -127 * _D8, 32 * _D8] + [0.0] * 29),
                "d = 0.0157470703125: 64 d, -127 d, 32 d",
            ),  # fmt: skip
            Golden(
                Case((_Q4B, "Q4_0")),
                _a([8, -4, -0.0, 1] + [-0.0] * 12 + [3] + [-0.0] * 15),
                "d = -1: (q - 8) * -1; code 8 gives -0.0",
            ),  # fmt: skip
            Golden(Case((_Q4KB, "Q4_K")), np.full(256, 1.0003567, F), "63 d * 15 - 0"),
        ),
        bad=(Bad(Case((_Q8B[:30], "Q8_0")), ValueError, "its last axis must be a multiple of 34 (bytes per block)"),),
        paper=GGML,
    ),
]


# ---- AWQ ------------------------------------------------------------------------------------------------------

AWQ = (
    "Lin et al., 2024. AWQ: Activation-aware Weight Quantization for LLM Compression and Acceleration. MLSys. "
    "arXiv:2306.00978 (layout: AutoAWQ WQLinear_GEMM)"
)
AWQ_SEMANTICS = (
    "qweight int32 (in_features, out_features // 8), qzeros int32 (n_groups, out_features // 8), scales float16 "
    "(n_groups, out_features); nibble k of word c holds output channel 8c + (0, 2, 4, 6, 1, 3, 5, 7)[k].",
    "Groups are in_features // n_groups consecutive input channels; zero points stored as they are (0..15).",
    "w[j, i] = scales[g(i), j] * (q[j, i] - z[g(i), j]), exact in float32. pack and unpack are inverse bijections.",
)
_AC = np.tile(np.arange(8, dtype=np.uint8)[:, None], (1, 2))  # output channel j has code j
_AS = np.full((8, 1), 0.5, H)
_AZ = np.full((8, 1), 8, np.int32)
_AQW = np.full((2, 1), 0x75316420, np.int32)
_AQZ = np.full((1, 1), 0x88888888, np.uint32).view(np.int32)


def _awq_roundtrip(call, case, out):
    from reference.codecs.awq import awq_unpack

    back = awq_unpack(*out)
    for want, got in zip(case.args, back, strict=True):
        assert np.array_equal(want.view(np.uint8), np.ascontiguousarray(got).view(np.uint8)), "unpack(pack) differs"


def _awq_roundtrip_back(call, case, out):
    from reference.codecs.awq import awq_pack

    for want, got in zip(case.args, awq_pack(*out), strict=True):
        assert np.array_equal(want.view(np.uint8), np.ascontiguousarray(got).view(np.uint8)), "pack(unpack) differs"


def _awq_decode_exact(call, case, out):
    from reference.codecs.awq import awq_unpack

    codes, scales, zeros = awq_unpack(*case.args)
    g = np.arange(codes.shape[1]) // (codes.shape[1] // scales.shape[1])
    exact = scales.astype(np.float64)[:, g] * (codes.astype(np.float64) - zeros[:, g])
    assert out.dtype == np.float32 and np.array_equal(out.astype(np.float64), exact)


ENTRIES += [
    Entry(
        name="awq_pack",
        family="quantization",
        module="codecs.awq",
        summary="AWQ checkpoint packing: 4-bit codes along the output axis in the order 0, 2, 4, 6, 1, 3, 5, 7.",
        strategy=S.awq_pack_cases,
        semantics=AWQ_SEMANTICS,
        invariants=(Invariant("unpack(pack(x)) == x", _awq_roundtrip),),
        golden=(
            Golden(
                Case((_AC, _AS, _AZ)),
                (_AQW, _AQZ, _AS.T.copy()),
                "channels 0..7 with codes 0..7: nibbles 0, 2, 4, 6, 1, 3, 5, 7 = 0x75316420",
            ),  # fmt: skip
        ),
        bad=(
            Bad(Case((_AC[:4], _AS[:4], _AZ[:4])), ValueError, "with out_features a multiple of 8"),
            Bad(Case((_AC, _AS, _AZ + 8)), ValueError, "zeros must be in [0, 15], got 16"),
            Bad(
                Case((_AC, np.full((8, 3), 0.5, H), np.zeros((8, 3), np.int32))),
                ValueError,
                "with n_groups dividing in_features = 2",
            ),  # fmt: skip
        ),
        paper=AWQ,
    ),
    Entry(
        name="awq_unpack",
        family="quantization",
        module="codecs.awq",
        summary="AWQ checkpoint unpacking: qweight/qzeros/scales to codes, scales and zero points.",
        strategy=S.awq_packed_cases,
        semantics=AWQ_SEMANTICS,
        invariants=(Invariant("pack(unpack(t)) == t", _awq_roundtrip_back),),
        golden=(Golden(Case((_AQW, _AQZ, _AS.T.copy())), (_AC, _AS, _AZ), "0x75316420: codes 0..7 in order"),),
        bad=(
            Bad(
                Case((_AQW, _AQZ, np.full((1, 16), 0.5, H))),
                ValueError,
                "scales must have shape (n_groups, out_features = 8)",
            ),  # fmt: skip
        ),
        paper=AWQ,
    ),
    Entry(
        name="awq_decode",
        family="quantization",
        module="codecs.awq",
        summary="The exact float32 weight of an AWQ checkpoint: scales * (q - z), NumPy only.",
        strategy=S.awq_packed_cases,
        semantics=AWQ_SEMANTICS,
        invariants=(Invariant("exact s * (q - z)", _awq_decode_exact),),
        golden=(
            Golden(
                Case((_AQW, _AQZ, _AS.T.copy())),
                np.tile(((np.arange(8) - 8) * 0.5).astype(F)[:, None], (1, 2)),
                "0.5 * (j - 8)",
            ),  # fmt: skip
        ),
        bad=(Bad(Case((_AQW.astype(np.int64), _AQZ, _AS.T.copy())), TypeError, "qweight must have dtype int32"),),
        paper=AWQ,
    ),
]


# ---- compressed-tensors pack-quantized ------------------------------------------------------------------------

CT = "Neural Magic / vLLM, compressed-tensors: pack_to_int32 / unpack_from_int32, the pack-quantized format"
CT_SEMANTICS = (
    "Signed codes q in [-2**(b-1), 2**(b-1) - 1], stored as q + 2**(b-1); along packed_dim each row is one "
    "little-endian bit stream, code i in stream bits [i b, (i + 1) b), 32 bits a word; a code may straddle two "
    "words; a row of n codes takes ceil(n b / 32) words, the padding bits 0.",
    "bits in [1, 8]; packed_dim 1 (rows along the columns, compressed-tensors' default) or 0. unpack_quantized "
    "rejects set padding bits, so the two are inverse bijections.",
)
_CTQ = np.array([[-8, -7, 0, 7, 1, 2, 3, 4]], np.int8)
_CTW = np.array([[0xCBA9F810]], np.uint32).view(np.int32)


def _ct_roundtrip(call, case, out):
    from reference.codecs.compressed_tensors import unpack_quantized

    (q,) = case.args
    kw = case.kwargs
    back = unpack_quantized(out, bits=kw["bits"], shape=q.shape, packed_dim=kw["packed_dim"])
    assert out.dtype == np.int32 and np.array_equal(back, q), "unpack(pack(q)) == q"


def _ct_roundtrip_back(call, case, out):
    from reference.codecs.compressed_tensors import pack_quantized

    kw = case.kwargs
    assert out.dtype == np.int8 and out.shape == kw["shape"]
    assert np.array_equal(pack_quantized(out, bits=kw["bits"], packed_dim=kw["packed_dim"]), case.args[0])


ENTRIES += [
    Entry(
        name="pack_quantized",
        family="quantization",
        module="codecs.compressed_tensors",
        summary="compressed-tensors' pack-quantized: signed 1..8-bit codes, offset, packed densely into int32 words.",
        strategy=S.ct_pack_cases,
        semantics=CT_SEMANTICS,
        invariants=(Invariant("unpack(pack(q)) == q", _ct_roundtrip),),
        golden=(
            Golden(Case((_CTQ,), {"bits": 4, "packed_dim": 1}), _CTW, "stored 0, 1, 8, 15, 9, 10, 11, 12: 0xCBA9F810"),
            Golden(
                Case((np.array([[1, -1, 0]], np.int8),), {"bits": 3, "packed_dim": 1}),
                np.array([[0b100_011_101]], np.int32),
                "3 bits: 5, 3, 4 as one stream 101 011 100 (low bits first)",
            ),  # fmt: skip
            Golden(Case((_CTQ.T.copy(),), {"bits": 4, "packed_dim": 0}), _CTW.T.copy(), "packed_dim 0: the transpose"),
        ),
        bad=(
            Bad(Case((_CTQ,), {"bits": 3, "packed_dim": 1}), ValueError, "q must be in [-4, 3], got -8"),
            Bad(Case((_CTQ,), {"bits": 9, "packed_dim": 1}), ValueError, "bits must be in [1, 8], got 9"),
            Bad(Case((_CTQ,), {"bits": 4, "packed_dim": 2}), ValueError, "packed_dim must be in [0, 1], got 2"),
            Bad(Case((_CTQ[0],), {"bits": 4, "packed_dim": 1}), ValueError, "q must be 2-D, got shape (8,)"),
        ),
        paper=CT,
    ),
    Entry(
        name="unpack_quantized",
        family="quantization",
        module="codecs.compressed_tensors",
        summary="compressed-tensors' pack-quantized words back to signed codes of the recorded weight_shape.",
        strategy=S.ct_unpack_cases,
        semantics=CT_SEMANTICS,
        invariants=(Invariant("pack(unpack(w)) == w", _ct_roundtrip_back),),
        golden=(Golden(Case((_CTW,), {"bits": 4, "shape": (1, 8), "packed_dim": 1}), _CTQ, "0xCBA9F810"),),
        bad=(
            Bad(
                Case((_CTW,), {"bits": 4, "shape": (1, 7), "packed_dim": 1}),
                ValueError,
                "packed has a set padding bit after the last code of row 0: stream bit 30",
            ),  # fmt: skip
            Bad(
                Case((_CTW,), {"bits": 4, "shape": (1, 9), "packed_dim": 1}),
                ValueError,
                "packed has shape (1, 1) but shape (1, 9) packed along dim 1 with 4 bits needs shape (1, 2)",
            ),  # fmt: skip
        ),
        paper=CT,
    ),
]
