"""Strategies of valid inputs for the entries of `reference.quantization.pact`: `pact_cases`."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from spec.entry import Case
from spec.strategies.base import F32, F32_MAX, float32_arrays, float32_values, scales, shapes
from spec.strategies.base import bit_widths as _bits

__all__ = ["pact_cases"]


def _valid_alpha(a, bits):
    n = F32(2**bits - 1)
    s = F32(a) / n
    with np.errstate(over="ignore"):
        return bool(s >= F32(2.0**-126) and np.isfinite(n * s))


@st.composite
def pact_cases(draw, with_grad=False):
    """`(x, alpha, bits)`: x on the levels c * s and the ties between them, exactly alpha and its neighbours."""
    bits = draw(_bits())
    n = 2**bits - 1
    alpha = draw(
        st.one_of(scales(), st.integers(1, 12).map(float), st.sampled_from([F32_MAX, 1e38, 2.0**-100])).filter(
            lambda a: _valid_alpha(a, bits)
        )
    )
    a = F32(alpha)
    s = a / F32(n)
    shape = draw(shapes())
    with np.errstate(over="ignore"):
        grid = (draw(hnp.arrays(F32, shape, elements=st.integers(-2, 2 * n + 4).map(lambda j: j / 2))) * s).astype(F32)
    near = [a, np.nextafter(a, F32(0)), np.nextafter(a, F32(np.inf)), F32(n) * s, F32(0), F32(-0.0)]
    edges = st.sampled_from([float(v) for v in near])
    anywhere = draw(float32_arrays(shape=st.just(shape), elements=st.one_of(float32_values(), edges)))
    x = np.where(draw(hnp.arrays(np.bool_, shape)), grid, anywhere)
    x = np.where(np.isfinite(x), x, a).astype(F32)
    alpha = np.array(a, dtype=F32)
    if with_grad:
        return Case((draw(float32_arrays(shape=st.just(shape))), x, alpha, bits))
    return Case((x, alpha, bits))
