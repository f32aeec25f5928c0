"""Strategies of valid inputs for the entries of `reference.core.rounding`: `rounding_cases`."""

from __future__ import annotations

from hypothesis import strategies as st

from spec.entry import Case
from spec.strategies.base import ROUNDING_MODES, float32_arrays, keys

__all__ = ["rounding_cases"]


def rounding_cases(stochastic=False, with_mode=False):
    @st.composite
    def build(draw):
        x = draw(float32_arrays())
        if with_mode:
            mode = draw(st.sampled_from(ROUNDING_MODES))
            key = draw(keys()) if mode == "stochastic" else None
            return Case((x,), {"mode": mode, "key": key})
        if stochastic:
            return Case((x, draw(keys())))
        return Case((x,))

    return build()
