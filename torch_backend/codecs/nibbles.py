"""4-bit codes two to a byte in torch; the semantics are those of `reference.codecs.nibbles`."""

from __future__ import annotations

import sys

import torch

from reference.codecs.nibbles import ORDERS
from reference.common import validate
from torch_backend import _arrays
from torch_backend.codecs._bytes import HOST_MAX, host_from_bytes, on_host

__all__ = ["pack_nibbles", "unpack_nibbles"]


def pack_nibbles(codes, *, order):
    """Pack 4-bit codes two to a byte along the last axis; see `reference.codecs.nibbles.pack_nibbles`."""
    order = validate.choice("order", order, ORDERS)
    codes = _arrays.array("codes", codes, ("uint8",))
    if codes.numel() <= HOST_MAX and codes.ndim and not codes.shape[-1] % 2 and on_host(codes):
        packed = _pack_host(codes, order)
        if packed is not None:  # None: a code above 15, which `within` reports
            return packed
    codes = _arrays.within("codes", codes, 0, 15)
    if codes.ndim == 0 or codes.shape[-1] % 2:
        raise ValueError(f"codes has shape {tuple(codes.shape)}: nibbles pack in pairs along an even last axis")
    first, second = codes[..., 0::2], codes[..., 1::2]
    low, high = (first, second) if order == "low_first" else (second, first)
    return (low | (high << 4)).to(torch.uint8)


def unpack_nibbles(packed, *, order):
    """Unpack bytes into two 4-bit codes each; see `reference.codecs.nibbles.unpack_nibbles`."""
    order = validate.choice("order", order, ORDERS)
    packed = _arrays.array("packed", packed, ("uint8",))
    if packed.ndim == 0:
        raise ValueError("packed must have at least one dimension, got a 0-d array")
    if packed.numel() <= HOST_MAX and on_host(packed):
        return _unpack_host(packed, order)
    if packed.numel() >= WORDS_MIN and sys.byteorder == "little":
        return _unpack_words(packed, order)
    low, high = packed & 0xF, packed >> 4
    first, second = (low, high) if order == "low_first" else (high, low)
    return torch.stack([first, second], dim=-1).reshape(tuple(packed.shape[:-1]) + (2 * packed.shape[-1],))


WORDS_MIN = 1 << 12  # from this many bytes (and at least one) `_unpack_words`; fewer: `stack` costs less


def _unpack_words(packed, order):
    """`unpack_nibbles` of a nonempty tensor on a little-endian host, one int16 word per byte `p`: its low byte
    is the first code, its high byte the second, so viewing the words as bytes interleaves them (no `stack`).

    low_first: `(p | p << 4) & 0x0F0F`: bits 0-3 hold p's low nibble, bits 8-11 its high nibble (p < 256: p
    itself has no bit 8 or above). high_first: `(p >> 4 | p << 8) & 0x0F0F`: bits 0-3 the high nibble, bits 8-11
    the low one."""
    p = packed.to(torch.int16, memory_format=torch.contiguous_format)
    words = torch.bitwise_or(p, p << 4) if order == "low_first" else torch.bitwise_or(p >> 4, p << 8)
    return words.bitwise_and_(0x0F0F).view(torch.uint8)


_PAIRS = {
    "low_first": tuple(bytes((p & 0xF, p >> 4)) for p in range(256)),
    "high_first": tuple(bytes((p >> 4, p & 0xF)) for p in range(256)),
}


def _unpack_host(packed, order):
    """`unpack_nibbles` of a small CPU tensor on the host: byte `p` becomes the two bytes `(p & 15, p >> 4)`
    (low_first) or `(p >> 4, p & 15)` (high_first), in order along the flat (row-major) bytes, which is the
    reference's stack along a new last axis reshaped to the doubled last axis. Integers: exact. The bytes are
    copied into a tensor of its own storage (one over a `bytearray` could not be resized)."""
    shape = tuple(packed.shape[:-1]) + (2 * packed.shape[-1],)
    if packed.numel() == 0:
        return torch.empty(shape, dtype=torch.uint8)
    pairs = _PAIRS[order]
    data = bytearray(b"".join([pairs[p] for p in packed.reshape(-1).tolist()]))
    return torch.frombuffer(data, dtype=torch.uint8).view(shape).clone()


def _pack_host(codes, order):
    """`pack_nibbles` of a small CPU tensor with an even last axis on the host, or None when a code exceeds 15.

    Its bytes, row-major, are one little-endian int `x` (checked by one `and` with the high nibble of every
    byte), pairs of codes `c0` (byte 2 j) and `c1` (byte 2 j + 1) along the flat bytes; byte 2 j of
    `x | x >> 4` is `c0 + 16 c1` (low_first), of `x << 4 | x >> 8` it is `16 c0 + c1` (high_first), the other bits
    of those shifted codes landing in the odd bytes, which are dropped. Integers: exact."""
    data = bytes(codes.reshape(-1).tolist())
    x = int.from_bytes(data, "little")
    if x & int.from_bytes(b"\xf0" * len(data), "little"):
        return None
    x = x | x >> 4 if order == "low_first" else x << 4 | x >> 8
    shape = (*codes.shape[:-1], codes.shape[-1] // 2)
    return host_from_bytes(x.to_bytes(len(data) + 1, "little")[0 : len(data) : 2], torch.uint8, shape)
