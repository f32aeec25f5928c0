"""Strategies of valid inputs for the entries of `reference.codecs.awq`: `awq_pack_cases`, `awq_packed_cases`."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from spec.entry import Case
from spec.strategies.base import float16_scales
from spec.strategies.base import int32_words as _int32_words

__all__ = ["awq_pack_cases", "awq_packed_cases"]


@st.composite
def _awq_layout(draw):
    out_f = 8 * draw(st.integers(1, 2))
    groups = draw(st.integers(1, 3))
    in_f = groups * draw(st.integers(1, 3))
    return out_f, in_f, groups


@st.composite
def awq_pack_cases(draw):
    """`(codes, scales, zeros)` for awq_pack."""
    out_f, in_f, groups = draw(_awq_layout())
    codes = draw(hnp.arrays(np.uint8, (out_f, in_f), elements=st.integers(0, 15)))
    zeros = draw(hnp.arrays(np.int32, (out_f, groups), elements=st.integers(0, 15)))
    return Case((codes, draw(float16_scales((out_f, groups))), zeros))


@st.composite
def awq_packed_cases(draw):
    """`(qweight, qzeros, scales)` for awq_unpack and awq_decode: any int32 words."""
    out_f, in_f, groups = draw(_awq_layout())
    qweight = draw(_int32_words((in_f, out_f // 8)))
    qzeros = draw(_int32_words((groups, out_f // 8)))
    return Case((qweight, qzeros, draw(float16_scales((groups, out_f)))))
