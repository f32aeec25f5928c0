"""Strategies of valid inputs for the entries of `reference.core.transcendental`: `exp_cases`, `log_cases`,
`pow_cases`, `sigmoid_cases`, `sqrt_cases`.

Besides values across the whole float32 range (most of them overflow or underflow), they draw the **hard cases**:
inputs whose float64 evaluation lies so close to a float32 midpoint that the certified interval cannot settle it
(found by scanning every float32 in [1, 2) and a few other binades), so the exact host path runs in the bitwise
suite; and for `cr_pow` the exact midpoints (`4097 ** 2`, `(2 ** -75) ** 2`) that only ties to even decide.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from spec.entry import Case
from spec.strategies.base import shapes

__all__ = ["exp_cases", "log_cases", "pow_cases", "sigmoid_cases", "sqrt_cases"]

F32 = np.float32
# Float32 inputs whose float64 result is within 2**-45 (relative) of a float32 rounding boundary.
HARD_EXP = (1.1715909242630005, 1.222536563873291, 1.2643588781356812, -1.0149801969528198, -1.208660364151001)
HARD_LOG = (1.2466981410980225, 1.2708016633987427, 1.300172209739685, 0.001033483655191958, 0.0015200863126665354)
HARD_SIGMOID = (1.1542994976043701, 1.2194373607635498, 1.4460138082504272, -1.4276520013809204, -1.6712642908096313)
HARD_POW = ((1.0511380434036255, 0.35), (1.4471381902694702, 0.35), (1.0000001192092896, 0.5),
            (1.14332115650177, 0.5), (1.1351678371429443, 0.05), (1.1051536798477173, -0.30000001192092896),
            (4097.0, 2.0), (2.0**-75, 2.0), (3.0 * 2.0**-75, 2.0), (9.0, 0.5), (2.0**-50, 3.0))  # fmt: skip


def _values(lo, hi, hard):
    return st.one_of(
        st.floats(lo, hi, width=32),
        st.floats(-1e3, 1e3, width=32),
        st.floats(width=32, allow_nan=False, allow_infinity=False),
        st.sampled_from((0.0, -0.0, 1.0, -1.0, 0.5, 88.72283, 88.72284, -103.97208, -103.97209, 2.0**-149) + hard),
    )


def _arrays(draw, elements, min_side=0):
    shape = draw(shapes(max_dims=2, min_side=min_side, max_side=5))
    return draw(hnp.arrays(F32, shape, elements=elements))


@st.composite
def exp_cases(draw):
    """`(x,)` for `cr_exp`."""
    return Case((_arrays(draw, _values(-110, 95, HARD_EXP)),))


@st.composite
def sigmoid_cases(draw):
    """`(x,)` for `cr_sigmoid`."""
    return Case((_arrays(draw, _values(-110, 40, HARD_SIGMOID)),))


@st.composite
def log_cases(draw):
    """`(x,)` for `cr_log`: positive values, subnormals included."""
    positive = st.one_of(
        st.floats(2.0**-149, 3.0000000054977558e38, width=32),
        st.floats(0.5, 2.0, width=32),
        st.sampled_from((1.0, 2.0, 0.5, 2.0**-149, 2.0**-126, float(np.finfo(F32).max)) + HARD_LOG),
    )
    return Case((_arrays(draw, positive),))


@st.composite
def pow_cases(draw):
    """`(x, y)` for `cr_pow`: `y` 0-d (AWQ's and SmoothQuant's scalar exponents) or of `x`'s shape."""
    if draw(st.integers(0, 3)) == 0:
        x, y = draw(st.sampled_from(HARD_POW))
        return Case((np.array([x], dtype=F32), np.array(y, dtype=F32)))
    base = st.one_of(
        st.floats(0, 1e4, width=32),
        st.floats(0, 3.0000000054977558e38, width=32),
        st.sampled_from((0.0, -0.0, 1.0, 2.0, 0.5, 4097.0, 2.0**-149, 3.0)),
    )
    exponent = st.one_of(
        st.sampled_from((0.0, 0.05, 0.35, 0.5, 0.95, 1.0, 2.0, -0.3, -1.0, 0.75, 3.0, -0.5)),
        st.floats(-4, 4, width=32),
        st.integers(0, 19).map(lambda k: float(F32(k / 20))),
    )
    x = _arrays(draw, base)
    if draw(st.booleans()):
        y = np.array(draw(exponent), dtype=F32)
    else:
        y = draw(hnp.arrays(F32, x.shape, elements=exponent))
    return Case((x, y))


@st.composite
def sqrt_cases(draw):
    """`(x,)` for `cr_sqrt`: float32, or float64 (products of float32 values, squares of midpoints, huge values)."""
    if draw(st.booleans()):
        return Case((_arrays(draw, st.floats(0, 3.0000000054977558e38, width=32)),))
    mids = st.builds(
        lambda m, e: float(m) ** 2 * 2.0 ** (2 * e), st.integers(2**24, 2**25 - 1), st.integers(-100, 80)
    )  # fmt: skip
    values = st.one_of(st.floats(0, 1e300), mids, st.sampled_from((0.0, -0.0, 6.0, (1 + 2.0**-24) ** 2, 1e-300)))
    shape = draw(shapes(max_dims=2, max_side=5))
    return Case((draw(hnp.arrays(np.float64, shape, elements=values)),))
