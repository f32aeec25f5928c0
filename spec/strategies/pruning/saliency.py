"""Strategies of valid inputs for the entries of `reference.pruning.saliency`: `score_mask_cases`, `movement_cases`,
`snip_cases`, `taylor_cases`, `wanda_cases`, `fpgm_cases`, `block_cases`.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from spec.entry import Case
from spec.strategies.base import F32_MAX, float32_arrays, float32_values, fractions_for

__all__ = [
    "score_mask_cases",
    "movement_cases",
    "snip_cases",
    "taylor_cases",
    "wanda_cases",
    "fpgm_cases",
    "block_cases",
]


def _like(draw, w):
    """Another float32 array of `w`'s shape: independent, equal to w, its negation, or all equal (cancellations)."""
    kind = draw(st.sampled_from(["any", "any", "same", "negated", "constant"]))
    if kind == "same":
        return w.copy()
    if kind == "negated":
        return -w
    if kind == "constant":
        return np.full(w.shape, draw(float32_values()), dtype=np.float32)
    return draw(float32_arrays(shape=st.just(w.shape)))


@st.composite
def score_mask_cases(draw):
    with_inf = st.one_of(float32_values(), st.sampled_from([float("inf"), float("-inf")]))
    scores = draw(float32_arrays(elements=with_inf))
    return Case((scores, draw(fractions_for(scores.size))))


@st.composite
def movement_cases(draw):
    w = draw(float32_arrays())
    return Case((draw(float32_arrays(shape=st.just(w.shape))), w, _like(draw, w)))


@st.composite
def snip_cases(draw):
    w = draw(float32_arrays())
    return Case((w, _like(draw, w)))


@st.composite
def taylor_cases(draw, mask=False):
    w = draw(float32_arrays(min_dims=1))
    grad = _like(draw, w)
    axis = draw(st.integers(-w.ndim, w.ndim - 1))
    if mask:
        return Case((w, grad, draw(fractions_for(w.shape[axis]))), {"axis": axis})
    return Case((w, grad), {"axis": axis})


@st.composite
def wanda_cases(draw, mask=False):
    out, n_in, tokens = draw(st.integers(0, 6)), draw(st.integers(0, 6)), draw(st.integers(1, 6))
    w = draw(float32_arrays(shape=st.just((out, n_in))))
    huge = st.sampled_from([F32_MAX, -F32_MAX, 2.0**100])
    x = draw(float32_arrays(shape=st.just((tokens, n_in)), elements=st.one_of(float32_values(), huge)))
    if mask:
        return Case((w, x, draw(fractions_for(n_in))))
    return Case((w, x))


@st.composite
def fpgm_cases(draw, mask=False):
    w = draw(float32_arrays(min_dims=1, max_side=5))
    if w.ndim and w.shape[0] >= 2 and draw(st.booleans()):
        w[1] = w[0]  # identical filters: equal scores
    axis = draw(st.integers(-w.ndim, w.ndim - 1))
    if mask:
        return Case((w, draw(fractions_for(w.shape[axis]))), {"axis": axis})
    return Case((w,), {"axis": axis})


@st.composite
def block_cases(draw, mask=False):
    b0, b1 = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    r, c = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    w = draw(float32_arrays(shape=st.just((r * b0, c * b1))))
    block = draw(st.sampled_from([(b0, b1), [b0, b1]]))
    if mask:
        return Case((w, draw(fractions_for(r * c)), block))
    return Case((w, block))
