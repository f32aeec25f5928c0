"""Strategies for the checkpoint codecs (`codecs.gptq`, ...).

Packed words are drawn as arbitrary int32 bit patterns (every pattern is a valid packed word); codes and zero
points cover their whole ranges, the ends included; float16 scales include signed zeros, subnormals and
+-65504; `g_idx` is either GPTQ's contiguous `i // group_size` or an arbitrary (act-order) assignment.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from spec.entry import Case
from spec.strategies.base import float32_arrays, float32_values, qranges, scales, shapes

__all__ = [
    "float16_scales",
    "gptq_pack_cases",
    "gptq_packed_cases",
    "nvfp4_global_cases",
    "nvfp4_quantize_cases",
    "nvfp4_dequantize_cases",
    "nibble_pack_cases",
    "nibble_unpack_cases",
    "symmetric_scale_cases",
    "zero_point_cases",
    "gguf_quantize_cases",
    "gguf_dequantize_cases",
    "awq_pack_cases",
    "awq_packed_cases",
    "ct_pack_cases",
    "ct_unpack_cases",
]

GPTQ_BITS = (2, 4, 8)


def float16_scales(shape):
    """float16 arrays of any finite value: signed zeros, subnormals, the max, and repeated values."""
    edge = st.sampled_from([0.0, -0.0, 6e-08, 65504.0, -65504.0, 0.5, 1.0, 0.0999755859375])
    anything = st.floats(width=16, allow_nan=False, allow_infinity=False)
    return hnp.arrays(np.float16, shape, elements=st.one_of(edge, anything))


def _int32_words(shape):
    ends = st.sampled_from([0, -1, -(2**31), 2**31 - 1, 0x77777777, -0x77777778])
    return hnp.arrays(np.int32, shape, elements=st.one_of(ends, st.integers(-(2**31), 2**31 - 1)))


@st.composite
def _gptq_layout(draw):
    bits = draw(st.sampled_from(GPTQ_BITS))
    per = 32 // bits
    out_f = per * draw(st.integers(1, 2))
    in_f = per * draw(st.integers(1, 3))
    groups = draw(st.integers(1, 3))
    if draw(st.booleans()):
        size = -(-in_f // groups)
        g_idx = np.arange(in_f, dtype=np.int32) // size
        groups = int(g_idx[-1]) + 1
    else:
        g_idx = draw(hnp.arrays(np.int32, (in_f,), elements=st.integers(0, groups - 1)))
    zero_format = draw(st.sampled_from(["v1", "v2"]))
    return bits, per, out_f, in_f, groups, g_idx, zero_format


@st.composite
def gptq_pack_cases(draw):
    """`(codes, scales, zeros, g_idx)` with `bits` and `zero_format` for gptq_pack."""
    bits, per, out_f, in_f, groups, g_idx, zero_format = draw(_gptq_layout())
    codes = draw(hnp.arrays(np.uint8, (out_f, in_f), elements=st.integers(0, 2**bits - 1)))
    lo = 1 if zero_format == "v1" else 0
    zeros = draw(hnp.arrays(np.int32, (out_f, groups), elements=st.integers(lo, 2**bits - 1 + lo)))
    scales = draw(float16_scales((out_f, groups)))
    return Case((codes, scales, zeros, g_idx), {"bits": bits, "zero_format": zero_format})


@st.composite
def gptq_packed_cases(draw):
    """`(qweight, qzeros, scales, g_idx)` with `bits` and `zero_format` for gptq_unpack and gptq_decode."""
    bits, per, out_f, in_f, groups, g_idx, zero_format = draw(_gptq_layout())
    qweight = draw(_int32_words((in_f // per, out_f)))
    qzeros = draw(_int32_words((groups, out_f // per)))
    scales = draw(float16_scales((groups, out_f)))
    return Case((qweight, qzeros, scales, g_idx), {"bits": bits, "zero_format": zero_format})


# ---- NVFP4 --------------------------------------------------------------------------------------------------

F32 = np.float32
DIRECTIONS = ("decode", "encode")
E2M1_POINTS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 7.0)


def _nvfp4_values():
    """Element values: E2M1 values and midpoints times a block scale, and anything finite."""
    on_grid = st.builds(lambda v, sign, e: float(F32(sign * v * 2.0**e)), st.sampled_from(E2M1_POINTS),
                        st.sampled_from([1.0, -1.0]), st.integers(-20, 20))  # fmt: skip
    return st.one_of(on_grid, on_grid, float32_values())


@st.composite
def _nvfp4_x(draw, min_side=1):
    lead = draw(shapes(max_dims=1, max_side=2))
    width = 16 * draw(st.integers(min_side, 2))
    return draw(float32_arrays(shape=st.just(lead + (width,)), elements=_nvfp4_values()))


def _global_scales():
    return st.one_of(st.sampled_from([1.0, 2.0, 0.5, 448.0, 1 / 448]), scales(),
                     st.floats(float(F32(1e-30)), float(F32(1e30)), width=32))  # fmt: skip


@st.composite
def nvfp4_global_cases(draw):
    """`(x,)` with `direction` for nvfp4_global_scale (amax far from the float32 ends, so g is finite)."""
    x = draw(float32_arrays(shape=shapes(min_dims=1, min_side=1), elements=float32_values(max_abs=1e30)))
    x = np.where(np.abs(x) < 1e-30, F32(0), x).astype(F32)
    return Case((x,), {"direction": draw(st.sampled_from(DIRECTIONS))})


@st.composite
def nvfp4_quantize_cases(draw):
    """`(x, global_scale)` with `direction` for nvfp4_quantize: the tensor's own global scale, or any."""
    from reference.codecs.nvfp4 import nvfp4_global_scale

    x = draw(_nvfp4_x(min_side=0))
    direction = draw(st.sampled_from(DIRECTIONS))
    own = None
    if x.size and draw(st.booleans()):
        try:
            own = nvfp4_global_scale(x, direction=direction)
        except ValueError:
            own = None
    g = own if own is not None else np.asarray(F32(draw(_global_scales())))
    return Case((x, g), {"direction": direction})


@st.composite
def nvfp4_dequantize_cases(draw):
    """`(scales, codes, global_scale)` with `direction`: any E4M3 scale code (NaN and negative ones included)."""
    lead = draw(shapes(max_dims=1, max_side=2))
    width = 16 * draw(st.integers(0, 2))
    codes = draw(hnp.arrays(np.uint8, lead + (width,), elements=st.integers(0, 15)))
    scales_ = draw(hnp.arrays(np.uint8, lead + (width // 16,), elements=st.integers(0, 255)))
    g = np.asarray(F32(draw(_global_scales())))
    return Case((scales_, codes, g), {"direction": draw(st.sampled_from(DIRECTIONS))})


# ---- nibbles ------------------------------------------------------------------------------------------------

ORDERS = ("low_first", "high_first")


@st.composite
def nibble_pack_cases(draw):
    lead = draw(shapes(max_dims=2, max_side=3))
    codes = draw(hnp.arrays(np.uint8, lead + (2 * draw(st.integers(0, 4)),), elements=st.integers(0, 15)))
    return Case((codes,), {"order": draw(st.sampled_from(ORDERS))})


@st.composite
def nibble_unpack_cases(draw):
    packed = draw(hnp.arrays(np.uint8, shapes(min_dims=1, max_dims=3, max_side=4)))
    return Case((packed,), {"order": draw(st.sampled_from(ORDERS))})


# ---- quantization conventions -------------------------------------------------------------------------------


@st.composite
def symmetric_scale_cases(draw):
    """`(amax,)` with `bits` and `divisor`: amax values that are multiples of the divisor, ties, zeros, anything."""
    bits = draw(st.integers(2, 16))
    steps = st.builds(lambda k, s: float(F32(k * s)), st.integers(0, 2**bits), scales())
    anything = st.floats(0, float(np.finfo(F32).max), width=32)
    amax = draw(float32_arrays(shape=shapes(max_dims=2), elements=st.one_of(steps, anything, st.just(0.0))))
    return Case((amax,), {"bits": bits, "divisor": draw(st.sampled_from(["qmax", "half_range"]))})


@st.composite
def zero_point_cases(draw):
    """`(min_val, scale)` with `qmin`, `qmax` and `convention`, min_val often an exact tie -(k + 0.5) * scale."""
    qmin, qmax = draw(qranges())
    shape = draw(shapes(max_dims=2))
    s = draw(float32_arrays(shape=st.just(shape), elements=scales()))
    ties = draw(hnp.arrays(np.float32, shape, elements=st.integers(-300, 300).map(lambda k: k + 0.5)))
    exact = (ties.astype(np.float64) * s.astype(np.float64)).astype(F32)
    anything = draw(float32_arrays(shape=st.just(shape), elements=float32_values(max_abs=1e30)))
    near = np.nextafter(exact, F32(0)).astype(F32)
    min_val = draw(st.sampled_from([exact, anything, near, -np.abs(anything)]))
    kw = {"qmin": qmin, "qmax": qmax, "convention": draw(st.sampled_from(["pqref", "torch_ao", "onnx", "tflite"]))}
    return Case((min_val, s), kw)


# ---- GGUF ---------------------------------------------------------------------------------------------------

GGUF_BLOCKS = {"Q8_0": (32, 34), "Q4_0": (32, 18), "Q4_K": (256, 144)}


@st.composite
def gguf_quantize_cases(draw):
    """`(x, qtype)`: rows of blocks with ties (x.5 steps), zeros and -0.0, flat and one-signed sub-blocks."""
    qtype = draw(st.sampled_from(("Q8_0", "Q4_0", "Q8_0", "Q4_0", "Q4_K")))  # Q4_K's search is the slow one
    block, _ = GGUF_BLOCKS[qtype]
    rows = draw(st.integers(0, 2 if qtype != "Q4_K" else 1))
    width = block * draw(st.integers(1, 2 if qtype != "Q4_K" else 1))
    scale = draw(st.sampled_from([1.0, 2.0**-10, 1000.0, 3.0]))
    grid = st.integers(-16, 16).map(lambda k: float(F32(k * scale / 2)))
    values = st.one_of(grid, grid, float32_values(max_abs=1e6), st.sampled_from([0.0, -0.0]))
    x = draw(float32_arrays(shape=st.just((rows, width)), elements=values))
    if x.size and draw(st.booleans()):  # a flat or one-signed stretch
        k = draw(st.integers(0, width // 32 - 1)) * 32
        x[:, k : k + 32] = F32(draw(values))
    return Case((x, qtype))


@st.composite
def gguf_dequantize_cases(draw):
    """`(data, qtype)`: any bytes, so float16 fields include subnormals, Inf and NaN."""
    qtype = draw(st.sampled_from(tuple(GGUF_BLOCKS)))
    _, nbytes = GGUF_BLOCKS[qtype]
    shape = (draw(st.integers(0, 2)), nbytes * draw(st.integers(1, 2)))
    return Case((draw(hnp.arrays(np.uint8, shape)), qtype))


# ---- AWQ and compressed-tensors -----------------------------------------------------------------------------


@st.composite
def _awq_layout(draw):
    out_f = 8 * draw(st.integers(1, 2))
    groups = draw(st.integers(1, 3))
    in_f = groups * draw(st.integers(1, 3))
    return out_f, in_f, groups


@st.composite
def awq_pack_cases(draw):
    """`(codes, scales, zeros)` for awq_pack."""
    out_f, in_f, groups = draw(_awq_layout())
    codes = draw(hnp.arrays(np.uint8, (out_f, in_f), elements=st.integers(0, 15)))
    zeros = draw(hnp.arrays(np.int32, (out_f, groups), elements=st.integers(0, 15)))
    return Case((codes, draw(float16_scales((out_f, groups))), zeros))


@st.composite
def awq_packed_cases(draw):
    """`(qweight, qzeros, scales)` for awq_unpack and awq_decode: any int32 words."""
    out_f, in_f, groups = draw(_awq_layout())
    qweight = draw(_int32_words((in_f, out_f // 8)))
    qzeros = draw(_int32_words((groups, out_f // 8)))
    return Case((qweight, qzeros, draw(float16_scales((groups, out_f)))))


@st.composite
def ct_pack_cases(draw):
    """`(q,)` with `bits` and `packed_dim` for pack_quantized: rows that straddle words (odd widths)."""
    bits = draw(st.integers(1, 8))
    shape = (draw(st.integers(0, 3)), draw(st.integers(0, 40)))
    q = draw(hnp.arrays(np.int8, shape, elements=st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)))
    return Case((q,), {"bits": bits, "packed_dim": draw(st.sampled_from([0, 1]))})


@st.composite
def ct_unpack_cases(draw):
    """`(packed,)` with `bits`, `shape` and `packed_dim`: packed codes, with the padding bits left clear."""
    from reference.codecs.compressed_tensors import pack_quantized

    case = draw(ct_pack_cases())
    packed = pack_quantized(*case.args, **case.kwargs)
    return Case((packed,), {"bits": case.kwargs["bits"], "shape": tuple(case.args[0].shape),
                            "packed_dim": case.kwargs["packed_dim"]})  # fmt: skip
