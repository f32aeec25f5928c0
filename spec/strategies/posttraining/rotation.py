"""Strategies of valid inputs for the entries of `reference.posttraining.rotation`: `hadamard_size_cases`,
`hadamard_transform_cases`.

Sizes cover every construction (powers of two, 12 and 20 times a power of two, the 40-row table); values include
dyadic ones whose sums divided by 2 land exactly on float32 midpoints (ties to even), cancelling pairs (a zero sum
gives `+0.0`), signed zeros, subnormals and huge values (outputs that overflow).
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from spec.entry import Case
from spec.strategies.base import keys

__all__ = ["hadamard_size_cases", "hadamard_transform_cases"]

SIZES = (1, 2, 4, 8, 12, 16, 20, 24, 32, 40, 48, 80)
VALUES = st.one_of(
    st.sampled_from((0.0, -0.0, 1.0, -1.0, 2.0**-24, 3.0, 0.5, 2.0**-149, 1e38, -3e38)),
    st.floats(-8, 8, width=32),
    st.floats(width=32, allow_nan=False, allow_infinity=False),
)


def hadamard_size_cases():
    """`(n,)` for `hadamard_matrix`."""
    return st.sampled_from(SIZES + (64, 96, 160)).map(lambda n: Case((n,)))


@st.composite
def hadamard_transform_cases(draw):
    """`(x,)` and `key`, `inverse` for `hadamard_transform`: `x` of shape `(..., n)`."""
    n = draw(st.sampled_from(SIZES))
    lead = draw(st.lists(st.integers(0, 3), min_size=0, max_size=2))
    x = draw(hnp.arrays(np.float32, (*lead, n), elements=VALUES))
    if x.size and draw(st.booleans()):  # cancellation: the second half of a row repeats the first, negated
        flat = x.reshape(-1, n)
        flat[:, n // 2 : 2 * (n // 2)] = -flat[:, : n // 2]
    kw = {}
    if draw(st.booleans()):
        kw["key"] = draw(keys())
    if draw(st.booleans()):
        kw["inverse"] = draw(st.booleans())
    return Case((x,), kw)
