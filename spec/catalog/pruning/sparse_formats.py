"""Registry entries for `reference.pruning.sparse_formats` and its torch twin: to_bitmask, from_bitmask, to_csr,
from_csr, dense_bytes, bitmask_bytes, csr_bytes, quantized_bytes.
"""

from __future__ import annotations

import math

import numpy as np

from spec import strategies as S
from spec.catalog.common import array as _a
from spec.catalog.common import mask as _m
from spec.catalog.common import same_float32_bits as _same
from spec.entry import Bad, Case, Entry, Golden, Invariant

T, F = True, False


HAN = (
    "Han et al., 2016. Deep Compression: Compressing Deep Neural Networks with Pruning, Trained Quantization and "
    "Huffman Coding. ICLR. arXiv:1510.00149"
)


def _i(values):
    return np.array(values, dtype=np.int64)


def _bitmask(call, case, out):
    from reference.pruning.sparse_formats import from_bitmask

    w, mask = case.args
    bits, values = out
    assert bits.dtype == np.uint8 and bits.shape == ((w.size + 7) // 8,)
    _same(values, w.reshape(-1)[mask.reshape(-1)], "values are the kept weights in C order")
    dense, back = from_bitmask(bits, values, w.shape)
    _same(dense, np.where(mask, w, np.float32(0)), "decoding gives where(mask, w, +0.0)")
    assert np.array_equal(back, mask), "decoding gives the mask back"


def _bitmask_decode(call, case, out):
    from reference.pruning.sparse_formats import to_bitmask

    bits, values, shape = case.args
    dense, mask = out
    assert dense.shape == tuple(shape) and mask.shape == tuple(shape) and mask.dtype == bool
    assert np.all(dense[~mask].view(np.uint32) == 0), "pruned entries are +0.0"
    again = to_bitmask(dense, mask)
    _same(again[0], bits, "re-encoding gives the same bits")
    _same(again[1], values, "re-encoding gives the same values")


def _csr(call, case, out):
    from reference.pruning.sparse_formats import from_csr

    w, mask = case.args
    indptr, indices, values = out
    assert indptr.dtype == np.int64 and indices.dtype == np.int64 and values.dtype == np.float32
    assert indptr.shape == (w.shape[0] + 1,) and indptr[0] == 0 and indptr[-1] == mask.sum()
    _same(values, w[mask], "values are the kept weights in C order")
    dense, back = from_csr(indptr, indices, values, w.shape)
    _same(dense, np.where(mask, w, np.float32(0)), "decoding gives where(mask, w, +0.0)")
    assert np.array_equal(back, mask), "decoding gives the mask back"


def _csr_scipy(call, case, out):
    """Where the mask is `w != 0`, scipy.sparse builds the same arrays (as int32 indices)."""
    import scipy.sparse

    w, mask = case.args
    if not np.array_equal(mask, w != 0):
        return
    ref = scipy.sparse.csr_matrix(w)
    ref.sort_indices()
    assert np.array_equal(ref.indptr, out[0]) and np.array_equal(ref.indices, out[1])
    _same(ref.data.astype(np.float32), out[2], "scipy's stored values")


def _csr_decode(call, case, out):
    from reference.pruning.sparse_formats import to_csr

    indptr, indices, values, shape = case.args
    dense, mask = out
    assert dense.shape == tuple(shape) and mask.shape == tuple(shape)
    assert np.all(dense[~mask].view(np.uint32) == 0), "pruned entries are +0.0"
    for got, want, what in zip(
        to_csr(dense, mask), (indptr, indices, values), ("indptr", "indices", "values"), strict=True
    ):
        _same(got, want, f"re-encoding gives the same {what}")


def _dense_bytes(call, case, out):
    (shape,), bits = case.args, case.kwargs["bits"]
    n = math.prod(shape)
    assert isinstance(out, int) and 8 * out >= n * bits > 8 * (out - 1), "ceil(n * bits / 8)"


def _bitmask_bytes(call, case, out):
    shape, nnz = case.args
    bits, n = case.kwargs["bits"], math.prod(shape)
    assert isinstance(out, int) and out == -(-n // 8) + -(-nnz * bits // 8)
    if nnz < n:
        assert call(Case((shape, nnz + 1), case.kwargs)) >= out, "more values never take fewer bytes"


def _csr_bytes(call, case, out):
    (rows, cols), nnz = case.args
    bits, ib = case.kwargs["bits"], case.kwargs["index_bits"]
    assert isinstance(out, int) and out == -(-(rows + 1) * ib // 8) + -(-nnz * ib // 8) + -(-nnz * bits // 8)


def _quantized_bytes(call, case, out):
    shape, bits = case.args
    kw = case.kwargs
    codes = -(-math.prod(shape) * bits // 8)
    meta = -(-kw["groups"] * kw["scale_bits"] // 8) + -(-kw["groups"] * kw["zero_point_bits"] // 8)
    assert isinstance(out, int) and out == codes + meta


ENTRIES = [
    Entry(
        name="to_bitmask",
        family="pruning",
        module="pruning.sparse_formats",
        summary="Encode a pruned tensor as packed mask bits (element 0 in the low bit) and the kept values.",
        strategy=S.to_bitmask_cases,
        semantics=(
            "Bits over the flat C-order index; element i is bit i % 8 of byte i // 8; padding bits are 0.",
            "Values are the kept weights in C order, bit for bit (stored zeros and -0.0 included).",
        ),
        invariants=(Invariant("layout and exact round trip", _bitmask),),
        golden=(
            Golden(
                Case((_a([5, 0, -0.0, 7, 1, 2, 3, 4, 9]), _m([T, F, T, T, F, F, F, F, T]))),
                (np.array([13, 1], np.uint8), _a([5, -0.0, 7, 9])),
                "0b00001101, 0b00000001",
            ),
            Golden(Case((_a(3.0), np.array(True))), (np.array([1], np.uint8), _a([3.0])), "a 0-d tensor is one bit"),
        ),
        bad=(
            Bad(Case((_a([1, 2]), _m([T]))), ValueError, "mask has shape (1,) but w needs shape (2,)"),
            Bad(Case((_a([1, np.inf]), _m([T, T]))), ValueError, "w must be finite, got inf at flat index 1"),
        ),
        paper=HAN,
    ),
    Entry(
        name="from_bitmask",
        family="pruning",
        module="pruning.sparse_formats",
        summary="Decode a bitmask encoding to (dense with +0.0 where pruned, mask).",
        strategy=S.from_bitmask_cases,
        semantics=(
            "Exact inverse of to_bitmask in both directions.",
            "Malformed encodings (byte count, padding bits, value count) raise ValueError; nothing is repaired.",
        ),
        invariants=(Invariant("re-encodes to the same bits and values", _bitmask_decode),),
        golden=(
            Golden(
                Case((np.array([13, 1], np.uint8), _a([5, -0.0, 7, 9]), (9,))),
                (_a([5, 0, -0.0, 7, 0, 0, 0, 0, 9]), _m([T, F, T, T, F, F, F, F, T])),
                "stored -0.0 stays -0.0, pruned entries are +0.0",
            ),
            Golden(
                Case((np.zeros(0, np.uint8), _a([]), (2, 0))),
                (np.zeros((2, 0), np.float32), np.zeros((2, 0), bool)),
                "an empty tensor has no bytes",
            ),
        ),
        bad=(
            Bad(Case((np.array([1], np.uint8), _a([1]), (9,))), ValueError, "bits has shape (1,) but shape (9,) needs"),
            Bad(
                Case((np.array([13, 2], np.uint8), _a([5, 0, 7]), (9,))),
                ValueError,
                "bits must be 0 past the 9 encoded elements, got a 1 at bit 9",
            ),
            Bad(
                Case((np.array([3], np.uint8), _a([1]), (2,))),
                ValueError,
                "values has shape (1,) but bits with 2 set bits needs shape (2,)",
            ),
            Bad(Case((np.array([1], np.int8), _a([1]), (1,))), TypeError, "bits must have dtype uint8, got int8"),
            Bad(Case((np.array([1], np.uint8), _a([1]), 1)), TypeError, "shape must be a tuple of ints"),
        ),
        paper=HAN,
    ),
    Entry(
        name="to_csr",
        family="pruning",
        module="pruning.sparse_formats",
        summary="Encode the kept entries of a 2-D tensor as CSR (int64 indptr and indices, float32 values).",
        strategy=S.to_csr_cases,
        semantics=(
            "Stored entries are named by the mask (stored zeros and -0.0 kept), in C order; columns increase "
            "strictly within each row.",
            "indptr and indices are int64 (as torch stores them); csr_bytes counts any width.",
        ),
        invariants=(
            Invariant("layout and exact round trip", _csr),
            Invariant("scipy.sparse agrees where mask = (w != 0)", _csr_scipy),
        ),
        golden=(
            Golden(
                Case((_a([[0, 2], [3, -0.0]]), _m([[F, T], [T, T]]))),
                (_i([0, 1, 3]), _i([1, 0, 1]), _a([2, 3, -0.0])),
                "the stored -0.0 is kept",
            ),
            Golden(
                Case((_a([[1, 2], [3, 4]]), _m([[F, F], [F, T]]))),
                (_i([0, 0, 1]), _i([1]), _a([4])),
                "an empty row repeats its indptr",
            ),
        ),
        bad=(
            Bad(Case((_a([1, 2]), _m([T, T]))), ValueError, "w must be 2-D (rows, cols) for CSR, got shape (2,)"),
            Bad(Case((_a([[1, 2]]), _m([T, T]))), ValueError, "mask has shape (2,) but w needs shape (1, 2)"),
        ),
        paper=HAN,
    ),
    Entry(
        name="from_csr",
        family="pruning",
        module="pruning.sparse_formats",
        summary="Decode canonical CSR to (dense with +0.0 where nothing is stored, mask).",
        strategy=S.from_csr_cases,
        semantics=(
            "Exact inverse of to_csr in both directions.",
            "Only canonical CSR is accepted: indptr from 0, non-decreasing; columns in range and strictly "
            "increasing within each row; ValueError naming the first bad position otherwise.",
        ),
        invariants=(Invariant("re-encodes to the same arrays", _csr_decode),),
        golden=(
            Golden(
                Case((_i([0, 0, 1]), _i([2]), _a([1.5]), (2, 3))),
                (_a([[0, 0, 0], [0, 0, 1.5]]), _m([[F, F, F], [F, F, T]])),
                "row 0 is empty",
            ),
            Golden(
                Case((_i([0, 1, 3]), _i([1, 0, 1]), _a([2, 3, -0.0]), (2, 2))),
                (_a([[0, 2], [3, -0.0]]), _m([[F, T], [T, T]])),
                "to_csr's example, decoded",
            ),
        ),
        bad=(
            Bad(Case((_i([1, 1, 1]), _i([]), _a([]), (2, 2))), ValueError, "indptr must start at 0, got 1"),
            Bad(
                Case((_i([0, 2, 1]), _i([0]), _a([1]), (2, 2))),
                ValueError,
                "indptr must be non-decreasing, got 2 then 1 at row 1",
            ),
            Bad(Case((_i([0, 1, 1]), _i([2]), _a([1]), (2, 2))), ValueError, "indices must be in [0, 1], got 2"),
            Bad(
                Case((_i([0, 2, 2]), _i([1, 0]), _a([1, 2]), (2, 2))),
                ValueError,
                "indices must increase strictly within each row, got 1 then 0 in row 0",
            ),
            Bad(
                Case((_i([0, 2, 2]), _i([1, 1]), _a([1, 2]), (2, 2))),
                ValueError,
                "indices must increase strictly within each row, got 1 then 1 in row 0",
            ),
            Bad(
                Case((_i([0, 1, 1]), _i([0]), _a([1, 2]), (2, 2))),
                ValueError,
                "values has shape (2,) but indptr ending at 1 needs shape (1,)",
            ),
            Bad(Case((_i([0, 1]), _i([0]), _a([1]), (1, 1, 1))), ValueError, "shape must be (rows, cols) for CSR"),
            Bad(Case((_i([0, 1]), _i([0]), _a([1]), (2, 2))), ValueError, "indptr has shape (2,) but shape (2, 2)"),
            Bad(Case((_i([0, 1]), np.array([0], np.int32), _a([1]), (1, 1))), TypeError, "indices must have dtype"),
        ),
        paper=HAN,
    ),
    Entry(
        name="dense_bytes",
        family="pruning",
        module="pruning.sparse_formats",
        summary="Bytes of a dense tensor packed at `bits` per element: ceil(n * bits / 8).",
        strategy=S.dense_bytes_cases,
        semantics=("Every stored array is packed back to back and padded to a whole byte at its end.",),
        invariants=(Invariant("ceil(n * bits / 8)", _dense_bytes),),
        golden=(
            Golden(Case(((3, 3), 4)), 5, "36 bits"),
            Golden(Case(((10,),)), 40, "float32"),
            Golden(Case(((),)), 4, "a 0-d tensor holds one element"),
        ),
        bad=(
            Bad(Case(((2,), 0)), ValueError, "bits must be in [1, 64], got 0"),
            Bad(Case(((-1,),)), ValueError, "shape[0] must be in [0, inf], got -1"),
        ),
        paper=HAN,
    ),
    Entry(
        name="bitmask_bytes",
        family="pruning",
        module="pruning.sparse_formats",
        summary="Bytes of the bitmask encoding: ceil(n / 8) + ceil(nnz * bits / 8).",
        strategy=S.bitmask_bytes_cases,
        semantics=("One bit per element, then the kept values packed at `bits` each.",),
        invariants=(Invariant("formula, monotone in nnz", _bitmask_bytes),),
        golden=(
            Golden(Case(((4096, 4096), 2**23)), 2**21 + 2**25, "50% sparse float32: 53% of dense"),
            Golden(Case(((9,), 4), {"bits": 4}), 4, "2 bytes of mask, 2 of int4 values"),
        ),
        bad=(Bad(Case(((2,), 3)), ValueError, "nnz must be in [0, 2], got 3"),),
        paper=HAN,
    ),
    Entry(
        name="csr_bytes",
        family="pruning",
        module="pruning.sparse_formats",
        summary="Bytes of the CSR encoding with index_bits-bit indptr and indices.",
        strategy=S.csr_bytes_cases,
        semantics=(
            "ceil((rows + 1) * index_bits / 8) + ceil(nnz * index_bits / 8) + ceil(nnz * bits / 8).",
            "index_bits must hold every stored index: 2**index_bits > max(nnz, cols - 1), else ValueError.",
        ),
        invariants=(Invariant("formula", _csr_bytes),),
        golden=(
            Golden(Case(((2, 3), 2)), 28, "12 + 8 + 8; dense is 24"),
            Golden(Case(((2, 3), 2), {"bits": 8, "index_bits": 2}), 4, "1 + 1 + 2"),
        ),
        bad=(
            Bad(Case(((2, 300), 1), {"index_bits": 8}), ValueError, "index_bits 8 cannot hold the index 299"),
            Bad(Case(((6,), 1)), ValueError, "shape must be (rows, cols) for CSR, got (6,)"),
        ),
        paper=HAN,
    ),
    Entry(
        name="quantized_bytes",
        family="pruning",
        module="pruning.sparse_formats",
        summary="Bytes of packed quantized codes plus one scale (and zero point) per group.",
        strategy=S.quantized_bytes_cases,
        semantics=("ceil(n * bits / 8) + ceil(groups * scale_bits / 8) + ceil(groups * zero_point_bits / 8).",),
        invariants=(Invariant("formula", _quantized_bytes),),
        golden=(
            Golden(Case(((4096, 4096), 4), {"groups": 2**17, "scale_bits": 16}), 2**23 + 2**18, "int4, groups of 128"),
            Golden(Case(((3,), 4), {"groups": 1, "scale_bits": 32, "zero_point_bits": 8}), 7, "2 + 4 + 1"),
        ),
        bad=(Bad(Case(((4,), 4), {"groups": -1}), ValueError, "groups must be in [0, 1099511627776], got -1"),),
        paper=HAN,
    ),
]
