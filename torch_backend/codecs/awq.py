"""The AWQ checkpoint layout in torch; the semantics are those of `reference.codecs.awq`."""

from __future__ import annotations

import struct
import sys

import torch

from reference.codecs.awq import ORDER
from torch_backend import _arrays
from torch_backend.codecs._bytes import HOST_MAX, host_finite, host_from_bytes, host_tensor, on_host, view_as

__all__ = ["awq_pack", "awq_unpack", "awq_decode"]


def awq_pack(codes, scales, zeros):
    """Pack 4-bit codes, scales and zero points into AWQ's qweight, qzeros, scales; see the reference."""
    packed = _pack_host(codes, scales, zeros)
    if packed is not None:  # None: not small CPU tensors, or not valid: the checks below raise the error
        return packed
    codes, scales, zeros, groups = _check_unpacked(codes, scales, zeros)
    qweight = _pack(codes.detach())
    qzeros = _pack(zeros.detach().to(torch.uint8))  # checked to lie in [0, 15]
    return qweight, qzeros, scales.detach().T.clone()


def awq_unpack(qweight, qzeros, scales):
    """AWQ's tensors back to codes, scales and zero points; see `reference.codecs.awq.awq_unpack`."""
    qweight, qzeros, scales, values = _check_packed(qweight, qzeros, scales)
    if values is not None:
        return _unpack_host(qweight, qzeros, scales, values)
    codes = _unpack(qweight)
    zeros = _unpack(qzeros).to(torch.int32)
    return codes, scales.detach().T.clone(), zeros


def awq_decode(qweight, qzeros, scales):
    """The exact float32 weight s * (q - z) of an AWQ checkpoint; see `reference.codecs.awq.awq_decode`."""
    qweight, qzeros, scales, values = _check_packed(qweight, qzeros, scales)
    if values is not None:
        return _decode_host(qweight, qzeros, scales, values)
    in_f = qweight.shape[0]
    groups = scales.shape[0]
    codes = _unpack(qweight).reshape(8 * qweight.shape[1], groups, in_f // groups)  # (out, group, in group)
    zeros = _unpack(qzeros)  # (out, groups)
    # codes - zeros in [-15, 15], exact in float32; so is the scale times it (11 by 4 significant bits)
    diff = codes.to(torch.float32).sub_(zeros.to(torch.float32)[:, :, None])
    return diff.mul_(scales.detach().T.to(torch.float32)[:, :, None]).reshape(8 * qweight.shape[1], in_f)


# ---------------------------------------------------------------------------------------------------------------


def _check_unpacked(codes, scales, zeros):
    codes = _arrays.array("codes", codes, ("uint8",))
    if codes.ndim != 2 or codes.shape[0] % 8:
        raise ValueError(
            "codes must be 2-D (out_features, in_features) with out_features a multiple of 8, "
            f"got shape {tuple(codes.shape)}"
        )
    _arrays.within("codes", codes, 0, 15)
    scales = _arrays.finite_array("scales", scales, ("float16",))
    out_f, in_f = codes.shape
    if scales.ndim != 2 or scales.shape[0] != out_f or scales.shape[1] < 1 or in_f % scales.shape[1]:
        raise ValueError(
            f"scales must have shape (out_features = {out_f}, n_groups) with n_groups dividing in_features = "
            f"{in_f}, got {tuple(scales.shape)}"
        )
    zeros = _arrays.array("zeros", zeros, ("int32",))
    _arrays.shaped("zeros", zeros, scales.shape, "scales")
    _arrays.within("zeros", zeros, 0, 15)
    _arrays.same_device("scales", scales, "codes", codes)
    _arrays.same_device("zeros", zeros, "codes", codes)
    return codes, scales, zeros, scales.shape[1]


def _check_packed(qweight, qzeros, scales):
    qweight = _arrays.array("qweight", qweight, ("int32",))
    if qweight.ndim != 2:
        raise ValueError(f"qweight must be 2-D (in_features, out_features // 8), got shape {tuple(qweight.shape)}")
    in_f, cols = qweight.shape
    scales = _arrays.array("scales", scales, ("float16",))
    host = 8 * qweight.numel() <= HOST_MAX and scales.numel() <= HOST_MAX and on_host(qweight, scales)
    values = host_finite(scales) if host else None  # read once: finite, and the host route's scales
    if values is None:
        _arrays.finite("scales", scales)
    if scales.ndim != 2 or scales.shape[1] != 8 * cols or scales.shape[0] < 1 or in_f % scales.shape[0]:
        raise ValueError(
            f"scales must have shape (n_groups, out_features = {8 * cols}) with n_groups dividing in_features = "
            f"{in_f}, got {tuple(scales.shape)}"
        )
    qzeros = _arrays.array("qzeros", qzeros, ("int32",))
    _arrays.shaped("qzeros", qzeros, (scales.shape[0], cols), f"scales of shape {tuple(scales.shape)}")
    _arrays.same_device("qzeros", qzeros, "qweight", qweight)
    _arrays.same_device("scales", scales, "qweight", qweight)
    return qweight, qzeros, scales, values if on_host(qzeros) else None


# Nibble k of a word holds channel ORDER[k]; byte j (little-endian, the byte order of every device torch runs on)
# holds nibbles 2j (low) and 2j + 1 (high), i.e. channels (0, 2), (4, 6), (1, 3), (5, 7) of its 8. Writing a
# channel as 4a + 2b + d, byte 2d + a holds channel 4a + d in its low and 4a + 2 + d in its high nibble: `_pack`
# and `_unpack` move whole bytes by that reshape and read them as int32 words, a few uint8 operations per call.
assert ORDER == (0, 2, 4, 6, 1, 3, 5, 7)
_LOW, _SHIFT = torch.tensor(0xF, dtype=torch.uint8), torch.tensor(4, dtype=torch.uint8)  # CPU 0-d: any device


def _pack(v):
    """(8 m, n) uint8 codes in [0, 15] -> (n, m) int32 words in AWQ's nibble order.

    Byte `2 d + a` of word `(i, c)` holds channels `8 c + 4 a + d` (low nibble) and `8 c + 4 a + 2 + d` (high).
    Up to `STACK_MIN` codes the bytes are gathered into place by one byte-wise transpose; from there the four
    byte planes `(c, i)` are interleaved into int32 words `(c, i)` (`stack` along a last axis of 4, read as one
    little-endian word by `view_as`) and the words transposed: a quarter of the elements to move, each four
    bytes wide (1M codes: 2.5 ms to 0.3 ms)."""
    m, n = v.shape[0] // 8, v.shape[1]
    v = v.reshape(m, 2, 2, 2, n)  # (c, a, b, d, i): channel 8c + 4a + 2b + d
    byte = v[:, :, 0].add(v[:, :, 1], alpha=16)  # (c, a, d, i), low + 16 high: at most 255
    if v.numel() < STACK_MIN:
        return view_as(byte.permute(3, 0, 2, 1).reshape(n, 4 * m), torch.int32)
    planes = [byte[:, a, d] for d in (0, 1) for a in (0, 1)]  # (c, i) each: byte 2 d + a of the words
    return view_as(torch.stack(planes, dim=-1), torch.int32).reshape(m, n).T.contiguous()


STACK_MIN = 1 << 13  # from this many codes `_pack` interleaves byte planes into words, then transposes words


def _unpack(words):
    """(n, m) int32 words -> (8 m, n) uint8 codes in channel order (the transpose of the packed layout)."""
    n, m = words.shape
    byte = view_as(words.detach(), torch.uint8).reshape(n, m, 2, 2)  # (i, c, d, a)
    nib = torch.stack([byte & _LOW, byte >> _SHIFT], dim=0)  # (b, i, c, d, a)
    return nib.permute(2, 4, 0, 3, 1).reshape(8 * m, n)  # (c, a, b, d, i)


# ---- the host routes: at most HOST_MAX codes of CPU tensors, on Python ints

_NIBBLE = tuple(4 * ORDER.index(o) for o in range(8))  # channel 8c + o: bits [_NIBBLE[o], _NIBBLE[o] + 4) of word c


def _host_fields(words, rows):
    """The nibbles of int32 words (a list of rows of Python ints) in channel order: `[j][i]` is channel j of row
    i, `(words[i][j // 8] >> 4 k) & 15` with `ORDER[k] = j % 8` (a Python int's shift and mask act on its two's
    complement bits: the int32's unsigned bits)."""
    return [[(w[j >> 3] >> _NIBBLE[j & 7]) & 0xF for w in words] for j in range(rows)]


def _unpack_host(qweight, qzeros, scales, values):
    """`awq_unpack` of checked small CPU tensors on Python ints; the scales (`values`, the float16 values of
    `scales`, finite) are written back transposed as float16 (`struct`'s 'e': exact). Integers: exact."""
    groups, out_f = scales.shape
    codes = _host_fields(qweight.tolist(), out_f)
    zeros = _host_fields(qzeros.tolist(), out_f)
    return (
        host_tensor("B", [v for r in codes for v in r], torch.uint8, (out_f, qweight.shape[0])),
        host_tensor(
            "e", [values[g * out_f + j] for j in range(out_f) for g in range(groups)], torch.float16, (out_f, groups)
        ),
        host_tensor("i", [v for r in zeros for v in r], torch.int32, (out_f, groups)),
    )


def _decode_host(qweight, qzeros, scales, values):
    """`awq_decode` of checked small CPU tensors on the host: `s * (q - z)` with `s` a finite float16 value and
    `q - z` an int in [-15, 15] has at most 11 + 4 significant bits and lies within float32's range, so the
    float64 product (of `s` and the int as a float, +0.0 for 0: IEEE signs of zeros) is the reference's float32
    product, exactly."""
    groups, out_f = scales.shape
    in_f = qweight.shape[0]
    per = in_f // groups if groups else 1
    codes = _host_fields(qweight.tolist(), out_f)
    zeros = _host_fields(qzeros.tolist(), out_f)
    out = [
        values[(i // per) * out_f + j] * (c - zeros[j][i // per])
        for j, row in enumerate(codes)
        for i, c in enumerate(row)
    ]
    return host_tensor("f", out, torch.float32, (out_f, in_f))


_HIGH = b"\xf0"  # the bits of a byte above 15


def _pack_host(codes, scales, zeros):
    """`awq_pack` of small valid CPU tensors (plain, of the expected dtypes, on a little-endian host, checked on
    values read once) on Python ints, or None (then `_check_unpacked` raises the reference's error).

    The codes' bytes, row-major, are one little-endian int `x` (checked by one `and` with the high nibble of every
    byte); row o + 2 of it lies 2 n bytes above row o (n the row length), so `x | x >> (16 n - 4)` holds, in byte i
    of row o, code (o, i) in its low and code (o + 2, i) in its high nibble: the bytes of channels 0, 4, 1, 5 of
    each 8 are bytes 0 to 3 of the words (see `_pack`), moved there by strided byte slices. The zero points, ints
    checked to lie in [0, 15], are packed alike; the scales are copied as the tensor route copies them."""
    if not (sys.byteorder == "little" and on_host(codes, scales, zeros)):
        return None
    if codes.dtype != torch.uint8 or scales.dtype != torch.float16 or zeros.dtype != torch.int32:
        return None
    if codes.is_neg() or scales.is_neg() or zeros.is_neg() or codes.ndim != 2 or scales.ndim != 2:
        return None
    (out_f, in_f), groups = codes.shape, scales.shape[1]
    if out_f % 8 or codes.numel() > HOST_MAX or scales.numel() > HOST_MAX or scales.shape[0] != out_f:
        return None
    if groups < 1 or in_f % groups or zeros.shape != scales.shape:
        return None
    words = view_as(codes.reshape(-1), torch.int64).tolist()  # out_f is a multiple of 8: 8 codes a word
    q = struct.pack(f"={len(words)}q", *words)
    z = zeros.reshape(-1).tolist()
    if int.from_bytes(q, "little") & int.from_bytes(_HIGH * len(q), "little") or host_finite(scales) is None:
        return None
    if z and not 0 <= min(z) <= max(z) <= 15:
        return None
    return (
        host_from_bytes(_pack_bytes(q, in_f, out_f), torch.int32, (in_f, out_f // 8)),
        host_from_bytes(_pack_bytes(bytes(z), groups, out_f), torch.int32, (groups, out_f // 8)),
        scales.detach().T.clone(),
    )


def _pack_bytes(data, n, out_f):
    """The bytes `(n, out_f // 8, 4)` of the words packing `data`, the bytes of `(out_f, n)` codes in [0, 15]."""
    x = int.from_bytes(data, "little")
    paired = (x | x >> (16 * n - 4)).to_bytes(len(data), "little") if n else data
    out = bytearray(len(data) // 2)
    step = out_f // 2
    for c in range(out_f // 8):
        for m, o in enumerate((0, 4, 1, 5)):  # byte m of a word: channels o (low) and o + 2 (high)
            row = (8 * c + o) * n
            out[4 * c + m :: step] = paired[row : row + n]
    return out
