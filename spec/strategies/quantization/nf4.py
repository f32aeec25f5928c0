"""Strategies of valid inputs for the entries of `reference.quantization.nf4`: `nf4_quantize_cases`,
`nf4_dequantize_cases`, `nf4_double_quantize_cases`, `nf4_double_dequantize_cases`.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from spec.entry import Case
from spec.strategies.base import F32, float32_arrays, float32_values, scales, shapes

__all__ = ["nf4_quantize_cases", "nf4_dequantize_cases", "nf4_double_quantize_cases", "nf4_double_dequantize_cases"]


def _nf4_table():
    from reference.quantization.nf4 import NF4

    return NF4


def _block_sizes():
    return st.one_of(st.integers(1, 5), st.sampled_from([64, 256]))


@st.composite
def _nf4_boundary_arrays(draw, block_size):
    """Blocks whose absmax is a power of two (first element), the rest NF4 midpoints and their neighbours."""
    v = _nf4_table()
    mid = ((v[:-1].astype(np.float64) + v[1:]) / 2).astype(np.float32)
    special = np.concatenate([mid, np.nextafter(mid, F32(2)), np.nextafter(mid, F32(-2)), v[1:-1]])
    shape = draw(shapes(min_side=1))
    x = special[draw(hnp.arrays(np.int64, shape, elements=st.integers(0, special.size - 1)))].reshape(-1)
    lead = np.float32(draw(st.sampled_from([1.0, -1.0])))
    x[::block_size] = lead
    return (x * np.float32(2.0 ** draw(st.integers(-20, 20)))).reshape(shape)


@st.composite
def nf4_quantize_cases(draw):
    block_size = draw(_block_sizes())
    x = draw(st.one_of(float32_arrays(), _nf4_boundary_arrays(block_size)))
    return Case((x,), {"block_size": block_size})


@st.composite
def nf4_dequantize_cases(draw):
    block_size = draw(_block_sizes())
    codes = draw(hnp.arrays(np.uint8, shapes(), elements=st.integers(0, 15)))
    n_blocks = -(-codes.size // block_size)
    absmax = draw(hnp.arrays(np.float32, (n_blocks,), elements=_positive_scales()))
    return Case((codes, absmax), {"block_size": block_size})


def _positive_scales():
    return st.one_of(scales(), st.floats(float(F32(1e-30)), float(F32(1e30)), width=32), st.sampled_from([1.0, 2.0]))


@st.composite
def nf4_double_quantize_cases(draw):
    absmax = draw(
        float32_arrays(shape=shapes(min_dims=1, max_dims=1, min_side=1, max_side=12), elements=_positive_scales())
    )
    return Case((absmax,), {"block_size": draw(_block_sizes())})


@st.composite
def nf4_double_dequantize_cases(draw):
    block_size = draw(_block_sizes())
    q = draw(hnp.arrays(np.int8, shapes(min_dims=1, max_dims=1, max_side=12), elements=st.integers(-127, 127)))
    n_blocks = -(-q.size // block_size)
    scale = draw(hnp.arrays(np.float32, (n_blocks,), elements=_positive_scales()))
    offset = np.array(draw(float32_values()), dtype=np.float32)
    return Case((q, scale, offset), {"block_size": block_size})
