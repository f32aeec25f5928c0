"""Strategies of valid inputs for the entries of `reference.pruning.regularization`: `l1_penalty_cases`,
`l1_subgradient_cases`, `l1_proximal_cases`, `group_lasso_cases`, `group_lasso_proximal_cases`.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

from spec.entry import Case
from spec.strategies.base import SMALL as _SMALL
from spec.strategies.base import float32_arrays, float32_values
from spec.strategies.base import strengths as _strengths

__all__ = [
    "l1_penalty_cases",
    "l1_subgradient_cases",
    "l1_proximal_cases",
    "group_lasso_cases",
    "group_lasso_proximal_cases",
]


def _cotangents():
    return st.builds(lambda v: np.array(v, dtype=np.float32), float32_values())


@st.composite
def _weights(draw, min_dims=0):
    return draw(float32_arrays(min_dims=min_dims, **_SMALL))


@st.composite
def l1_penalty_cases(draw, with_grad=False):
    """`(w, lam)` with `w` one array or a list of one to three; with_grad prepends a 0-d cotangent."""
    if draw(st.booleans()):
        w = draw(_weights())
    else:
        w = draw(st.lists(_weights(), min_size=1, max_size=3))
    lam = draw(_strengths())
    if with_grad:
        return Case((draw(_cotangents()), w, lam))
    return Case((w, lam))


@st.composite
def l1_subgradient_cases(draw):
    return Case((draw(_weights()), draw(_strengths())))


@st.composite
def l1_proximal_cases(draw):
    """`(w, lr, lam)`; often lr * lam equals some |w_i| exactly, so that |w_i| == tau is on the boundary."""
    w = draw(_weights())
    magnitudes = [abs(float(v)) for v in w.reshape(-1)[:8]]
    if magnitudes and draw(st.booleans()):
        tau = draw(st.sampled_from(magnitudes))
        lr, lam = draw(st.sampled_from([(1.0, tau), (tau, 1.0), (0.5, 2.0 * tau), (2.0, tau / 2.0)]))
        if not (math.isfinite(lam) and math.isfinite(lr)):
            lr, lam = 1.0, tau
        return Case((w, lr, lam))
    return Case((w, draw(_strengths()), draw(_strengths())))


@st.composite
def _grouped(draw):
    """A weight with >= 1 dimension, an axis, and sometimes a whole group (slice) set to signed zeros."""
    w = draw(float32_arrays(min_dims=1, **_SMALL))
    axis = draw(st.integers(-w.ndim, w.ndim - 1))
    if w.shape[axis] and draw(st.booleans()):
        g = draw(st.integers(0, w.shape[axis] - 1))
        zero = draw(st.sampled_from([0.0, -0.0]))
        w = w.copy()
        np.moveaxis(w, axis, 0)[g] = np.float32(zero)
    return w, axis


@st.composite
def group_lasso_cases(draw, with_grad=False):
    """`(w, lam)` and `axis` for the group-lasso penalty; with_grad prepends a 0-d cotangent."""
    w, axis = draw(_grouped())
    lam = draw(_strengths())
    if with_grad:
        return Case((draw(_cotangents()), w, lam), {"axis": axis})
    return Case((w, lam), {"axis": axis})


@st.composite
def group_lasso_proximal_cases(draw):
    """`(w, lr, lam)` and `axis`; often lr * lam is exactly one group's float32 norm (the `norm > tau` boundary)."""
    from reference.core.reduce import lp_norm

    w, axis = draw(_grouped())
    groups = w.shape[axis]
    if groups and draw(st.booleans()):
        rows = np.moveaxis(w, axis, 0).reshape(groups, -1) if w.size else np.zeros((groups, 0), np.float32)
        norms = [float(v) for v in lp_norm(rows, 2, axis=1) if math.isfinite(float(v))]
        if norms:
            return Case((w, 1.0, draw(st.sampled_from(norms))), {"axis": axis})
    return Case((w, draw(_strengths()), draw(_strengths())), {"axis": axis})
