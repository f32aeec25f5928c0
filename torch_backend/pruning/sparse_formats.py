"""Sparse storage in torch: bitmask and CSR encodings and their sizes; see `reference.pruning.sparse_formats`."""

from __future__ import annotations

import math

import torch

from reference.common import shapes
from reference.pruning.sparse_formats import bitmask_bytes, csr_bytes, dense_bytes, quantized_bytes
from torch_backend import _arrays

__all__ = [
    "to_bitmask",
    "from_bitmask",
    "to_csr",
    "from_csr",
    "dense_bytes",
    "bitmask_bytes",
    "csr_bytes",
    "quantized_bytes",
]


def to_bitmask(w, mask):
    """Packed bitmask (element 0 in the low bit) and the kept values; see `reference.pruning.sparse_formats`."""
    w = _arrays.finite_array("w", w)
    mask = _arrays.shaped("mask", _arrays.array("mask", mask, ("bool",)), w.shape, "w")
    _arrays.same_device("mask", mask, "w", w)
    flat = mask.reshape(-1)
    n = flat.numel()
    padded = torch.zeros(((n + 7) // 8, 8), dtype=torch.uint8, device=flat.device)
    padded.view(-1)[:n] = flat
    if n <= _PACK_BY_SUM:  # one shift and one integer sum of the 8 bits (exact: at most 255); few operations
        bits = (padded << torch.arange(8, dtype=torch.uint8, device=flat.device)).sum(1, dtype=torch.uint8)
    else:  # a pass per bit: faster than the sum over rows of 8 on large masks (CPU, measured)
        bits = padded[:, 0].clone()
        for k in range(1, 8):  # bit k of each byte: element k of its run of 8 (uint8 throughout, no int64 widening)
            bits |= padded[:, k] << k
    return bits, w.detach().reshape(-1)[flat]


_PACK_BY_SUM = 1 << 14


def from_bitmask(bits, values, shape):
    """Decode a bitmask encoding to `(dense, mask)`; see `reference.pruning.sparse_formats.from_bitmask`."""
    bits = _arrays.array("bits", bits, ("uint8",))
    values = _arrays.finite_array("values", values)
    shape = shapes.shape("shape", shape)
    n = math.prod(shape)
    _arrays.shaped("bits", bits, ((n + 7) // 8,), f"shape {shape}")
    _arrays.same_device("values", values, "bits", bits)
    weights = torch.arange(8, dtype=torch.int64, device=bits.device)
    unpacked = ((bits.to(torch.int64).reshape(-1, 1) >> weights) & 1).reshape(-1)
    if bool(unpacked[n:].any()):
        i = n + int(unpacked[n:].nonzero()[0])
        raise ValueError(f"bits must be 0 past the {n} encoded elements, got a 1 at bit {i}")
    mask = unpacked[:n].to(torch.bool)
    nnz = int(torch.count_nonzero(mask))
    _arrays.shaped("values", values, (nnz,), f"bits with {nnz} set bits")
    dense = torch.zeros(n, dtype=torch.float32, device=bits.device)
    dense[mask] = values.detach()
    return dense.reshape(shape), mask.reshape(shape)


def to_csr(w, mask):
    """CSR `(indptr, indices, values)` of the kept entries; see `reference.pruning.sparse_formats.to_csr`."""
    w = _arrays.finite_array("w", w)
    if w.ndim != 2:
        raise ValueError(f"w must be 2-D (rows, cols) for CSR, got shape {tuple(w.shape)}")
    mask = _arrays.shaped("mask", _arrays.array("mask", mask, ("bool",)), w.shape, "w")
    _arrays.same_device("mask", mask, "w", w)
    counts = torch.count_nonzero(mask, dim=1).to(torch.int64)
    indptr = torch.cat([torch.zeros(1, dtype=torch.int64, device=w.device), torch.cumsum(counts, dim=0)])
    cols = torch.nonzero(mask)[:, 1]
    return indptr, cols.to(torch.int64), w.detach()[mask]


def from_csr(indptr, indices, values, shape):
    """Decode a CSR encoding to `(dense, mask)`; see `reference.pruning.sparse_formats.from_csr`."""
    indptr = _arrays.array("indptr", indptr, ("int64",))
    indices = _arrays.array("indices", indices, ("int64",))
    values = _arrays.finite_array("values", values)
    shape = shapes.shape("shape", shape)
    if len(shape) != 2:
        raise ValueError(f"shape must be (rows, cols) for CSR, got {shape}")
    rows, cols = shape
    _arrays.shaped("indptr", indptr, (rows + 1,), f"shape {shape}")
    _arrays.same_device("indices", indices, "indptr", indptr)
    _arrays.same_device("values", values, "indptr", indptr)
    if int(indptr[0]) != 0:
        raise ValueError(f"indptr must start at 0, got {int(indptr[0])}")
    steps = torch.diff(indptr)
    if bool((steps < 0).any()):
        r = int((steps < 0).nonzero()[0])
        raise ValueError(f"indptr must be non-decreasing, got {int(indptr[r])} then {int(indptr[r + 1])} at row {r}")
    nnz = int(indptr[-1])
    _arrays.shaped("indices", indices, (nnz,), f"indptr ending at {nnz}")
    _arrays.shaped("values", values, (nnz,), f"indptr ending at {nnz}")
    _arrays.within("indices", indices, 0, cols - 1)
    row = torch.repeat_interleave(torch.arange(rows, dtype=torch.int64, device=indptr.device), steps)
    unsorted = (row[1:] == row[:-1]) & (indices[1:] <= indices[:-1])
    if bool(unsorted.any()):
        p = int(unsorted.nonzero()[0])
        raise ValueError(
            f"indices must increase strictly within each row, got {int(indices[p])} then {int(indices[p + 1])} "
            f"in row {int(row[p])}"
        )
    dense = torch.zeros(shape, dtype=torch.float32, device=indptr.device)
    mask = torch.zeros(shape, dtype=torch.bool, device=indptr.device)
    dense[row, indices] = values.detach()
    mask[row, indices] = True
    return dense, mask
