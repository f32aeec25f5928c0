"""Strategies for the foundation: shared element and array strategies, core primitives, affine quantization, pruning.

They are built to hit the places where implementations disagree: ties (arrays are filled with repeated values),
signed zeros, subnormals, exact x.5 rounding midpoints (scales with short mantissas that are not powers of
two), the largest finite floats, all-equal and one-element arrays, empty arrays where they are meaningful.
Every strategy draws a `spec.registry.Case`.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from spec.entry import Case

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


# ------------------------------------------------------------------------------------------------------------
# Core
# ------------------------------------------------------------------------------------------------------------


@st.composite
def reduce_cases(draw, mean=False, norm=False):
    dtype = "float32" if norm else draw(st.sampled_from(["float32", "float64"]))
    min_side = 1 if mean else 0
    x = draw(float32_arrays(min_side=min_side) if dtype == "float32" else float64_arrays(min_side=min_side))
    axis = None if x.ndim == 0 else draw(st.one_of(st.none(), st.integers(-x.ndim, x.ndim - 1)))
    kwargs = {"axis": axis}
    if norm:
        kwargs["p"] = draw(st.sampled_from([1, 2]))
    return Case((x,), kwargs)


def rounding_cases(stochastic=False, with_mode=False):
    @st.composite
    def build(draw):
        x = draw(float32_arrays())
        if with_mode:
            mode = draw(st.sampled_from(ROUNDING_MODES))
            key = draw(keys()) if mode == "stochastic" else None
            return Case((x,), {"mode": mode, "key": key})
        if stochastic:
            return Case((x, draw(keys())))
        return Case((x,))

    return build()


@st.composite
def threefry_cases(draw):
    shape = draw(shapes(max_dims=2))
    words = hnp.arrays(np.int64, shape, elements=st.one_of(st.integers(0, 2**32 - 1), st.sampled_from([0, 2**32 - 1])))
    return Case((draw(keys()), draw(words), draw(words)))


def seed_cases():
    return st.builds(
        lambda s: Case((s,)), st.one_of(st.integers(0, 2**64 - 1), st.sampled_from([0, 1, 2**32, 2**64 - 1]))
    )


def split_cases():
    return st.builds(lambda k, n: Case((k,), {"num": n}), keys(), st.integers(1, 8))


def fold_in_cases():
    return st.builds(lambda k, d: Case((k, d)), keys(), st.integers(0, 2**32 - 1))


def bits_cases():
    return st.builds(lambda k, s: Case((k, s)), keys(), shapes(max_dims=3, max_side=7))


@st.composite
def select_cases(draw):
    dtype = draw(st.sampled_from(["float32", "float64", "int64"]))
    if dtype == "float32":
        with_inf = st.one_of(float32_values(), st.sampled_from([float("inf"), float("-inf")]))
        scores = draw(float32_arrays(elements=with_inf))
    elif dtype == "float64":
        scores = draw(float64_arrays())
    else:
        scores = draw(hnp.arrays(np.int64, shapes(), elements=st.integers(-5, 5)))
    return Case((scores, draw(st.integers(0, scores.size))))


# ------------------------------------------------------------------------------------------------------------
# Affine quantization
# ------------------------------------------------------------------------------------------------------------


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


@st.composite
def affine_cases(draw, with_grad=False):
    """`(x, scale, zero_point)` and keyword arguments for quantize / fake_quantize (and a cotangent with_grad)."""
    qmin, qmax = draw(qranges(min_codes=1))
    shape = draw(shapes(max_dims=3, max_side=6))
    axis, group_size, sshape = draw(granularities(shape))
    scale = draw(hnp.arrays(np.float32, sshape, elements=scales()))
    zero_point = draw(hnp.arrays(np.int32, sshape, elements=st.integers(qmin, qmax)))
    s_full = _expand(scale, shape, axis, group_size)
    z_full = _expand(zero_point, shape, axis, group_size)
    # Points on and between the grid: (t - z) * s for t a multiple of 1/2 near the code range, so x / s is
    # often exactly an integer or a .5 midpoint; plus arbitrary float32 values.
    t = draw(hnp.arrays(np.float32, shape, elements=st.integers(2 * qmin - 6, 2 * qmax + 6).map(lambda k: k / 2)))
    grid = (t - z_full.astype(np.float32)) * s_full
    anywhere = draw(float32_arrays(shape=st.just(shape)))
    pick = draw(hnp.arrays(np.bool_, shape))
    x = np.where(pick, grid, anywhere).astype(np.float32)
    x = np.where(np.isfinite(x), x, np.float32(0))
    mode = draw(st.sampled_from(ROUNDING_MODES))
    kwargs = {"qmin": qmin, "qmax": qmax, "axis": axis, "group_size": group_size, "rounding": mode}
    kwargs["key"] = draw(keys()) if mode == "stochastic" else None
    if with_grad:
        grad = draw(float32_arrays(shape=st.just(shape)))
        return Case((grad, x, scale, zero_point), kwargs)
    return Case((x, scale, zero_point), kwargs)


@st.composite
def dequantize_cases(draw):
    qmin, qmax = draw(qranges(min_codes=1))
    shape = draw(shapes(max_dims=3, max_side=6))
    axis, group_size, sshape = draw(granularities(shape))
    scale = draw(
        hnp.arrays(
            np.float32, sshape, elements=st.one_of(scales(), st.floats(float(F32(1e-30)), float(F32(1e30)), width=32))
        )
    )
    zero_point = draw(hnp.arrays(np.int32, sshape, elements=st.integers(qmin, qmax)))
    q = draw(hnp.arrays(np.int32, shape, elements=st.one_of(st.integers(qmin, qmax), st.integers(-(2**15), 2**16 - 1))))
    return Case((q, scale, zero_point), {"axis": axis, "group_size": group_size})


def integer_range_cases():
    @st.composite
    def build(draw):
        bits = draw(st.integers(1, 16))
        return Case((bits,), {"signed": draw(st.booleans()), "narrow_range": bits >= 2 and draw(st.booleans())})

    return build()


@st.composite
def qparams_range_cases(draw):
    symmetric = draw(st.booleans())
    qmin, qmax = draw(qranges(min_codes=3 if symmetric else 2))
    shape = draw(shapes(max_dims=2))
    a = draw(float32_arrays(shape=st.just(shape)))
    b = draw(float32_arrays(shape=st.just(shape)))
    return Case((np.minimum(a, b), np.maximum(a, b)), {"qmin": qmin, "qmax": qmax, "symmetric": symmetric})


@st.composite
def minmax_qparams_cases(draw):
    symmetric = draw(st.booleans())
    qmin, qmax = draw(qranges(min_codes=3 if symmetric else 2))
    x = draw(float32_arrays(min_side=1))
    axis, group_size, _ = draw(granularities(x.shape))
    return Case((x,), {"qmin": qmin, "qmax": qmax, "symmetric": symmetric, "axis": axis, "group_size": group_size})


def _expand(p, shape, axis, group_size):
    if axis is None:
        return np.broadcast_to(p, shape)
    k = axis % len(shape)
    if group_size is None:
        return np.broadcast_to(p.reshape(tuple(-1 if i == k else 1 for i in range(len(shape)))), shape)
    return np.repeat(p, group_size, axis=k)


# ------------------------------------------------------------------------------------------------------------
# Pruning
# ------------------------------------------------------------------------------------------------------------


@st.composite
def count_cases(draw):
    n = draw(st.integers(0, 10_000))
    return Case((draw(fractions_for(n)), n))


@st.composite
def magnitude_cases(draw):
    w = draw(float32_arrays())
    return Case((w, draw(fractions_for(w.size))))


@st.composite
def magnitude_count_cases(draw):
    w = draw(float32_arrays())
    return Case((w, draw(st.integers(0, w.size))))


@st.composite
def threshold_cases(draw):
    w = draw(float32_arrays())
    exact = [abs(float(v)) for v in w.reshape(-1)[:8]]
    t = draw(
        st.one_of([st.floats(0, 1e3), st.sampled_from([0.0, 0.5, 1.0])] + ([st.sampled_from(exact)] if exact else []))
    )
    return Case((w, t))


@st.composite
def global_cases(draw):
    ws = draw(st.lists(float32_arrays(max_dims=2), min_size=1, max_size=4))
    return Case((ws, draw(fractions_for(sum(w.size for w in ws)))))


@st.composite
def apply_mask_cases(draw, with_grad=False):
    with_nonfinite = st.one_of(float32_values(), st.sampled_from([float("inf"), float("-inf"), float("nan")]))
    w = draw(float32_arrays(elements=with_nonfinite))
    mask = draw(hnp.arrays(np.bool_, w.shape))
    if with_grad:
        return Case((draw(float32_arrays(shape=st.just(w.shape))), w, mask))
    return Case((w, mask))


@st.composite
def structured_cases(draw):
    w = draw(float32_arrays(min_dims=1))
    axis = draw(st.integers(-w.ndim, w.ndim - 1))
    return Case((w, draw(fractions_for(w.shape[axis]))), {"p": draw(st.sampled_from([1, 2])), "axis": axis})


@st.composite
def nm_cases(draw):
    m = draw(st.integers(1, 8))
    n = draw(st.integers(0, m))
    shape = list(draw(shapes(min_dims=1, max_dims=3, max_side=4)))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    shape[axis] *= m
    w = draw(float32_arrays(shape=st.just(tuple(shape))))
    return Case((w, n, m), {"axis": axis})


@st.composite
def random_mask_cases(draw):
    w = draw(float32_arrays())
    return Case((w, draw(fractions_for(w.size)), draw(keys())))
