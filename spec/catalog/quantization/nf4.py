"""Registry entries for `reference.quantization.nf4` and its torch twin: nf4_quantize, nf4_dequantize,
nf4_double_quantize, nf4_double_dequantize.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from spec import strategies as S
from spec.catalog.common import array as _a
from spec.catalog.common import exact_nearest as _exact_nearest
from spec.catalog.common import raw_bits as _bits
from spec.catalog.common import scalar as _s
from spec.catalog.common import u8 as _u8
from spec.entry import Bad, Case, Entry, Golden, Invariant

F = np.float32


QLORA = "Dettmers et al., 2023. QLoRA: Efficient Finetuning of Quantized LLMs. NeurIPS. arXiv:2305.14314"


def _nf4_valid(call, case, out):
    from reference.quantization.nf4 import NF4

    x, bs = case.args[0], case.kwargs["block_size"]
    codes, absmax = out
    flat = x.reshape(-1)
    assert codes.shape == x.shape and codes.dtype == np.uint8 and np.all(codes <= 15)
    assert absmax.shape == (-(-flat.size // bs),) and np.all(absmax > 0)
    scale = absmax[np.arange(flat.size) // bs]
    for i in range(0, flat.size, bs):
        block = np.abs(flat[i : i + bs])
        assert absmax[i // bs] == (block.max() if block.max() > 0 else 1), "absmax is max|block| (1 for zeros)"
    u = flat / scale
    assert np.array_equal(codes.reshape(-1), _exact_nearest(u, NF4)), "code = exactly nearest NF4 entry of x/absmax"


def _nf4_dequantize_bounded(call, case, out):
    codes, absmax = case.args
    bs = case.kwargs["block_size"]
    scale = absmax[np.arange(codes.size) // bs].reshape(codes.shape)
    assert out.shape == codes.shape and np.all(np.abs(out) <= scale), "|x| <= absmax"
    assert np.all(_bits(out)[codes == 7] == 0), "code 7 gives +0.0"
    assert np.all(np.signbit(out) == (codes < 7)), "codes 0-6 are negative (-0.0 on underflow), 8-15 positive"


def _double_quantize_error(call, case, out):
    a, bs = case.args[0], case.kwargs["block_size"]
    q, scale, offset = out
    assert q.dtype == np.int8 and np.all(np.abs(q.astype(np.int64)) <= 127) and np.all(scale > 0)
    assert offset.shape == () and scale.shape == (-(-a.size // bs),)
    for i in range(a.size):
        s = Fraction(float(scale[i // bs]))
        err = abs(int(q[i]) * s + Fraction(float(offset)) - Fraction(float(a[i])))
        slack = s * Fraction(1, 10**4) + (abs(Fraction(float(a[i]))) + abs(Fraction(float(offset)))) / 2**22
        assert err <= s / 2 + slack, f"element {i}: reconstruction error beyond half a step"


_NF4_MID = float(F(0.07958029955625534) / F(2))  # exactly half of NF4[8]: the midpoint between codes 7 and 8


ENTRIES = [
    Entry(
        name="nf4_quantize",
        family="quantization",
        module="quantization.nf4",
        summary="NF4 codes with block-wise absmax scales (QLoRA), nearest entry decided exactly.",
        strategy=S.nf4_quantize_cases,
        semantics=(
            "Blocks: consecutive block_size values of the flattened x (the last may be shorter); absmax = max|x|.",
            "u = float32(x / absmax) (IEEE division, not x * (1/absmax) as bitsandbytes).",
            "code = #{j : 2u > v_j + v_j+1} with exact float64 pair sums: nearest NF4 value, ties to the lower.",
            "An all-zero block gets absmax 1.0 and codes 7. Codes are unpacked uint8 (pack_bits: low nibble first).",
        ),
        invariants=(Invariant("exact nearest NF4 code, absmax", _nf4_valid),),
        golden=(
            Golden(
                Case((_a([0.5, -2.0, 0.0, 1.0]),), {"block_size": 2}),
                (_u8([10, 0, 7, 15]), _a([2, 1])),
                "u = [0.25, -1, 0, 1]",
            ),
            Golden(
                Case((_a([1.0, _NF4_MID, np.nextafter(F(_NF4_MID), F(1))]),), {"block_size": 3}),
                (_u8([15, 7, 8]), _a([1])),
                "a tie: exactly between 0 and 0.0795803, so the lower code",
            ),
            Golden(Case((_a([0.0, -0.0, 0.0, 4.0]),), {"block_size": 2}), (_u8([7, 7, 7, 15]), _a([1, 4])), "zeros"),
            Golden(Case((_a([]),)), (_u8([]), _a([])), "empty"),
        ),
        bad=(
            Bad(Case((_a([1.0]),), {"block_size": 0}), ValueError, "block_size must be in [1, 1099511627776], got 0"),
            Bad(Case((_a([np.nan]),)), ValueError, "x must be finite, got nan"),
        ),
        paper=QLORA,
        peers=(
            (
                "bitsandbytes",
                "multiplies by `1 / absmax` and compares with float32 literals of the midpoints (last-bit differences in the encoding); an all-zero block computes 0 * (1/0) = NaN and stores code 0 (-1.0); the first code goes in the high nibble.",
            ),
            (
                "torchao",
                "`NF4Tensor` divides but uses 4-decimal constants (`-0.6962`, ...); the first code goes in the high nibble.",
            ),
        ),
    ),
    Entry(
        name="nf4_dequantize",
        family="quantization",
        module="quantization.nf4",
        summary="NF4 codes back to float32: NF4[code] * absmax, one float32 product.",
        strategy=S.nf4_dequantize_cases,
        semantics=("x = float32(v[code] * absmax[block]): bitsandbytes' and torchao's dequantization.",),
        invariants=(Invariant("|x| <= absmax", _nf4_dequantize_bounded),),
        golden=(
            Golden(
                Case((_u8([10, 0, 7, 15]), _a([2, 1])), {"block_size": 2}),
                _a([2 * 0.24611230194568634, -2, 0, 1]),
                "NF4[10] = 0.2461123 times absmax 2; -1 times 2; code 7 is exactly 0; code 15 is 1",
            ),
        ),
        bad=(
            Bad(Case((_u8([16]), _a([1]))), ValueError, "codes must be in [0, 15], got 16"),
            Bad(Case((_u8([1]), _a([0.0]))), ValueError, "absmax must be > 0, got 0.0 at flat index 0"),
            Bad(Case((_u8([1]), _a([-1.0]))), ValueError, "absmax must be > 0, got -1.0"),
            Bad(
                Case((_u8([1, 2, 3, 4]), _a([1])), {"block_size": 2}),
                ValueError,
                "absmax has shape (1,) but 4 values in blocks of 2 needs shape (2,)",
            ),
        ),
        paper=QLORA,
    ),
    Entry(
        name="nf4_double_quantize",
        family="quantization",
        module="quantization.nf4",
        summary="Double quantization of NF4 block scales: subtract the mean, symmetric int8 per block of 256.",
        strategy=S.nf4_double_quantize_cases,
        semantics=(
            "offset = float32(fl64(exact_sum(absmax) / n)); d = float32(absmax - offset).",
            "Per block: s = float32(max|d| / 127) in float64 (1.0 if below 2**-126); q = clip(rne(d / s), -127, 127).",
            "Symmetric int8 (as torchao NF4Tensor up to its 128/max scaling), not bitsandbytes' dynamic 8-bit code.",
        ),
        invariants=(Invariant("error at most half a step", _double_quantize_error),),
        golden=(
            Golden(
                Case((_a([1, 2, 3, 4]),), {"block_size": 2}),
                (_a([-127, -42, 42, 127], np.int8), _a([1.5 / 127, 1.5 / 127]), _s(2.5)),
                "mean 2.5; 0.5 * 127 / 1.5 = 42.33",
            ),
            Golden(Case((_a([3, 3, 3]),)), (_a([0, 0, 0], np.int8), _a([1.0]), _s(3.0)), "degenerate scale 1.0"),
        ),
        bad=(
            Bad(Case((_a([1, 0]),)), ValueError, "absmax must be > 0, got 0.0 at flat index 1"),
            Bad(Case((_a([[1.0]]),)), ValueError, "absmax must be 1-D and non-empty, got shape (1, 1)"),
            Bad(Case((_a([]),)), ValueError, "absmax must be 1-D and non-empty, got shape (0,)"),
        ),
        paper=QLORA,
    ),
    Entry(
        name="nf4_double_dequantize",
        family="quantization",
        module="quantization.nf4",
        summary="NF4 block scales back from their double quantization: q * s + offset in float32.",
        strategy=S.nf4_double_dequantize_cases,
        semantics=("absmax = float32(float32(q * s) + offset): a float32 product, then a float32 sum.",),
        golden=(
            Golden(
                Case((_a([-127, -42, 42, 127], np.int8), _a([1.5 / 127, 1.5 / 127]), _s(2.5)), {"block_size": 2}),
                _a([1.0, 2.003937, 2.996063, 4.0]),
                "q * s, then + offset 2.5, two float32 roundings: -127 * (1.5/127) + 2.5 = 1",
            ),
        ),
        bad=(
            Bad(Case((_a([-128], np.int8), _a([1.0]), _s(0))), ValueError, "q must be in [-127, 127], got -128"),
            Bad(Case((_a([1], np.int16), _a([1.0]), _s(0))), TypeError, "q must have dtype int8, got int16"),
            Bad(Case((_a([1], np.int8), _a([0.0]), _s(0))), ValueError, "scale must be > 0"),
            Bad(
                Case((_a([1], np.int8), _a([1.0]), _a([0.0]))),
                ValueError,
                "offset has shape (1,) but the mean of the scales needs shape ()",
            ),
        ),
        paper=QLORA,
    ),
]
