"""Strategies of valid inputs for the entries of `reference.quantization.dynamic`: `per_token_cases`."""

from __future__ import annotations

from hypothesis import strategies as st

from spec.entry import Case
from spec.strategies.base import float32_arrays, shapes

__all__ = ["per_token_cases"]


@st.composite
def per_token_cases(draw):
    """`(x,)` with `bits`, `symmetric`: activations `(..., features)` with ties, zero tokens, outliers and .5 ties."""
    shape = draw(shapes(min_dims=1, max_dims=3, min_side=0, max_side=6).filter(lambda s: s[-1] >= 1))
    x = draw(float32_arrays(shape=st.just(shape)))
    kw = {"bits": draw(st.sampled_from([2, 4, 8, 8, 16])), "symmetric": draw(st.booleans())}
    return Case((x,), kw)
