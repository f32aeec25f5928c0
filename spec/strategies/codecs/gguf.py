"""Strategies of valid inputs for the entries of `reference.codecs.gguf`: `gguf_quantize_cases`,
`gguf_dequantize_cases`.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from spec.entry import Case
from spec.strategies.base import F32, float32_arrays, float32_values

__all__ = ["gguf_quantize_cases", "gguf_dequantize_cases"]


GGUF_BLOCKS = {"Q8_0": (32, 34), "Q4_0": (32, 18), "Q4_K": (256, 144)}


@st.composite
def gguf_quantize_cases(draw):
    """`(x, qtype)`: rows of blocks with ties (x.5 steps), zeros and -0.0, flat and one-signed sub-blocks."""
    qtype = draw(st.sampled_from(("Q8_0", "Q4_0", "Q8_0", "Q4_0", "Q4_K")))  # Q4_K's search is the slow one
    block, _ = GGUF_BLOCKS[qtype]
    rows = draw(st.integers(0, 2 if qtype != "Q4_K" else 1))
    width = block * draw(st.integers(1, 2 if qtype != "Q4_K" else 1))
    scale = draw(st.sampled_from([1.0, 2.0**-10, 1000.0, 3.0]))
    grid = st.integers(-16, 16).map(lambda k: float(F32(k * scale / 2)))
    values = st.one_of(grid, grid, float32_values(max_abs=1e6), st.sampled_from([0.0, -0.0]))
    x = draw(float32_arrays(shape=st.just((rows, width)), elements=values))
    if x.size and draw(st.booleans()):  # a flat or one-signed stretch
        k = draw(st.integers(0, width // 32 - 1)) * 32
        x[:, k : k + 32] = F32(draw(values))
    return Case((x, qtype))


@st.composite
def gguf_dequantize_cases(draw):
    """`(data, qtype)`: any bytes, so float16 fields include subnormals, Inf and NaN."""
    qtype = draw(st.sampled_from(tuple(GGUF_BLOCKS)))
    _, nbytes = GGUF_BLOCKS[qtype]
    shape = (draw(st.integers(0, 2)), nbytes * draw(st.integers(1, 2)))
    return Case((draw(hnp.arrays(np.uint8, shape)), qtype))
