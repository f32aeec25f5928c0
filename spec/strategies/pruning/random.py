"""Strategies of valid inputs for the entries of `reference.pruning.random`: `random_mask_cases`."""

from __future__ import annotations

from hypothesis import strategies as st

from spec.entry import Case
from spec.strategies.base import float32_arrays, fractions_for, keys

__all__ = ["random_mask_cases"]


@st.composite
def random_mask_cases(draw):
    w = draw(float32_arrays())
    return Case((w, draw(fractions_for(w.size)), draw(keys())))
