"""The AWQ checkpoint layout in torch; the semantics are those of `reference.codecs.awq`."""

from __future__ import annotations

import torch

from reference.codecs.awq import ORDER
from torch_backend import _arrays

__all__ = ["awq_pack", "awq_unpack", "awq_decode"]


def awq_pack(codes, scales, zeros):
    """Pack 4-bit codes, scales and zero points into AWQ's qweight, qzeros, scales; see the reference."""
    codes, scales, zeros, groups = _check_unpacked(codes, scales, zeros)
    qweight = _pack(codes.to(torch.int64).T)
    qzeros = _pack(zeros.to(torch.int64).T)
    return qweight, qzeros, scales.detach().T.clone()


def awq_unpack(qweight, qzeros, scales):
    """AWQ's tensors back to codes, scales and zero points; see `reference.codecs.awq.awq_unpack`."""
    qweight, qzeros, scales = _check_packed(qweight, qzeros, scales)
    codes = _unpack(qweight).T
    zeros = _unpack(qzeros).T
    return codes.to(torch.uint8).contiguous(), scales.detach().T.clone(), zeros.to(torch.int32).contiguous()


def awq_decode(qweight, qzeros, scales):
    """The exact float32 weight s * (q - z) of an AWQ checkpoint; see `reference.codecs.awq.awq_decode`."""
    qweight, qzeros, scales = _check_packed(qweight, qzeros, scales)
    in_f = qweight.shape[0]
    groups = scales.shape[0]
    codes = _unpack(qweight)
    zeros = _unpack(qzeros)
    g = torch.arange(in_f, device=qweight.device) // (in_f // groups)
    diff = (codes - zeros[g]).to(torch.float32)
    return (scales.detach().to(torch.float32)[g] * diff).T


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
    scales = _arrays.finite_array("scales", scales, ("float16",))
    if scales.ndim != 2 or scales.shape[1] != 8 * cols or scales.shape[0] < 1 or in_f % scales.shape[0]:
        raise ValueError(
            f"scales must have shape (n_groups, out_features = {8 * cols}) with n_groups dividing in_features = "
            f"{in_f}, got {tuple(scales.shape)}"
        )
    qzeros = _arrays.array("qzeros", qzeros, ("int32",))
    _arrays.shaped("qzeros", qzeros, (scales.shape[0], cols), f"scales of shape {tuple(scales.shape)}")
    _arrays.same_device("qzeros", qzeros, "qweight", qweight)
    _arrays.same_device("scales", scales, "qweight", qweight)
    return qweight, qzeros, scales


def _pack(v):
    rows, n = v.shape
    order = torch.tensor(ORDER, device=v.device)
    v = v.reshape(rows, n // 8, 8)[:, :, order]
    shifts = 4 * torch.arange(8, dtype=torch.int64, device=v.device)
    words = (v << shifts).sum(dim=2)
    return torch.where(words >= 2**31, words - 2**32, words).to(torch.int32)


def _unpack(words):
    u = words.to(torch.int64) & 0xFFFFFFFF
    shifts = 4 * torch.arange(8, dtype=torch.int64, device=u.device)
    nib = (u[:, :, None] >> shifts) & 0xF
    inverse = torch.argsort(torch.tensor(ORDER, device=u.device))  # channel o_k sits in nibble k
    return nib[:, :, inverse].reshape(words.shape[0], -1)
