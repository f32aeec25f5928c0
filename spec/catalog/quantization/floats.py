"""Registry entries for `reference.quantization.floats` and its torch twin: float_encode, float_decode, float_quantize,
float_quantize_vjp.
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
FP8 = "Micikevicius et al., 2022. FP8 Formats for Deep Learning. arXiv:2209.05433"


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


def _bits(values):
    """float32 values from their bit patterns (for NaN signs in goldens)."""
    return np.array(values, dtype=np.uint32).view(np.float32)


def _grid(fmt):
    """Sorted finite values of a format (float64), both signs."""
    v = _decode(np.arange(2 ** _form(fmt).bits), fmt).astype(np.float64)
    return np.unique(v[np.isfinite(v)])


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
        peers=(
            (
                "ml_dtypes 0.6, torch 2.13 CPU",
                "send the float32 subnormals in (2**-127, 1.5 * 2**-127) to E8M0 code 1; pqref (and ml_dtypes 0.7) give the nearest, code 0.",
            ),
            (
                "torch 2.11 CUDA",
                "`to(torch.float8_e4m3fn)` of |x| > 464 gives NaN (non-saturating), where torch 2.13 on CPU saturates: version-dependent.",
            ),
        ),
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
            Golden(
                Case((_a([0.75, 0.75, 0.75, 0.75, 2.5, -5.0]), FP4), {"rounding": "stochastic", "key": (0, 0)}),
                _a([0.5, 1.0, 0.5, 1.0, 3.0, -6.0]),
                "stochastic: each value sits halfway between two E2M1 levels and goes up when random_bits((0, 0)) "
                "plus the dropped bits carry past 2**32, i.e. u >= 0.5 for u = [0.418, 0.600, 0.216, 0.804, 0.965, "
                "0.633]: down, up, down, up, up, up (in magnitude)",
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
            Golden(
                Case((_a([1, 1, 1, 1]), _a([6.5, 6.5, 6.5, 6.5]), FP4), {"rounding": "stochastic", "key": (0, 0)}),
                _a([1, 1, 1, 0]),
                "6.5 is a quarter of the way from 6 to 8 (beyond E2M1): with the forward pass's draws it rounds up "
                "only where u >= 0.75 (the fourth, u = 0.804), which overflows and blocks",
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
]
