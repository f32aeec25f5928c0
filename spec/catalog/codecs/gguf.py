"""Registry entries for `reference.codecs.gguf` and its torch twin: gguf_quantize, gguf_dequantize."""

from __future__ import annotations

import numpy as np

from spec import strategies as S
from spec.catalog.common import array as _a
from spec.catalog.common import u8 as _u8
from spec.entry import Bad, Case, Entry, Golden, Invariant

F = np.float32


GGML = (
    "Gerganov et al., llama.cpp / ggml: ggml-quants.c (quantize_row_q8_0_ref, quantize_row_q4_0_ref, "
    "quantize_row_q4_K_ref, make_qkx2_quants, dequantize_row_*), the GGUF file format"
)
GGUF_SEMANTICS = (
    "Blocks along the last axis; float16 fields little-endian, rounded to nearest even. Q8_0: 32 values, d (f16) "
    "+ 32 int8; Q4_0: 32 values, d + 16 bytes (q[j] | q[j+16] << 4); Q4_K: 256 values, d, dmin, 12 bytes of "
    "6-bit scales and mins, 128 bytes of 4-bit codes (q[64i + l] | q[64i + 32 + l] << 4).",
    "Q8_0: d = fl(amax / 127), q = roundf(x * fl(1/d)) (ties away; 1/d = 0 when d = 0).",
    "Q4_0: M = the first element of largest magnitude (+0.0 for an all-zero block, so d = -0.0 there), "
    "d = fl(M / -8), q = min(15, trunc(fl(fl(x * fl(1/d)) + 8.5))).",
    "Q4_K: llama.cpp's quantize_row_q4_K_ref operation for operation in float32, sums in index order, unfused "
    "(an FMA-contracting build of ggml differs on some blocks); nearest_int is ties-to-even via 1.5 * 2**23 "
    "(NaN gives 0); sqrtf correctly rounded.",
    "Decoding: d * q, d * (q - 8), fl((d s_j) q - dmin m_j): products exact in float32, so FMA-safe.",
)
_Q8X = np.zeros(32, F)
_Q8X[:3] = [1.0, -2.0, 0.5]
_D8 = 0.0157470703125  # float16 0x2408, the nearest to 2 / 127
_Q8B = np.concatenate([_u8([0x08, 0x24, 64, 129, 32]), np.zeros(29, np.uint8)])
_Q4X = np.zeros(32, F)
_Q4X[[0, 1, 2, 3, 16]] = [8.0, -4.0, 0.0, 1.0, 3.0]
_Q4B = _u8([0x00, 0xBC, 0x50, 0x8C, 0x88, 0x87] + [0x88] * 12)
_Q4KB = np.concatenate([_u8([86, 20, 0, 0] + [255] * 4 + [0] * 4 + [15] * 4), np.full(128, 255, np.uint8)])


def _gguf_decode_error(call, case, out):
    """Decoding the blocks gives values within half a code step (plus rounding) of x, block by block; in Q4_0
    within a whole step where the code is clamped to 15 (codes -8..7 around a scale set by the signed extreme M:
    an element near -M, `x / d` near +8, is clamped to 7 and misses by up to one step)."""
    from reference.codecs.gguf import QTYPES, gguf_dequantize

    x, qtype = case.args
    block, nbytes = QTYPES[qtype]
    assert out.dtype == np.uint8 and out.shape == x.shape[:-1] + (x.shape[-1] // block * nbytes,)
    if qtype == "Q4_K" or x.size == 0:
        return  # the search's error is bounded by the min-max start, not by a fixed step
    y = gguf_dequantize(out, qtype).astype(np.float64).reshape(-1, block)
    xr = x.astype(np.float64).reshape(-1, block)
    amax = np.abs(xr).max(axis=1, keepdims=True)
    step = amax / (127 if qtype == "Q8_0" else 8)
    normal = (step >= 2.0**-14) & (step <= 65504)  # d is a normal float16: its rounding is relative
    steps = np.full(y.shape, 0.5001)
    if qtype == "Q4_0":
        nibbles = out.reshape(-1, nbytes)[:, 2:]
        steps[np.concatenate([nibbles & 15, nibbles >> 4], axis=1) == 15] = 1.0001
    assert np.all(~normal | (np.abs(y - xr) <= step * steps + step * 2.0**-10 * 128)), "beyond half a step"


def _gguf_decode_def(call, case, out):
    from reference.codecs.gguf import QTYPES

    data, qtype = case.args
    block, nbytes = QTYPES[qtype]
    assert out.dtype == np.float32 and out.shape == data.shape[:-1] + (data.shape[-1] // nbytes * block,)
    if qtype == "Q8_0" and data.size:
        b = data.reshape(-1, nbytes)
        d = b[:, :2].copy().view("<f2").astype(np.float64)
        want = (d * b[:, 2:].view(np.int8)).astype(F)
        with np.errstate(invalid="ignore"):
            assert np.array_equal(out.reshape(-1, block).view(np.uint32), want.view(np.uint32)) or np.array_equal(
                np.isnan(out.reshape(-1, block)), np.isnan(want)
            )


ENTRIES = [
    Entry(
        name="gguf_quantize",
        family="quantization",
        module="codecs.gguf",
        summary="GGUF Q8_0, Q4_0 and Q4_K blocks with llama.cpp's reference quantizers, bit for bit.",
        strategy=S.gguf_quantize_cases,
        semantics=GGUF_SEMANTICS,
        invariants=(Invariant("layout, within half a step", _gguf_decode_error),),
        golden=(
            Golden(Case((_Q8X, "Q8_0")), _Q8B, "d = 2/127 -> f16 0x2408; 1 * 63.5 ties away to 64"),
            Golden(Case((_Q4X, "Q4_0")), _Q4B, "M = 8, d = -1 (0xBC00): 8 -> 0, -4 -> 12, 0 -> 8, 1 -> 7, 3 -> 5"),
            Golden(
                Case((np.ones(256, F), "Q4_K")),
                _Q4KB,
                "all ones: scales 63, mins 0, codes 15; decodes to 1.0003567 (d = f16(fl(1/15) / 63))",
            ),  # fmt: skip
            Golden(
                Case((np.array([[-0.0] + [0.0] * 31], F), "Q4_0")),
                _u8([[0x00, 0x80] + [0x88] * 16]),
                "all zeros: d = +0.0 / -8 = -0.0 (C keeps +0.0 as the maximum; gguf-py's argmax takes -0.0)",
            ),  # fmt: skip
        ),
        bad=(
            Bad(Case((_Q8X, "Q4_1")), ValueError, "qtype must be one of 'Q8_0', 'Q4_0', 'Q4_K'; got 'Q4_1'"),
            Bad(Case((_Q8X[:16], "Q8_0")), ValueError, "its last axis must be a multiple of 32 (elements per block)"),
            Bad(Case((_Q8X, "Q4_K")), ValueError, "its last axis must be a multiple of 256"),
            Bad(Case((_Q8X.astype(np.float16), "Q8_0")), TypeError, "x must have dtype float32, got float16"),
        ),
        paper=GGML,
        peers=(
            (
                "llama.cpp builds with FMA",
                "a ggml build that contracts the Q4_K search's multiply-adds into FMAs (GCC's -ffp-contract=fast with -march=native) can pick other scales; pqref pins the unfused sums (-ffp-contract=off).",
            ),
            (
                "gguf-py",
                "its NumPy Q4_0 takes the block's signed maximum from `argmax`, so an all-zero block starting with -0.0 gets d = +0.0 where C (and pqref) get -0.0.",
            ),
        ),
    ),
    Entry(
        name="gguf_dequantize",
        family="quantization",
        module="codecs.gguf",
        summary="GGUF Q8_0, Q4_0 and Q4_K blocks back to float32, as llama.cpp's dequantize_row_*.",
        strategy=S.gguf_dequantize_cases,
        semantics=GGUF_SEMANTICS,
        invariants=(Invariant("d * q for Q8_0", _gguf_decode_def),),
        golden=(
            Golden(
                Case((_Q8B, "Q8_0")),
                _a([64 * _D8, -127 * _D8, 32 * _D8] + [0.0] * 29),
                "d = 0.0157470703125: 64 d, -127 d, 32 d",
            ),  # fmt: skip
            Golden(
                Case((_Q4B, "Q4_0")),
                _a([8, -4, -0.0, 1] + [-0.0] * 12 + [3] + [-0.0] * 15),
                "d = -1: (q - 8) * -1; code 8 gives -0.0",
            ),  # fmt: skip
            Golden(Case((_Q4KB, "Q4_K")), np.full(256, 1.0003567, F), "63 d * 15 - 0"),
        ),
        bad=(Bad(Case((_Q8B[:30], "Q8_0")), ValueError, "its last axis must be a multiple of 34 (bytes per block)"),),
        paper=GGML,
    ),
]
