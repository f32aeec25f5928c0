"""Registry entries for low-bit float formats (FP8, FP6, FP4, E8M0) and MX block formats (MXFP8/6/4, MXINT8)."""

from __future__ import annotations

import numpy as np

from spec import strategies as S
from spec.entry import Bad, Case, Entry, Golden, Invariant

F = np.float32
FP8 = "Micikevicius et al., 2022. FP8 Formats for Deep Learning. arXiv:2209.05433"
OCP_MX = (
    "OCP Microscaling Formats (MX) Specification v1.0 (Open Compute Project, 2023); Rouhani et al., 2023. "
    "Microscaling Data Formats for Deep Learning. arXiv:2310.10537"
)
STE = "Bengio et al., 2013. Estimating or Propagating Gradients Through Stochastic Neurons. arXiv:1308.3432"

FLOAT_SEMANTICS = (
    "Formats: float8_e4m3fn, float8_e5m2, float6_e3m2fn, float6_e2m3fn, float4_e2m1fn, float8_e8m0fnu "
    "(ml_dtypes names); codes in the low bits of a uint8, sign in the top bit of the code.",
    "Integer bit manipulation on the float32 bits; no library cast. Round to nearest, ties to the even significand.",
    "Subnormals of the target are exact; the carry from a rounded-up significand into the exponent is an addition.",
    "Overflow (the rounded value beyond max finite, with the exponent range unbounded) and +-Inf: saturate=True "
    "gives +-max; saturate=False gives +-Inf (E5M2) or NaN with the sign bit (E4M3FN, E8M0).",
    "Signed zero kept: -0.0 and negatives that round to zero encode as the sign bit alone.",
    "NaN encodes as 0x7F / 0xFF (E4M3FN), 0x7E / 0xFE (E5M2), 0xFF (E8M0); FP6 and FP4 reject NaN and "
    "saturate=False (ValueError).",
    "E8M0: nearest power of two in the linear domain, a tie (1.5 * 2**k) goes up; below 2**-127 -> code 0; "
    "zero, negatives and NaN -> 255 (NaN).",
    "Stochastic rounding: the dropped bits as a 32-bit fraction f (truncated beyond 32 bits) plus random_bits(key) "
    "at the flat index; round up when the sum carries past 2**32.",
)


def _a(values, dtype=np.float32):
    return np.array(values, dtype=dtype)


def _u8(values):
    return np.array(values, dtype=np.uint8)


def _bits(values):
    """float32 values from their bit patterns (for NaN signs in goldens)."""
    return np.array(values, dtype=np.uint32).view(np.float32)


def _form(fmt):
    from reference.quantization.floats import FORMATS

    return FORMATS[fmt]


def _decode(codes, fmt):
    from reference.quantization.floats import float_decode

    return float_decode(np.asarray(codes, dtype=np.uint8), fmt)


def _grid(fmt):
    """Sorted finite values of a format (float64), both signs."""
    v = _decode(np.arange(2 ** _form(fmt).bits), fmt).astype(np.float64)
    return np.unique(v[np.isfinite(v)])


# ---- invariants ---------------------------------------------------------------------------------------------


def _code_width(call, case, out):
    x, fmt = case.args
    assert out.dtype == np.uint8 and out.shape == x.shape
    assert np.all(out < 2 ** _form(fmt).bits), "a code has bits above the format's width"


def _sign_kept(call, case, out):
    x, fmt = case.args
    form = _form(fmt)
    if form.signed:
        sign = (out >> (form.bits - 1)) & 1
        assert np.array_equal(sign.astype(bool), np.signbit(x)), "the sign bit must be the sign of x"


def _neighbour(call, case, out):
    """The decoded code is one of the two format values around x (the nearer one for half_even), or a clipped end."""
    x, fmt = case.args
    form = _form(fmt)
    y = _decode(out, fmt).astype(np.float64)
    g = _grid(fmt)
    x64 = x.astype(np.float64)
    inside = np.isfinite(x64) & (x64 >= g[0]) & (x64 <= g[-1])
    lo = g[np.clip(np.searchsorted(g, x64, side="right") - 1, 0, g.size - 1)]
    hi = g[np.clip(np.searchsorted(g, x64, side="left"), 0, g.size - 1)]
    xi, yi, li, hi_ = x64[inside], y[inside], lo[inside], hi[inside]
    assert np.all((yi == li) | (yi == hi_)), "the result must be a neighbour of x"
    if case.kwargs["rounding"] == "half_even" and form.signed:
        assert np.all(np.abs(yi - xi) <= np.minimum(xi - li, hi_ - xi)), "half_even must give the nearer neighbour"


def _roundtrip(call, case, out):
    """Representable values encode to themselves: encode(decode(code)) == code (NaN codes aside)."""
    x, fmt = case.args
    y = _decode(out, fmt)
    keep = ~np.isnan(y)
    kw = dict(case.kwargs)
    again = call(Case((np.where(keep, y, F(0)).astype(F), fmt), kw))
    assert np.array_equal(again[keep], out[keep]), "a representable value moved"


def _decode_roundtrip(call, case, out):
    codes, fmt = case.args
    assert out.dtype == np.float32 and out.shape == codes.shape
    from reference.quantization.floats import float_encode

    keep = ~np.isnan(out)
    form = _form(fmt)
    again = float_encode(np.where(keep, out, F(0)).astype(F), fmt, saturate=not (form.has_inf or form.has_nan))
    assert np.array_equal(again[keep], codes[keep]), "decode then encode must give the code back"


def _quantize_idempotent(call, case, out):
    x, fmt = case.args
    again = call(Case((out, fmt), case.kwargs))
    assert np.array_equal(again.view(np.uint32), out.view(np.uint32)), "float_quantize must be idempotent"


def _grad_or_zero(call, case, out):
    grad = case.args[0]
    assert np.all((out.view(np.uint32) == grad.view(np.uint32)) | (out.view(np.uint32) == 0)), "grad or +0.0"


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


# ---- entries ------------------------------------------------------------------------------------------------

E4, E5, FP4, E8 = "float8_e4m3fn", "float8_e5m2", "float4_e2m1fn", "float8_e8m0fnu"

ENTRIES = [
    Entry(
        name="float_encode",
        family="quantization",
        module="quantization.floats",
        summary="Encode float32 as FP8 (E4M3FN, E5M2), FP6 (E3M2, E2M3), FP4 (E2M1) or E8M0 codes, bit-exactly.",
        strategy=S.lowbit_encode_cases,
        semantics=FLOAT_SEMANTICS,
        invariants=(
            Invariant("codes fit the format width", _code_width),
            Invariant("sign bit is the sign of x", _sign_kept),
            Invariant("result is a neighbour of x, the nearer one for half_even", _neighbour),
            Invariant("representable values encode to themselves", _roundtrip),
        ),
        golden=(
            Golden(
                Case((_a([1.0, -0.0, 3.0, 0.001, 0.0009765625, 464.0, 465.0]), E4)),
                _u8([0x38, 0x80, 0x44, 0x01, 0x00, 0x7E, 0x7E]),
                "2**-10 ties to 0; 464 ties to 448 (even); 465 saturates",
            ),
            Golden(
                Case((_a([465.0, np.inf, -np.inf, np.nan]), E4), {"saturate": False}),
                _u8([0x7F, 0x7F, 0xFF, 0x7F]),
                "E4M3FN has no Inf: overflow and Inf become NaN with the sign",
            ),
            Golden(
                Case((_a([61440.0, 61439.996, np.inf, -1e6]), E5), {"saturate": False}),
                _u8([0x7C, 0x7B, 0x7C, 0xFC]),
                "61440 ties between 57344 (odd) and 65536: up, overflow to Inf",
            ),
            Golden(
                Case((_a([0.25, 0.75, 2.5, 5.0, 7.0, -100.0, np.inf]), FP4)),
                _u8([0x0, 0x2, 0x4, 0x6, 0x7, 0xF, 0x7]),
                "E2M1 ties to even: 0.25->0, 0.75->1, 2.5->2, 5->4; 7 overflows and saturates to 6",
            ),
            Golden(
                Case((_a([0.03125, 0.03125001, 0.21875]), "float6_e3m2fn")),
                _u8([0x00, 0x01, 0x04]),
                "half the smallest subnormal ties to 0; 3.5 * 2**-4 carries into the smallest normal 0.25",
            ),
            Golden(
                Case((_a([1.0, 1.5, 3.0, 1.4, 0.0, -1.0, 1e-45, 3.4e38]), E8)),
                _u8([0x7F, 0x80, 0x81, 0x7F, 0xFF, 0xFF, 0x00, 0xFE]),
                "E8M0: ties up, zero and negatives NaN, underflow to 2**-127, overflow saturates",
            ),
            Golden(
                Case((_a([1.0, 448.0, -0.0]), E4), {"rounding": "stochastic", "key": (0, 0)}),
                _u8([0x38, 0x7E, 0x80]),
                "stochastic rounding never moves representable values",
            ),
        ),
        bad=(
            Bad(Case((_a([1.0]), "float8_e4m3")), ValueError, "fmt must be one of"),
            Bad(Case((_a([1.0]), FP4), {"saturate": False}), ValueError, "only saturate=True is defined"),
            Bad(Case((_a([1.0, np.nan]), "float6_e2m3fn")), ValueError, "x must not contain NaN"),
            Bad(Case((_a([1.0], np.float64), E4)), TypeError, "x must have dtype float32, got float64"),
            Bad(Case((_a([1.0]), E4), {"rounding": "floor"}), ValueError, "rounding must be one of"),
            Bad(Case((_a([1.0]), E4), {"rounding": "stochastic"}), ValueError, "needs a key"),
            Bad(Case((_a([1.0]), E4), {"key": (1, 2)}), ValueError, "key is only used with rounding='stochastic'"),
            Bad(Case((_a([1.0]), E4), {"saturate": 1}), TypeError, "saturate must be a bool"),
            Bad(Case(([1.0], E4)), TypeError, "x must be an array"),
        ),
        paper=FP8,
    ),
    Entry(
        name="float_decode",
        family="quantization",
        module="quantization.floats",
        summary="Decode FP8 / FP6 / FP4 / E8M0 codes to float32, exactly, assembling the float32 bits.",
        strategy=S.lowbit_decode_cases,
        semantics=(
            "Exact: every value of every format is a float32 (E8M0 code 0 is the float32 subnormal 2**-127).",
            "NaN codes decode to the quiet NaN 0x7FC00000 with the code's sign bit; E5M2 0x7C / 0xFC to +-Inf.",
            "Codes with bits above the format's width raise ValueError.",
        ),
        invariants=(Invariant("decode then encode gives the code back", _decode_roundtrip),),
        golden=(
            Golden(
                Case((np.arange(16, dtype=np.uint8), FP4)),
                _a([0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6]),
                "every E2M1 code",
            ),
            Golden(
                Case((_u8([0x7F, 0xFF, 0x01, 0x7E, 0x08]), E4)),
                _bits([0x7FC00000, 0xFFC00000, 0x3B000000, 0x43E00000, 0x3C800000]),
                "NaN keeps its sign; 0x01 = 2**-9; 0x7E = 448; 0x08 = 2**-6",
            ),
            Golden(
                Case((_u8([0x7C, 0xFC, 0x7D, 0x04, 0x03]), E5)),
                _a([np.inf, -np.inf, np.nan, 2.0**-14, 3 * 2.0**-16]),
                "E5M2 Inf, NaN, smallest normal, a subnormal",
            ),
            Golden(
                Case((_u8([0, 127, 254, 255]), E8)),
                _a([2.0**-127, 1.0, 2.0**127, np.nan]),
                "E8M0: 2**(c - 127), 255 is NaN",
            ),
        ),
        bad=(
            Bad(Case((_u8([16]), FP4)), ValueError, "codes must be in [0, 15], got 16 at flat index 0"),
            Bad(Case((_u8([64]), "float6_e3m2fn")), ValueError, "codes must be in [0, 63], got 64"),
            Bad(Case((np.array([1], np.int8), E4)), TypeError, "codes must have dtype uint8, got int8"),
            Bad(Case((_u8([1]), "e4m3")), ValueError, "fmt must be one of"),
        ),
        paper=FP8,
    ),
    Entry(
        name="float_quantize",
        family="quantization",
        module="quantization.floats",
        summary="Fake quantization to a low-bit float format: decode(encode(x)), straight-through gradient.",
        strategy=S.lowbit_encode_cases,
        vjp="float_quantize_vjp",
        semantics=("float_decode(float_encode(x)) with the same options; see float_encode.",),
        invariants=(Invariant("idempotent", _quantize_idempotent),),
        golden=(
            Golden(
                Case((_a([0.3, 0.75, 2.5, 5.0, 100.0]), FP4)),
                _a([0.5, 1.0, 2.0, 4.0, 6.0]),
                "ties to even, saturation at 6",
            ),
            Golden(
                Case((_a([1e6, -np.inf, 0.1]), E5), {"saturate": False}),
                _a([np.inf, -np.inf, 0.09375]),
                "E5M2 overflows to Inf; 0.1 = 1.6 * 2**-4 -> 1.5 * 2**-4",
            ),
        ),
        bad=(Bad(Case((_a([np.nan]), FP4)), ValueError, "float4_e2m1fn has no NaN encoding"),),
        paper=FP8,
    ),
    Entry(
        name="float_quantize_vjp",
        family="quantization",
        module="quantization.floats",
        summary="The straight-through gradient of float_quantize: passes where nothing overflowed.",
        strategy=lambda: S.lowbit_encode_cases(with_grad=True),
        semantics=(
            "where(pass, grad, +0.0); pass: x finite and its rounding (same mode, same random bits) within max finite.",
            "E8M0 passes where x > 0 rounds to a power of two in [2**-127, 2**127]; NaN and +-Inf block.",
        ),
        invariants=(Invariant("grad or +0.0", _grad_or_zero),),
        golden=(
            Golden(
                Case((_a([1, 1, 1, 1, 1]), _a([464.0, 464.00003, -np.inf, np.nan, -1.0]), E4)),
                _a([1, 0, 0, 0, 1]),
                "464 rounds to 448 and passes; just above overflows and blocks",
            ),
            Golden(
                Case((_a([1, 1, 1, 1]), _a([6.9999995, 7.0, -6.0, 0.0]), FP4)),
                _a([1, 0, 1, 1]),
                "E2M1: 7 ties up past 6 and blocks",
            ),
        ),
        bad=(
            Bad(
                Case((_a([1, 1]), _a([1.0]), E4)),
                ValueError,
                "grad has shape (2,) but x needs shape (1,)",
            ),
        ),
        paper=STE,
    ),
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
