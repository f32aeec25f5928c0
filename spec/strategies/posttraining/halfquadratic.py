"""Strategies of valid inputs for the entries of `reference.posttraining.halfquadratic`: `shrink_cases`, `hqq_cases`."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from spec.entry import Case
from spec.strategies.base import float32_arrays
from spec.strategies.posttraining.obs import VALUES

__all__ = ["shrink_cases", "hqq_cases"]


@st.composite
def shrink_cases(draw):
    """`(x,)` with `beta`, `p` for `hqq_shrink`: zeros of both signs, subnormals (|x|**(p - 1) overflows)."""
    x = draw(float32_arrays(max_dims=2))
    kw = {"beta": draw(st.sampled_from([1.0, 10.0, 0.5, 1e3, 1e-3])), "p": draw(st.sampled_from([0.5, 0.7, 1.0, 0.1]))}
    return Case((x,), kw)


@st.composite
def hqq_cases(draw):
    """`(w,)` and the options of `hqq`."""
    d = draw(st.sampled_from([1, 2, 4, 8]))
    w = draw(hnp.arrays(np.float32, (draw(st.integers(1, 3)), d), elements=VALUES))
    kw = {
        "bits": draw(st.sampled_from([1, 2, 3, 4, 8])),
        "group_size": draw(st.sampled_from([g for g in range(1, d + 1) if d % g == 0])),
        "lp_norm": draw(st.sampled_from([0.5, 0.7, 1.0])),
        "beta": draw(st.sampled_from([1.0, 10.0, 100.0])),
        "kappa": draw(st.sampled_from([1.0, 1.01, 1.5])),
        "iters": draw(st.sampled_from([0, 1, 3, 20])),
        "optimize": draw(st.booleans()),
    }
    return Case((w,), kw)
