"""The GPTQ checkpoint layout in torch; the semantics are those of `reference.codecs.gptq`."""

from __future__ import annotations

import struct
import sys
from itertools import chain
from operator import mul, sub

import torch

from reference.codecs.gptq import BITS, ZERO_FORMATS
from reference.common import checks
from torch_backend import _arrays
from torch_backend.codecs._bytes import host_finite, host_from_bytes, on_host, view_as

__all__ = ["gptq_pack", "gptq_unpack", "gptq_decode"]


def gptq_pack(codes, scales, zeros, g_idx, *, bits, zero_format):
    """Pack codes, scales, zero points and g_idx into GPTQ's four tensors; see `reference.codecs.gptq.gptq_pack`."""
    b, per, delta = checks.gptq_options(bits, zero_format, BITS, ZERO_FORMATS)
    packed = _pack_host(codes, scales, zeros, g_idx, b, per, delta)
    if packed is not None:  # None: not small CPU tensors, or not valid: the checks below raise the error
        return packed
    codes = _arrays.array("codes", codes, ("uint8",))
    if codes.ndim != 2:
        raise ValueError(f"codes must be 2-D (out_features, in_features), got shape {tuple(codes.shape)}")
    out_f, in_f = codes.shape
    checks.packed_multiple("codes.shape[0] (out_features)", out_f, per, b)
    checks.packed_multiple("codes.shape[1] (in_features)", in_f, per, b)
    _arrays.within("codes", codes, 0, 2**b - 1)
    scales = _arrays.finite_array("scales", scales, ("float16",))
    if scales.ndim != 2 or scales.shape[0] != out_f or scales.shape[1] < 1:
        raise ValueError(
            f"scales must have shape (out_features, n_groups) = ({out_f}, n_groups >= 1), got {tuple(scales.shape)}"
        )
    groups = scales.shape[1]
    zeros = _arrays.array("zeros", zeros, ("int32",))
    _arrays.shaped("zeros", zeros, scales.shape, "scales")
    _arrays.within("zeros", zeros, delta, 2**b - 1 + delta)
    g_idx = _check_g_idx(g_idx, in_f, groups)
    for name, t in (("scales", scales), ("zeros", zeros), ("g_idx", g_idx)):
        _arrays.same_device(name, t, "codes", codes)
    qweight = _words(codes.detach().T.reshape(in_f // per, 4, per // 4, out_f).permute(0, 3, 1, 2), b)
    # zeros - delta lies in [0, 2**b - 1]: uint8 arithmetic modulo 256 gives it (a v1 zero point 256 wraps to 0)
    z = zeros.detach().T.to(torch.uint8)
    if delta:
        z = z.sub_(_U8_ONE)
    qzeros = _words(z.reshape(groups, out_f // per, 4, per // 4), b)
    return qweight, qzeros, scales.detach().T.clone(), g_idx.clone()


def gptq_unpack(qweight, qzeros, scales, g_idx, *, bits, zero_format):
    """GPTQ's four tensors back to codes, scales, zero points and g_idx; see `reference.codecs.gptq.gptq_unpack`."""
    b, per, delta = checks.gptq_options(bits, zero_format, BITS, ZERO_FORMATS)
    qweight, qzeros, scales, g_idx, in_f, out_f, groups = _check_packed(qweight, qzeros, scales, g_idx, b, per)
    codes = _fields(qweight, b).permute(1, 0, 2, 3)
    # 8 bits: the fields are a view of qweight, which `reshape` may keep (one row of words): one copy, always
    codes = (
        codes.clone(memory_format=torch.contiguous_format).view(out_f, in_f) if b == 8 else codes.reshape(out_f, in_f)
    )
    zeros = _fields(qzeros, b).reshape(groups, out_f).T.to(torch.int32)
    if delta:
        zeros = zeros.add_(_I32_ONE)
    return codes, scales.detach().T.clone(), zeros, g_idx.clone()


def gptq_decode(qweight, qzeros, scales, g_idx, *, bits, zero_format):
    """The exact float32 weight scale * (code - zero) of a GPTQ checkpoint; see `reference.codecs.gptq.gptq_decode`."""
    b, per, delta = checks.gptq_options(bits, zero_format, BITS, ZERO_FORMATS)
    w = _decode_host(qweight, qzeros, scales, g_idx, b, per, delta)
    if w is not None:  # None: not small CPU tensors, or not valid: the checks below raise the error
        return w
    qweight, qzeros, scales, g_idx, in_f, out_f, groups = _check_packed(qweight, qzeros, scales, g_idx, b, per)
    codes = _fields(qweight, b).permute(1, 0, 2, 3).reshape(out_f, in_f).to(torch.float32)
    zeros = _fields(qzeros, b).reshape(groups, out_f).T.to(torch.float32)
    if delta:
        zeros = zeros.add_(_F32_ONE)
    # codes - zeros and the scale times it are small integers and float16 values times them: exact in float32
    diff = codes.sub_(zeros.index_select(1, g_idx.detach()))
    return diff.mul_(scales.detach().T.to(torch.float32).index_select(1, g_idx.detach()))


# ---------------------------------------------------------------------------------------------------------------


def _check_g_idx(g_idx, in_f, groups):
    g_idx = _arrays.array("g_idx", g_idx, ("int32",))
    _arrays.shaped("g_idx", g_idx, (in_f,), f"in_features = {in_f}")
    return _arrays.within("g_idx", g_idx, 0, groups - 1)


def _check_packed(qweight, qzeros, scales, g_idx, b, per):
    qweight = _arrays.array("qweight", qweight, ("int32",))
    if qweight.ndim != 2:
        raise ValueError(f"qweight must be 2-D (in_features // {per}, out_features), got shape {tuple(qweight.shape)}")
    rows, out_f = qweight.shape
    in_f = rows * per
    checks.packed_multiple("qweight.shape[1] (out_features)", out_f, per, b)
    scales = _arrays.finite_array("scales", scales, ("float16",))
    if scales.ndim != 2 or scales.shape[1] != out_f or scales.shape[0] < 1:
        raise ValueError(f"scales must have shape (n_groups >= 1, out_features = {out_f}), got {tuple(scales.shape)}")
    groups = scales.shape[0]
    qzeros = _arrays.array("qzeros", qzeros, ("int32",))
    _arrays.shaped("qzeros", qzeros, (groups, out_f // per), f"scales of shape {tuple(scales.shape)}")
    g_idx = _check_g_idx(g_idx, in_f, groups)
    for name, t in (("qzeros", qzeros), ("scales", scales), ("g_idx", g_idx)):
        _arrays.same_device(name, t, "qweight", qweight)
    return qweight, qzeros, scales, g_idx, in_f, out_f, groups


# A word's `per` fields of `b` bits, lowest bits first, are its 4 bytes (little-endian, the byte order of every
# device torch runs on) of 8 // b fields each: `_words` and `_fields` build and split bytes with a few uint8
# operations and read them as int32 words, instead of shifting int64 words field by field.
_U8_ONE = torch.tensor(1, dtype=torch.uint8)  # CPU 0-d tensors: usable on any device
_I32_ONE = torch.tensor(1, dtype=torch.int32)
_F32_ONE = torch.tensor(1.0, dtype=torch.float32)
_WEIGHTS = {b: torch.tensor([1 << (b * t) for t in range(8 // b)], dtype=torch.uint8) for b in BITS}
_SHIFTS = {b: torch.tensor([b * t for t in range(8 // b)], dtype=torch.uint8) for b in BITS}
_MASKS = {b: torch.tensor((1 << b) - 1, dtype=torch.uint8) for b in BITS}


def _words(fields, b):
    """uint8 fields `(..., 4, 8 // b)` in [0, 2**b - 1], byte by byte of each word -> the words (`(...)`, int32)."""
    if b == 8:  # one copy, always: `reshape` may keep a view of `fields` (one row of words), aliasing the codes
        byte = fields[..., 0].clone(memory_format=torch.contiguous_format)
    else:
        byte = fields.mul(_WEIGHTS[b].to(fields.device)).sum(dim=-1, dtype=torch.uint8)  # distinct bits: the or
    return view_as(byte.reshape(*byte.shape[:-2], 4 * byte.shape[-2]), torch.int32)


def _fields(words, b):
    """int32 words `(r, c)` -> their fields, uint8 `(r, c, 4, 8 // b)` (field 8 // b * j + t of a word at [.., j, t])."""
    byte = view_as(words.detach(), torch.uint8).reshape(*words.shape, 4, 1)
    if b == 8:
        return byte
    return (byte >> _SHIFTS[b].to(byte.device)) & _MASKS[b]


# ---- the host routes: small CPU tensors on Python ints and floats, where a dozen tensor operations cost more
#
# Each takes plain CPU tensors of the expected dtypes (up to HOST_MAX weights, PACK_HOST_MAX codes) on a
# little-endian host (the byte order the tensor route reads), and checks them on values read once (`tolist`);
# anything else, an invalid input included, gives None, and the caller's checks raise the reference's error, in
# the reference's order. A word is 4 little-endian bytes of 8 // b fields each, lowest bits first; the fields
# are moved as bytes, one field a byte: packed with one Python int over all of them (`int.from_bytes`, shifts,
# `to_bytes`) and split by `bytes.translate`, moved by strided byte slices, all at C speed.

HOST_MAX = 512  # up to this many weights (and scales) of CPU tensors gptq_decode runs on the host; more: tensors
PACK_HOST_MAX = 2048  # the same for gptq_pack's codes: its host route costs less per code (no float per code)


def _host_inputs(tensors, dtypes):
    """Whether `tensors` are plain CPU tensors of exactly `dtypes` without a negative bit (the tensor route
    resolves one first), on a little-endian host."""
    return (
        sys.byteorder == "little"
        and on_host(*tensors)
        and all(t.dtype == d and not t.is_neg() for t, d in zip(tensors, dtypes, strict=True))
    )


def _host_bytes(t):
    """The bytes of a uint8 CPU tensor of a multiple of 8 elements, row-major: read as int64 words (8 to a Python
    int, `view_as`) and written back by `struct` in this host's byte order, that of the tensor's bytes."""
    words = view_as(t.reshape(-1), torch.int64).tolist()
    return struct.pack(f"={len(words)}q", *words)


def _pack_bytes(fields, b):
    """Bytes of one field in [0, 2**b - 1] each -> bytes of 8 // b consecutive fields each, lowest bits first.

    As one little-endian int `x`, field t of a run of 8 // b sits at bit 8 t; shifted right by 8 t - b t it
    lands at bit b t of the run's first byte, whose other bits those shifts leave clear: `x | x >> 4` (b = 4);
    `x | x >> 6`, then that ored with itself `>> 12` (b = 2: fields 2 and 3 ride along with fields 0 and 1).
    The first byte of each run is the packed byte; shifts to the right keep `x` below `256 ** len(fields)`."""
    if b == 8:
        return fields
    x = int.from_bytes(fields, "little")
    if b == 4:
        return (x | x >> 4).to_bytes(len(fields), "little")[0::2]
    x |= x >> 6
    return (x | x >> 12).to_bytes(len(fields), "little")[0::4]


_HIGH = {b: bytes((256 - (1 << b),)) for b in BITS}  # the bits of a byte above 2**b - 1
_SPLIT = {b: [bytes((x >> t) & (1 << b) - 1 for x in range(256)) for t in range(0, 8, b)] for b in BITS}


def _fields_bytes(words, b):
    """int32 words (a flat list) -> their fields, one a byte: field t of byte j of word w at `8 // b * (4 w + j)
    + t`, by one `translate` per field of a byte into every (8 // b)-th place."""
    data = struct.pack(f"<{len(words)}i", *words)
    if b == 8:
        return data
    out = bytearray(len(data) * 8 // b)
    for t, table in enumerate(_SPLIT[b]):
        out[t :: 8 // b] = data.translate(table)
    return out


def _pack_host(codes, scales, zeros, g_idx, b, per, delta):
    """`gptq_pack` of small valid CPU tensors on Python ints, or None. Row j of `codes` is the run of fields of
    output channel j's words (`_pack_bytes`): `qweight.T`'s bytes, transposed a 4-byte word at a time by strided
    slices; the zero points minus delta in `zeros.T`'s order are `qzeros`'s fields. The codes are checked by one
    `and` of the int of their bytes with the bits above 2**b - 1 of every byte. The scales and g_idx are copied
    as the tensor route copies them. Integers: exact."""
    if not _host_inputs((codes, scales, zeros, g_idx), (torch.uint8, torch.float16, torch.int32, torch.int32)):
        return None
    if codes.ndim != 2 or scales.ndim != 2 or codes.numel() > PACK_HOST_MAX or scales.numel() > PACK_HOST_MAX:
        return None
    (out_f, in_f), groups = codes.shape, scales.shape[1]
    if out_f % per or in_f % per or scales.shape[0] != out_f or groups < 1 or zeros.shape != scales.shape:
        return None
    if g_idx.shape != (in_f,):
        return None
    q = _host_bytes(codes)
    s = host_finite(scales)
    g = g_idx.tolist()
    if s is None or int.from_bytes(q, "little") & int.from_bytes(_HIGH[b] * len(q), "little"):
        return None
    if in_f and not 0 <= min(g) <= max(g) < groups:
        return None
    z = [v - delta for col in zip(*zeros.tolist(), strict=True) for v in col]  # zeros.T, flat
    if z and not 0 <= min(z) <= max(z) < 1 << b:
        return None
    words = _pack_bytes(q, b)  # (out_f, rows, 4): qweight.T
    rows = in_f // per
    qweight = bytearray(len(words))
    for r in range(rows):
        for t in range(4):
            qweight[4 * out_f * r + t : 4 * out_f * (r + 1) : 4] = words[4 * r + t :: 4 * rows]
    return (
        host_from_bytes(qweight, torch.int32, (rows, out_f)),
        host_from_bytes(_pack_bytes(bytes(z), b), torch.int32, (groups, out_f // per)),
        scales.detach().T.clone(),
        g_idx.clone(),
    )


def _decode_host(qweight, qzeros, scales, g_idx, b, per, delta):
    """`gptq_decode` of small valid CPU tensors on the host, or None. The words' fields (`_fields_bytes`) lie
    in `(rows, out_f, per)` order for `qweight`; input channel i = r per + k reads field k of row r's words, group
    g_idx[i]. `s * (q - z)`, with `s` a finite float16 value and `q - z` an int of at most 9 bits, has at most
    11 + 9 significant bits and lies within float32's range, so the float64 product (of `s` and the int as a
    float, +0.0 for 0: IEEE signs of zeros) is the reference's float32 product, exactly."""
    if not _host_inputs((qweight, qzeros, scales, g_idx), (torch.int32, torch.int32, torch.float16, torch.int32)):
        return None
    if qweight.ndim != 2 or scales.ndim != 2 or per * qweight.numel() > HOST_MAX or scales.numel() > HOST_MAX:
        return None
    (rows, out_f), groups = qweight.shape, scales.shape[0]
    in_f = rows * per
    if out_f % per or scales.shape[1] != out_f or groups < 1 or qzeros.shape != (groups, out_f // per):
        return None
    if g_idx.shape != (in_f,):
        return None
    s = host_finite(scales)
    g = g_idx.tolist()
    if s is None or (in_f and not 0 <= min(g) <= max(g) < groups):
        return None
    q = _fields_bytes(qweight.reshape(-1).tolist(), b)
    z = _fields_bytes(qzeros.reshape(-1).tolist(), b)  # (groups, out_f), as s
    if delta:
        z = [v + delta for v in z]
    span = out_f * per
    cols = []  # column i of the weight: its input channel i
    for i, gi in enumerate(g):
        at, k = gi * out_f, i % per
        start = (i - k) * out_f + k  # (i // per) * span + k
        cols.append(map(mul, s[at : at + out_f], map(sub, q[start : start + span : per], z[at : at + out_f])))
    if not cols or not out_f:
        return torch.empty((out_f, in_f), dtype=torch.float32, device="cpu")
    w = bytearray(struct.pack(f"={in_f * out_f}f", *chain.from_iterable(cols)))  # the transpose, float32
    return torch.frombuffer(w, dtype=torch.float32).view(in_f, out_f).T.clone(memory_format=torch.contiguous_format)
