"""Bit packing in torch; the layout is that of `reference.quantization.packing` (little-endian bit stream)."""

from __future__ import annotations

import math

import torch

from reference.common import validate
from reference.quantization.packing import CODE_DTYPES
from torch_backend import _arrays

__all__ = ["pack_bits", "unpack_bits"]

PYTHON_MAX = 64  # up to this many CPU codes, the bit stream is one Python integer (a few tensor operations cost more)


def pack_bits(codes, bits):
    """Pack `bits`-bit codes into bytes, first code in the lowest bits; see `reference.quantization.packing`."""
    bits = validate.integer("bits", bits, lo=1, hi=16)
    codes = _arrays.array("codes", codes, CODE_DTYPES)
    if codes.device.type == "cpu" and codes.numel() <= PYTHON_MAX:  # the stream as one Python integer
        values = codes.reshape(-1).tolist()
        if all(0 <= c < 1 << bits for c in values):
            stream = sum(c << (bits * i) for i, c in enumerate(values))
            return torch.tensor(list(stream.to_bytes((len(values) * bits + 7) // 8, "little")), dtype=torch.uint8)
    codes = codes.to(torch.int64)  # torch has few uint16 ops
    flat = _arrays.within("codes", codes, 0, 2**bits - 1).reshape(-1)
    n_bytes = (flat.numel() * bits + 7) // 8
    if flat.numel() >= BYTES_MIN:
        return _pack_by_bytes(flat, bits, n_bytes)
    stream = ((flat[:, None] >> _positions(bits, flat)) & 1).reshape(-1)
    stream = torch.nn.functional.pad(stream, (0, 8 * n_bytes - stream.numel()))
    return (stream.reshape(n_bytes, 8) << _positions(8, flat)).sum(dim=1).to(torch.uint8)


BYTES_MIN = 4096  # from this many codes, `pack_bits` writes whole bytes (`_pack_by_bytes`), not one bit per element


def _pack_by_bytes(flat, bits, n_bytes):
    """The bytes of `pack_bits` for the validated codes `flat` (int64, each in `[0, 2**bits)`), one byte column at
    a time instead of one element per stream bit.

    The stream repeats its layout every `per` codes (`per * bits` = lcm(bits, 8) bits, `width` bytes): code `l` of a
    period holds stream bits `[bits l, bits l + bits)` of it, so byte `k` is the OR of `(code_l << (bits l - 8 k))`
    (a right shift for a negative amount) over the codes overlapping bits `[8 k, 8 k + 8)`, masked to its low 8 bits:
    the stream's bits there, each from the one code that owns it (disjoint bit ranges, so OR is the sum the reference
    takes). The codes are padded with zeros to whole periods (zero bits, as the reference's padding) and the bytes
    past `n_bytes` dropped; every value fits int32 (`< 2**16` shifted by at most 7). Integers only: exact.
    """
    g = math.gcd(bits, 8)
    per, width = 8 // g, bits // g
    n = flat.numel()
    rows = -(-n // per)
    padded = torch.zeros(rows * per, dtype=torch.int32, device=flat.device)
    padded[:n] = flat
    cols = padded.reshape(rows, per).T.contiguous()  # one contiguous row per code of a period
    out = torch.empty(width, rows, dtype=torch.int32, device=flat.device)
    for k in range(width):
        acc = out[k]
        first = True
        for l in range(per):
            shift = bits * l - 8 * k
            if shift >= 8 or shift + bits <= 0:
                continue  # code l holds none of byte k's bits
            term = cols[l] << shift if shift >= 0 else cols[l] >> -shift
            if first:
                acc.copy_(term)
                first = False
            else:
                acc.bitwise_or_(term)
    return out.bitwise_and_(0xFF).T.reshape(-1)[:n_bytes].to(torch.uint8)


def unpack_bits(packed, bits, count):
    """Unpack `count` codes from bytes written by `pack_bits`; see `reference.quantization.packing.unpack_bits`."""
    bits = validate.integer("bits", bits, lo=1, hi=16)
    count = validate.integer("count", count, lo=0)
    packed = _arrays.array("packed", packed, ("uint8",))
    n_bytes = (count * bits + 7) // 8
    if packed.ndim != 1 or packed.shape[0] != n_bytes:
        raise ValueError(
            f"packed has shape {tuple(packed.shape)} but {count} codes of {bits} bits need shape ({n_bytes},)"
        )
    out = torch.uint8 if bits <= 8 else torch.uint16
    if packed.device.type == "cpu" and count <= PYTHON_MAX:  # the stream as one Python integer
        stream = int.from_bytes(bytes(packed.tolist()), "little")
        padding = stream >> (count * bits)
        if padding:
            k = count * bits + (padding & -padding).bit_length() - 1  # the lowest set padding bit
            raise ValueError(f"packed has a set padding bit after the last code: stream bit {k} (byte {k // 8})")
        mask = (1 << bits) - 1
        return torch.tensor([(stream >> (bits * i)) & mask for i in range(count)], dtype=out)
    stream = ((packed.to(torch.int64)[:, None] >> _positions(8, packed)) & 1).reshape(-1)
    padding = stream[count * bits :]
    if bool(padding.any()):
        k = count * bits + int(padding.nonzero()[0])
        raise ValueError(f"packed has a set padding bit after the last code: stream bit {k} (byte {k // 8})")
    digits = stream[: count * bits].reshape(count, bits)
    return (digits << _positions(bits, packed)).sum(dim=1).to(out)


def _positions(n, like):
    return torch.arange(n, dtype=torch.int64, device=like.device)
