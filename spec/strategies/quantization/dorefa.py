"""Strategies of valid inputs for the entries of `reference.quantization.dorefa`: `HARD_TANH`, `dorefa_weight_cases`,
`dorefa_activation_cases`.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from spec.entry import Case
from spec.strategies.base import F32, float32_arrays, float32_values, shapes
from spec.strategies.base import bit_widths as _bits

__all__ = ["HARD_TANH", "dorefa_weight_cases", "dorefa_activation_cases"]


# The float32 inputs w > 0 whose exact tanh comes closest to a float32 rounding midpoint (distance in float64
# ulps), from an exhaustive scan of every float32 (tests/test_quant_learned.py records the correctly rounded
# results): the cases where a float64 tanh that erred by a few ulps would round to the wrong float32.
HARD_TANH = (
    0.0014914835,  # 5.04 ulps
    0.46488494,  # 9.14
    0.025892051,  # 12.61
    5.397072,  # 13.81
    6.1846666,  # 18.21
    0.06156953,  # 18.40
    0.018393602,  # 18.55
    5.216737,  # 20.78
)

# tanh(w) rounds to exactly 1.0 in float32 from about w = 9.01 on; around it, and far beyond
_TANH_EDGES = (9.0, 9.010913, 9.1, 20.0, 1e30)


def _weights():
    hard = st.sampled_from(HARD_TANH + tuple(-v for v in HARD_TANH) + _TANH_EDGES)
    return st.one_of(float32_values(), st.floats(-4, 4, width=32), hard)


@st.composite
def dorefa_weight_cases(draw, with_grad=False):
    """`(w, bits)`: any finite weights, the hard tanh inputs, ties for max |tanh w|, all zeros, saturation."""
    bits = draw(_bits())
    w = draw(float32_arrays(elements=_weights()))
    kind = draw(st.sampled_from(["any", "any", "tie_max", "zeros"]))
    if kind == "tie_max" and w.size >= 2:
        # several elements with |w| equal to the largest: max |tanh w| is reached more than once
        big = np.float32(np.max(np.abs(w)))
        picks = draw(hnp.arrays(np.bool_, w.shape))
        signs = draw(hnp.arrays(np.bool_, w.shape))
        w = np.where(picks, np.where(signs, -big, big), w).astype(F32)
    elif kind == "zeros":
        w = np.where(draw(hnp.arrays(np.bool_, w.shape)), F32(-0.0), F32(0.0)).astype(F32)
    if with_grad:
        return Case((draw(float32_arrays(shape=st.just(w.shape))), w, bits))
    return Case((w, bits))


@st.composite
def dorefa_activation_cases(draw, with_grad=False):
    """`(x, bits)`: x on the levels c / n, on the .5 ties between them, on 0 and 1 and one ulp either side."""
    bits = draw(_bits())
    n = 2**bits - 1
    shape = draw(shapes())
    grid = hnp.arrays(F32, shape, elements=st.integers(-2, 2 * n + 2).map(lambda j: float(F32(j) / F32(2 * n))))
    edges = st.sampled_from([0.0, -0.0, 1.0, 0.99999994, 1.0000001, -1.4e-45, 1.4e-45, 0.5])
    anywhere = float32_arrays(shape=st.just(shape), elements=st.one_of(float32_values(), edges))
    x = np.where(draw(hnp.arrays(np.bool_, shape)), draw(grid), draw(anywhere)).astype(F32)
    if with_grad:
        return Case((draw(float32_arrays(shape=st.just(shape))), x, bits))
    return Case((x, bits))
