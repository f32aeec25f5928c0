r"""Sparse storage of a pruned tensor: bitmask and CSR encodings with an exact round trip, and their sizes in bytes.

An encoding stores the *kept* entries named by an explicit mask, so a kept weight that happens to be zero (`+0.0`
or `-0.0`) is stored like any other value and decodes to the same bits. Decoding returns the dense tensor with
`+0.0` at every pruned position, that is `apply_mask(w, mask)`, and the mask itself: both directions round-trip
exactly.

Sizes count every stored array packed back to back at its bit width and padded to a whole byte at its end:
an array of $m$ entries of $b$ bits takes $\lceil m b / 8 \rceil$ bytes.
"""

from __future__ import annotations

import math

import numpy as np

from reference import _arrays
from reference.common import shapes, validate

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
    r"""Encode a pruned tensor as a packed bitmask and the kept values in C order.

    $$ \text{bits}[i \gg 3] \mathbin{|}= \text{mask}_i \ll (i \mathbin{\&} 7), \qquad
       \text{values} = (w_i : \text{mask}_i)_{i = 0}^{n-1} $$

    over the flat (C order) index $i$: element 0 is the low bit of byte 0 (the order of ONNX and MX, `np.packbits`
    with `bitorder="little"`); the unused high bits of the last byte are 0.

    **Arguments:**

    - `w`: a float32 array, any shape, finite.
    - `mask`: a bool array of exactly `w`'s shape, True where the weight is stored.

    **Returns:**

    `(bits, values)`: a uint8 array of shape $(\lceil n/8 \rceil,)$ and a float32 array of shape $(\text{nnz},)$
    holding the kept weights bit for bit (`-0.0` stays `-0.0`).

    !!! note
        Example: mask $[T, F, T, T, F, F, F, F, T]$ gives bits $[\texttt{0b00001101}, \texttt{0b00000001}]$, and
        the stored `-0.0` stays:

            >>> w = np.float32([5, 0, -0.0, 7, 1, 2, 3, 4, 9])
            >>> to_bitmask(w, np.array([1, 0, 1, 1, 0, 0, 0, 0, 1], dtype=bool))
            (array([13,  1], dtype=uint8), array([ 5., -0.,  7.,  9.], dtype=float32))

    ??? cite "Han et al., 2016"
        Deep Compression: Compressing Deep Neural Networks with Pruning, Trained Quantization and Huffman Coding.
        ICLR. arXiv:1510.00149
    """
    w = _arrays.finite_array("w", w)
    mask = _arrays.shaped("mask", _arrays.array("mask", mask, ("bool",)), w.shape, "w")
    flat = mask.reshape(-1)
    return np.packbits(flat, bitorder="little"), w.reshape(-1)[flat]


def from_bitmask(bits, values, shape):
    r"""Decode `to_bitmask`'s encoding: the dense tensor with `+0.0` where pruned, and the mask.

    $$ \text{mask}_i = (\text{bits}[i \gg 3] \gg (i \mathbin{\&} 7)) \mathbin{\&} 1, \qquad
       w_i = \begin{cases} \text{values}_{\#\{j < i\,:\,\text{mask}_j\}} & \text{mask}_i \\ +0 & \text{else}
       \end{cases} $$

    **Arguments:**

    - `bits`: a uint8 array of shape $(\lceil n/8 \rceil,)$ with $n$ = the product of `shape`; the bits past
      element $n - 1$ must be 0.
    - `values`: a float32 array of shape $(\text{nnz},)$, finite, nnz = the number of set bits.
    - `shape`: the dense shape, a tuple of ints >= 0 with at most `2**40` elements in all and no longer side (`reference.common.shapes`).

    **Returns:**

    `(w, mask)`: a float32 array and a bool array of shape `shape`. `to_bitmask(w, mask)` gives back `bits` and
    `values` bit for bit, and `from_bitmask(*to_bitmask(w, mask), w.shape)` is `(apply_mask(w, mask), mask)`.

    !!! note
        A malformed encoding is rejected with `ValueError`, never repaired: a wrong number of bytes, a set padding
        bit, or a number of values that differs from the number of set bits.
    """
    bits = _arrays.array("bits", bits, ("uint8",))
    values = _arrays.finite_array("values", values)
    shape = shapes.shape("shape", shape)
    n = math.prod(shape)
    _arrays.shaped("bits", bits, ((n + 7) // 8,), f"shape {shape}")
    unpacked = np.unpackbits(bits, bitorder="little")
    if unpacked[n:].any():
        i = n + int(np.flatnonzero(unpacked[n:])[0])
        raise ValueError(f"bits must be 0 past the {n} encoded elements, got a 1 at bit {i}")
    mask = unpacked[:n].astype(bool)
    nnz = int(np.count_nonzero(mask))
    _arrays.shaped("values", values, (nnz,), f"bits with {nnz} set bits")
    dense = np.zeros(n, dtype=np.float32)
    dense[mask] = values
    return dense.reshape(shape), mask.reshape(shape)


def to_csr(w, mask):
    r"""Encode the kept entries of a 2-D tensor in compressed sparse row (CSR) form.

    Row $r$'s entries are `values[indptr[r]:indptr[r+1]]` at columns `indices[indptr[r]:indptr[r+1]]`, the
    columns strictly increasing: the kept entries in C order.

    **Arguments:**

    - `w`: a float32 array of shape `(rows, cols)`, finite.
    - `mask`: a bool array of exactly `w`'s shape, True where the weight is stored.

    **Returns:**

    `(indptr, indices, values)`: int64 of shape `(rows + 1,)` starting at 0, int64 of shape `(nnz,)`, float32 of
    shape `(nnz,)` holding the kept weights bit for bit.

    !!! note
        Stored zeros are kept where the mask says so (`scipy.sparse.csr_matrix(w)` and `Tensor.to_sparse_csr()`
        drop every zero instead). Indices are int64 here, as torch stores them; `csr_bytes` counts them at any
        width. Example: `(indptr, indices, values)`, the stored `-0.0` kept:

            >>> to_csr(np.float32([[0, 2], [3, -0.0]]), np.array([[False, True], [True, True]]))
            (array([0, 1, 3]), array([1, 0, 1]), array([ 2.,  3., -0.], dtype=float32))

    ??? cite "Han et al., 2016"
        Deep Compression: Compressing Deep Neural Networks with Pruning, Trained Quantization and Huffman Coding.
        ICLR. arXiv:1510.00149
    """
    w = _arrays.finite_array("w", w)
    if w.ndim != 2:
        raise ValueError(f"w must be 2-D (rows, cols) for CSR, got shape {tuple(w.shape)}")
    mask = _arrays.shaped("mask", _arrays.array("mask", mask, ("bool",)), w.shape, "w")
    counts = np.count_nonzero(mask, axis=1).astype(np.int64)
    indptr = np.concatenate([np.zeros(1, dtype=np.int64), np.cumsum(counts, dtype=np.int64)])
    _, cols = np.nonzero(mask)
    return indptr, cols.astype(np.int64), w[mask]


def from_csr(indptr, indices, values, shape):
    r"""Decode `to_csr`'s encoding: the dense tensor with `+0.0` where nothing is stored, and the mask.

    $$ w_{r,\,\text{indices}_p} = \text{values}_p, \qquad \text{indptr}_r \le p < \text{indptr}_{r+1} $$

    **Arguments:**

    - `indptr`: an int64 array of shape `(rows + 1,)`: starts at 0, non-decreasing.
    - `indices`: an int64 array of shape `(indptr[-1],)`: columns in `[0, cols)`, strictly increasing within each
      row (canonical CSR: sorted, no duplicates).
    - `values`: a float32 array of shape `(indptr[-1],)`, finite.
    - `shape`: `(rows, cols)`, two ints >= 0 with at most `2**40` elements (`reference.common.shapes`).

    **Returns:**

    `(w, mask)`: a float32 array and a bool array of shape `shape`. `to_csr(w, mask)` gives back the three arrays
    bit for bit.

    !!! note
        A malformed encoding raises `ValueError` naming the first bad position, checked in this order: `indptr`'s
        length, its start, its order; the lengths of `indices` and `values`; the column range; the column order.
    """
    indptr = _arrays.array("indptr", indptr, ("int64",))
    indices = _arrays.array("indices", indices, ("int64",))
    values = _arrays.finite_array("values", values)
    shape = shapes.shape("shape", shape)
    if len(shape) != 2:
        raise ValueError(f"shape must be (rows, cols) for CSR, got {shape}")
    rows, cols = shape
    _arrays.shaped("indptr", indptr, (rows + 1,), f"shape {shape}")
    if indptr[0] != 0:
        raise ValueError(f"indptr must start at 0, got {int(indptr[0])}")
    steps = np.diff(indptr)
    if (steps < 0).any():
        r = int(np.flatnonzero(steps < 0)[0])
        raise ValueError(f"indptr must be non-decreasing, got {int(indptr[r])} then {int(indptr[r + 1])} at row {r}")
    nnz = int(indptr[-1])
    _arrays.shaped("indices", indices, (nnz,), f"indptr ending at {nnz}")
    _arrays.shaped("values", values, (nnz,), f"indptr ending at {nnz}")
    _arrays.within("indices", indices, 0, cols - 1)
    row = np.repeat(np.arange(rows, dtype=np.int64), steps)
    unsorted = (row[1:] == row[:-1]) & (indices[1:] <= indices[:-1])
    if unsorted.any():
        p = int(np.flatnonzero(unsorted)[0])
        raise ValueError(
            f"indices must increase strictly within each row, got {int(indices[p])} then {int(indices[p + 1])} "
            f"in row {int(row[p])}"
        )
    dense = np.zeros(shape, dtype=np.float32)
    mask = np.zeros(shape, dtype=bool)
    dense[row, indices] = values
    mask[row, indices] = True
    return dense, mask


def dense_bytes(shape, bits=32):
    r"""Bytes of a dense tensor whose elements take `bits` bits each, packed: $\lceil n b / 8 \rceil$.

    **Arguments:**

    - `shape`: the tensor's shape, a tuple of ints >= 0 ($n$ = their product, at most `2**40`).
    - `bits`: bits per element, an int in `[1, 64]`: 32 for float32, 16 for bfloat16, 4 for packed int4 codes.

    **Returns:**

    A Python int. Example: 9 int4 codes take $\lceil 36 / 8 \rceil$ bytes, 10 float32 values 40:

        >>> dense_bytes((3, 3), 4), dense_bytes((10,))
        (5, 40)
    """
    shape = shapes.shape("shape", shape)
    bits = validate.integer("bits", bits, lo=1, hi=64)
    return _packed(math.prod(shape), bits)


def bitmask_bytes(shape, nnz, bits=32):
    r"""Bytes of the bitmask encoding (`to_bitmask`): one bit per element, then the kept values packed.

    $$ \lceil n / 8 \rceil + \lceil \text{nnz} \cdot b / 8 \rceil $$

    **Arguments:**

    - `shape`: the dense shape ($n$ = the product, at most `2**40`).
    - `nnz`: the number of stored values, an int in $[0, n]$.
    - `bits`: bits per stored value, an int in `[1, 64]`.

    **Returns:**

    A Python int. Example: a 4096 x 4096 float32 weight at 50% sparsity takes $2^{21} + 2^{25}$ bytes, 53% of
    dense:

        >>> bitmask_bytes((4096, 4096), 2**23) == 2**21 + 2**25
        True
    """
    shape = shapes.shape("shape", shape)
    n = math.prod(shape)
    nnz = validate.integer("nnz", nnz, lo=0, hi=n)
    bits = validate.integer("bits", bits, lo=1, hi=64)
    return _packed(n, 1) + _packed(nnz, bits)


def csr_bytes(shape, nnz, bits=32, index_bits=32):
    r"""Bytes of the CSR encoding (`to_csr`) with unsigned integers of `index_bits` bits for `indptr` and `indices`.

    $$ \lceil (\text{rows} + 1)\, b_i / 8 \rceil + \lceil \text{nnz}\, b_i / 8 \rceil
       + \lceil \text{nnz}\, b / 8 \rceil $$

    **Arguments:**

    - `shape`: `(rows, cols)`, at most `2**40` elements.
    - `nnz`: the number of stored values, an int in $[0, \text{rows} \cdot \text{cols}]$.
    - `bits`: bits per stored value, an int in `[1, 64]`.
    - `index_bits`: bits per index, an int in `[1, 64]`; it must hold every stored index:
      $2^{b_i} > \max(\text{nnz}, \text{cols} - 1)$ (64 is what `to_csr` stores; scipy uses 32 where it fits).

    **Returns:**

    A Python int. Example: $12 + 8 + 8$ bytes, where the dense float32 tensor takes 24:

        >>> csr_bytes((2, 3), 2)
        28

    !!! note
        Deep Compression stores 4- or 8-bit *relative* column indices with filler entries for long gaps; that
        variant is not counted here.
    """
    shape = shapes.shape("shape", shape)
    if len(shape) != 2:
        raise ValueError(f"shape must be (rows, cols) for CSR, got {shape}")
    rows, cols = shape
    nnz = validate.integer("nnz", nnz, lo=0, hi=rows * cols)
    bits = validate.integer("bits", bits, lo=1, hi=64)
    index_bits = validate.integer("index_bits", index_bits, lo=1, hi=64)
    largest = max(nnz, cols - 1)
    if largest >= 2**index_bits:
        raise ValueError(f"index_bits {index_bits} cannot hold the index {largest}")
    return _packed(rows + 1, index_bits) + _packed(nnz, index_bits) + _packed(nnz, bits)


def quantized_bytes(shape, bits, groups=1, scale_bits=32, zero_point_bits=0):
    r"""Bytes of a packed quantized tensor: the codes, then one scale (and zero point) per quantization group.

    $$ \lceil n b / 8 \rceil + \lceil G\, b_s / 8 \rceil + \lceil G\, b_z / 8 \rceil $$

    **Arguments:**

    - `shape`: the tensor's shape ($n$ = the product, at most `2**40`).
    - `bits`: bits per code, an int in `[1, 64]`.
    - `groups`: the number $G$ of scales, an int in `[0, 2**40]`: 1 per tensor, the channel count per channel,
      $n / g$ for groups of $g$.
    - `scale_bits`: bits per scale, an int in `[0, 64]` (32 for float32, 16 for float16, 8 for an E8M0 exponent).
    - `zero_point_bits`: bits per zero point, an int in `[0, 64]`; 0 for symmetric quantization.

    **Returns:**

    A Python int. Example: int4 codes of a 4096 x 4096 weight in groups of 128 with float16 scales take
    $2^{23} + 2^{18}$ bytes, 3.1 % above the codes alone:

        >>> quantized_bytes((4096, 4096), 4, groups=2**17, scale_bits=16) == 2**23 + 2**18
        True
    """
    shape = shapes.shape("shape", shape)
    bits = validate.integer("bits", bits, lo=1, hi=64)
    groups = shapes.size("groups", groups, lo=0)
    scale_bits = validate.integer("scale_bits", scale_bits, lo=0, hi=64)
    zero_point_bits = validate.integer("zero_point_bits", zero_point_bits, lo=0, hi=64)
    return _packed(math.prod(shape), bits) + _packed(groups, scale_bits) + _packed(groups, zero_point_bits)


def _packed(count, bits):
    """Bytes of `count` entries of `bits` bits, back to back, padded to a whole byte: ceil(count * bits / 8)."""
    return (count * bits + 7) // 8
