"""Registry entries for `reference.quantization.mx` and its torch twin: mx_quantize, mx_dequantize, mx_fake_quantize,
mx_fake_quantize_vjp.
"""

from __future__ import annotations

import numpy as np

from spec import strategies as S
from spec.catalog.common import STE
from spec.catalog.common import array as _a
from spec.catalog.common import decode_codes as _decode
from spec.catalog.common import float_format as _form
from spec.catalog.common import u8 as _u8
from spec.entry import Bad, Case, Entry, Golden, Invariant

F = np.float32


OCP_MX = (
    "OCP Microscaling Formats (MX) Specification v1.0 (Open Compute Project, 2023); Rouhani et al., 2023. "
    "Microscaling Data Formats for Deep Learning. arXiv:2310.10537"
)


def _grad_copy(call, case, out):
    assert np.array_equal(out.view(np.uint32), case.args[0].view(np.uint32)), "the MX gradient is the identity"


def _mx_layout(call, case, out):
    x, fmt = case.args
    kw = case.kwargs
    scales, codes = out
    k = kw["axis"] % x.ndim
    assert scales.dtype == np.uint8 and scales.shape[k] == x.shape[k] // kw["block_size"]
    assert codes.dtype == (np.int8 if fmt == "mxint8" else np.uint8) and codes.shape == x.shape
    if np.all(np.isfinite(x)):
        assert np.all(scales <= 254), "no NaN scale for finite input"
    if fmt == "mxint8":
        assert np.all(codes >= -127), "MXINT8 saturates symmetrically"


def _mx_scale_rule(call, case, out):
    """floor: e = floor(log2 amax) - emax; ceil: the smallest e with amax <= max * 2**e (unless clipped)."""
    from reference.quantization.mx import MX_FORMATS

    x, fmt = case.args
    kw = case.kwargs
    scales, _ = out
    k, bs = kw["axis"] % x.ndim, kw["block_size"]
    elem = MX_FORMATS[fmt]
    moved = np.moveaxis(x, k, -1)
    blocks = moved.reshape(moved.shape[:-1] + (-1, bs))
    finite = np.isfinite(blocks).all(axis=-1)
    amax = np.abs(np.where(np.isfinite(blocks), blocks, F(0))).max(axis=-1, initial=F(0)).astype(np.float64)
    e = np.moveaxis(scales, k, -1).astype(np.int64) - 127
    assert np.all(e[~finite] == 128), "a block holding NaN or Inf has the NaN scale (nonfinite='nan')"
    mant, ex = np.frexp(amax)
    top = 127.0 / 64 if elem.float_format is None else _form(elem.float_format).max_finite
    nz = amax > 0
    assert np.all(e[~nz & finite] == -127), "an all-zero block has scale code 0"
    free = nz & finite & (e > -127) & (e < 127)
    if kw["scale_rule"] == "floor":
        assert np.all(e[free] == (ex - 1 - elem.emax)[free])
    elif kw["scale_rule"] == "ceil":
        assert np.all(amax[free] <= top * np.exp2(e[free])) and np.all(amax[free] > top * np.exp2(e[free] - 1))
    elif kw["scale_rule"] == "ceil_pow2":
        up = (mant != 0.5).astype(np.int64)  # amax is not a power of two
        assert np.all(e[free] == (ex - 1 - elem.emax + up)[free]), "ceil_pow2: ceil(log2 amax) - emax"
    else:
        d = e[free] - (ex - 1 - elem.emax)[free]
        assert np.all((d == 0) | (d == 1)), "even: the floor exponent, or one more when amax rounds up"


def _mx_idempotent(call, case, out):
    """Skipped where the output overflowed: 'ceil' / 'even' can round a block near the float32 max up to Inf."""
    x, fmt = case.args
    if not np.all(np.isfinite(out)):
        return
    again = call(Case((out, fmt), case.kwargs))
    assert np.array_equal(again.view(np.uint32), out.view(np.uint32)), "mx_fake_quantize must be idempotent"


def _mx_nan(call, case, out):
    scales, codes, fmt = case.args
    kw = case.kwargs
    assert out.dtype == np.float32 and out.shape == codes.shape
    s = np.repeat(scales, kw["block_size"], axis=kw["axis"] % codes.ndim)
    elem_nan = np.zeros(codes.shape, bool)
    if fmt != "mxint8":
        from reference.quantization.mx import MX_FORMATS

        elem_nan = np.isnan(_decode(codes, MX_FORMATS[fmt].float_format))
    assert np.array_equal(np.isnan(out), (s == 255) | elem_nan), "NaN exactly where the scale or element is NaN"


ENTRIES = [
    Entry(
        name="mx_quantize",
        family="quantization",
        module="quantization.mx",
        summary="MX block quantization: a shared E8M0 scale per block of 32 and FP8/FP6/FP4/INT8 element codes.",
        strategy=S.mx_quantize_cases,
        semantics=(
            "fmt: mxfp8_e4m3, mxfp8_e5m2, mxfp6_e3m2, mxfp6_e2m3, mxfp4_e2m1, mxint8; block_size a power of two "
            "in [1, 1024] (32 in OCP MX v1.0) dividing x.shape[axis]; no padding.",
            "Scale exponent e = floor(log2(amax)) - emax (OCP, torchao FLOOR: 'floor'), from the float32 bits of amax; "
            "'ceil': smallest e with amax <= max * 2**e, exact (NVIDIA's RCEIL rounds fl32(amax / max) up); 'even': exponent of amax rounded "
            "to the element's mantissa width (torchao EVEN); 'ceil_pow2': ceil(log2(amax)) - emax (torchao CEIL).",
            "e is clipped to [-127, 127]; scale code e + 127; an all-zero block has code 0; no NaN scale.",
            "Elements: x / 2**e encoded once from the bits (no float division), round to nearest, ties to even "
            "(rounding='half_even', OCP) or away from zero ('half_away'), saturating.",
            "MXINT8: element = clip(rne(64 x / 2**e), -127, 127) as int8; value = code * 2**-6.",
            "nonfinite='raise' (default): NaN or Inf in x raises ValueError; 'nan': a block holding NaN or Inf gets "
            "scale code 255 (E8M0 NaN, as OCP MX and torchao) and element codes 0x7F (FP8) or 0 (FP6, FP4, INT8).",
        ),
        invariants=(
            Invariant("layout, dtypes, no NaN scale", _mx_layout),
            Invariant("scale rule", _mx_scale_rule),
        ),
        golden=(
            Golden(
                Case((_a([0.5, -1.25, 3.0, 0.1]), "mxfp4_e2m1"), {"block_size": 4}),
                (_u8([126]), _u8([0x2, 0xC, 0x7, 0x0])),
                "amax 3: e = 1 - 2 = -1; x * 2 = [1, -2.5, 6, 0.2]; -2.5 ties to -2",
            ),
            Golden(
                Case((_a([7.0, 1.0, 0.0, 0.0]), "mxfp4_e2m1"), {"block_size": 4}),
                (_u8([127]), _u8([0x7, 0x2, 0x0, 0x0])),
                "floor: e = 2 - 2 = 0 and 7 saturates to 6",
            ),
            Golden(
                Case((_a([7.0, 1.0, 0.0, 0.0]), "mxfp4_e2m1"), {"block_size": 4, "scale_rule": "ceil"}),
                (_u8([128]), _u8([0x6, 0x1, 0x0, 0x0])),
                "ceil: 7 > 6 * 2**0, so e = 1; 3.5 ties to 4",
            ),
            Golden(
                Case((_a([5.0, 1.0, 0.0, 0.0]), "mxfp4_e2m1"), {"block_size": 4, "scale_rule": "ceil_pow2"}),
                (_u8([128]), _u8([0x4, 0x1, 0x0, 0x0])),
                "ceil_pow2 (torchao CEIL): amax 5 rounds up to 8, e = 3 - 2 = 1; 'floor' and 'ceil' keep e = 0",
            ),
            Golden(
                Case((_a([0.5, -1.25, 3.0, 0.1]), "mxfp4_e2m1"), {"block_size": 4, "rounding": "half_away"}),
                (_u8([126]), _u8([0x2, 0xD, 0x7, 0x0])),
                "ties away: -2.5 becomes -3 (0xD) where half_even gives -2 (0xC)",
            ),
            Golden(
                Case(
                    (_a([1.0, np.nan, 2.0, 3.0, 1.0, 2.0, 3.0, 4.0]), "mxfp8_e4m3"),
                    {"block_size": 4, "nonfinite": "nan"},
                ),
                (_u8([255, 121]), _u8([0x7F] * 4 + [0x68, 0x70, 0x74, 0x78])),
                "a NaN makes its block's scale 255 and its elements 0x7F; the next block is unaffected",
            ),  # fmt: skip
            Golden(
                Case((_a([1.0, np.inf, 2.0, 3.0]), "mxint8"), {"block_size": 4, "nonfinite": "nan"}),
                (_u8([255]), np.zeros(4, np.int8)),
                "Inf: the NaN scale; INT8 has no NaN code, so 0",
            ),
            Golden(
                Case((_a([[0.0, -0.0], [1.999, -1.999]]), "mxint8"), {"block_size": 2}),
                (_u8([[0], [127]]), np.array([[0, 0], [127, -127]], np.int8)),
                "zero block: code 0; 1.999 * 64 rounds to 128 and saturates to 127",
            ),
            Golden(
                Case((_a([1.999, -1.999]), "mxint8"), {"block_size": 2, "scale_rule": "even"}),
                (_u8([128]), np.array([64, -64], np.int8)),
                "even: 1.999 rounds to 2.0 at 6 fraction bits, so e = 1",
            ),
            Golden(
                Case((_a([[1.0, 2.0], [3.0, -4.0]]), "mxfp8_e4m3"), {"axis": 0, "block_size": 2}),
                (_u8([[120, 121]]), _u8([[0x70, 0x70], [0x7C, 0xF8]])),
                "blocks along axis 0: e = 1 - 8 and 2 - 8; elements 128, 384, 128, -256",
            ),
        ),
        bad=(
            Bad(Case((np.zeros(33, F), "mxfp8_e4m3")), ValueError, "x.shape[0] = 33 is not a multiple of block_size"),
            Bad(Case((np.zeros(48, F), "mxfp8_e4m3"), {"block_size": 48}), ValueError, "power of two, got 48"),
            Bad(Case((np.zeros(32, F), "mxfp8_e4m3"), {"block_size": 0}), ValueError, "block_size must be in"),
            Bad(Case((np.zeros(32, F), "mxfp8_e4m3"), {"block_size": 2048}), ValueError, "block_size must be in"),
            Bad(Case((np.zeros(32, F), "mxfp8")), ValueError, "fmt must be one of"),
            Bad(Case((np.zeros(32, F), "mxint8"), {"scale_rule": "round"}), ValueError, "scale_rule must be one of"),
            Bad(
                Case((np.zeros(32, F), "mxint8"), {"rounding": "stochastic"}),
                ValueError,
                "rounding must be one of 'half_even', 'half_away'; got 'stochastic'",
            ),  # fmt: skip
            Bad(
                Case((np.zeros(32, F), "mxint8"), {"nonfinite": "ignore"}),
                ValueError,
                "nonfinite must be one of 'raise', 'nan'; got 'ignore'",
            ),  # fmt: skip
            Bad(Case((np.full(32, np.inf, F), "mxint8")), ValueError, "x must be finite, got inf at flat index 0"),
            Bad(Case((_a(1.0), "mxint8")), ValueError, "axis -1 is out of range"),
            Bad(Case((np.zeros(32, F), "mxint8"), {"block_size": 32.0}), TypeError, "block_size must be an int"),
        ),
        paper=OCP_MX,
        peers=(
            (
                "NVIDIA RCEIL (cuBLAS, Transformer Engine, torchao)",
                "rounds the float32 quotient amax / max element up instead of the exact `'ceil'` rule, which differs where the quotient rounds onto a power of two (torchao 0.18: 9 of 1024 MXFP8 blocks on pqref's boundary inputs).",
            ),
            (
                "MX implementations",
                "the OCP spec says 'should' for the scale rule: floor (OCP, torchao FLOOR, microxcaling), round-up and even rules give different bits; `scale_rule` names each.",
            ),
        ),
    ),
    Entry(
        name="mx_dequantize",
        family="quantization",
        module="quantization.mx",
        summary="MX blocks back to float32: element times 2**(scale - 127), one rounding.",
        strategy=S.mx_dequantize_cases,
        semantics=(
            "Product in float64 (exact), rounded once to float32: exact unless it overflows to +-Inf.",
            "Scale code 255 (NaN) makes the whole block 0x7FC00000; element NaN / Inf codes decode as in float_decode.",
            "MXINT8 elements are int8 codes times 2**-6; -128 decodes to -2.",
        ),
        invariants=(Invariant("NaN exactly where the scale or element is NaN", _mx_nan),),
        golden=(
            Golden(
                Case((_u8([126, 255]), _u8([0x2, 0xC, 0x7, 0x1]), "mxfp4_e2m1"), {"block_size": 2}),
                _a([0.5, -1.0, np.nan, np.nan]),
                "scale 2**-1; scale NaN",
            ),
            Golden(
                Case((_u8([254, 0]), _u8([0x7E, 0x01]), "mxfp8_e4m3"), {"block_size": 1}),
                _a([np.inf, 2.0**-136]),
                "448 * 2**127 overflows; 2**-9 * 2**-127 is an exact float32 subnormal",
            ),
            Golden(
                Case((_u8([127]), np.array([-128, 127], np.int8), "mxint8"), {"block_size": 2}),
                _a([-2.0, 1.984375]),
                "INT8 code times 2**-6",
            ),
            Golden(
                Case(
                    (_u8([[125, 126], [126, 127]]), _u8([[4, 7], [14, 0], [6, 2], [1, 15]]), "mxfp4_e2m1"),
                    {"axis": 0, "block_size": 2},
                ),
                _a([[0.5, 3.0], [-1.0, 0.0], [2.0, 1.0], [0.25, -6.0]]),
                "blocks of 2 along axis 0, one scale per block and column: scales 2**-2, 2**-1 (column 0) and "
                "2**-1, 2**0 (column 1) times the E2M1 values",
            ),
        ),
        bad=(
            Bad(
                Case((_u8([127, 127]), _u8([0, 0]), "mxfp4_e2m1"), {"block_size": 2}),
                ValueError,
                "scales has shape (2,) but codes of shape (2,) in blocks of 2 along 0 needs shape (1,)",
            ),
            Bad(
                Case((_u8([127]), _u8([0, 0]), "mxint8"), {"block_size": 2}),
                TypeError,
                "codes must have dtype int8, got uint8",
            ),
            Bad(
                Case((_u8([127]), _u8([64, 0]), "mxfp6_e2m3"), {"block_size": 2}),
                ValueError,
                "codes must be in [0, 63], got 64",
            ),
            Bad(
                Case((_a([127]), _u8([0, 0]), "mxfp6_e2m3"), {"block_size": 2}),
                TypeError,
                "scales must have dtype uint8, got float32",
            ),
            Bad(
                Case((_u8([127]), _u8([0, 0, 0]), "mxfp8_e5m2"), {"block_size": 2}),
                ValueError,
                "codes.shape[0] = 3 is not a multiple of block_size 2",
            ),
        ),
        paper=OCP_MX,
    ),
    Entry(
        name="mx_fake_quantize",
        family="quantization",
        module="quantization.mx",
        summary="MX fake quantization: mx_dequantize(*mx_quantize(x)), identity gradient.",
        strategy=S.mx_quantize_cases,
        vjp="mx_fake_quantize_vjp",
        semantics=("mx_dequantize(*mx_quantize(x)) with the same options; see mx_quantize.",),
        invariants=(Invariant("idempotent", _mx_idempotent),),
        golden=(
            Golden(
                Case((_a([1.0, 0.3]), "mxint8"), {"block_size": 2}),
                _a([1.0, 0.296875]),
                "0.3 * 64 = 19.2 -> 19",
            ),
            Golden(
                Case((_a([0.5, -1.25, 3.0, 0.1]), "mxfp4_e2m1"), {"block_size": 4}),
                _a([0.5, -1.0, 3.0, 0.0]),
                "scale 2**-1 times [1, -2, 6, 0]",
            ),
            Golden(
                Case(
                    (_a([[0.5, 3.0], [-1.25, 0.1], [2.0, 0.75], [0.25, -6.0]]), "mxfp4_e2m1"),
                    {"axis": 0, "block_size": 2},
                ),
                _a([[0.5, 3.0], [-1.0, 0.0], [2.0, 1.0], [0.25, -6.0]]),
                "blocks of 2 down each column: [0.5, -1.25] gets 2**-2 and -5 ties to -4 (even); [3, 0.1] gets "
                "2**-1; [2, 0.25] gets 2**-1; [0.75, -6] gets 2**0 and the tie 0.75 goes to 1 (even)",
            ),
            Golden(
                Case((_a([0.75, -1.25, 2.5, 6.0]), "mxfp4_e2m1"), {"block_size": 4, "rounding": "half_away"}),
                _a([1.0, -1.5, 3.0, 6.0]),
                "scale 2**0; the ties 0.75, -1.25 and 2.5 go away from zero (half to even gives 1, -1, 2)",
            ),
        ),
        bad=(Bad(Case((np.zeros((2, 3), F), "mxint8"), {"axis": 0, "block_size": 4}), ValueError, "not a multiple"),),
        paper=OCP_MX,
    ),
    Entry(
        name="mx_fake_quantize_vjp",
        family="quantization",
        module="quantization.mx",
        summary="The straight-through gradient of mx_fake_quantize: the identity.",
        strategy=lambda: S.mx_quantize_cases(with_grad=True),
        semantics=(
            "The gradient passes everywhere (the scale follows amax: nothing is range-clipped); none to scales.",
        ),
        invariants=(Invariant("grad copied", _grad_copy),),
        golden=(
            Golden(
                Case((_a([1.0, -2.0]), _a([7.0, 1.0]), "mxfp4_e2m1"), {"block_size": 2}),
                _a([1.0, -2.0]),
                "7 saturates to 6 and still passes",
            ),
            Golden(
                Case(
                    (_a([[1.0, -2.0], [3.0, 4.0]]), _a([[7.0, 1.0], [0.1, 100.0]]), "mxfp4_e2m1"),
                    {"axis": 0, "block_size": 2, "rounding": "half_away"},
                ),
                _a([[1.0, -2.0], [3.0, 4.0]]),
                "blocks along axis 0, half_away: the identity still, whatever the scales and the rounding",
            ),
        ),
        bad=(
            Bad(
                Case((_a([1.0]), _a([7.0, 1.0]), "mxfp4_e2m1"), {"block_size": 2}),
                ValueError,
                "grad has shape (1,) but x needs shape (2,)",
            ),
        ),
        paper=STE,
    ),
]
