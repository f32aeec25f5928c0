"""Strategies of valid inputs for the entries of `reference.codecs.nvfp4`: `nvfp4_global_cases`,
`nvfp4_quantize_cases`, `nvfp4_dequantize_cases`.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from spec.entry import Case
from spec.strategies.base import F32, float32_arrays, float32_values, scales, shapes

__all__ = ["nvfp4_global_cases", "nvfp4_quantize_cases", "nvfp4_dequantize_cases"]


DIRECTIONS = ("decode", "encode")
E2M1_POINTS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 7.0)


def _nvfp4_values():
    """Element values: E2M1 values and midpoints times a block scale, and anything finite."""
    on_grid = st.builds(lambda v, sign, e: float(F32(sign * v * 2.0**e)), st.sampled_from(E2M1_POINTS),
                        st.sampled_from([1.0, -1.0]), st.integers(-20, 20))  # fmt: skip
    return st.one_of(on_grid, on_grid, float32_values())


@st.composite
def _nvfp4_x(draw, min_side=1):
    lead = draw(shapes(max_dims=1, max_side=2))
    width = 16 * draw(st.integers(min_side, 2))
    return draw(float32_arrays(shape=st.just(lead + (width,)), elements=_nvfp4_values()))


def _global_scales():
    return st.one_of(st.sampled_from([1.0, 2.0, 0.5, 448.0, 1 / 448]), scales(),
                     st.floats(float(F32(1e-30)), float(F32(1e30)), width=32))  # fmt: skip


@st.composite
def nvfp4_global_cases(draw):
    """`(x,)` with `direction` for nvfp4_global_scale (amax far from the float32 ends, so g is finite)."""
    x = draw(float32_arrays(shape=shapes(min_dims=1, min_side=1), elements=float32_values(max_abs=1e30)))
    x = np.where(np.abs(x) < 1e-30, F32(0), x).astype(F32)
    return Case((x,), {"direction": draw(st.sampled_from(DIRECTIONS))})


@st.composite
def nvfp4_quantize_cases(draw):
    """`(x, global_scale)` with `direction` for nvfp4_quantize: the tensor's own global scale, or any."""
    from reference.codecs.nvfp4 import nvfp4_global_scale

    x = draw(_nvfp4_x(min_side=0))
    direction = draw(st.sampled_from(DIRECTIONS))
    own = None
    if x.size and draw(st.booleans()):
        try:
            own = nvfp4_global_scale(x, direction=direction)
        except ValueError:
            own = None
    if own is None:
        scales_ = _global_scales()
        if direction == "encode":  # 1 / g must be a finite float32 (else a zero block would decode as NaN)
            scales_ = scales_.filter(lambda v: F32(v) > F32(2.0**-128))  # for float32 g: 1 / g < float32 max
        own = np.asarray(F32(draw(scales_)))
    return Case((x, own), {"direction": direction})


@st.composite
def nvfp4_dequantize_cases(draw):
    """`(scales, codes, global_scale)` with `direction`: any E4M3 scale code (NaN and negative ones included)."""
    lead = draw(shapes(max_dims=1, max_side=2))
    width = 16 * draw(st.integers(0, 2))
    codes = draw(hnp.arrays(np.uint8, lead + (width,), elements=st.integers(0, 15)))
    scales_ = draw(hnp.arrays(np.uint8, lead + (width // 16,), elements=st.integers(0, 255)))
    g = np.asarray(F32(draw(_global_scales())))
    return Case((scales_, codes, g), {"direction": draw(st.sampled_from(DIRECTIONS))})
