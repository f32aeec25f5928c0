"""Strategies of valid inputs for the entries of `reference.quantization.floats`: `lowbit_values`,
`lowbit_encode_cases`, `lowbit_decode_cases`.
"""

from __future__ import annotations

import functools

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from spec.entry import Case
from spec.strategies.base import F32, float32_values, keys, lowbit_boundaries, shapes

__all__ = ["lowbit_values", "lowbit_encode_cases", "lowbit_decode_cases"]


FLOAT_FORMATS = (
    "float8_e4m3fn", "float8_e5m2", "float6_e3m2fn", "float6_e2m3fn", "float4_e2m1fn", "float8_e8m0fnu",
)  # fmt: skip


INF, NAN = float("inf"), float("nan")


@functools.cache
def lowbit_values(fmt, allow_nonfinite=True):
    """Single float32 values for `fmt`: boundary values with either sign, anything finite, specials (cached)."""
    from reference.quantization.floats import FORMATS

    form = FORMATS[fmt]
    b = lowbit_boundaries(fmt)
    signed = st.sampled_from(b + tuple(-v for v in b))
    specials = [0.0, -0.0, 1e38, -1e38, float(np.finfo(F32).max), 1.4e-45, -1.4e-45, 1e-40]
    if allow_nonfinite:
        specials += [INF, -INF] + ([NAN] if form.has_nan else [])
    anything = st.floats(width=32, allow_nan=False, allow_infinity=False, allow_subnormal=True)
    return st.one_of(signed, signed, signed, anything, st.sampled_from([float(F32(v)) for v in specials]))


@st.composite
def lowbit_encode_cases(draw, with_grad=False):
    """`(x, fmt)` with `saturate`, `rounding` and `key` for float_encode / float_quantize (and a cotangent)."""
    from reference.quantization.floats import FORMATS

    fmt = draw(st.sampled_from(FLOAT_FORMATS))
    form = FORMATS[fmt]
    shape = draw(shapes(max_dims=2, max_side=6))
    elements = lowbit_values(fmt)
    general = hnp.arrays(F32, shape, elements=elements)
    constant = st.builds(lambda v: np.full(shape, v, dtype=F32), elements)
    x = draw(st.one_of(general, general, general, constant))
    saturate = draw(st.booleans()) if (form.has_inf or form.has_nan) else True
    rounding = draw(st.sampled_from(["half_even", "half_even", "stochastic"]))
    kwargs = {"saturate": saturate, "rounding": rounding, "key": draw(keys()) if rounding == "stochastic" else None}
    if with_grad:
        grad = draw(hnp.arrays(F32, shape, elements=float32_values()))
        return Case((grad, x, fmt), kwargs)
    return Case((x, fmt), kwargs)


@st.composite
def lowbit_decode_cases(draw):
    """`(codes, fmt)`: every code of the format at once, or an array of codes (ties: repeated codes)."""
    from reference.quantization.floats import FORMATS

    fmt = draw(st.sampled_from(FLOAT_FORMATS))
    n = 2 ** FORMATS[fmt].bits
    every = st.just(np.arange(n, dtype=np.uint8))
    some = hnp.arrays(np.uint8, shapes(max_dims=3, max_side=6), elements=st.integers(0, n - 1))
    return Case((draw(st.one_of(every, some, some)), fmt))
