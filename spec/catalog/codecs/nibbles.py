"""Registry entries for `reference.codecs.nibbles` and its torch twin: pack_nibbles, unpack_nibbles."""

from __future__ import annotations

import numpy as np

from spec import strategies as S
from spec.catalog.common import u8 as _u8
from spec.entry import Bad, Case, Entry, Golden, Invariant

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


ENTRIES = [
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
