"""Strategies of valid inputs for the entries of `reference.quantization.affine`: `affine_cases`, `dequantize_cases`,
`integer_range_cases`, `qparams_range_cases`, `minmax_qparams_cases`.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from spec.entry import Case
from spec.strategies.base import F32, ROUNDING_MODES, float32_arrays, granularities, keys, qranges, scales, shapes

__all__ = ["affine_cases", "dequantize_cases", "integer_range_cases", "qparams_range_cases", "minmax_qparams_cases"]


@st.composite
def affine_cases(draw, with_grad=False):
    """`(x, scale, zero_point)` and keyword arguments for quantize / fake_quantize (and a cotangent with_grad)."""
    qmin, qmax = draw(qranges(min_codes=1))
    shape = draw(shapes(max_dims=3, max_side=6))
    axis, group_size, sshape = draw(granularities(shape))
    scale = draw(hnp.arrays(np.float32, sshape, elements=scales()))
    zero_point = draw(hnp.arrays(np.int32, sshape, elements=st.integers(qmin, qmax)))
    s_full = _expand(scale, shape, axis, group_size)
    z_full = _expand(zero_point, shape, axis, group_size)
    # Points on and between the grid: (t - z) * s for t a multiple of 1/2 near the code range, so x / s is
    # often exactly an integer or a .5 midpoint; plus arbitrary float32 values.
    t = draw(hnp.arrays(np.float32, shape, elements=st.integers(2 * qmin - 6, 2 * qmax + 6).map(lambda k: k / 2)))
    grid = (t - z_full.astype(np.float32)) * s_full
    anywhere = draw(float32_arrays(shape=st.just(shape)))
    pick = draw(hnp.arrays(np.bool_, shape))
    x = np.where(pick, grid, anywhere).astype(np.float32)
    x = np.where(np.isfinite(x), x, np.float32(0))
    mode = draw(st.sampled_from(ROUNDING_MODES))
    kwargs = {"qmin": qmin, "qmax": qmax, "axis": axis, "group_size": group_size, "rounding": mode}
    kwargs["key"] = draw(keys()) if mode == "stochastic" else None
    if with_grad:
        grad = draw(float32_arrays(shape=st.just(shape)))
        return Case((grad, x, scale, zero_point), kwargs)
    return Case((x, scale, zero_point), kwargs)


@st.composite
def dequantize_cases(draw):
    qmin, qmax = draw(qranges(min_codes=1))
    shape = draw(shapes(max_dims=3, max_side=6))
    axis, group_size, sshape = draw(granularities(shape))
    scale = draw(
        hnp.arrays(
            np.float32, sshape, elements=st.one_of(scales(), st.floats(float(F32(1e-30)), float(F32(1e30)), width=32))
        )
    )
    zero_point = draw(hnp.arrays(np.int32, sshape, elements=st.integers(qmin, qmax)))
    q = draw(hnp.arrays(np.int32, shape, elements=st.one_of(st.integers(qmin, qmax), st.integers(-(2**15), 2**16 - 1))))
    return Case((q, scale, zero_point), {"axis": axis, "group_size": group_size})


def integer_range_cases():
    @st.composite
    def build(draw):
        bits = draw(st.integers(1, 16))
        return Case((bits,), {"signed": draw(st.booleans()), "narrow_range": bits >= 2 and draw(st.booleans())})

    return build()


@st.composite
def qparams_range_cases(draw):
    symmetric = draw(st.booleans())
    qmin, qmax = draw(qranges(min_codes=3 if symmetric else 2))
    shape = draw(shapes(max_dims=2))
    a = draw(float32_arrays(shape=st.just(shape)))
    b = draw(float32_arrays(shape=st.just(shape)))
    return Case((np.minimum(a, b), np.maximum(a, b)), {"qmin": qmin, "qmax": qmax, "symmetric": symmetric})


@st.composite
def minmax_qparams_cases(draw):
    symmetric = draw(st.booleans())
    qmin, qmax = draw(qranges(min_codes=3 if symmetric else 2))
    x = draw(float32_arrays(min_side=1))
    axis, group_size, _ = draw(granularities(x.shape))
    return Case((x,), {"qmin": qmin, "qmax": qmax, "symmetric": symmetric, "axis": axis, "group_size": group_size})


def _expand(p, shape, axis, group_size):
    if axis is None:
        return np.broadcast_to(p, shape)
    k = axis % len(shape)
    if group_size is None:
        return np.broadcast_to(p.reshape(tuple(-1 if i == k else 1 for i in range(len(shape)))), shape)
    return np.repeat(p, group_size, axis=k)
