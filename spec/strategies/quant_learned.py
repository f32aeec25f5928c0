"""Strategies for the learned and trainable quantizers: DoReFa, PACT, LSQ, LSQ+.

The hard cases: the float32 inputs whose tanh lies closest to a float32 rounding midpoint (the hardest cases for
"float64 tanh rounded once"), weights that tie for max |tanh w| (the max gradient is split among them), all-zero
weights, tanh saturated to exactly 1; activations on the grid c / n and on the .5 ties between levels, exactly on
the clipping bounds 0, 1 and alpha and one ulp either side; LSQ inputs whose x / s is exactly an integer, a .5
tie or exactly -Qn / Qp (and just beyond), per-channel steps, offsets; signed zeros and subnormals; cotangents
as large as the float32 maximum (gradients that overflow to inf).
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from spec.entry import Case
from spec.strategies.base import F32, F32_MAX, float32_arrays, float32_values, granularities, scales, shapes

__all__ = [
    "HARD_TANH",
    "dorefa_weight_cases",
    "dorefa_activation_cases",
    "pact_cases",
    "lsq_cases",
    "lsq_grad_scale_cases",
    "lsq_init_cases",
]

# The float32 inputs w > 0 whose exact tanh comes closest to a float32 rounding midpoint (distance in float64
# ulps), from an exhaustive scan of every float32 (tests/test_quant_learned.py records the correctly rounded
# results): the cases where a float64 tanh that erred by a few ulps would round to the wrong float32.
HARD_TANH = (
    0.0014914835,  # 5.04 ulps
    0.46488494,  # 9.14
    0.025892051,  # 12.61
    5.397072,  # 13.81
    6.1846666,  # 18.21
    0.06156953,  # 18.40
    0.018393602,  # 18.55
    5.216737,  # 20.78
)

# tanh(w) rounds to exactly 1.0 in float32 from about w = 9.01 on; around it, and far beyond
_TANH_EDGES = (9.0, 9.010913, 9.1, 20.0, 1e30)


def _bits():
    return st.one_of(st.integers(1, 4), st.integers(1, 16))


def _weights():
    hard = st.sampled_from(HARD_TANH + tuple(-v for v in HARD_TANH) + _TANH_EDGES)
    return st.one_of(float32_values(), st.floats(-4, 4, width=32), hard)


@st.composite
def dorefa_weight_cases(draw, with_grad=False):
    """`(w, bits)`: any finite weights, the hard tanh inputs, ties for max |tanh w|, all zeros, saturation."""
    bits = draw(_bits())
    w = draw(float32_arrays(elements=_weights()))
    kind = draw(st.sampled_from(["any", "any", "tie_max", "zeros"]))
    if kind == "tie_max" and w.size >= 2:
        # several elements with |w| equal to the largest: max |tanh w| is reached more than once
        big = np.float32(np.max(np.abs(w)))
        picks = draw(hnp.arrays(np.bool_, w.shape))
        signs = draw(hnp.arrays(np.bool_, w.shape))
        w = np.where(picks, np.where(signs, -big, big), w).astype(F32)
    elif kind == "zeros":
        w = np.where(draw(hnp.arrays(np.bool_, w.shape)), F32(-0.0), F32(0.0)).astype(F32)
    if with_grad:
        return Case((draw(float32_arrays(shape=st.just(w.shape))), w, bits))
    return Case((w, bits))


@st.composite
def dorefa_activation_cases(draw, with_grad=False):
    """`(x, bits)`: x on the levels c / n, on the .5 ties between them, on 0 and 1 and one ulp either side."""
    bits = draw(_bits())
    n = 2**bits - 1
    shape = draw(shapes())
    grid = hnp.arrays(F32, shape, elements=st.integers(-2, 2 * n + 2).map(lambda j: float(F32(j) / F32(2 * n))))
    edges = st.sampled_from([0.0, -0.0, 1.0, 0.99999994, 1.0000001, -1.4e-45, 1.4e-45, 0.5])
    anywhere = float32_arrays(shape=st.just(shape), elements=st.one_of(float32_values(), edges))
    x = np.where(draw(hnp.arrays(np.bool_, shape)), draw(grid), draw(anywhere)).astype(F32)
    if with_grad:
        return Case((draw(float32_arrays(shape=st.just(shape))), x, bits))
    return Case((x, bits))


def _valid_alpha(a, bits):
    n = F32(2**bits - 1)
    s = F32(a) / n
    with np.errstate(over="ignore"):
        return bool(s >= F32(2.0**-126) and np.isfinite(n * s))


@st.composite
def pact_cases(draw, with_grad=False):
    """`(x, alpha, bits)`: x on the levels c * s and the ties between them, exactly alpha and its neighbours."""
    bits = draw(_bits())
    n = 2**bits - 1
    alpha = draw(
        st.one_of(scales(), st.integers(1, 12).map(float), st.sampled_from([F32_MAX, 1e38, 2.0**-100])).filter(
            lambda a: _valid_alpha(a, bits)
        )
    )
    a = F32(alpha)
    s = a / F32(n)
    shape = draw(shapes())
    with np.errstate(over="ignore"):
        grid = (draw(hnp.arrays(F32, shape, elements=st.integers(-2, 2 * n + 4).map(lambda j: j / 2))) * s).astype(F32)
    near = [a, np.nextafter(a, F32(0)), np.nextafter(a, F32(np.inf)), F32(n) * s, F32(0), F32(-0.0)]
    edges = st.sampled_from([float(v) for v in near])
    anywhere = draw(float32_arrays(shape=st.just(shape), elements=st.one_of(float32_values(), edges)))
    x = np.where(draw(hnp.arrays(np.bool_, shape)), grid, anywhere)
    x = np.where(np.isfinite(x), x, a).astype(F32)
    alpha = np.array(a, dtype=F32)
    if with_grad:
        return Case((draw(float32_arrays(shape=st.just(shape))), x, alpha, bits))
    return Case((x, alpha, bits))


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
