"""Registry entries for `reference.codecs.compressed_tensors` and its torch twin: pack_quantized, unpack_quantized."""

from __future__ import annotations

import numpy as np

from spec import strategies as S
from spec.entry import Bad, Case, Entry, Golden, Invariant

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


ENTRIES = [
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
