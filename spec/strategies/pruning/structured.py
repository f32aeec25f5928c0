"""Strategies of valid inputs for the entries of `reference.pruning.structured`: `structured_cases`, `nm_cases`."""

from __future__ import annotations

from hypothesis import strategies as st

from spec.entry import Case
from spec.strategies.base import float32_arrays, fractions_for, shapes

__all__ = ["structured_cases", "nm_cases"]


@st.composite
def structured_cases(draw):
    w = draw(float32_arrays(min_dims=1))
    axis = draw(st.integers(-w.ndim, w.ndim - 1))
    return Case((w, draw(fractions_for(w.shape[axis]))), {"p": draw(st.sampled_from([1, 2])), "axis": axis})


@st.composite
def nm_cases(draw):
    m = draw(st.integers(1, 8))
    n = draw(st.integers(0, m))
    shape = list(draw(shapes(min_dims=1, max_dims=3, max_side=4)))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    shape[axis] *= m
    w = draw(float32_arrays(shape=st.just(tuple(shape))))
    return Case((w, n, m), {"axis": axis})
