"""Strategies of valid inputs for the entries of `reference.quantization.ternary`: `twn_cases`, `ttq_cases`."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from spec.entry import Case
from spec.strategies.base import binary_arrays as _arrays
from spec.strategies.base import binary_values as _binary_values
from spec.strategies.base import float32_arrays, scales
from spec.strategies.base import grad_like as _grad_like
from spec.strategies.base import grid_values as _grid_values
from spec.strategies.base import slice_axis as _axis

__all__ = ["twn_cases", "ttq_cases"]


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
