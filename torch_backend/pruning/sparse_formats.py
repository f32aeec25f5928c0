"""Sparse storage in torch: bitmask and CSR encodings and their sizes; see `reference.pruning.sparse_formats`."""

from __future__ import annotations

import itertools
import math
import struct
import sys

import torch

from reference.common import shapes
from reference.pruning.sparse_formats import bitmask_bytes, csr_bytes, dense_bytes, quantized_bytes
from torch_backend import _arrays
from torch_backend.codecs._bytes import host_bytes, host_finite, host_tensor, on_host

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
    w = _arrays.array("w", w)
    values = host_finite(w) if w.numel() <= PYTHON_MAX and on_host(w) else None  # small: checked on the host
    if values is None:
        _arrays.finite("w", w)
    mask = _arrays.shaped("mask", _arrays.array("mask", mask, ("bool",)), w.shape, "w")
    _arrays.same_device("mask", mask, "w", w)
    flat = mask.reshape(-1)
    if values is not None and on_host(flat):  # the bits and the kept values on Python numbers
        keep = flat.tolist()
        kept = list(itertools.compress(values, keep))
        bits = host_bytes(_packed_host(keep), ((len(keep) + 7) // 8,))
        return bits, host_tensor("f", kept, torch.float32, (len(kept),))
    return _packed(flat), _kept_values(w.detach().reshape(-1), flat)


PYTHON_MAX = 256  # up to this many CPU elements, the bitmask codecs work on Python numbers


def _packed_host(keep) -> list:
    """The flat mask `keep` (Python bools) packed 8 to a byte as Python ints: the bools as bytes (0 or 1) padded
    to whole runs of 8, each run read as one little-endian word (`struct`'s `<`: the same on every host) and
    packed by the multiply of `_SPREAD` (see there), the product kept to 64 bits as the int64 route's wraps."""
    data = bytes(keep) + bytes(-len(keep) % 8)
    return [(word * _SPREAD & _LOW64) >> 56 for word in struct.unpack(f"<{len(data) // 8}Q", data)]


_LOW64 = (1 << 64) - 1
# the bits of each byte value as 8 bytes of 0 or 1, bit 0 first: a packed stream unpacked by one `join`
_BYTE_BITS = [bytes((b >> k) & 1 for k in range(8)) for b in range(256)]
RUNS_MIN = 1 << 14  # from this many elements `_kept_values` looks for the runs of 8 that keep anything first


def _kept_values(values, flat):
    """`values[flat]` for the flat float32 values and the flat bool mask: the kept values in order.

    Boolean indexing scans the mask with `nonzero`, which costs about four additions per element on the CPU. From
    `RUNS_MIN` elements the mask's whole runs of 8 are read as int64 first (8 bools in one word; any order of the
    bytes, since only "nonzero" is asked), and only the runs that keep something are gathered and indexed: the
    same values in the same order (runs in increasing order, each in its own order; gathering copies bits), for a
    scan of an eighth of the mask and of the runs kept. When more than half the runs keep something, that saves
    little, and the plain indexing follows. The elements past the last whole run (`n % 8`) are indexed apart."""
    n = flat.numel()
    body = n - n % 8
    if n < RUNS_MIN or not flat.is_contiguous() or flat.storage_offset() % 8:
        return values[flat]
    runs = flat[:body].view(torch.uint8).view(torch.int64)
    hit = torch.nonzero(runs).reshape(-1)
    if 2 * hit.numel() > runs.numel():
        return values[flat]
    kept = values[:body].reshape(-1, 8).index_select(0, hit)[flat[:body].reshape(-1, 8).index_select(0, hit)]
    if body == n:
        return kept
    return torch.cat([kept, values[body:][flat[body:]]])


# element k of each run of 8 goes to bit k: with the 8 bools of a run read as one little-endian int64 (byte k at
# bit 8k, each 0 or 1), multiplying by sum_k 2**(56 - 7k) moves byte k's bit to bit 56 + k; every other product
# term lands on a distinct bit below 56 or past 63 (8k - 7j = 8k' - 7j' has no other solution in 0..7), so no
# carry reaches bits 56..63, which are the packed byte (the int64 product wraps, which only drops bits past 63)
_SPREAD = 0x0102040810204080


def _packed(flat):
    """The flat bool mask packed 8 to a byte, element 0 in the low bit (the last byte padded with zeros)."""
    n = flat.numel()
    if n % 8 or not flat.is_contiguous() or flat.storage_offset() % 8:  # whole, aligned runs of 8
        padded = torch.zeros(n + (-n) % 8, dtype=torch.bool, device=flat.device)
        padded[:n] = flat
        flat = padded
    runs = flat.view(torch.uint8).view(-1, 8)
    if not _LITTLE:  # a big-endian int64 would hold byte k at bit 56 - 8k: shift each byte into place and add
        return (runs << torch.arange(8, dtype=torch.uint8, device=flat.device)).sum(1, dtype=torch.uint8)
    return (runs.view(torch.int64).reshape(-1) * _SPREAD).bitwise_right_shift_(56).to(torch.uint8)  # shift in place


_LITTLE = sys.byteorder == "little"


def from_bitmask(bits, values, shape):
    """Decode a bitmask encoding to `(dense, mask)`; see `reference.pruning.sparse_formats.from_bitmask`."""
    bits = _arrays.array("bits", bits, ("uint8",))
    values = _arrays.array("values", values)
    kept = host_finite(values) if values.numel() <= PYTHON_MAX and on_host(values) else None  # small: on the host
    if kept is None:
        _arrays.finite("values", values)
    shape = shapes.shape("shape", shape)
    n = math.prod(shape)
    _arrays.shaped("bits", bits, ((n + 7) // 8,), f"shape {shape}")
    _arrays.same_device("values", values, "bits", bits)
    if n <= PYTHON_MAX and kept is not None and on_host(bits):
        return _from_bitmask_host(bits.tolist(), values, kept, shape, n)
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


def _from_bitmask_host(packed, values, kept, shape, n):
    """`from_bitmask` on Python numbers for small checked CPU arrays: the bytes `packed` unpacked to one byte (0 or
    1) per bit by `_BYTE_BITS`, the same checks as the tensor route (the lowest set padding bit, then the number of
    values), and the kept values `kept` (`values` as Python floats, each a float32 exactly) written at the set bits
    into `+0.0`s."""
    unpacked = b"".join([_BYTE_BITS[byte] for byte in packed])
    if unpacked.find(1, n) >= 0:
        raise ValueError(f"bits must be 0 past the {n} encoded elements, got a 1 at bit {unpacked.find(1, n)}")
    keep = unpacked[:n]
    nnz = keep.count(1)
    _arrays.shaped("values", values, (nnz,), f"bits with {nnz} set bits")
    dense = [0.0] * n
    for i, value in zip(itertools.compress(range(n), keep), kept, strict=True):
        dense[i] = value
    return host_tensor("f", dense, torch.float32, shape), host_bytes(keep, shape).view(torch.bool)


def to_csr(w, mask):
    """CSR `(indptr, indices, values)` of the kept entries; see `reference.pruning.sparse_formats.to_csr`."""
    w = _arrays.finite_array("w", w)
    if w.ndim != 2:
        raise ValueError(f"w must be 2-D (rows, cols) for CSR, got shape {tuple(w.shape)}")
    mask = _arrays.shaped("mask", _arrays.array("mask", mask, ("bool",)), w.shape, "w")
    _arrays.same_device("mask", mask, "w", w)
    if w.device.type == "cpu" and w.numel() <= CSR_PYTHON_MAX:
        return _to_csr_host(w, mask)
    counts = torch.count_nonzero(mask, dim=1).to(torch.int64)
    indptr = torch.cat([torch.zeros(1, dtype=torch.int64, device=w.device), torch.cumsum(counts, dim=0)])
    kept = torch.nonzero(mask.reshape(-1)).reshape(-1)  # flat indices in row-major order: one scan for both
    return indptr, kept % w.shape[1], w.detach().reshape(-1).index_select(0, kept)


CSR_PYTHON_MAX = 256  # up to this many dense elements (and indices), the CSR codecs work on Python numbers


def _to_csr_host(w, mask):
    """`to_csr` on Python numbers for a small checked CPU `w` and `mask`: the kept entries in row-major order, their
    columns, and after each row the count so far (the reference's cumulative counts); the kept values copied as
    float32 (a float32's Python float is that float32 exactly, -0.0 and subnormals included)."""
    cols = w.shape[1]
    keep, values = mask.reshape(-1).tolist(), w.detach().reshape(-1).tolist()
    kept = [i for i, k in enumerate(keep) if k]
    indptr = [0] * (w.shape[0] + 1)
    for i in kept:
        indptr[i // cols + 1] += 1
    for r in range(w.shape[0]):
        indptr[r + 1] += indptr[r]
    return (
        torch.tensor(indptr, dtype=torch.int64),
        torch.tensor([i % cols for i in kept], dtype=torch.int64),
        torch.tensor([values[i] for i in kept], dtype=torch.float32),
    )


def _from_csr_host(indptr, indices, values, shape):
    """`from_csr` on Python numbers for a small CPU encoding (the arrays checked up to their devices): the same
    checks in the same order with the same messages (the start of `indptr`, its order, the lengths, the column
    range by `_arrays.within`, the column order within each row), then the dense values and the mask written
    element by element. The values are copied (a float32's Python float is that float32 exactly, -0.0 and
    subnormals included) into a float32 tensor; every other element is `+0.0`, as the reference's zeros."""
    rows, cols = shape
    ptr = indptr.tolist()
    if ptr[0] != 0:
        raise ValueError(f"indptr must start at 0, got {ptr[0]}")
    for r in range(rows):
        if ptr[r + 1] < ptr[r]:
            raise ValueError(f"indptr must be non-decreasing, got {ptr[r]} then {ptr[r + 1]} at row {r}")
    nnz = ptr[-1]
    _arrays.shaped("indices", indices, (nnz,), f"indptr ending at {nnz}")
    _arrays.shaped("values", values, (nnz,), f"indptr ending at {nnz}")
    _arrays.within("indices", indices, 0, cols - 1)
    idx = indices.tolist()
    row = [r for r in range(rows) for _ in range(ptr[r + 1] - ptr[r])]
    for p in range(nnz - 1):
        if row[p + 1] == row[p] and idx[p + 1] <= idx[p]:
            raise ValueError(
                f"indices must increase strictly within each row, got {idx[p]} then {idx[p + 1]} in row {row[p]}"
            )
    dense, mask = [0.0] * (rows * cols), [False] * (rows * cols)
    for r, c, v in zip(row, idx, values.detach().tolist(), strict=True):
        dense[r * cols + c], mask[r * cols + c] = v, True
    return (
        torch.tensor(dense, dtype=torch.float32).reshape(shape),
        torch.tensor(mask, dtype=torch.bool).reshape(shape),
    )


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
    if indptr.device.type == "cpu" and rows * cols <= CSR_PYTHON_MAX and indices.numel() <= CSR_PYTHON_MAX:
        return _from_csr_host(indptr, indices, values, shape)
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
