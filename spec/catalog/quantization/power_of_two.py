"""Registry entries for `reference.quantization.power_of_two` and its torch twin: pow2_exponent_range, pow2_emax,
pow2_quantize, pow2_quantize_vjp, pow2_encode, pow2_decode.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from spec import strategies as S
from spec.catalog.common import array as _a
from spec.catalog.common import plus_zeros as _plus_zeros
from spec.catalog.common import raw_bits as _bits
from spec.catalog.common import same_raw_bits as _same
from spec.catalog.common import u8 as _u8
from spec.entry import Bad, Case, Entry, Golden, Invariant

LOGQUANT = (
    "Miyashita et al., 2016. Convolutional Neural Networks using Logarithmic Data Representation. arXiv:1603.01025"
)
INQ = (
    "Zhou et al., 2017. Incremental Network Quantization: Towards Lossless CNNs with Low-Precision Weights. ICLR. "
    "arXiv:1702.03044"
)


STE = "Bengio et al., 2013. Estimating or Propagating Gradients Through Stochastic Neurons. arXiv:1308.3432"
P4 = {"bits": 4, "emax": 0, "levels": "dense"}  # emin = -6 (INQ's 4-bit levels: emin = -3)
INQ4 = {"bits": 4, "emax": 0}


def _pow2_count(bits, levels):
    """Exponents of a code, from INQ's n2 = n1 + 1 - 2**(b-1) / 2, or the dense 2**(bits-1) - 1."""
    return 2 ** (bits - 1) // 2 if levels == "inq" else 2 ** (bits - 1) - 1


def _pow2_emin(kw):
    return kw["emax"] + 1 - _pow2_count(kw["bits"], kw.get("levels", "inq"))


def _pow2_levels(call, case, out):
    x, kw = case.args[-1], case.kwargs
    emin = _pow2_emin(kw)
    assert out.dtype == np.float32 and out.shape == x.shape
    _plus_zeros(out, "pow2_quantize")
    nz = out != 0
    m, e = np.frexp(np.abs(out[nz]))
    assert np.all(m == 0.5) and np.all((emin <= e - 1) & (e - 1 <= kw["emax"])), "levels are 2**e, emin <= e <= emax"
    assert np.all(np.signbit(out[nz]) == np.signbit(x[nz])), "the sign of a nonzero result is the sign of x"


def _pow2_idempotent(call, case, out):
    _same(out, call(Case((out,), case.kwargs)), "pow2_quantize must be idempotent")


def _pow2_monotone(call, case, out):
    x = case.args[0].reshape(-1)
    order = np.argsort(x, kind="stable")
    assert np.all(np.diff(out.reshape(-1)[order].astype(np.float64)) >= 0), "pow2_quantize must be monotone"


def _grad_or_zero(call, case, out):
    grad = case.args[0]
    assert np.all((_bits(out) == _bits(grad)) | (_bits(out) == 0)), "the gradient must be the cotangent or +0.0"


def _pow2_range(call, case, out):
    bits, emax = case.args
    count = _pow2_count(bits, case.kwargs.get("levels", "inq"))
    assert out[1] == emax and emax - out[0] + 1 == count and out[0] >= -149


def _pow2_emax_bracket(call, case, out):
    s = Fraction(float(np.max(np.abs(case.args[0]))))
    assert -149 <= out <= 127
    assert Fraction(3, 4) * Fraction(2) ** out <= s, "3/4 * 2**n1 <= max|x|"
    assert out == 127 or s < Fraction(3, 4) * Fraction(2) ** (out + 1), "n1 is the largest such exponent"


def _codes_fit(call, case, out):
    bits = case.kwargs["bits"]
    assert out.dtype == np.uint8 and np.all(out < 2**bits) and not np.any(out == 2 ** (bits - 1)), "codes"


def _pow2_decoded_levels(call, case, out):
    kw = case.kwargs
    emin = _pow2_emin(kw)
    _plus_zeros(out, "pow2_decode")
    m, e = np.frexp(np.abs(out[out != 0]))
    assert np.all(m == 0.5) and np.all((emin <= e - 1) & (e - 1 <= kw["emax"])), "decoded levels"


_X8 = _a([0.75, 0.7, 1.4142135, 1.4142137, 3.0, -0.0078125, 0.0078, 0.72])


ENTRIES = [
    Entry(
        name="pow2_exponent_range",
        family="quantization",
        module="quantization.power_of_two",
        summary="The exponent range [emin, emax] of a bits-bit power-of-two code: INQ's set, or the dense variant.",
        strategy=S.pow2_range_cases,
        semantics=(
            "levels='inq' (default), INQ's set: 1 bit for zero, b - 1 bits for 2**(b-1) signed powers, so "
            "2**(bits-2) exponents: emin = emax + 1 - 2**(bits-2) (INQ's n2 = n1 + 1 - 2**(b-1)/2).",
            "levels='dense': one sign bit; magnitude code 0 is zero, codes 1 .. 2**(bits-1) - 1 are 2**emin .. "
            "2**emax: emin = emax - (2**(bits-1) - 2).",
            "Every level must be a float32 (emin >= -149).",
        ),
        invariants=(Invariant("INQ's 2**(bits-2) or the dense 2**(bits-1) - 1 exponents", _pow2_range),),
        golden=(
            Golden(Case((3, -1)), (-2, -1), "INQ's example: b = 3, n1 = -1 gives n2 = -2"),
            Golden(Case((5, 0)), (-7, 0), "INQ's 5 bits: 8 exponents"),
            Golden(Case((5, 0), {"levels": "dense"}), (-14, 0), "dense 5 bits: 15 exponents"),
            Golden(Case((4, 0)), (-3, 0), "INQ: levels 0, +-2**-3 .. +-1"),
            Golden(Case((4, 0), {"levels": "dense"}), (-6, 0), "dense: levels 0, +-2**-6 .. +-1"),
            Golden(Case((2, 3)), (3, 3), "one nonzero level (ternary)"),
            Golden(Case((2, 3), {"levels": "dense"}), (3, 3), "one nonzero level in both"),
            Golden(Case((8, -86)), (-149, -86), "INQ 8 bits: 64 exponents down to the smallest subnormal"),
            Golden(Case((8, -23), {"levels": "dense"}), (-149, -23), "dense 8 bits: 127 exponents"),
        ),
        bad=(
            Bad(Case((1, 0)), ValueError, "bits must be in [2, 8], got 1"),
            Bad(Case((9, 0)), ValueError, "bits must be in [2, 8], got 9"),
            Bad(Case((4, 128)), ValueError, "emax must be in [-149, 127], got 128"),
            Bad(Case((8, -87)), ValueError, "give emin = -150, below -149"),
            Bad(Case((8, -24), {"levels": "dense"}), ValueError, "give emin = -150, below -149"),
            Bad(Case((4.0, 0)), TypeError, "bits must be an int, got float 4.0"),
            Bad(Case((4, 0), {"levels": "log"}), ValueError, "levels must be one of 'inq', 'dense'; got 'log'"),
        ),
        paper=INQ,
    ),
    Entry(
        name="pow2_emax",
        family="quantization",
        module="quantization.power_of_two",
        summary="INQ's largest exponent floor(log2(4 max|x| / 3)), computed exactly from frexp.",
        strategy=S.pow2_emax_cases,
        semantics=(
            "max|x| = m * 2**E with m in [1, 2): n1 = E + [m >= 1.5], the largest n with 3/4 * 2**n <= max|x|.",
            "n1 = 128 is returned as 127; an all-zero or empty x raises ValueError.",
        ),
        invariants=(Invariant("3/4 * 2**n1 <= max|x| < 3/4 * 2**(n1+1)", _pow2_emax_bracket),),
        golden=(
            Golden(Case((_a([0.75]),)), 0, "4 * 0.75 / 3 = 1 exactly"),
            Golden(Case((_a([-0.7, 0.1]),)), -1, "0.7 = 1.4 * 2**-1"),
            Golden(Case((_a([0.0, 3.0]),)), 2, "3 = 1.5 * 2: rounds up"),
            Golden(Case((_a([3.4e38]),)), 127, "n1 = 128 is clipped"),
            Golden(Case((_a([1e-45]),)), -149, "the smallest subnormal"),
        ),
        bad=(
            Bad(Case((_a([0.0, -0.0]),)), ValueError, "no nonzero element"),
            Bad(Case((_a([]),)), ValueError, "no nonzero element"),
            Bad(Case((_a([np.nan]),)), ValueError, "x must be finite, got nan at flat index 0"),
        ),
        paper=INQ,
    ),
    Entry(
        name="pow2_quantize",
        family="quantization",
        module="quantization.power_of_two",
        summary="Quantize to 0 or +-2**e (e in [emin, emax]), rounding in the linear or the log domain.",
        strategy=S.pow2_cases,
        vjp="pow2_quantize_vjp",
        semantics=(
            "Levels 0 and +-2**e, e in [emin, emax] of pow2_exponent_range(bits, emax, levels=levels): INQ's set "
            "by default, levels='dense' for the sign-magnitude variant with 2**(bits-1) - 1 exponents.",
            "|x| = m * 2**E with m in [1, 2) from frexp (exact; no log2).",
            "linear: the exponent rounds up iff m >= 1.5 (nearer power of two, midpoint up, as INQ).",
            "log: up iff m*m > 2 in float64 (exact, never equal): round(log2|x|) with no ties (m >= 0x3FB504F4).",
            "|x| < 2**(emin-1) (and x = -0.0) flush to +0.0; the rounded exponent is clipped to [emin, emax].",
            "Saturation: |x| above 2**emax gives 2**emax; the sign of x is kept on nonzero results.",
        ),
        invariants=(
            Invariant("levels are 0 or +-2**e, sign kept", _pow2_levels),
            Invariant("idempotent", _pow2_idempotent),
            Invariant("monotone", _pow2_monotone),
        ),
        golden=(
            Golden(
                Case((_X8,), P4),
                _a([1, 0.5, 1, 1, 1, -0.015625, 0, 0.5]),
                "linear: 0.75, the midpoint of 0.5 and 1, is a tie and goes up; 0.72 down",
            ),
            Golden(
                Case((_X8,), {**P4, "rounding": "log"}),
                _a([1, 0.5, 1, 1, 1, -0.015625, 0, 1]),
                "log: 0.72 = 1.44 * 2**-1 and 1.44**2 > 2, so up",
            ),
            Golden(
                Case((_X8,), INQ4),
                _a([1, 0.5, 1, 1, 1, 0, 0, 0.5]),
                "INQ's 4 bits, emin = -3: -0.0078125 is below 2**-4 and flushes",
            ),
            Golden(
                Case((_a([0.0625, 0.06249999, -0.1, 0.7]),), INQ4),
                _a([0.125, 0, -0.125, 0.5]),
                "INQ's 4 bits: 0.0625 = 2**(emin-1) goes up to 2**-3, just below flushes",
            ),
            Golden(Case((_a([-0.0, -1e-10, 0.0]),), {"bits": 3, "emax": 0}), _a([0, 0, 0]), "flushed to +0.0"),
            Golden(
                Case((_a([0.5, 0.49999997, -7.0]),), {"bits": 2, "emax": 0}),
                _a([1, 0, -1]),
                "levels {0, +-1}: 0.5 = 2**(emin-1) goes up, just below flushes",
            ),
        ),
        bad=(
            Bad(Case((_a([1.0]),), {**P4, "rounding": "nearest"}), ValueError, "rounding must be one of"),
            Bad(Case((_a([np.inf]),), P4), ValueError, "x must be finite, got inf at flat index 0"),
            Bad(Case((_a([1.0], np.float64),), P4), TypeError, "x must have dtype float32, got float64"),
            Bad(Case((_a([1.0]),), {"bits": 9, "emax": 0}), ValueError, "bits must be in [2, 8], got 9"),
            Bad(Case((_a([1.0]),), {**INQ4, "levels": "all"}), ValueError, "levels must be one of 'inq', 'dense'"),
        ),
        paper=f"{LOGQUANT}; {INQ}",
    ),
    Entry(
        name="pow2_quantize_vjp",
        family="quantization",
        module="quantization.power_of_two",
        summary="The straight-through gradient of pow2_quantize; torch's is computed by autograd.",
        strategy=lambda: S.pow2_cases(with_grad=True),
        semantics=(
            "where(saturated, +0.0, grad): saturated iff not flushed and the unclipped rounded exponent > emax.",
            "Flushed values and values clipped up to 2**emin pass the gradient.",
        ),
        invariants=(Invariant("grad or +0.0", _grad_or_zero),),
        golden=(
            Golden(
                Case((_a([1, 1, 1, 1]), _a([1.4999999, 1.5, 1.4142137, -100.0])), P4),
                _a([1, 0, 1, 0]),
                "linear, emax 0: 1.5 rounds to 2 and saturates",
            ),
            Golden(
                Case((_a([1, 1, 1]), _a([1.4142135, 1.4142137, 1e-30])), {**P4, "rounding": "log"}),
                _a([1, 0, 1]),
                "log: just above sqrt(2) rounds to 2; flushed values pass",
            ),
        ),
        bad=(Bad(Case((_a([1, 1]), _a([1.0])), P4), ValueError, "grad has shape (2,) but x needs shape (1,)"),),
        paper=STE,
    ),
    Entry(
        name="pow2_encode",
        family="quantization",
        module="quantization.power_of_two",
        summary="Sign-magnitude uint8 codes of pow2_quantize(x).",
        strategy=S.pow2_cases,
        semantics=(
            "code = 2**(bits-1) * [y < 0] + (0 if y = 0 else e - emin + 1) for y = pow2_quantize(x) = +-2**e.",
            "Zero is always code 0, never the negative-zero code 2**(bits-1).",
            "INQ's levels (default) use magnitude codes 0 .. 2**(bits-2) only; the dense variant uses them all.",
        ),
        invariants=(Invariant("codes fit the width", _codes_fit),),
        golden=(
            Golden(Case((_a([1.0, -0.5, 0.0, 0.015625, -0.0, -100.0]),), P4), _u8([7, 14, 0, 1, 0, 15]), "dense"),
            Golden(Case((_a([1.0, -0.5, 0.0, 0.125, -0.0, -100.0]),), INQ4), _u8([4, 11, 0, 1, 0, 12]), "INQ's"),
            Golden(
                Case((_a([0.72, 0.7, 1.4142135, 1.4142137, -0.72]),), {**INQ4, "rounding": "log"}),
                _u8([4, 3, 4, 4, 12]),
                "log rounding: 0.72 = 1.44 * 2**-1 and 1.44**2 > 2, up to 1 (code 4; linear gives 0.5, code 3); "
                "0.7 down; 1.4142137 up to 2, clipped to emax: 1; -0.72: the sign bit 8 + 4",
            ),
        ),
        bad=(
            Bad(Case((_a([1.0]),), {**P4, "emax": -146}), ValueError, "give emin = -152, below -149"),
            Bad(Case((_a([1.0]),), {"bits": 8, "emax": -87}), ValueError, "give emin = -150, below -149"),
        ),
        paper=INQ,
    ),
    Entry(
        name="pow2_decode",
        family="quantization",
        module="quantization.power_of_two",
        summary="Values of sign-magnitude power-of-two codes.",
        strategy=S.pow2_decode_cases,
        semantics=(
            "m = code mod 2**(bits-1), s = code >> (bits-1): (-1)**s * 2**(emin + m - 1), or +0.0 for m = 0.",
            "Both zero codes (0 and 2**(bits-1)) decode to +0.0.",
            "m must name a level: m <= emax - emin + 1 (INQ's codes above 2**(bits-2) are rejected).",
        ),
        invariants=(Invariant("decoded levels", _pow2_decoded_levels),),
        golden=(
            Golden(Case((_u8([7, 14, 0, 1, 8, 15]),), P4), _a([1, -0.5, 0, 0.015625, 0, -1]), "dense"),
            Golden(Case((_u8([4, 11, 0, 1, 8, 12]),), INQ4), _a([1, -0.5, 0, 0.125, 0, -1]), "INQ's"),
        ),
        bad=(
            Bad(Case((_u8([16]),), P4), ValueError, "codes must be in [0, 15], got 16 at flat index 0"),
            Bad(Case((_a([1], np.int32),), P4), TypeError, "codes must have dtype uint8, got int32"),
            Bad(
                Case((_u8([4, 13]),), INQ4),
                ValueError,
                "codes mod 2**(bits-1) must be in [0, 4], got 5 at flat index 1",
            ),
        ),
        paper=INQ,
    ),
]
