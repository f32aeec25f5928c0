"""The GPTQ checkpoint layout in torch; the semantics are those of `reference.codecs.gptq`."""

from __future__ import annotations

import torch

from reference.codecs.gptq import BITS, ZERO_FORMATS
from reference.common import checks
from torch_backend import _arrays
from torch_backend.codecs._bytes import view_as

__all__ = ["gptq_pack", "gptq_unpack", "gptq_decode"]


def gptq_pack(codes, scales, zeros, g_idx, *, bits, zero_format):
    """Pack codes, scales, zero points and g_idx into GPTQ's four tensors; see `reference.codecs.gptq.gptq_pack`."""
    b, per, delta = checks.gptq_options(bits, zero_format, BITS, ZERO_FORMATS)
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
    codes = _fields(qweight, b).permute(1, 0, 2, 3).reshape(out_f, in_f)
    zeros = _fields(qzeros, b).reshape(groups, out_f).T.to(torch.int32)
    if delta:
        zeros = zeros.add_(_I32_ONE)
    return codes, scales.detach().T.clone(), zeros, g_idx.clone()


def gptq_decode(qweight, qzeros, scales, g_idx, *, bits, zero_format):
    """The exact float32 weight scale * (code - zero) of a GPTQ checkpoint; see `reference.codecs.gptq.gptq_decode`."""
    b, per, delta = checks.gptq_options(bits, zero_format, BITS, ZERO_FORMATS)
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
    if b == 8:
        byte = fields[..., 0]
    else:
        byte = fields.mul(_WEIGHTS[b].to(fields.device)).sum(dim=-1, dtype=torch.uint8)  # distinct bits: the or
    return view_as(byte.reshape(*byte.shape[:-2], 4 * byte.shape[-2]), torch.int32)


def _fields(words, b):
    """int32 words `(r, c)` -> their fields, uint8 `(r, c, 4, 8 // b)` (field 8 // b * j + t of a word at [.., j, t])."""
    byte = view_as(words.detach(), torch.uint8).reshape(*words.shape, 4, 1)
    if b == 8:
        return byte
    return (byte >> _SHIFTS[b].to(byte.device)) & _MASKS[b]
