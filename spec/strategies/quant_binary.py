"""Strategies for binary and ternary quantization: binarize, BinaryConnect, XNOR-Net, TWN, TTQ.

The hard cases: signed zeros and subnormals (sign(0) = +1, -0.0 is a zero), the straight-through boundary
|x| = 1 and its float32 neighbours, BinaryConnect weights exactly on the random threshold 2u - 1, TWN weights
exactly on their own threshold 0.7 mean|w| (found by a fixed-point iteration), TTQ weights exactly on t max|w|
(grid values with t in {1/8, 1/4, 1/2, ...}), all-equal and all-zero slices, and float32 extremes whose scaled
gradients overflow.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from spec.entry import Case
from spec.strategies.base import F32, float32_arrays, float32_values, keys, scales

__all__ = [
    "binarize_cases",
    "binary_connect_cases",
    "xnor_cases",
    "twn_cases",
    "ttq_cases",
]

STES = ("identity", "clipped")
_NEAR_ONE = tuple(
    float(v) for one in (F32(1), F32(-1)) for v in (one, np.nextafter(one, F32(0)), np.nextafter(one, one * F32(2)))
)
_EDGES = _NEAR_ONE + (0.0, -0.0, 1.4e-45, -1.4e-45, 0.5, -0.5, 2.0, -2.0)


def _binary_values():
    """float32 values weighted toward the sign and straight-through boundaries."""
    return st.one_of(float32_values(), st.sampled_from(_EDGES))


def _grid_values():
    """Small multiples of a power of two: sums and products stay exact, thresholds land on elements."""
    return st.builds(lambda k, e: float(F32(k * 2.0**e)), st.integers(-8, 8), st.integers(-3, 2))


def _arrays(shape=None, elements=None, **shape_kw):
    """Arrays of binary-friendly values: edges, anything finite, or an exact grid."""
    elements = elements or st.one_of(_binary_values(), _grid_values())
    return float32_arrays(shape=shape, elements=elements, **shape_kw)


def _grad_like(draw, w):
    """Cotangents: edge values, or ordinary floats whose float32 sums would round (to catch a non-tree sum)."""
    ordinary = hnp.arrays(np.float32, w.shape, elements=st.floats(-100, 100, width=32))
    return draw(st.one_of(_arrays(shape=st.just(w.shape)), ordinary))


def _axis(draw, w):
    if w.ndim == 0:
        return None
    return draw(st.one_of(st.none(), st.integers(-w.ndim, w.ndim - 1)))


def binarize_cases(with_grad=False):
    """`binarize(x, ste=...)`, any shape (empty included); with_grad adds a cotangent first."""

    @st.composite
    def build(draw):
        x = draw(_arrays())
        kwargs = {"ste": draw(st.sampled_from(STES))}
        if with_grad:
            return Case((_grad_like(draw, x), x), kwargs)
        return Case((x,), kwargs)

    return build()


def binary_connect_cases(with_grad=False):
    """`binary_connect(w, stochastic, key, ste)`; stochastic weights are often placed exactly on 2u - 1."""

    @st.composite
    def build(draw):
        from reference.core.random import uniform

        w = draw(_arrays())
        stochastic = draw(st.booleans())
        key = draw(keys()) if stochastic else None
        if stochastic and w.size:
            t = uniform(key, w.shape) * F32(2) - F32(1)  # the exact threshold of each element
            which = draw(hnp.arrays(np.int8, w.shape, elements=st.integers(0, 3)))
            w = np.select(
                [which == 1, which == 2, which == 3],
                [t, np.nextafter(t, F32(2)), np.nextafter(t, F32(-2))],
                w,
            ).astype(np.float32)
        kwargs = {"stochastic": stochastic, "key": key, "ste": draw(st.sampled_from(STES))}
        if with_grad:
            return Case((_grad_like(draw, w), w), kwargs)
        return Case((w,), kwargs)

    return build()


def xnor_cases(with_grad=False, with_ste=True):
    """`xnor_scale` / `xnor_binarize` arguments: a nonempty w and an axis (and ste, and a cotangent)."""

    @st.composite
    def build(draw):
        w = draw(_arrays(min_side=1))
        kwargs = {"axis": _axis(draw, w)}
        if with_ste:
            kwargs["ste"] = draw(st.sampled_from(STES))
        if with_grad:
            return Case((_grad_like(draw, w), w), kwargs)
        return Case((w,), kwargs)

    return build()


def twn_cases(with_grad=False):
    """`twn_params` / `twn_ternarize` arguments; some elements are moved exactly onto their slice's threshold."""

    @st.composite
    def build(draw):
        from reference.quantization.ternary import twn_params

        w = draw(_arrays(min_side=1))
        axis = _axis(draw, w)
        if draw(st.booleans()):
            w = _onto_threshold(w, axis, draw(st.integers(0, w.size - 1)), draw(st.booleans()), twn_params)
        kwargs = {"axis": axis}
        if with_grad:
            return Case((_grad_like(draw, w), w), kwargs)
        return Case((w,), kwargs)

    return build()


def ttq_cases(with_grad=False):
    """`ttq_quantize(w, wp, wn, t)`: grid weights and dyadic t make |w| = t max|w| common."""

    @st.composite
    def build(draw):
        w = draw(float32_arrays(elements=st.one_of(_grid_values(), _grid_values(), _binary_values()), min_side=1))
        wp = np.array(draw(scales()), dtype=np.float32)
        wn = np.array(draw(st.one_of(scales(), st.just(float(wp)))), dtype=np.float32)
        t = draw(st.one_of(st.sampled_from([0.0, 0.05, 0.125, 0.25, 0.375, 0.5, 0.75, 1.0]), st.floats(0, 1)))
        args = (w, wp, wn)
        if with_grad:
            args = (_grad_like(draw, w), *args)
        return Case(args, {"t": t})

    return build()


def _onto_threshold(w, axis, index, negative, twn_params):
    """Set w[index] to +-delta of its slice, recomputing delta a few times (a contraction: 0.7 / n per step)."""
    w = w.copy()
    flat = w.reshape(-1)
    channel = None if axis is None else np.unravel_index(index, w.shape)[axis % w.ndim]
    for _ in range(4):
        delta, _ = twn_params(w, axis=axis)
        d = delta if channel is None else delta[channel]
        flat[index] = -d if negative else d
    return w
