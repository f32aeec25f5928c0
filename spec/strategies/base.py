"""Shared element and array strategies: the building blocks that the strategies of every reference module draw from
(float32 values with the special cases, shapes, arrays with ties, keys, scales, integer ranges, granularities,
low-bit boundaries), and the helpers that several of them share.
"""

from __future__ import annotations

import functools

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

F32 = np.float32
F32_MAX = float(np.finfo(np.float32).max)
F32_TINY = float(np.finfo(np.float32).tiny)  # smallest normal
F32_SUB = float(np.float32(1.4e-45))  # smallest subnormal

SPECIAL_F32 = tuple(
    float(F32(v))
    for v in (
        0.0, -0.0, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 1.0, -1.0, 0.49999997, -0.49999997, 0.50000006,
        F32_SUB, -F32_SUB, F32_TINY, -F32_TINY, 1.1754942e-38, 2.0**23 + 1, -(2.0**23 + 1), 2.0**24,
        F32_MAX, -F32_MAX, 0.1, 1e-3, 3.0,
    )
)  # fmt: skip
ROUNDING_MODES = ("half_even", "half_away", "floor", "ceil", "stochastic")


def float32_values(max_abs=None):
    """Single float32 values (as Python floats): anything finite, the special values, and halves of small ints."""
    parts = [
        st.floats(width=32, allow_nan=False, allow_infinity=False, allow_subnormal=True),
        st.sampled_from(SPECIAL_F32),
        st.integers(-16, 16).map(lambda k: k / 2),
    ]
    if max_abs is None:
        return st.one_of(parts)
    return st.one_of(parts).filter(lambda v: abs(v) <= max_abs)


def shapes(min_dims=0, max_dims=3, min_side=0, max_side=6):
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


def float32_arrays(shape=None, elements=None, **shape_kw):
    """float32 arrays with ties (a repeated fill value), and sometimes all elements equal."""
    shape = shapes(**shape_kw) if shape is None else shape
    elements = float32_values() if elements is None else elements
    general = hnp.arrays(np.float32, shape, elements=elements)
    constant = st.builds(lambda s, v: np.full(s, v, dtype=np.float32), shape, elements)
    return st.one_of(general, general, general, constant)


def float64_arrays(shape=None, **shape_kw):
    shape = shapes(**shape_kw) if shape is None else shape
    return hnp.arrays(np.float64, shape, elements=st.floats(-1e300, 1e300, allow_subnormal=True))


def keys():
    """Random keys: tuples of two uint32 words."""
    return st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1))


def fractions_for(n):
    """Sparsities in [0, 1], including those where sparsity * n is exactly a .5 tie."""
    parts = [st.floats(0, 1), st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0])]
    if n > 0:
        parts.append(st.integers(0, n - 1).map(lambda j: (2 * j + 1) / (2 * n)))
    return st.one_of(parts)


def scales():
    """Positive float32 scales: short mantissas that are not powers of two (exact midpoints), powers of two, any."""
    short = st.builds(
        lambda m, e: float(F32(m * 2.0**e)), st.sampled_from([3, 5, 7, 9, 11, 13, 25]), st.integers(-12, 4)
    )
    power = st.integers(-20, 8).map(lambda e: 2.0**e)
    anything = st.floats(float(F32(1e-6)), 1e3, width=32)
    tiny = st.sampled_from([F32_SUB, F32_TINY, float(F32(3 * 2.0**-130))])
    return st.one_of(short, short, power, anything, tiny)


@st.composite
def qranges(draw, min_codes=2):
    from reference.quantization.affine import integer_range

    while True:
        bits = draw(st.integers(1, 16))
        narrow = bits >= 2 and draw(st.booleans())
        qmin, qmax = integer_range(bits, draw(st.booleans()), narrow)
        if qmax - qmin + 1 >= min_codes:
            return qmin, qmax


@st.composite
def granularities(draw, shape):
    """(axis, group_size, scale shape) valid for `shape`."""
    kinds = ["tensor"] + (["channel", "group"] if len(shape) else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "tensor":
        return None, None, ()
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    k = axis % len(shape)
    if kind == "channel":
        return axis, None, (shape[k],)
    n = shape[k]
    g = draw(st.sampled_from([d for d in range(1, n + 1) if n % d == 0] if n else [1, 2, 3]))
    return axis, g, tuple(s // g if i == k else s for i, s in enumerate(shape))


# ---- used by quantization.binary, quantization.ternary --------------------------------------------------------------

NEAR_ONE = tuple(
    float(v) for one in (F32(1), F32(-1)) for v in (one, np.nextafter(one, F32(0)), np.nextafter(one, one * F32(2)))
)
EDGES = NEAR_ONE + (0.0, -0.0, 1.4e-45, -1.4e-45, 0.5, -0.5, 2.0, -2.0)


def binary_values():
    """float32 values weighted toward the sign and straight-through boundaries."""
    return st.one_of(float32_values(), st.sampled_from(EDGES))


def grid_values():
    """Small multiples of a power of two: sums and products stay exact, thresholds land on elements."""
    return st.builds(lambda k, e: float(F32(k * 2.0**e)), st.integers(-8, 8), st.integers(-3, 2))


def binary_arrays(shape=None, elements=None, **shape_kw):
    """Arrays of binary-friendly values: edges, anything finite, or an exact grid."""
    elements = elements or st.one_of(binary_values(), grid_values())
    return float32_arrays(shape=shape, elements=elements, **shape_kw)


def grad_like(draw, w):
    """Cotangents: edge values, or ordinary floats whose float32 sums would round (to catch a non-tree sum)."""
    ordinary = hnp.arrays(np.float32, w.shape, elements=st.floats(-100, 100, width=32))
    return draw(st.one_of(binary_arrays(shape=st.just(w.shape)), ordinary))


def slice_axis(draw, w):
    if w.ndim == 0:
        return None
    return draw(st.one_of(st.none(), st.integers(-w.ndim, w.ndim - 1)))


# ---- used by quantization.dorefa, quantization.pact -----------------------------------------------------------------


def bit_widths():
    return st.one_of(st.integers(1, 4), st.integers(1, 16))


# ---- used by quantization.floats, quantization.mx -------------------------------------------------------------------


def with_neighbours(points):
    """float32 points (float64 in), each with its two float32 neighbours; positive, finite, sorted, unique."""
    with np.errstate(over="ignore"):
        p = np.asarray(points, dtype=np.float64).astype(F32)
    p = p[np.isfinite(p) & (p > 0)]
    p = np.concatenate([p, np.nextafter(p, F32(np.inf)), np.nextafter(p, F32(0))])
    return np.unique(p[np.isfinite(p) & (p > 0)])


@functools.cache
def lowbit_boundaries(fmt):
    """Positive float32 values at and next to every rounding boundary of a float format, as a tuple of floats.

    Representable values, midpoints of neighbours, the overflow threshold (max plus half the top spacing), twice
    the max, the smallest-subnormal half (or, for E8M0, $2^{-128}$), each with its float32 neighbours.
    """
    from reference.quantization.floats import FORMATS, float_decode

    form = FORMATS[fmt]
    v = float_decode(np.arange(2**form.bits, dtype=np.uint8), fmt).astype(np.float64)
    v = np.unique(v[np.isfinite(v) & (v > 0)])
    top = v[-1] - v[-2]
    extra = [v[-1] + top / 2, v[-1] + top, 2 * v[-1], v[0] / 2, v[0] / 4]
    return tuple(float(t) for t in with_neighbours(np.concatenate([v, (v[:-1] + v[1:]) / 2, extra])))


# ---- used by codecs.awq, codecs.gptq --------------------------------------------------------------------------------


def float16_scales(shape):
    """float16 arrays of any finite value: signed zeros, subnormals, the max, and repeated values."""
    edge = st.sampled_from([0.0, -0.0, 6e-08, 65504.0, -65504.0, 0.5, 1.0, 0.0999755859375])
    anything = st.floats(width=16, allow_nan=False, allow_infinity=False)
    return hnp.arrays(np.float16, shape, elements=st.one_of(edge, anything))


def int32_words(shape):
    ends = st.sampled_from([0, -1, -(2**31), 2**31 - 1, 0x77777777, -0x77777778])
    return hnp.arrays(np.int32, shape, elements=st.one_of(ends, st.integers(-(2**31), 2**31 - 1)))


# ---- used by pruning.regularization, pruning.schedules --------------------------------------------------------------

SMALL = {"max_dims": 2, "max_side": 6}


# ---- used by pruning.regularization, pruning.slimming ---------------------------------------------------------------


def strengths():
    """lam or lr: 0, round and short-mantissa values, anything moderate, and values whose float32 overflows."""
    return st.one_of(
        st.sampled_from([0.0, 1.0, 0.5, 0.1, 1e-4, 3.0, 2.0**-20]),
        st.floats(0, 1e3),
        st.floats(0, 1e-30),
        st.sampled_from([F32_MAX, 2.0 * F32_MAX, 1e300]),
    )
