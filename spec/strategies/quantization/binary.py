"""Strategies of valid inputs for the entries of `reference.quantization.binary`: `binarize_cases`,
`binary_connect_cases`, `xnor_cases`.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from spec.entry import Case
from spec.strategies.base import F32, keys
from spec.strategies.base import binary_arrays as _arrays
from spec.strategies.base import grad_like as _grad_like
from spec.strategies.base import slice_axis as _axis

__all__ = ["binarize_cases", "binary_connect_cases", "xnor_cases"]


STES = ("identity", "clipped")


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
