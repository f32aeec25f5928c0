"""Strategies for power-of-two quantization, codebooks, NF4, observers and bit packing.

They aim at the decision boundaries: mantissas on and next to 1.5 and sqrt(2), the flush threshold
2**(emin - 1), saturation; codebook midpoints and exponent-far centroids (where float64 distances tie
falsely); NF4 midpoints under power-of-two block scales (so x / absmax is exact); percentiles whose virtual
index is a .5 fraction; padding bits of every width.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from spec.entry import Case

from .base import F32, float32_arrays, float32_values, scales, shapes

__all__ = [
    "pow2_range_cases",
    "pow2_emax_cases",
    "pow2_cases",
    "pow2_decode_cases",
    "kmeans_cases",
    "codebook_assign_cases",
    "codebook_decode_cases",
    "nf4_quantize_cases",
    "nf4_dequantize_cases",
    "nf4_double_quantize_cases",
    "nf4_double_dequantize_cases",
    "observer_cases",
    "percentile_cases",
    "mse_cases",
    "pack_cases",
    "unpack_cases",
]

# Mantissas in [1, 2) on and next to the rounding boundaries: 1.5 (linear) and sqrt(2) (log).
MANTISSAS = tuple(
    float(F32(m)) for m in (1.0, 1.5, 1.4999999, 1.5000001, 1.4142135, 1.4142137, 1.9999999, 1.25, 1.0000001)
)
# Codebook values whose sums need more than 53 bits: float64 distances tie falsely around them.
FAR = (-(2.0**-60), 2.0**-60, 1.0, 0.5, -0.5, 2.0**40, 3.0)


def _nf4_table():
    from reference.quantization.nf4 import NF4

    return NF4


# ------------------------------------------------------------------------------------------------------------
# Power of two
# ------------------------------------------------------------------------------------------------------------


@st.composite
def _pow2_code(draw):
    """(bits, emax, emin, levels) of a valid code: INQ's 2**(bits-2) exponents or the dense 2**(bits-1) - 1."""
    bits = draw(st.integers(2, 8))
    levels = draw(st.sampled_from(["inq", "dense"]))
    span = 2 ** (bits - 2) - 1 if levels == "inq" else 2 ** (bits - 1) - 2
    lo = -149 + span
    emax = draw(st.one_of(st.integers(max(lo, -6), 6), st.integers(lo, 127), st.sampled_from([lo, 127])))
    return bits, emax, emax - span, levels


def _near_powers(emin, emax):
    """Signed m * 2**e with m on or next to a rounding boundary and e around [emin, emax]."""
    e_lo, e_hi = max(emin - 3, -149), min(emax + 2, 127)

    def build(e, m, negative):
        v = np.ldexp(F32(m), e)
        v = v if np.isfinite(v) else np.finfo(np.float32).max
        return float(-v if negative else v)

    return st.builds(build, st.integers(e_lo, e_hi), st.sampled_from(MANTISSAS), st.booleans())


def pow2_range_cases():
    return _pow2_code().map(lambda c: Case((c[0], c[1]), {"levels": c[3]}))


@st.composite
def pow2_emax_cases(draw):
    x = draw(float32_arrays(min_side=1))
    if not np.any(x != 0):
        e = draw(st.integers(-149, 127))
        x = x.copy()
        x.reshape(-1)[draw(st.integers(0, x.size - 1))] = draw(_near_powers(e, e))
    return Case((x,))


@st.composite
def pow2_cases(draw, with_grad=False):
    bits, emax, emin, levels = draw(_pow2_code())
    x = draw(float32_arrays(elements=st.one_of(_near_powers(emin, emax), _near_powers(emin, emax), float32_values())))
    kwargs = {"bits": bits, "emax": emax, "rounding": draw(st.sampled_from(["linear", "log"])), "levels": levels}
    if with_grad:
        return Case((draw(float32_arrays(shape=st.just(x.shape))), x), kwargs)
    return Case((x,), kwargs)


@st.composite
def pow2_decode_cases(draw):
    bits, emax, emin, levels = draw(_pow2_code())
    count = emax - emin + 1  # magnitude codes 1 .. count are levels; INQ's codes above it are not
    magnitude = draw(hnp.arrays(np.uint8, shapes(), elements=st.integers(0, count)))
    sign = draw(hnp.arrays(np.uint8, magnitude.shape, elements=st.sampled_from([0, 2 ** (bits - 1)])))
    return Case((magnitude | sign,), {"bits": bits, "emax": emax, "levels": levels})


# ------------------------------------------------------------------------------------------------------------
# Codebooks
# ------------------------------------------------------------------------------------------------------------


def _weights():
    return st.one_of(float32_values(), st.integers(-8, 8).map(float), st.sampled_from(FAR))


@st.composite
def kmeans_cases(draw):
    w = draw(float32_arrays(elements=_weights(), min_side=1, max_dims=2))
    k = draw(st.one_of(st.integers(2, 6), st.sampled_from([8, 16])))
    return Case((w, k), {"iterations": draw(st.integers(0, 5))})


@st.composite
def _codebooks(draw, sorted_):
    c = np.array(draw(st.lists(_weights(), min_size=1, max_size=8)), dtype=np.float32)
    if draw(st.booleans()):
        c = np.concatenate([c, c[: draw(st.integers(0, c.size))]])[:8]  # repeated entries
    return np.sort(c) if sorted_ else c


@st.composite
def codebook_assign_cases(draw):
    c = draw(_codebooks(sorted_=True))
    w = draw(float32_arrays(elements=_weights())).copy()
    # Exact and near midpoints between neighbours, and the entries themselves.
    mid = ((c[:-1].astype(np.float64) + c[1:]) / 2).astype(np.float32)
    big = np.finfo(np.float32).max
    special = np.concatenate([mid, np.nextafter(mid, F32(big)), np.nextafter(mid, F32(-big)), c])
    if w.size and special.size:
        pick = draw(hnp.arrays(np.bool_, w.shape))
        which = draw(hnp.arrays(np.int64, w.shape, elements=st.integers(0, special.size - 1)))
        w = np.where(pick, special[which], w).astype(np.float32)
    return Case((w, c))


@st.composite
def codebook_decode_cases(draw, with_grad=False):
    c = draw(_codebooks(sorted_=False))
    indices = draw(hnp.arrays(np.uint8, shapes(), elements=st.integers(0, c.size - 1)))
    if with_grad:
        return Case((draw(float32_arrays(shape=st.just(indices.shape))), indices, c))
    return Case((indices, c))


# ------------------------------------------------------------------------------------------------------------
# NF4
# ------------------------------------------------------------------------------------------------------------


def _block_sizes():
    return st.one_of(st.integers(1, 5), st.sampled_from([64, 256]))


@st.composite
def _nf4_boundary_arrays(draw, block_size):
    """Blocks whose absmax is a power of two (first element), the rest NF4 midpoints and their neighbours."""
    v = _nf4_table()
    mid = ((v[:-1].astype(np.float64) + v[1:]) / 2).astype(np.float32)
    special = np.concatenate([mid, np.nextafter(mid, F32(2)), np.nextafter(mid, F32(-2)), v[1:-1]])
    shape = draw(shapes(min_side=1))
    x = special[draw(hnp.arrays(np.int64, shape, elements=st.integers(0, special.size - 1)))].reshape(-1)
    lead = np.float32(draw(st.sampled_from([1.0, -1.0])))
    x[::block_size] = lead
    return (x * np.float32(2.0 ** draw(st.integers(-20, 20)))).reshape(shape)


@st.composite
def nf4_quantize_cases(draw):
    block_size = draw(_block_sizes())
    x = draw(st.one_of(float32_arrays(), _nf4_boundary_arrays(block_size)))
    return Case((x,), {"block_size": block_size})


@st.composite
def nf4_dequantize_cases(draw):
    block_size = draw(_block_sizes())
    codes = draw(hnp.arrays(np.uint8, shapes(), elements=st.integers(0, 15)))
    n_blocks = -(-codes.size // block_size)
    absmax = draw(hnp.arrays(np.float32, (n_blocks,), elements=_positive_scales()))
    return Case((codes, absmax), {"block_size": block_size})


def _positive_scales():
    return st.one_of(scales(), st.floats(float(F32(1e-30)), float(F32(1e30)), width=32), st.sampled_from([1.0, 2.0]))


@st.composite
def nf4_double_quantize_cases(draw):
    absmax = draw(
        float32_arrays(shape=shapes(min_dims=1, max_dims=1, min_side=1, max_side=12), elements=_positive_scales())
    )
    return Case((absmax,), {"block_size": draw(_block_sizes())})


@st.composite
def nf4_double_dequantize_cases(draw):
    block_size = draw(_block_sizes())
    q = draw(hnp.arrays(np.int8, shapes(min_dims=1, max_dims=1, max_side=12), elements=st.integers(-127, 127)))
    n_blocks = -(-q.size // block_size)
    scale = draw(hnp.arrays(np.float32, (n_blocks,), elements=_positive_scales()))
    offset = np.array(draw(float32_values()), dtype=np.float32)
    return Case((q, scale, offset), {"block_size": block_size})


# ------------------------------------------------------------------------------------------------------------
# Observers and calibration
# ------------------------------------------------------------------------------------------------------------


@st.composite
def _axis_for(draw, x):
    if x.ndim == 0:
        return None
    return draw(st.one_of(st.none(), st.integers(-x.ndim, x.ndim - 1)))


@st.composite
def observer_cases(draw, ema=False):
    x = draw(float32_arrays(min_side=1))
    axis = draw(_axis_for(x))
    kwargs = {"axis": axis}
    if ema:
        kwargs["averaging_constant"] = draw(
            st.one_of(st.sampled_from([0.01, 0.5, 1.0, 0.1, 0.3]), st.floats(1e-6, 1.0))
        )
    shape = () if axis is None else (x.shape[axis],)
    state = None
    if draw(st.integers(0, 3)):
        a = draw(float32_arrays(shape=st.just(shape)))
        b = draw(float32_arrays(shape=st.just(shape)))
        state = (np.asarray(np.minimum(a, b)), np.asarray(np.maximum(a, b)))  # 0-d arrays, not NumPy scalars
        if ema and draw(st.booleans()):  # the moving average accepts (and can produce) min_val > max_val
            state = (np.asarray(a), np.asarray(b))
    return Case((x, state), kwargs)


@st.composite
def percentile_cases(draw):
    x = draw(float32_arrays(min_side=1, max_side=7))
    axis = draw(_axis_for(x))
    n = x.size if axis is None else x.size // x.shape[axis]
    parts = [st.floats(0, 100), st.sampled_from([0.0, 100.0, 50.0, 99.99, 99.9, 90.0, 25.0, 75.0])]
    if n > 1:  # virtual index k + 0.5 (up to the rounding of p)
        parts.append(st.integers(0, n - 2).map(lambda k: 100 * (k + 0.5) / (n - 1)))
    return Case((x, draw(st.one_of(parts))), {"axis": axis})


@st.composite
def mse_cases(draw):
    x = draw(float32_arrays(min_side=1, max_dims=2, max_side=5))
    bits = draw(st.one_of(st.integers(2, 8), st.just(16)))
    grid = draw(st.one_of(st.integers(1, 12), st.just(100)))
    return Case((x,), {"bits": bits, "grid": grid, "axis": draw(_axis_for(x))})


# ------------------------------------------------------------------------------------------------------------
# Bit packing
# ------------------------------------------------------------------------------------------------------------


@st.composite
def pack_cases(draw):
    bits = draw(st.integers(1, 16))
    top = 2**bits - 1
    dtype = np.uint16 if bits > 8 else draw(st.sampled_from([np.uint8, np.uint16]))
    codes = draw(
        hnp.arrays(dtype, shapes(max_dims=2, max_side=7), elements=st.one_of(st.integers(0, top), st.just(top)))
    )
    return Case((codes, bits))


@st.composite
def unpack_cases(draw):
    from reference.quantization.packing import pack_bits

    bits = draw(st.integers(1, 16))
    dtype = np.uint8 if bits <= 8 else np.uint16
    codes = draw(hnp.arrays(dtype, st.integers(0, 24), elements=st.integers(0, 2**bits - 1)))
    return Case((pack_bits(codes, bits), bits, codes.size))
