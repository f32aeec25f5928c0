"""Strategies of valid inputs for the entries of `reference.pruning.slimming`: `slimming_grad_cases`,
`slimming_mask_cases`.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from spec.entry import Case
from spec.strategies.base import float32_arrays, float32_values, fractions_for, shapes
from spec.strategies.base import strengths as _strengths

__all__ = ["slimming_grad_cases", "slimming_mask_cases"]


@st.composite
def slimming_grad_cases(draw):
    """`(grads, gammas, lam)`: one to four layers, gradients shaped like their scaling factors."""
    gammas = draw(st.lists(float32_arrays(max_dims=1, max_side=8), min_size=1, max_size=4))
    grads = [draw(float32_arrays(shape=st.just(g.shape))) for g in gammas]
    return Case((grads, gammas, draw(_strengths())))


@st.composite
def slimming_mask_cases(draw):
    """`(gammas, ratio)` and `min_channels`: 1-D layers of 0 to 8 channels, ties across layers, small minimums."""
    shared = draw(float32_values())  # a value repeated across layers: ties that cross a layer boundary
    elements = st.one_of(float32_values(), st.just(shared))
    gammas = draw(
        st.lists(float32_arrays(shape=shapes(min_dims=1, max_dims=1, max_side=8), elements=elements), max_size=4)
    )
    gammas = gammas or [np.zeros(0, dtype=np.float32)]
    total = sum(g.size for g in gammas)
    return Case((gammas, draw(fractions_for(total))), {"min_channels": draw(st.integers(0, 4))})
