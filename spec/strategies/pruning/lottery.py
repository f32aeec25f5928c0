"""Strategies of valid inputs for the entries of `reference.pruning.lottery`: `imp_mask_cases`, `rewind_cases`,
`imp_schedule_cases`.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from spec.entry import Case
from spec.strategies.base import float32_arrays, fractions_for

__all__ = ["imp_mask_cases", "rewind_cases", "imp_schedule_cases"]


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
