"""Strategies of valid inputs for the entries of `reference.core.reduce`: `reduce_cases`."""

from __future__ import annotations

from hypothesis import strategies as st

from spec.entry import Case
from spec.strategies.base import float32_arrays, float64_arrays

__all__ = ["reduce_cases"]


@st.composite
def reduce_cases(draw, mean=False, norm=False):
    dtype = "float32" if norm else draw(st.sampled_from(["float32", "float64"]))
    min_side = 1 if mean else 0
    x = draw(float32_arrays(min_side=min_side) if dtype == "float32" else float64_arrays(min_side=min_side))
    axis = None if x.ndim == 0 else draw(st.one_of(st.none(), st.integers(-x.ndim, x.ndim - 1)))
    kwargs = {"axis": axis}
    if norm:
        kwargs["p"] = draw(st.sampled_from([1, 2]))
    return Case((x,), kwargs)
