r"""compressed-tensors' `pack-quantized` format: signed integer codes of 1 to 8 bits, offset to unsigned and
packed densely into int32 words along one axis.

A code $q \in [-2^{b-1}, 2^{b-1} - 1]$ is stored as $u = q + 2^{b-1}$; in each row (along `packed_dim`), code
$i$ occupies stream bits $[ib, ib + b)$, stream bit $k$ being bit $k \bmod 32$ of word $\lfloor k / 32
\rfloor$: a code may straddle two words, its low bits in the first. A row of $n$ codes takes
$\lceil n b / 32 \rceil$ words, the unused high bits of the last word 0. This is `pack_to_int32` /
`unpack_from_int32` of compressed-tensors, the `weight_packed` tensor of a `pack-quantized` checkpoint (with
`weight_shape` giving the unpacked shape); the scales and zero points are stored beside it unpacked.
"""

from __future__ import annotations

import numpy as np

from reference import _arrays
from reference.common import checks, validate

__all__ = ["pack_quantized", "unpack_quantized"]


def pack_quantized(q, *, bits, packed_dim):
    r"""Pack signed `bits`-bit codes into int32 words along `packed_dim`, as compressed-tensors' `pack_to_int32`.

    $$ \text{word}_{r, m} = \sum_{k=0}^{31} 2^{k} \cdot \Big\lfloor \frac{u_{r, \lfloor (32 m + k) / b \rfloor}}
       {2^{(32 m + k) \bmod b}} \Big\rfloor \bmod 2, \qquad u = q + 2^{b-1} $$

    read as int32.

    **Arguments:**

    - `q`: an int8 array, 2-D, codes in $[-2^{b-1}, 2^{b-1} - 1]$.
    - `bits`: the code width $b$, an int in `[1, 8]`.
    - `packed_dim`: 1 (pack each row along the columns, the default of compressed-tensors) or 0 (each column
      along the rows).

    **Returns:**

    An int32 array: `(rows, ceil(cols * b / 32))` for `packed_dim=1`, `(ceil(rows * b / 32), cols)` for 0.

    !!! note
        4-bit codes: code $2i$ in the low nibble of its byte, the bytes of a word little-endian, so a row of
        int4 codes reads as `pack_nibbles(q + 8, order="low_first")` in memory. A code outside the range
        raises `ValueError` (nothing is masked).

    Example (`bits=4`): codes `[-8, -7, 0, 7, 1, 2, 3, 4]` are stored as `[0, 1, 8, 15, 9, 10, 11, 12]`, the
    first in the low nibble; the word is read as int32:

        >>> packed = pack_quantized(np.int8([[-8, -7, 0, 7, 1, 2, 3, 4]]), bits=4, packed_dim=1)
        >>> packed, hex(packed.view(np.uint32)[0, 0])
        (array([[-878053360]], dtype=int32), '0xcba9f810')

    ??? cite "Neural Magic / vLLM, compressed-tensors"
        `compressed_tensors.compressors.pack_quantized.helpers.pack_to_int32`; the `pack-quantized` format of
        llm-compressor checkpoints.
    """
    b, dim = checks.compressed_tensors_options(bits, packed_dim)
    q = _arrays.array("q", q, ("int8",))
    if q.ndim != 2:
        raise ValueError(f"q must be 2-D, got shape {tuple(q.shape)}")
    _arrays.within("q", q, -(2 ** (b - 1)), 2 ** (b - 1) - 1)
    u = q.astype(np.int64) + 2 ** (b - 1)
    rows = u if dim == 1 else u.T
    words = _pack_rows(rows, b)
    return np.asarray(words if dim == 1 else words.T)


def unpack_quantized(packed, *, bits, shape, packed_dim):
    r"""Unpack int32 words into signed `bits`-bit codes of `shape`, the inverse of `pack_quantized`.

    **Arguments:**

    - `packed`: an int32 array, 2-D, of the packed shape of `shape` (see `pack_quantized`).
    - `bits`: an int in `[1, 8]`.
    - `shape`: the unpacked shape, a pair of ints $\ge 0$ (compressed-tensors' `weight_shape`).
    - `packed_dim`: 1 or 0.

    **Returns:**

    An int8 array of `shape`.

    !!! note
        Strict: a set bit after the last code of a row raises `ValueError`, so that packing and unpacking are
        inverse bijections (compressed-tensors ignores those bits).

    Example: `pack_quantized`'s word, unpacked:

        >>> unpack_quantized(np.array([[0xCBA9F810]], np.uint32).view(np.int32), bits=4, shape=(1, 8), packed_dim=1)
        array([[-8, -7,  0,  7,  1,  2,  3,  4]], dtype=int8)
    """
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
    stream = ((words.astype(np.int64)[:, :, None] & 0xFFFFFFFF) >> np.arange(32)) & 1
    stream = stream.reshape(rows_n, words_n * 32)
    padding = stream[:, n * b :]
    if padding.any():
        r, k = (int(v[0]) for v in np.nonzero(padding))
        raise ValueError(f"packed has a set padding bit after the last code of row {r}: stream bit {n * b + k}")
    u = (stream[:, : n * b].reshape(rows_n, n, b) << np.arange(b)).sum(axis=2)
    q = (u - 2 ** (b - 1)).astype(np.int8)
    return np.asarray(q if dim == 1 else q.T)


# ---------------------------------------------------------------------------------------------------------------


def _pack_rows(u, b):
    """(rows, n) unsigned codes -> (rows, ceil(n b / 32)) int32 words of their little-endian bit stream."""
    rows, n = u.shape
    words_n = -(-n * b // 32)
    stream = ((u[:, :, None] >> np.arange(b)) & 1).reshape(rows, n * b)
    stream = np.concatenate([stream, np.zeros((rows, words_n * 32 - n * b), np.int64)], axis=1)
    words = (stream.reshape(rows, words_n, 32) << np.arange(32, dtype=np.int64)).sum(axis=2)
    return words.astype(np.uint32).view(np.int32)
