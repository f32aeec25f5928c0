"""Strategies of valid inputs for the entries of `reference.pruning.schedules`: `schedule_cases`,
`iterative_sparsities_cases`, `iterative_mask_cases`.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from spec.entry import Case
from spec.strategies.base import SMALL as _SMALL
from spec.strategies.base import float32_arrays, fractions_for

__all__ = ["schedule_cases", "iterative_sparsities_cases", "iterative_mask_cases"]


@st.composite
def schedule_cases(draw, exponential=False):
    """`(t,)` and `s_i, s_f, t0, n, dt`: t on, just before and just after pruning steps and both ends."""
    n = draw(st.one_of(st.integers(1, 12), st.integers(1, 10**6), st.sampled_from([1, 2, 3, 2**31 - 1, 10**12])))
    dt = draw(st.one_of(st.integers(1, 4), st.integers(1, 1000)))
    t0 = draw(st.one_of(st.integers(0, 8), st.integers(0, 10**6)))
    k = draw(st.one_of(st.integers(-1, min(n, 12) + 1), st.integers(-1, n + 1), st.sampled_from([n - 1, n, n + 1])))
    offset = draw(st.sampled_from([0, 0, -1, 1, dt - 1]))
    t = max(0, t0 + k * dt + offset)
    top = 0.999 if exponential else 1.0
    fractions = st.one_of(st.floats(0, top), st.sampled_from([0.0, 0.1, 0.5, 0.8, 0.9, top]))
    s_i = draw(fractions)
    s_f = draw(st.one_of(fractions, st.just(s_i)))
    return Case((t,), {"s_i": s_i, "s_f": s_f, "t0": t0, "n": n, "dt": dt})


@st.composite
def iterative_sparsities_cases(draw):
    mode = draw(st.sampled_from(["remaining", "total"]))
    steps = draw(st.integers(0, 12))
    if mode == "total" and steps:
        fraction = draw(st.one_of(st.floats(0, 1 / steps), st.just(1 / steps), st.sampled_from([0.0, 0.05, 0.1])))
        fraction = fraction if steps * fraction <= 1.0 else 0.0
    else:
        fraction = draw(st.one_of(st.floats(0, 1), st.sampled_from([0.0, 0.2, 0.5, 1.0])))
    return Case((fraction, steps), {"mode": mode})


@st.composite
def iterative_mask_cases(draw, total=False):
    """`(w, mask, fraction)`: masks with ties among kept weights; for `total`, never more than the kept count."""
    w = draw(float32_arrays(**_SMALL))
    mask = draw(st.one_of(st.just(np.ones(w.shape, dtype=bool)), hnp.arrays(np.bool_, w.shape)))
    kept = int(mask.sum())
    if not total:
        return Case((w, mask, draw(fractions_for(kept))))
    n = w.size
    if n == 0:
        return Case((w, mask, draw(st.sampled_from([0.0, 0.5, 1.0]))))
    k = draw(st.integers(0, kept))
    fraction = draw(st.sampled_from([k / n, max(0.0, (2 * k - 1) / (2 * n)), kept / n]) | st.floats(0, kept / n))
    if round(fraction * n) > kept:
        fraction = k / n
    return Case((w, mask, fraction))
