"""Strategies of valid inputs for the entries of `reference.quantization.lsq`: `lsq_cases`, `lsq_grad_scale_cases`,
`lsq_init_cases`.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from spec.entry import Case
from spec.strategies.base import F32, float32_arrays, float32_values, granularities, scales, shapes

__all__ = ["lsq_cases", "lsq_grad_scale_cases", "lsq_init_cases"]


def _bounds(bits, signed):
    return (2 ** (bits - 1), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)


def _levels_finite(scale, offset, qn, qp):
    with np.errstate(over="ignore"):
        lo, hi = F32(-qn) * scale, F32(qp) * scale
        if offset is not None:
            lo, hi = lo + offset, hi + offset
    return bool(np.all(np.isfinite(lo) & np.isfinite(hi)))


@st.composite
def lsq_cases(draw, plus=False, with_grad=False):
    """`(x, scale[, offset])` and `bits`, `signed`, `axis` for LSQ / LSQ+ (with a cotangent `with_grad`).

    x is (t * s + beta) for t a multiple of 1/2 around [-Qn, Qp], so x / s (or (x - beta) / s) is often exactly an
    integer, a .5 tie, or exactly a bound; the bounds' float32 neighbours and arbitrary values are mixed in.
    """
    signed = draw(st.booleans())
    bits = draw(st.one_of(st.integers(2, 4), st.integers(2 if signed else 1, 16)))
    qn, qp = _bounds(bits, signed)
    shape = draw(shapes(max_dims=3, max_side=5))
    axis, _, sshape = draw(granularities(shape).filter(lambda g: g[1] is None))
    scale = draw(hnp.arrays(F32, sshape, elements=scales()))
    offset = None
    if plus:
        offset_values = st.one_of(
            st.sampled_from([0.0, -0.0, 0.5, -0.25, -1.5]), st.floats(-8, 8, width=32), float32_values(max_abs=1e30)
        )
        offset = draw(hnp.arrays(F32, sshape, elements=offset_values))
    if not _levels_finite(scale, offset, qn, qp):
        scale = np.ones(sshape, dtype=F32)
        offset = None if offset is None else np.zeros(sshape, dtype=F32)
    s_full = _broadcast(scale, shape, axis)
    b_full = None if offset is None else _broadcast(offset, shape, axis)
    t = draw(hnp.arrays(F32, shape, elements=st.integers(-2 * qn - 6, 2 * qp + 6).map(lambda j: j / 2)))
    with np.errstate(over="ignore", invalid="ignore"):
        grid = t * s_full if b_full is None else t * s_full + b_full
        # exactly on the bounds, and one float32 step beyond them
        bound = np.where(t > 0, F32(qp), F32(-qn)) * s_full
        if b_full is not None:
            bound = bound + b_full
        beyond = np.nextafter(bound, np.where(t > 0, F32(np.inf), F32(-np.inf)).astype(F32))
    anywhere = draw(float32_arrays(shape=st.just(shape)))
    pick = draw(hnp.arrays(np.int8, shape, elements=st.integers(0, 3)))
    x = np.select([pick == 0, pick == 1, pick == 2], [grid, bound, beyond], anywhere)
    x = np.where(np.isfinite(x), x, F32(0)).astype(F32)
    params = (scale,) if offset is None else (scale, offset)
    kwargs = {"bits": bits, "signed": signed, "axis": axis}
    if with_grad:
        return Case((draw(float32_arrays(shape=st.just(shape))), x, *params), kwargs)
    return Case((x, *params), kwargs)


@st.composite
def lsq_init_cases(draw):
    """`(w,)` and `bits`, `signed`, `axis` for LSQ's initial step: non-empty weights (ties, zeros, subnormals,
    huge values that overflow the step), per tensor or per channel."""
    signed = draw(st.booleans())
    bits = draw(st.integers(2 if signed else 1, 16))
    shape = draw(shapes(min_dims=0, max_dims=3, min_side=1, max_side=5))
    w = draw(float32_arrays(shape=st.just(shape)))
    axis = draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1))) if shape else None
    return Case((w,), {"bits": bits, "signed": signed, "axis": axis})


def lsq_grad_scale_cases():
    """`(numel, qp)`: small and large counts, powers of four (exact results), the Qp of every bit width."""
    numel = st.one_of(
        st.integers(0, 64), st.integers(0, 10**7), st.integers(0, 20).map(lambda e: 4**e), st.integers(0, 2**40)
    )
    qp = st.one_of(st.sampled_from([2**b - 1 for b in range(1, 17)]), st.integers(1, 2**16 - 1))
    return st.builds(lambda n, q: Case((n, q)), numel, qp)


def _broadcast(p, shape, axis):
    if axis is None:
        return np.broadcast_to(p, shape)
    k = axis % len(shape)
    return np.broadcast_to(p.reshape(tuple(-1 if i == k else 1 for i in range(len(shape)))), shape)
