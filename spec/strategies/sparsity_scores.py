"""Strategies for saliency scores and masks, lottery-ticket rounds, and sparse storage formats.

Beyond the shared hard cases (ties, signed zeros, subnormals, the largest floats): products that overflow to
infinity, sums of products that cancel exactly, identical filters, feature norms beyond the float32 range, bitmask
lengths that are not multiples of 8, empty rows in CSR.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from spec.entry import Case

from .base import F32_MAX, float32_arrays, float32_values, fractions_for, shapes

__all__ = [
    "score_mask_cases",
    "movement_cases",
    "snip_cases",
    "taylor_cases",
    "wanda_cases",
    "fpgm_cases",
    "block_cases",
    "imp_mask_cases",
    "rewind_cases",
    "imp_schedule_cases",
    "to_bitmask_cases",
    "from_bitmask_cases",
    "to_csr_cases",
    "from_csr_cases",
    "dense_bytes_cases",
    "bitmask_bytes_cases",
    "csr_bytes_cases",
    "quantized_bytes_cases",
]


def _like(draw, w):
    """Another float32 array of `w`'s shape: independent, equal to w, its negation, or all equal (cancellations)."""
    kind = draw(st.sampled_from(["any", "any", "same", "negated", "constant"]))
    if kind == "same":
        return w.copy()
    if kind == "negated":
        return -w
    if kind == "constant":
        return np.full(w.shape, draw(float32_values()), dtype=np.float32)
    return draw(float32_arrays(shape=st.just(w.shape)))


@st.composite
def score_mask_cases(draw):
    with_inf = st.one_of(float32_values(), st.sampled_from([float("inf"), float("-inf")]))
    scores = draw(float32_arrays(elements=with_inf))
    return Case((scores, draw(fractions_for(scores.size))))


@st.composite
def movement_cases(draw):
    w = draw(float32_arrays())
    return Case((draw(float32_arrays(shape=st.just(w.shape))), w, _like(draw, w)))


@st.composite
def snip_cases(draw):
    w = draw(float32_arrays())
    return Case((w, _like(draw, w)))


@st.composite
def taylor_cases(draw, mask=False):
    w = draw(float32_arrays(min_dims=1))
    grad = _like(draw, w)
    axis = draw(st.integers(-w.ndim, w.ndim - 1))
    if mask:
        return Case((w, grad, draw(fractions_for(w.shape[axis]))), {"axis": axis})
    return Case((w, grad), {"axis": axis})


@st.composite
def wanda_cases(draw, mask=False):
    out, n_in, tokens = draw(st.integers(0, 6)), draw(st.integers(0, 6)), draw(st.integers(1, 6))
    w = draw(float32_arrays(shape=st.just((out, n_in))))
    huge = st.sampled_from([F32_MAX, -F32_MAX, 2.0**100])
    x = draw(float32_arrays(shape=st.just((tokens, n_in)), elements=st.one_of(float32_values(), huge)))
    if mask:
        return Case((w, x, draw(fractions_for(n_in))))
    return Case((w, x))


@st.composite
def fpgm_cases(draw, mask=False):
    w = draw(float32_arrays(min_dims=1, max_side=5))
    if w.ndim and w.shape[0] >= 2 and draw(st.booleans()):
        w[1] = w[0]  # identical filters: equal scores
    axis = draw(st.integers(-w.ndim, w.ndim - 1))
    if mask:
        return Case((w, draw(fractions_for(w.shape[axis]))), {"axis": axis})
    return Case((w,), {"axis": axis})


@st.composite
def block_cases(draw, mask=False):
    b0, b1 = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    r, c = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    w = draw(float32_arrays(shape=st.just((r * b0, c * b1))))
    block = draw(st.sampled_from([(b0, b1), [b0, b1]]))
    if mask:
        return Case((w, draw(fractions_for(r * c)), block))
    return Case((w, block))


@st.composite
def imp_mask_cases(draw):
    w = draw(float32_arrays())
    mask = draw(st.one_of(hnp.arrays(np.bool_, w.shape), st.just(np.ones(w.shape, dtype=bool))))
    return Case((w, mask, draw(fractions_for(int(mask.sum())))))


@st.composite
def rewind_cases(draw):
    w = draw(float32_arrays())
    return Case((w, draw(hnp.arrays(np.bool_, w.shape))))


@st.composite
def imp_schedule_cases(draw):
    n = draw(st.one_of(st.integers(0, 20), st.integers(0, 10**7)))
    fraction = draw(st.one_of(fractions_for(n), st.sampled_from([0.2, 0.1, 0.5])))
    return Case((n, fraction, draw(st.integers(0, 40))))


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
