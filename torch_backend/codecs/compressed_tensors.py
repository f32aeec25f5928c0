"""compressed-tensors' pack-quantized format in torch; the semantics are those of
`reference.codecs.compressed_tensors`."""

from __future__ import annotations

import torch

from reference.common import checks, validate
from torch_backend import _arrays

__all__ = ["pack_quantized", "unpack_quantized"]


def pack_quantized(q, *, bits, packed_dim):
    """Pack signed codes into int32 words along packed_dim; see `reference.codecs.compressed_tensors`."""
    b, dim = checks.compressed_tensors_options(bits, packed_dim)
    q = _arrays.array("q", q, ("int8",))
    if q.ndim != 2:
        raise ValueError(f"q must be 2-D, got shape {tuple(q.shape)}")
    _arrays.within("q", q, -(2 ** (b - 1)), 2 ** (b - 1) - 1)
    u = q.to(torch.int64) + 2 ** (b - 1)
    rows = u if dim == 1 else u.T
    words = _pack_rows(rows, b)
    return words if dim == 1 else words.T.contiguous()


def unpack_quantized(packed, *, bits, shape, packed_dim):
    """int32 words back to signed codes of `shape`; see `reference.codecs.compressed_tensors.unpack_quantized`."""
    b, dim = checks.compressed_tensors_options(bits, packed_dim)
    shape = validate.shape("shape", shape)
    if len(shape) != 2:
        raise ValueError(f"shape must have 2 sides, got {shape}")
    packed = _arrays.array("packed", packed, ("int32",))
    rows_n, n = (shape[0], shape[1]) if dim == 1 else (shape[1], shape[0])
    words_n = -(-n * b // 32)
    expected = (rows_n, words_n) if dim == 1 else (words_n, rows_n)
    _arrays.shaped("packed", packed, expected, f"shape {shape} packed along dim {dim} with {b} bits")
    words = packed if dim == 1 else packed.T
    bit = torch.arange(32, dtype=torch.int64, device=packed.device)
    stream = (((words.to(torch.int64)[:, :, None] & 0xFFFFFFFF) >> bit) & 1).reshape(rows_n, words_n * 32)
    padding = stream[:, n * b :]
    if bool(padding.any()):
        r, k = (int(v[0]) for v in torch.nonzero(padding, as_tuple=True))
        raise ValueError(f"packed has a set padding bit after the last code of row {r}: stream bit {n * b + k}")
    u = (stream[:, : n * b].reshape(rows_n, n, b) << bit[:b]).sum(dim=2)
    q = (u - 2 ** (b - 1)).to(torch.int8)
    return q if dim == 1 else q.T.contiguous()


def _pack_rows(u, b):
    rows, n = u.shape
    words_n = -(-n * b // 32)
    bit = torch.arange(32, dtype=torch.int64, device=u.device)
    stream = ((u[:, :, None] >> bit[:b]) & 1).reshape(rows, n * b)
    stream = torch.nn.functional.pad(stream, (0, words_n * 32 - n * b))
    words = (stream.reshape(rows, words_n, 32) << bit).sum(dim=2)
    return torch.where(words >= 2**31, words - 2**32, words).to(torch.int32)
