"""Strategies of valid inputs for the entries of `reference.codecs.nibbles`: `nibble_pack_cases`,
`nibble_unpack_cases`.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from spec.entry import Case
from spec.strategies.base import shapes

__all__ = ["nibble_pack_cases", "nibble_unpack_cases"]


ORDERS = ("low_first", "high_first")


@st.composite
def nibble_pack_cases(draw):
    lead = draw(shapes(max_dims=2, max_side=3))
    codes = draw(hnp.arrays(np.uint8, lead + (2 * draw(st.integers(0, 4)),), elements=st.integers(0, 15)))
    return Case((codes,), {"order": draw(st.sampled_from(ORDERS))})


@st.composite
def nibble_unpack_cases(draw):
    packed = draw(hnp.arrays(np.uint8, shapes(min_dims=1, max_dims=3, max_side=4)))
    return Case((packed,), {"order": draw(st.sampled_from(ORDERS))})
