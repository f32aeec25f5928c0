"""Strategies of valid inputs for the entries of `reference.quantization.conventions`: `symmetric_scale_cases`,
`zero_point_cases`.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from spec.entry import Case
from spec.strategies.base import F32, float32_arrays, float32_values, qranges, scales, shapes

__all__ = ["symmetric_scale_cases", "zero_point_cases"]


@st.composite
def symmetric_scale_cases(draw):
    """`(amax,)` with `bits` and `divisor`: amax values that are multiples of the divisor, ties, zeros, anything."""
    bits = draw(st.integers(2, 16))
    steps = st.builds(lambda k, s: float(F32(k * s)), st.integers(0, 2**bits), scales())
    anything = st.floats(0, float(np.finfo(F32).max), width=32)
    amax = draw(float32_arrays(shape=shapes(max_dims=2), elements=st.one_of(steps, anything, st.just(0.0))))
    return Case((amax,), {"bits": bits, "divisor": draw(st.sampled_from(["qmax", "half_range"]))})


@st.composite
def zero_point_cases(draw):
    """`(min_val, scale)` with `qmin`, `qmax` and `convention`, min_val often an exact tie -(k + 0.5) * scale."""
    qmin, qmax = draw(qranges())
    shape = draw(shapes(max_dims=2))
    s = draw(float32_arrays(shape=st.just(shape), elements=scales()))
    ties = draw(hnp.arrays(np.float32, shape, elements=st.integers(-300, 300).map(lambda k: k + 0.5)))
    exact = (ties.astype(np.float64) * s.astype(np.float64)).astype(F32)
    anything = draw(float32_arrays(shape=st.just(shape), elements=float32_values(max_abs=1e30)))
    near = np.nextafter(exact, F32(0)).astype(F32)
    min_val = draw(st.sampled_from([exact, anything, near, -np.abs(anything)]))
    kw = {"qmin": qmin, "qmax": qmax, "convention": draw(st.sampled_from(["pqref", "torch_ao", "onnx", "tflite"]))}
    return Case((min_val, s), kw)
