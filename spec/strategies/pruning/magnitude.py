"""Strategies of valid inputs for the entries of `reference.pruning.magnitude`: `count_cases`, `magnitude_cases`,
`magnitude_count_cases`, `threshold_cases`, `global_cases`, `apply_mask_cases`.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from spec.entry import Case
from spec.strategies.base import float32_arrays, float32_values, fractions_for

__all__ = [
    "count_cases",
    "magnitude_cases",
    "magnitude_count_cases",
    "threshold_cases",
    "global_cases",
    "apply_mask_cases",
]


@st.composite
def count_cases(draw):
    n = draw(st.integers(0, 10_000))
    return Case((draw(fractions_for(n)), n))


@st.composite
def magnitude_cases(draw):
    w = draw(float32_arrays())
    return Case((w, draw(fractions_for(w.size))))


@st.composite
def magnitude_count_cases(draw):
    w = draw(float32_arrays())
    return Case((w, draw(st.integers(0, w.size))))


@st.composite
def threshold_cases(draw):
    w = draw(float32_arrays())
    exact = [abs(float(v)) for v in w.reshape(-1)[:8]]
    t = draw(
        st.one_of([st.floats(0, 1e3), st.sampled_from([0.0, 0.5, 1.0])] + ([st.sampled_from(exact)] if exact else []))
    )
    return Case((w, t))


@st.composite
def global_cases(draw):
    ws = draw(st.lists(float32_arrays(max_dims=2), min_size=1, max_size=4))
    return Case((ws, draw(fractions_for(sum(w.size for w in ws)))))


@st.composite
def apply_mask_cases(draw, with_grad=False):
    with_nonfinite = st.one_of(float32_values(), st.sampled_from([float("inf"), float("-inf"), float("nan")]))
    w = draw(float32_arrays(elements=with_nonfinite))
    mask = draw(hnp.arrays(np.bool_, w.shape))
    if with_grad:
        return Case((draw(float32_arrays(shape=st.just(w.shape))), w, mask))
    return Case((w, mask))
