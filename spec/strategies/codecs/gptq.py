"""Strategies of valid inputs for the entries of `reference.codecs.gptq`: `gptq_pack_cases`, `gptq_packed_cases`."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from spec.entry import Case
from spec.strategies.base import float16_scales
from spec.strategies.base import int32_words as _int32_words

__all__ = ["gptq_pack_cases", "gptq_packed_cases"]


GPTQ_BITS = (2, 4, 8)


@st.composite
def _gptq_layout(draw):
    bits = draw(st.sampled_from(GPTQ_BITS))
    per = 32 // bits
    out_f = per * draw(st.integers(1, 2))
    in_f = per * draw(st.integers(1, 3))
    groups = draw(st.integers(1, 3))
    if draw(st.booleans()):
        size = -(-in_f // groups)
        g_idx = np.arange(in_f, dtype=np.int32) // size
        groups = int(g_idx[-1]) + 1
    else:
        g_idx = draw(hnp.arrays(np.int32, (in_f,), elements=st.integers(0, groups - 1)))
    zero_format = draw(st.sampled_from(["v1", "v2"]))
    return bits, per, out_f, in_f, groups, g_idx, zero_format


@st.composite
def gptq_pack_cases(draw):
    """`(codes, scales, zeros, g_idx)` with `bits` and `zero_format` for gptq_pack."""
    bits, per, out_f, in_f, groups, g_idx, zero_format = draw(_gptq_layout())
    codes = draw(hnp.arrays(np.uint8, (out_f, in_f), elements=st.integers(0, 2**bits - 1)))
    lo = 1 if zero_format == "v1" else 0
    zeros = draw(hnp.arrays(np.int32, (out_f, groups), elements=st.integers(lo, 2**bits - 1 + lo)))
    scales = draw(float16_scales((out_f, groups)))
    return Case((codes, scales, zeros, g_idx), {"bits": bits, "zero_format": zero_format})


@st.composite
def gptq_packed_cases(draw):
    """`(qweight, qzeros, scales, g_idx)` with `bits` and `zero_format` for gptq_unpack and gptq_decode."""
    bits, per, out_f, in_f, groups, g_idx, zero_format = draw(_gptq_layout())
    qweight = draw(_int32_words((in_f // per, out_f)))
    qzeros = draw(_int32_words((groups, out_f // per)))
    scales = draw(float16_scales((groups, out_f)))
    return Case((qweight, qzeros, scales, g_idx), {"bits": bits, "zero_format": zero_format})
