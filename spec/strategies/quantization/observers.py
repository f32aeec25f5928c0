"""Strategies of valid inputs for the entries of `reference.quantization.observers`: `observer_cases`,
`percentile_cases`, `mse_cases`.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from spec.entry import Case
from spec.strategies.base import float32_arrays

__all__ = ["observer_cases", "percentile_cases", "mse_cases"]


@st.composite
def _axis_for(draw, x):
    if x.ndim == 0:
        return None
    return draw(st.one_of(st.none(), st.integers(-x.ndim, x.ndim - 1)))


@st.composite
def observer_cases(draw, ema=False):
    x = draw(float32_arrays(min_side=1))
    axis = draw(_axis_for(x))
    kwargs = {"axis": axis}
    if ema:
        kwargs["averaging_constant"] = draw(
            st.one_of(st.sampled_from([0.01, 0.5, 1.0, 0.1, 0.3]), st.floats(1e-6, 1.0))
        )
    shape = () if axis is None else (x.shape[axis],)
    state = None
    if draw(st.integers(0, 3)):
        a = draw(float32_arrays(shape=st.just(shape)))
        b = draw(float32_arrays(shape=st.just(shape)))
        state = (np.asarray(np.minimum(a, b)), np.asarray(np.maximum(a, b)))  # 0-d arrays, not NumPy scalars
        if ema and draw(st.booleans()):  # the moving average accepts (and can produce) min_val > max_val
            state = (np.asarray(a), np.asarray(b))
    return Case((x, state), kwargs)


@st.composite
def percentile_cases(draw):
    x = draw(float32_arrays(min_side=1, max_side=7))
    axis = draw(_axis_for(x))
    n = x.size if axis is None else x.size // x.shape[axis]
    parts = [st.floats(0, 100), st.sampled_from([0.0, 100.0, 50.0, 99.99, 99.9, 90.0, 25.0, 75.0])]
    if n > 1:  # virtual index k + 0.5 (up to the rounding of p)
        parts.append(st.integers(0, n - 2).map(lambda k: 100 * (k + 0.5) / (n - 1)))
    return Case((x, draw(st.one_of(parts))), {"axis": axis})


@st.composite
def mse_cases(draw):
    x = draw(float32_arrays(min_side=1, max_dims=2, max_side=5))
    bits = draw(st.one_of(st.integers(2, 8), st.just(16)))
    grid = draw(st.one_of(st.integers(1, 12), st.just(100)))
    return Case((x,), {"bits": bits, "grid": grid, "axis": draw(_axis_for(x))})
