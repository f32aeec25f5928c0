"""Strategies of valid inputs for the entries of `reference.core.select`: `select_cases`."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from spec.entry import Case
from spec.strategies.base import float32_arrays, float32_values, float64_arrays, shapes

__all__ = ["select_cases"]


@st.composite
def select_cases(draw):
    dtype = draw(st.sampled_from(["float32", "float64", "int64"]))
    if dtype == "float32":
        with_inf = st.one_of(float32_values(), st.sampled_from([float("inf"), float("-inf")]))
        scores = draw(float32_arrays(elements=with_inf))
    elif dtype == "float64":
        scores = draw(float64_arrays())
    else:
        scores = draw(hnp.arrays(np.int64, shapes(), elements=st.integers(-5, 5)))
    return Case((scores, draw(st.integers(0, scores.size))))
