"""Strategies for the low-bit float and MX entries (`quantization.floats`, `quantization.mx`).

Values are drawn where encoders disagree: every representable value of the format, every midpoint between two
neighbours (the ties), the overflow threshold and the half of the smallest subnormal, each with its two float32
neighbours (`np.nextafter`); plus arbitrary float32 values (subnormals of float32 included), signed zeros, values
far above the format's max, and +-Inf / NaN where the format defines their encoding. Exhaustive enumerations of
all codes live in `tests/test_lowbit.py`.
"""

from __future__ import annotations

import functools

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from spec.entry import Case
from spec.strategies.base import float32_values, keys, shapes

__all__ = [
    "lowbit_boundaries",
    "lowbit_values",
    "lowbit_encode_cases",
    "lowbit_decode_cases",
    "mx_element_boundaries",
    "mx_quantize_cases",
    "mx_dequantize_cases",
]

F32 = np.float32
FLOAT_FORMATS = (
    "float8_e4m3fn", "float8_e5m2", "float6_e3m2fn", "float6_e2m3fn", "float4_e2m1fn", "float8_e8m0fnu",
)  # fmt: skip
MX_FORMATS = ("mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e3m2", "mxfp6_e2m3", "mxfp4_e2m1", "mxint8")
INF, NAN = float("inf"), float("nan")


def _with_neighbours(points):
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
    return tuple(float(t) for t in _with_neighbours(np.concatenate([v, (v[:-1] + v[1:]) / 2, extra])))


@functools.cache
def mx_element_boundaries(fmt):
    r"""Positive element values for an MX format, continued past the max into the next power of two.

    The top binade's grid goes on to $2^{\text{emax}+1}$ (for E4M3: 448, 464, 480, 496, 512), so the block
    maximum lands on every saturation and scale-rule boundary.
    """
    from reference.quantization.mx import MX_FORMATS as TABLE

    elem = TABLE[fmt]
    if elem.float_format is None:
        grid = np.arange(0, 129, dtype=np.float64) / 64
        return tuple(float(t) for t in _with_neighbours(np.concatenate([grid, grid + 1 / 128])))
    v = np.array(lowbit_boundaries(elem.float_format))
    step = 2.0 ** (elem.emax - elem.mbits)  # spacing of the top binade
    cont = np.arange(2.0**elem.emax, 2.0 ** (elem.emax + 1) + step, step / 2)
    return tuple(float(t) for t in _with_neighbours(np.concatenate([v[v <= 2.0 ** (elem.emax + 1)], cont])))


@functools.cache
def lowbit_values(fmt, allow_nonfinite=True):
    """Single float32 values for `fmt`: boundary values with either sign, anything finite, specials (cached)."""
    from reference.quantization.floats import FORMATS

    form = FORMATS[fmt]
    b = lowbit_boundaries(fmt)
    signed = st.sampled_from(b + tuple(-v for v in b))
    specials = [0.0, -0.0, 1e38, -1e38, float(np.finfo(F32).max), 1.4e-45, -1.4e-45, 1e-40]
    if allow_nonfinite:
        specials += [INF, -INF] + ([NAN] if form.has_nan else [])
    anything = st.floats(width=32, allow_nan=False, allow_infinity=False, allow_subnormal=True)
    return st.one_of(signed, signed, signed, anything, st.sampled_from([float(F32(v)) for v in specials]))


@st.composite
def lowbit_encode_cases(draw, with_grad=False):
    """`(x, fmt)` with `saturate`, `rounding` and `key` for float_encode / float_quantize (and a cotangent)."""
    from reference.quantization.floats import FORMATS

    fmt = draw(st.sampled_from(FLOAT_FORMATS))
    form = FORMATS[fmt]
    shape = draw(shapes(max_dims=2, max_side=6))
    elements = lowbit_values(fmt)
    general = hnp.arrays(F32, shape, elements=elements)
    constant = st.builds(lambda v: np.full(shape, v, dtype=F32), elements)
    x = draw(st.one_of(general, general, general, constant))
    saturate = draw(st.booleans()) if (form.has_inf or form.has_nan) else True
    rounding = draw(st.sampled_from(["half_even", "half_even", "stochastic"]))
    kwargs = {"saturate": saturate, "rounding": rounding, "key": draw(keys()) if rounding == "stochastic" else None}
    if with_grad:
        grad = draw(hnp.arrays(F32, shape, elements=float32_values()))
        return Case((grad, x, fmt), kwargs)
    return Case((x, fmt), kwargs)


@st.composite
def lowbit_decode_cases(draw):
    """`(codes, fmt)`: every code of the format at once, or an array of codes (ties: repeated codes)."""
    from reference.quantization.floats import FORMATS

    fmt = draw(st.sampled_from(FLOAT_FORMATS))
    n = 2 ** FORMATS[fmt].bits
    every = st.just(np.arange(n, dtype=np.uint8))
    some = hnp.arrays(np.uint8, shapes(max_dims=3, max_side=6), elements=st.integers(0, n - 1))
    return Case((draw(st.one_of(every, some, some)), fmt))


@st.composite
def _mx_layout(draw):
    """(shape, axis, block_size) with the axis a multiple of the block size; at most 128 elements."""
    block_size = draw(st.sampled_from([32, 32, 32, 1, 2, 4, 8, 16]))
    ndim = draw(st.integers(1, 3))
    shape = list(draw(shapes(min_dims=ndim, max_dims=ndim, min_side=1, max_side=2)))
    axis = draw(st.integers(-ndim, ndim - 1))
    shape[axis] = block_size * draw(st.sampled_from([1, 1, 2, 0]))
    if np.prod(shape) > 128:
        shape = [1 if i != axis % ndim else n for i, n in enumerate(shape)]
    return tuple(shape), axis, block_size


def _random_float32(rng, shape):
    """Finite float32 values from uniform random bit patterns: every binade equally, subnormals included."""
    x = rng.integers(0, 2**32, size=shape, dtype=np.uint64).astype(np.uint32).view(F32)
    return np.where(np.isfinite(x), x, F32(0))


@st.composite
def mx_quantize_cases(draw, with_grad=False):
    r"""`(x, fmt)` with `axis`, `block_size`, `scale_rule`: per block, element boundary values times $2^{t}$.

    The block exponents $t$ are drawn by Hypothesis over the whole float32 range, so blocks of float32 subnormals
    (scale $2^{-127}$) and blocks near the float32 max appear; the elements are drawn from the element's boundary
    values (with a random sign) by a NumPy generator seeded by Hypothesis, which keeps blocks of 32 cheap. One
    element per block is often set to a value of the top binade, so the block maximum sits on the saturation and
    scale-rule boundaries; some elements are zero or arbitrary float32 values, and some arrays are constant.
    """
    fmt = draw(st.sampled_from(MX_FORMATS))
    shape, axis, block_size = draw(_mx_layout())
    k = axis % len(shape)
    bshape = tuple(n // block_size if i == k else n for i, n in enumerate(shape))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    table = np.array(mx_element_boundaries(fmt))
    grid = table[rng.integers(0, table.size, size=shape)]
    tops = table[table >= table[-1] / 2]
    blocks = np.moveaxis(grid, k, -1).reshape(np.moveaxis(grid, k, -1).shape[:-1] + (-1, block_size)).copy()
    where = rng.integers(0, block_size, size=blocks.shape[:-1] + (1,))
    current = np.take_along_axis(blocks, where, axis=-1)
    top = tops[rng.integers(0, tops.size, size=current.shape)]
    np.put_along_axis(blocks, where, np.where(rng.random(current.shape) < 0.6, top, current), axis=-1)
    grid = np.moveaxis(blocks.reshape(np.moveaxis(grid, k, -1).shape), -1, k)
    grid = grid * np.where(rng.random(shape) < 0.5, -1.0, 1.0)
    exps = draw(
        hnp.arrays(
            np.int64,
            bshape,
            elements=st.one_of(st.integers(-12, 12), st.integers(-160, 130), st.sampled_from([-149, -140, -127, 120])),
        )
    )
    scale = np.exp2(np.repeat(exps, block_size, axis=k).astype(np.float64))
    with np.errstate(over="ignore", invalid="ignore"):
        scaled = (grid * scale).astype(F32)
    how = rng.choice(3, size=shape, p=[0.85, 0.05, 0.1])
    x = np.where(how == 0, scaled, np.where(how == 1, _random_float32(rng, shape), F32(0)))
    x = np.where(np.isfinite(x), x, F32(0)).astype(F32)
    if draw(st.integers(0, 9)) == 0 and x.size:
        x = np.full(shape, x.reshape(-1)[0], dtype=F32)  # all equal: every block ties
    kwargs = {"axis": axis, "block_size": block_size,
              "scale_rule": draw(st.sampled_from(["floor", "ceil", "even", "ceil_pow2"]))}  # fmt: skip
    if draw(st.integers(0, 3)) == 0:
        kwargs["rounding"] = draw(st.sampled_from(["half_even", "half_away"]))
    if draw(st.integers(0, 4)) == 0 and x.size:  # NaN / Inf inside some blocks, nonfinite="nan"
        hit = rng.random(shape) < 0.05
        x = np.where(hit, F32(draw(st.sampled_from([np.nan, np.inf, -np.inf]))), x).astype(F32)
        kwargs["nonfinite"] = "nan"
    if with_grad:
        return Case((_random_float32(rng, shape), x, fmt), kwargs)
    return Case((x, fmt), kwargs)


@st.composite
def mx_dequantize_cases(draw):
    """`(scales, codes, fmt)`: any element codes (NaN and Inf codes included) and any scale codes, 254 and 255 too."""
    from reference.quantization.floats import FORMATS
    from reference.quantization.mx import MX_FORMATS as TABLE

    fmt = draw(st.sampled_from(MX_FORMATS))
    shape, axis, block_size = draw(_mx_layout())
    k = axis % len(shape)
    elem = TABLE[fmt]
    if elem.float_format is None:
        codes = draw(hnp.arrays(np.int8, shape, elements=st.integers(-128, 127)))
    else:
        n = 2 ** FORMATS[elem.float_format].bits
        codes = draw(hnp.arrays(np.uint8, shape, elements=st.integers(0, n - 1)))
    sshape = tuple(n // block_size if i == k else n for i, n in enumerate(shape))
    scale_codes = st.one_of(st.integers(0, 255), st.sampled_from([0, 1, 127, 254, 255]), st.integers(100, 150))
    scales = draw(hnp.arrays(np.uint8, sshape, elements=scale_codes))
    return Case((scales, codes, fmt), {"axis": axis, "block_size": block_size})
