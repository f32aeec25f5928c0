"""Registry entries for `reference.codecs.gptq` and its torch twin: gptq_pack, gptq_unpack, gptq_decode."""

from __future__ import annotations

import numpy as np

from spec import strategies as S
from spec.catalog.common import array as _a
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
        peers=(
            (
                "AutoGPTQ",
                "its packer writes a v1 zero point 0 as -1 and ors it into the word, corrupting the neighbouring zero points; pqref rejects it.",
            ),
        ),
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
