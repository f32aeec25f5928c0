"""The GPTQ checkpoint layout in torch; the semantics are those of `reference.codecs.gptq`."""

from __future__ import annotations

import torch

from reference.codecs.gptq import BITS, ZERO_FORMATS
from reference.common import checks
from torch_backend import _arrays

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
    shift = torch.arange(per, dtype=torch.int64, device=codes.device) * b
    q = codes.to(torch.int64).T.reshape(in_f // per, per, out_f)
    qweight = (q << shift[None, :, None]).sum(dim=1)  # distinct bit positions: the sum is the bitwise or
    z = (zeros.to(torch.int64) - delta).T.reshape(groups, out_f // per, per)
    qzeros = (z << shift).sum(dim=2)
    return _int32(qweight), _int32(qzeros), scales.detach().T.clone(), g_idx.clone()


def gptq_unpack(qweight, qzeros, scales, g_idx, *, bits, zero_format):
    """GPTQ's four tensors back to codes, scales, zero points and g_idx; see `reference.codecs.gptq.gptq_unpack`."""
    b, per, delta = checks.gptq_options(bits, zero_format, BITS, ZERO_FORMATS)
    qweight, qzeros, scales, g_idx, in_f, out_f, groups = _check_packed(qweight, qzeros, scales, g_idx, b, per)
    codes = _fields(qweight, b, per, dim=1).reshape(in_f, out_f).T
    zeros = (_fields(qzeros, b, per, dim=2).reshape(groups, out_f) + delta).T
    return (
        codes.to(torch.uint8).contiguous(),
        scales.detach().T.clone(),
        zeros.to(torch.int32).contiguous(),
        g_idx.clone(),
    )


def gptq_decode(qweight, qzeros, scales, g_idx, *, bits, zero_format):
    """The exact float32 weight scale * (code - zero) of a GPTQ checkpoint; see `reference.codecs.gptq.gptq_decode`."""
    b, per, delta = checks.gptq_options(bits, zero_format, BITS, ZERO_FORMATS)
    qweight, qzeros, scales, g_idx, in_f, out_f, groups = _check_packed(qweight, qzeros, scales, g_idx, b, per)
    codes = _fields(qweight, b, per, dim=1).reshape(in_f, out_f)
    zeros = _fields(qzeros, b, per, dim=2).reshape(groups, out_f) + delta
    gi = g_idx.to(torch.int64)
    diff = (codes - zeros[gi]).to(torch.float32)
    return (scales.detach().to(torch.float32)[gi] * diff).T


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


def _fields(words, b, per, dim):
    """The `per` fields of `b` bits of each int32 word, as int64, in a new dimension at `dim` (lowest bits first)."""
    u = words.to(torch.int64) & 0xFFFFFFFF
    shape = [1] * (u.ndim + 1)
    shape[dim] = per
    shift = (torch.arange(per, dtype=torch.int64, device=u.device) * b).reshape(shape)
    return (u.unsqueeze(dim) >> shift) & (2**b - 1)


def _int32(words):
    """Unsigned 32-bit words (int64) as int32 two's complement."""
    return torch.where(words >= 2**31, words - 2**32, words).to(torch.int32)
