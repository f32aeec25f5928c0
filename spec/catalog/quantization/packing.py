"""Registry entries for `reference.quantization.packing` and its torch twin: pack_bits, unpack_bits."""

from __future__ import annotations

import numpy as np

from spec import strategies as S
from spec.catalog.common import array as _a
from spec.catalog.common import u8 as _u8
from spec.entry import Bad, Case, Entry, Golden, Invariant

MX = "Rouhani et al., 2023. Microscaling Data Formats for Deep Learning. arXiv:2310.10537 (OCP MX v1.0 packing order)"


def _packed_size(call, case, out):
    codes, bits = case.args
    assert out.dtype == np.uint8 and out.shape == ((codes.size * bits + 7) // 8,), "ceil(n * bits / 8) bytes"


def _unpack_round_trip(call, case, out):
    from reference.quantization.packing import pack_bits

    packed, bits, count = case.args
    assert out.dtype == (np.uint8 if bits <= 8 else np.uint16), "uint8 codes up to 8 bits, uint16 above"
    assert out.shape == (count,) and np.all(out < 2**bits)
    assert np.array_equal(pack_bits(out, bits), packed), "packing the unpacked codes gives the bytes back"


ENTRIES = [
    Entry(
        name="pack_bits",
        family="quantization",
        module="quantization.packing",
        summary="Pack 1- to 16-bit codes into bytes, first code in the lowest bits (ONNX, OCP MX order).",
        strategy=S.pack_cases,
        semantics=(
            "One little-endian bit stream: bit t of code i is stream bit i*bits + t = bit (k mod 8) of byte k // 8.",
            "3-bit (and 5, 6, 7, 9 to 16) codes may straddle bytes; the last byte's unused high bits are 0.",
            "Codes are uint8 or uint16 (any width up to 16 bits); 16-bit codes are stored as their little-endian bytes.",
            "ceil(n * bits / 8) bytes; codes read in C order; a code >= 2**bits raises ValueError.",
            "4-bit: first code in the low nibble (ONNX INT4/UINT4, MX); bitsandbytes/torchao NF4 use the high one.",
        ),
        invariants=(Invariant("ceil(n * bits / 8) bytes", _packed_size),),
        golden=(
            Golden(Case((_u8([5, 3, 7]), 3)), _u8([221, 1]), "stream 101 110 111: code 2 straddles"),
            Golden(Case((_u8([1, 2, 3]), 4)), _u8([0x21, 0x03]), "low nibble first, as ONNX"),
            Golden(
                Case((_u8([1, 0, 1, 1, 0, 0, 0, 0, 1]), 1)), _u8([13, 1]), "bits 1 + 4 + 8 = 13, the ninth in byte 1"
            ),
            Golden(Case((_u8([[3, 0], [1, 2]]), 2)), _u8([147]), "C order: 3 + 1 * 16 + 2 * 64"),
            Golden(Case((_u8([0, 255, 7]), 8)), _u8([0, 255, 7]), "8 bits: the codes are the bytes"),
            Golden(Case((_u8([]), 5)), _u8([]), "no codes, no bytes"),
            Golden(
                Case((np.array([0x1FF, 0x155], dtype=np.uint16), 9)),
                _u8([0xFF, 0xAB, 0x2]),
                "9-bit codes straddle: 1 1111 1111 then 1 0101 0101, low bit first",
            ),
            Golden(Case((np.array([0x1234], dtype=np.uint16), 16)), _u8([0x34, 0x12]), "16 bits: little-endian bytes"),
        ),
        bad=(
            Bad(Case((_u8([1]), 0)), ValueError, "bits must be in [1, 16], got 0"),
            Bad(Case((_u8([1]), 17)), ValueError, "bits must be in [1, 16], got 17"),
            Bad(Case((_u8([4]), 2)), ValueError, "codes must be in [0, 3], got 4 at flat index 0"),
            Bad(Case((np.array([512], dtype=np.uint16), 9)), ValueError, "codes must be in [0, 511], got 512"),
            Bad(Case((_a([1], np.int32), 2)), TypeError, "codes must have dtype uint8 or uint16, got int32"),
        ),
        paper=MX,
    ),
    Entry(
        name="unpack_bits",
        family="quantization",
        module="quantization.packing",
        summary="Unpack count codes of 1 to 16 bits from bytes written by pack_bits.",
        strategy=S.unpack_cases,
        semantics=(
            "The inverse of pack_bits: returns `count` codes, uint8 for up to 8 bits and uint16 above.",
            "Strict: the buffer must be 1-D of exactly ceil(count * bits / 8) bytes, and the padding bits 0.",
        ),
        invariants=(Invariant("round trip", _unpack_round_trip),),
        golden=(
            Golden(Case((_u8([221, 1]), 3, 3)), _u8([5, 3, 7]), "the inverse of packing 5, 3, 7"),
            Golden(Case((_u8([0x21, 0x03]), 4, 3)), _u8([1, 2, 3]), "low nibble first: 0x21 holds 1 then 2"),
            Golden(Case((_u8([]), 8, 0)), _u8([]), "no codes from no bytes"),
            Golden(Case((_u8([0xFF, 0xAB, 0x2]), 9, 2)), np.array([0x1FF, 0x155], dtype=np.uint16), "9 bits: uint16"),
        ),
        bad=(
            Bad(Case((_u8([221]), 3, 3)), ValueError, "packed has shape (1,) but 3 codes of 3 bits need shape (2,)"),
            Bad(Case((_u8([221, 3]), 3, 3)), ValueError, "set padding bit after the last code: stream bit 9"),
            Bad(Case((_u8([]), 3, -1)), ValueError, "count must be in [0, inf], got -1"),
            Bad(Case((_a([1], np.int8), 8, 1)), TypeError, "packed must have dtype uint8, got int8"),
        ),
        paper=MX,
    ),
]
