r"""Strategies for the sparsity regularize entries: L1 and group-lasso penalties, network slimming, schedules.

The hard cases they aim at: thresholds exactly equal to a weight's magnitude or a group's norm (the strict
comparisons), zero groups and signed zeros, `lam` and `lr` of 0, products that overflow float32, ties in
$|\gamma|$ across layers, layers smaller than the per-layer minimum, schedule steps on and next to the pruning
steps and both ends of the interval, and huge step counts.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from spec.entry import Case
from spec.strategies.base import F32_MAX, float32_arrays, float32_values, fractions_for, shapes

__all__ = [
    "l1_penalty_cases",
    "l1_subgradient_cases",
    "l1_proximal_cases",
    "group_lasso_cases",
    "group_lasso_proximal_cases",
    "slimming_grad_cases",
    "slimming_mask_cases",
    "schedule_cases",
    "iterative_sparsities_cases",
    "iterative_mask_cases",
]

_SMALL = {"max_dims": 2, "max_side": 6}


def _strengths():
    """lam or lr: 0, round and short-mantissa values, anything moderate, and values whose float32 overflows."""
    return st.one_of(
        st.sampled_from([0.0, 1.0, 0.5, 0.1, 1e-4, 3.0, 2.0**-20]),
        st.floats(0, 1e3),
        st.floats(0, 1e-30),
        st.sampled_from([F32_MAX, 2.0 * F32_MAX, 1e300]),
    )


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


@st.composite
def slimming_grad_cases(draw):
    """`(grads, gammas, lam)`: one to four layers, gradients shaped like their scaling factors."""
    gammas = draw(st.lists(float32_arrays(max_dims=1, max_side=8), min_size=1, max_size=4))
    grads = [draw(float32_arrays(shape=st.just(g.shape))) for g in gammas]
    return Case((grads, gammas, draw(_strengths())))


@st.composite
def slimming_mask_cases(draw):
    """`(gammas, ratio)` and `min_channels`: 1-D layers of 0 to 8 channels, ties across layers, small minimums."""
    shared = draw(float32_values())  # a value repeated across layers: ties that cross a layer boundary
    elements = st.one_of(float32_values(), st.just(shared))
    gammas = draw(
        st.lists(float32_arrays(shape=shapes(min_dims=1, max_dims=1, max_side=8), elements=elements), max_size=4)
    )
    gammas = gammas or [np.zeros(0, dtype=np.float32)]
    total = sum(g.size for g in gammas)
    return Case((gammas, draw(fractions_for(total))), {"min_channels": draw(st.integers(0, 4))})


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
