"""Strategies of valid inputs for the entries of `reference.quantization.codebook`: `kmeans_cases`,
`codebook_assign_cases`, `codebook_decode_cases`.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from spec.entry import Case
from spec.strategies.base import F32, float32_arrays, float32_values, shapes

__all__ = ["kmeans_cases", "codebook_assign_cases", "codebook_decode_cases"]


# Codebook values whose sums need more than 53 bits: float64 distances tie falsely around them.
FAR = (-(2.0**-60), 2.0**-60, 1.0, 0.5, -0.5, 2.0**40, 3.0)


def _weights():
    return st.one_of(float32_values(), st.integers(-8, 8).map(float), st.sampled_from(FAR))


@st.composite
def kmeans_cases(draw):
    w = draw(float32_arrays(elements=_weights(), min_side=1, max_dims=2))
    k = draw(st.one_of(st.integers(2, 6), st.sampled_from([8, 16])))
    return Case((w, k), {"iterations": draw(st.integers(0, 5))})


@st.composite
def _codebooks(draw, sorted_):
    c = np.array(draw(st.lists(_weights(), min_size=1, max_size=8)), dtype=np.float32)
    if draw(st.booleans()):
        c = np.concatenate([c, c[: draw(st.integers(0, c.size))]])[:8]  # repeated entries
    return np.sort(c) if sorted_ else c


@st.composite
def codebook_assign_cases(draw):
    c = draw(_codebooks(sorted_=True))
    w = draw(float32_arrays(elements=_weights())).copy()
    # Exact and near midpoints between neighbours, and the entries themselves.
    mid = ((c[:-1].astype(np.float64) + c[1:]) / 2).astype(np.float32)
    big = np.finfo(np.float32).max
    special = np.concatenate([mid, np.nextafter(mid, F32(big)), np.nextafter(mid, F32(-big)), c])
    if w.size and special.size:
        pick = draw(hnp.arrays(np.bool_, w.shape))
        which = draw(hnp.arrays(np.int64, w.shape, elements=st.integers(0, special.size - 1)))
        w = np.where(pick, special[which], w).astype(np.float32)
    return Case((w, c))


@st.composite
def codebook_decode_cases(draw, with_grad=False):
    c = draw(_codebooks(sorted_=False))
    indices = draw(hnp.arrays(np.uint8, shapes(), elements=st.integers(0, c.size - 1)))
    if with_grad:
        return Case((draw(float32_arrays(shape=st.just(indices.shape))), indices, c))
    return Case((indices, c))
