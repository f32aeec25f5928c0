"""Strategies of valid inputs for the entries of `reference.quantization.packing`: `pack_cases`, `unpack_cases`."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from spec.entry import Case
from spec.strategies.base import shapes

__all__ = ["pack_cases", "unpack_cases"]


@st.composite
def pack_cases(draw):
    bits = draw(st.integers(1, 16))
    top = 2**bits - 1
    dtype = np.uint16 if bits > 8 else draw(st.sampled_from([np.uint8, np.uint16]))
    codes = draw(
        hnp.arrays(dtype, shapes(max_dims=2, max_side=7), elements=st.one_of(st.integers(0, top), st.just(top)))
    )
    return Case((codes, bits))


@st.composite
def unpack_cases(draw):
    from reference.quantization.packing import pack_bits

    bits = draw(st.integers(1, 16))
    dtype = np.uint8 if bits <= 8 else np.uint16
    codes = draw(hnp.arrays(dtype, st.integers(0, 24), elements=st.integers(0, 2**bits - 1)))
    return Case((pack_bits(codes, bits), bits, codes.size))
