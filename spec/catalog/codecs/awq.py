"""Registry entries for `reference.codecs.awq` and its torch twin: awq_pack, awq_unpack, awq_decode."""

from __future__ import annotations

import numpy as np

from spec import strategies as S
from spec.entry import Bad, Case, Entry, Golden, Invariant

F = np.float32
H = np.float16


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


ENTRIES = [
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
