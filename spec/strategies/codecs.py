"""Strategies for the checkpoint codecs (`codecs.gptq`, ...).

Packed words are drawn as arbitrary int32 bit patterns (every pattern is a valid packed word); codes and zero
points cover their whole ranges, the ends included; float16 scales include signed zeros, subnormals and
+-65504; `g_idx` is either GPTQ's contiguous `i // group_size` or an arbitrary (act-order) assignment.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from spec.entry import Case

__all__ = ["float16_scales", "gptq_pack_cases", "gptq_packed_cases"]

GPTQ_BITS = (2, 4, 8)


def float16_scales(shape):
    """float16 arrays of any finite value: signed zeros, subnormals, the max, and repeated values."""
    edge = st.sampled_from([0.0, -0.0, 6e-08, 65504.0, -65504.0, 0.5, 1.0, 0.0999755859375])
    anything = st.floats(width=16, allow_nan=False, allow_infinity=False)
    return hnp.arrays(np.float16, shape, elements=st.one_of(edge, anything))


def _int32_words(shape):
    ends = st.sampled_from([0, -1, -(2**31), 2**31 - 1, 0x77777777, -0x77777778])
    return hnp.arrays(np.int32, shape, elements=st.one_of(ends, st.integers(-(2**31), 2**31 - 1)))


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
