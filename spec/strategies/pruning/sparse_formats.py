"""Strategies of valid inputs for the entries of `reference.pruning.sparse_formats`: `to_bitmask_cases`,
`from_bitmask_cases`, `to_csr_cases`, `from_csr_cases`, `dense_bytes_cases`, `bitmask_bytes_cases`,
`csr_bytes_cases`, `quantized_bytes_cases`.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from spec.entry import Case
from spec.strategies.base import float32_arrays, shapes

__all__ = [
    "to_bitmask_cases",
    "from_bitmask_cases",
    "to_csr_cases",
    "from_csr_cases",
    "dense_bytes_cases",
    "bitmask_bytes_cases",
    "csr_bytes_cases",
    "quantized_bytes_cases",
]


@st.composite
def to_bitmask_cases(draw):
    w = draw(float32_arrays(max_side=7))
    return Case((w, draw(hnp.arrays(np.bool_, w.shape))))


@st.composite
def from_bitmask_cases(draw):
    shape = draw(shapes(max_side=7))
    mask = draw(hnp.arrays(np.bool_, shape))
    values = draw(float32_arrays(shape=st.just((int(mask.sum()),))))
    return Case((np.packbits(mask.reshape(-1), bitorder="little"), values, draw(st.sampled_from([shape, list(shape)]))))


@st.composite
def to_csr_cases(draw):
    w = draw(float32_arrays(min_dims=2, max_dims=2, max_side=7))
    mask = draw(st.one_of(hnp.arrays(np.bool_, w.shape), st.just(w != 0)))
    return Case((w, mask))


@st.composite
def from_csr_cases(draw):
    rows, cols = draw(st.integers(0, 7)), draw(st.integers(0, 7))
    mask = draw(hnp.arrays(np.bool_, (rows, cols)))
    indptr = np.concatenate([[0], np.cumsum(mask.sum(axis=1))]).astype(np.int64)
    indices = np.nonzero(mask)[1].astype(np.int64)
    values = draw(float32_arrays(shape=st.just((indices.size,))))
    return Case((indptr, indices, values, (rows, cols)))


def _sizes():
    return st.lists(st.one_of(st.integers(0, 9), st.integers(0, 5000)), min_size=0, max_size=3).map(tuple)


@st.composite
def dense_bytes_cases(draw):
    return Case((draw(_sizes()),), {"bits": draw(st.integers(1, 64))})


@st.composite
def bitmask_bytes_cases(draw):
    shape = draw(_sizes())
    n = math.prod(shape)
    return Case(
        (shape, draw(st.one_of(st.integers(0, n), st.sampled_from([0, n])))), {"bits": draw(st.integers(1, 64))}
    )


@st.composite
def csr_bytes_cases(draw):
    rows, cols = draw(st.integers(0, 5000)), draw(st.integers(0, 5000))
    nnz = draw(st.integers(0, rows * cols))
    need = max(1, max(nnz, cols - 1).bit_length())
    kwargs = {"bits": draw(st.integers(1, 64)), "index_bits": draw(st.integers(need, 64))}
    return Case(((rows, cols), nnz), kwargs)


@st.composite
def quantized_bytes_cases(draw):
    shape = draw(_sizes())
    kwargs = {
        "groups": draw(st.integers(0, max(1, math.prod(shape)))),
        "scale_bits": draw(st.sampled_from([0, 8, 16, 32])),
        "zero_point_bits": draw(st.sampled_from([0, 4, 8, 32])),
    }
    return Case((shape, draw(st.integers(1, 64))), kwargs)
