"""Strategies of valid inputs for the entries of `reference.quantization.power_of_two`: `pow2_range_cases`,
`pow2_emax_cases`, `pow2_cases`, `pow2_decode_cases`.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from spec.entry import Case
from spec.strategies.base import F32, float32_arrays, float32_values, shapes

__all__ = ["pow2_range_cases", "pow2_emax_cases", "pow2_cases", "pow2_decode_cases"]


# Mantissas in [1, 2) on and next to the rounding boundaries: 1.5 (linear) and sqrt(2) (log).
MANTISSAS = tuple(
    float(F32(m)) for m in (1.0, 1.5, 1.4999999, 1.5000001, 1.4142135, 1.4142137, 1.9999999, 1.25, 1.0000001)
)


@st.composite
def _pow2_code(draw):
    """(bits, emax, emin, levels) of a valid code: INQ's 2**(bits-2) exponents or the dense 2**(bits-1) - 1."""
    bits = draw(st.integers(2, 8))
    levels = draw(st.sampled_from(["inq", "dense"]))
    span = 2 ** (bits - 2) - 1 if levels == "inq" else 2 ** (bits - 1) - 2
    lo = -149 + span
    emax = draw(st.one_of(st.integers(max(lo, -6), 6), st.integers(lo, 127), st.sampled_from([lo, 127])))
    return bits, emax, emax - span, levels


def _near_powers(emin, emax):
    """Signed m * 2**e with m on or next to a rounding boundary and e around [emin, emax]."""
    e_lo, e_hi = max(emin - 3, -149), min(emax + 2, 127)

    def build(e, m, negative):
        v = np.ldexp(F32(m), e)
        v = v if np.isfinite(v) else np.finfo(np.float32).max
        return float(-v if negative else v)

    return st.builds(build, st.integers(e_lo, e_hi), st.sampled_from(MANTISSAS), st.booleans())


def pow2_range_cases():
    return _pow2_code().map(lambda c: Case((c[0], c[1]), {"levels": c[3]}))


@st.composite
def pow2_emax_cases(draw):
    x = draw(float32_arrays(min_side=1))
    if not np.any(x != 0):
        e = draw(st.integers(-149, 127))
        x = x.copy()
        x.reshape(-1)[draw(st.integers(0, x.size - 1))] = draw(_near_powers(e, e))
    return Case((x,))


@st.composite
def pow2_cases(draw, with_grad=False):
    bits, emax, emin, levels = draw(_pow2_code())
    x = draw(float32_arrays(elements=st.one_of(_near_powers(emin, emax), _near_powers(emin, emax), float32_values())))
    kwargs = {"bits": bits, "emax": emax, "rounding": draw(st.sampled_from(["linear", "log"])), "levels": levels}
    if with_grad:
        return Case((draw(float32_arrays(shape=st.just(x.shape))), x), kwargs)
    return Case((x,), kwargs)


@st.composite
def pow2_decode_cases(draw):
    bits, emax, emin, levels = draw(_pow2_code())
    count = emax - emin + 1  # magnitude codes 1 .. count are levels; INQ's codes above it are not
    magnitude = draw(hnp.arrays(np.uint8, shapes(), elements=st.integers(0, count)))
    sign = draw(hnp.arrays(np.uint8, magnitude.shape, elements=st.sampled_from([0, 2 ** (bits - 1)])))
    return Case((magnitude | sign,), {"bits": bits, "emax": emax, "levels": levels})
