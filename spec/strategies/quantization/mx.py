"""Strategies of valid inputs for the entries of `reference.quantization.mx`: `mx_element_boundaries`,
`mx_quantize_cases`, `mx_dequantize_cases`.
"""

from __future__ import annotations

import functools

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from spec.entry import Case
from spec.strategies.base import F32, lowbit_boundaries, shapes
from spec.strategies.base import with_neighbours as _with_neighbours

__all__ = ["mx_element_boundaries", "mx_quantize_cases", "mx_dequantize_cases"]


MX_FORMATS = ("mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e3m2", "mxfp6_e2m3", "mxfp4_e2m1", "mxint8")


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
