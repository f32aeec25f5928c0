"""Strategies of valid inputs for the entries of `reference.core.exact`: `exact_values`, `exact_arrays`,
`exact_sum_cases`, `exact_combine_cases`, `exact_round_cases`, `exact_dot_cases`, `exact_matmul_cases`,
`exact_gram_cases`.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from spec.entry import Case
from spec.strategies.base import shapes

__all__ = [
    "exact_values",
    "exact_arrays",
    "exact_sum_cases",
    "exact_combine_cases",
    "exact_round_cases",
    "exact_dot_cases",
    "exact_matmul_cases",
    "exact_gram_cases",
]


LENGTHS = (0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65)
F64_MAX = float(np.finfo(np.float64).max)
F32_MAX = float(np.finfo(np.float32).max)
SPECIAL = {
    "float64": (
        0.0, -0.0, 1.0, -1.0, 0.5, 2.0**53, -(2.0**53), 2.0**-53, 1e308, -1e308, F64_MAX, -F64_MAX, 2.0**970,
        2.0**-1022, -(2.0**-1022), 2.0**-1074, -(2.0**-1074), 3 * 2.0**-1074, 1e-300, 0.1, 1e16, 2.0**1023,
    ),
    "float32": (
        0.0, -0.0, 1.0, -1.0, 0.5, 2.0**24, -(2.0**24), 2.0**-24, F32_MAX, -F32_MAX, 2.0**-126, 2.0**-149,
        -(2.0**-149), 3 * 2.0**-149, 1e-30, 0.1, 1e30, 2.0**127,
    ),
}  # fmt: skip


def exact_values(dtype):
    """Single values of `dtype` as Python floats: anything finite (all exponents, subnormals), the special values
    above, small integers and halves, and powers of two across the whole range."""
    width = 32 if dtype == "float32" else 64
    lo, hi = (-149, 127) if width == 32 else (-1074, 1023)
    values = st.one_of(
        st.floats(width=width, allow_nan=False, allow_infinity=False, allow_subnormal=True),
        st.sampled_from(SPECIAL[dtype]),
        st.integers(-16, 16).map(lambda k: k / 2),
        st.builds(lambda e, s: s * 2.0**e, st.integers(lo, hi), st.sampled_from([1.0, -1.0, 1.5, -0.75])),
    )
    return values.map(lambda v: float(np.float32(v))) if width == 32 else values


@st.composite
def exact_arrays(draw, dtype, shape):
    """Arrays with ties (a repeated fill value), and often catastrophic cancellation: half of the positions hold
    the negations of the other half, so the exact sum is whatever the remaining elements add up to."""
    shape = draw(shape) if isinstance(shape, st.SearchStrategy) else shape
    x = draw(hnp.arrays(dtype, shape, elements=exact_values(dtype), fill=exact_values(dtype)))
    if x.size >= 2 and draw(st.booleans()):
        flat = x.reshape(-1)
        order = draw(st.permutations(range(flat.size)))
        half = flat.size // 2
        flat[list(order[:half])] = -flat[list(order[half : 2 * half])]
    return x


def _sum_shapes():
    return st.one_of(st.sampled_from(LENGTHS).map(lambda n: (n,)), shapes(max_dims=3, max_side=5))


@st.composite
def exact_sum_cases(draw):
    """`(x,)` with `axis`: float32 or float64 arrays of any small shape, or 1-d of a length near a power of two."""
    dtype = draw(st.sampled_from(["float32", "float64"]))
    x = draw(exact_arrays(dtype, _sum_shapes()))
    axis = None if x.ndim == 0 else draw(st.one_of(st.none(), st.integers(-x.ndim, x.ndim - 1)))
    return Case((x,), {"axis": axis})


@st.composite
def exact_combine_cases(draw):
    """`(states,)`: the states of the pieces of a random split of an array, in a random order; or canonical
    states with arbitrary limbs (whose total still fits the state)."""
    from reference.core.exact import LIMBS, exact_sum_state

    if draw(st.booleans()):
        dtype = draw(st.sampled_from(["float32", "float64"]))
        x = draw(exact_arrays(dtype, st.sampled_from(LENGTHS).map(lambda n: (n,))))
        cuts = sorted(draw(st.lists(st.integers(0, x.size), max_size=4)))
        pieces = np.split(x, cuts)
        states = [exact_sum_state(p) for p in draw(st.permutations(pieces))]
        return Case((states,))
    count = draw(st.integers(1, 4))
    shape = draw(st.sampled_from([(), (2,), (1, 3)]))
    low = hnp.arrays(np.int64, shape + (LIMBS - 1,), elements=st.one_of(st.integers(0, 2**32 - 1),
                     st.sampled_from([0, 1, 2**32 - 1])))  # fmt: skip
    top = hnp.arrays(np.int64, shape + (1,), elements=st.integers(-(2**28), 2**28 - 1))
    states = [np.concatenate([draw(low), draw(top)], axis=-1) for _ in range(count)]
    return Case((states,))


@st.composite
def exact_round_cases(draw):
    """`(state,)`: the state of an array, a limb-wise sum of states (not canonical), or arbitrary int64 limbs."""
    from reference.core.exact import LIMBS, exact_sum_state

    kind = draw(st.sampled_from(["state", "sum", "any"]))
    if kind == "any":
        shape = draw(st.sampled_from([(), (2,), (3, 1)]))
        limbs = st.one_of(st.integers(-(2**63), 2**63 - 1), st.integers(-4, 4), st.sampled_from([2**32, -(2**31)]))
        return Case((draw(hnp.arrays(np.int64, shape + (LIMBS,), elements=limbs)),))
    dtype = draw(st.sampled_from(["float32", "float64"]))
    xs = draw(st.lists(exact_arrays(dtype, st.sampled_from(LENGTHS[:12]).map(lambda n: (n,))), min_size=1,
                       max_size=1 if kind == "state" else 4))  # fmt: skip
    return Case((sum(exact_sum_state(x) for x in xs),))


@st.composite
def exact_dot_cases(draw):
    """`(a, b)` with `axis`, one dtype and shape; often `a = [u, u]` and `b = [v, -v]` along the axis, whose exact
    dot product is zero however large the products are."""
    dtype = draw(st.sampled_from(["float32", "float64"]))
    shape = list(draw(st.one_of(st.sampled_from(LENGTHS[:14]).map(lambda n: (n,)), shapes(1, 3, 0, 4))))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    a = draw(exact_arrays(dtype, tuple(shape)))
    b = draw(exact_arrays(dtype, tuple(shape)))
    if shape[axis] >= 2 and draw(st.booleans()):
        half = shape[axis] // 2
        a, b = np.moveaxis(a, axis, -1).copy(), np.moveaxis(b, axis, -1).copy()
        a[..., half : 2 * half] = a[..., :half]
        b[..., half : 2 * half] = -b[..., :half]
        a, b = np.moveaxis(a, -1, axis), np.moveaxis(b, -1, axis)
    return Case((np.ascontiguousarray(a), np.ascontiguousarray(b)), {"axis": axis})


@st.composite
def exact_matmul_cases(draw):
    """`(a, b)` of shapes `(..., m, k)` and `(..., k, n)`, with at most one small batch dimension."""
    dtype = draw(st.sampled_from(["float32", "float64"]))
    batch = draw(st.sampled_from([(), (), (1,), (2,)]))
    m, n = draw(st.integers(0, 4)), draw(st.integers(0, 4))
    k = draw(st.sampled_from([0, 1, 2, 3, 4, 5, 7, 8, 9]))
    a = draw(exact_arrays(dtype, batch + (m, k)))
    b = draw(exact_arrays(dtype, batch + (k, n)))
    if k >= 2 and draw(st.booleans()):  # a row [u, u] against a column [v; -v]: exact zeros in the product
        half = k // 2
        a[..., half : 2 * half] = a[..., :half]
        b[..., half : 2 * half, :] = -b[..., :half, :]
    return Case((a, b))


@st.composite
def exact_gram_cases(draw):
    """`(x,)` of shape `(..., n, d)`."""
    dtype = draw(st.sampled_from(["float32", "float64"]))
    batch = draw(st.sampled_from([(), (), (2,)]))
    shape = batch + (draw(st.sampled_from([0, 1, 2, 3, 4, 5, 7, 8, 9])), draw(st.integers(0, 4)))
    return Case((draw(exact_arrays(dtype, shape)),))
