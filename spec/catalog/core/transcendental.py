"""Registry entries for `reference.core.transcendental` and its torch twin: cr_exp, cr_log, cr_pow, cr_sigmoid,
cr_sqrt."""

from __future__ import annotations

import math
from decimal import Context, Decimal
from fractions import Fraction

import numpy as np

from spec import strategies as S
from spec.catalog.common import array as _a
from spec.entry import Bad, Case, Entry, Golden, Invariant

CORE_MATH = (
    "Sibidanov, Zimmermann and Glondu, 2022. The CORE-MATH Project. ARITH 2022 (correctly rounded mathematical "
    "functions; the `cr_` prefix). Muller et al., Handbook of Floating-Point Arithmetic, 2nd ed., 2018, ch. 10 "
    "(Ziv's strategy: evaluate with an error bound, settle the rare hard cases with more precision)."
)
CERTIFIED = (
    "fl32 of the exact real value, rounded once to nearest, ties to even: the same bits on every backend.",
    "A float64 evaluation is certified when its interval (2**-45 relative, + 2**-1060) rounds to one float32; the "
    "rare others are settled on the host by decimal arithmetic at increasing precision (the same code in both "
    "backends).",
)


def _neighbours(y):
    """The exact midpoints below and above the float32 `y` (2**128 stands for the first value past the range)."""

    def value(v):
        return Fraction(2**128) if np.isinf(v) else Fraction(float(v))

    up, down = np.nextafter(y, np.float32(np.inf)), np.nextafter(y, np.float32(-np.inf))
    lo = None if np.isinf(y) and y < 0 else (value(y) + value(down)) / 2
    hi = None if np.isinf(y) and y > 0 else (value(y) + value(up)) / 2
    if np.isinf(y):
        lo, hi = (Fraction(2**128 - 2**103), None) if y > 0 else (None, -Fraction(2**128 - 2**103))
    return lo, hi


def _correctly_rounded(decimal_fn):
    """The output is the float32 nearest the exact value: a 60-digit decimal evaluation lies between the midpoints
    around each output element (with its error bound), or, within that bound, on one exactly (a tie)."""

    def check(call, case, out):
        args = [np.broadcast_to(a, case.args[0].shape).reshape(-1) for a in case.args]
        for i, y in enumerate(np.asarray(out).reshape(-1)):
            point = [float(a[i]) for a in args]
            d = decimal_fn(Context(prec=60, Emax=10**6, Emin=-(10**6)), *point)
            if d is None:
                continue
            v, err = Fraction(d), abs(Fraction(d)) * Fraction(10) ** -50 + Fraction(1, 2**1100)
            lo, hi = _neighbours(y)
            assert lo is None or v + err >= lo, f"element {i} {point}: {y!r} is too large for {d}"
            assert hi is None or v - err <= hi, f"element {i} {point}: {y!r} is too small for {d}"

    return check


def _exp_decimal(c, x):
    return None if abs(x) > 200 else c.exp(Decimal(x))  # beyond: inf or +0.0, checked by the goldens


def _sigmoid_decimal(c, x):
    return None if abs(x) > 200 else c.divide(1, c.add(1, c.exp(Decimal(-x))))


def _pow_decimal(c, x, y):
    x = abs(x)
    if y == 0 or x == 1:
        return Decimal(1)
    if x == 0:
        return None  # 0 or inf: checked by the goldens
    if abs(y * math.log(x)) > 300:
        return None
    return c.exp(c.multiply(Decimal(y), c.ln(Decimal(x))))


def _sqrt_exact(call, case, out):
    """Exactly: the squared midpoints around the output bracket x (ties to even)."""
    (x,) = case.args
    for s, y in zip(x.reshape(-1).tolist(), np.asarray(out).reshape(-1), strict=True):
        lo, hi = _neighbours(y)
        t = Fraction(s)
        assert y == 0 or lo is None or lo * lo <= t, f"sqrt({s!r}) = {y!r} is too large"
        assert hi is None or t <= hi * hi, f"sqrt({s!r}) = {y!r} is too small"
        if y != 0 and lo is not None and (lo * lo == t or (hi is not None and hi * hi == t)):
            assert int(np.float32(y).view(np.uint32)) % 2 == 0, f"sqrt({s!r}): a tie must go to even, got {y!r}"


_F32_MAX = float(np.finfo(np.float32).max)

ENTRIES = [
    Entry(
        name="cr_exp",
        family="core",
        module="core.transcendental",
        summary="e**x correctly rounded to float32, the same bits on every backend.",
        strategy=S.exp_cases,
        semantics=(*CERTIFIED, "Overflow gives inf (exact value >= 2**128 - 2**103), underflow +0.0."),
        invariants=(Invariant("correctly rounded (60-digit decimal)", _correctly_rounded(_exp_decimal)),),
        golden=(
            Golden(
                Case((_a([0, 1, -1, 89, -104]),)),
                _a([1, 2.7182817459106445, 0.3678794503211975, np.inf, 0]),
                "e = 2.71828182..., 1/e = 0.36787944...; e**89 > 2**128; e**-104 = 6.8e-46 < 2**-150",
            ),  # fmt: skip
            Golden(
                Case((_a([1.1715909242630005]),)),
                _a([3.2271228]),
                "a hard case: e**x = 3.22712266445..., within 2**-45 of the midpoint 3.2271226644515991 between "
                "3.2271225 and 3.2271228, and above it: settled by the host path",
            ),  # fmt: skip
        ),
        bad=(
            Bad(Case((_a([1.0, np.inf]),)), ValueError, "x must be finite, got inf at flat index 1"),
            Bad(Case((_a([1.0], np.float64),)), TypeError, "x must have dtype float32, got float64"),
        ),
        paper=CORE_MATH,
    ),
    Entry(
        name="cr_log",
        family="core",
        module="core.transcendental",
        summary="The natural logarithm of x > 0, correctly rounded to float32.",
        strategy=S.log_cases,
        semantics=(*CERTIFIED, "log(1) = +0.0, the only exact case; x <= 0 raises ValueError."),
        invariants=(
            Invariant("correctly rounded (60-digit decimal)", _correctly_rounded(lambda c, x: c.ln(Decimal(x)))),
        ),
        golden=(
            Golden(Case((_a([1, 2, 0.5]),)), _a([0, 0.6931471824645996, -0.6931471824645996]), "ln 2 = 0.69314718..."),
            Golden(
                Case((_a([1.2466981410980225]),)),
                _a([0.22049856]),
                "a hard case: ln x = 0.2204985693097..., beside a float32 midpoint: settled by the host path",
            ),  # fmt: skip
        ),
        bad=(
            Bad(Case((_a([1.0, 0.0]),)), ValueError, "x must be > 0, got 0.0 at flat index 1"),
            Bad(Case((_a([-1.0]),)), ValueError, "x must be > 0, got -1.0 at flat index 0"),
        ),
        paper=CORE_MATH,
    ),
    Entry(
        name="cr_pow",
        family="core",
        module="core.transcendental",
        summary="x**y for x >= 0, correctly rounded to float32, exact midpoints to even.",
        strategy=S.pow_cases,
        semantics=(
            *CERTIFIED,
            "x**0 = 1 (0**0 too), 1**y = 1, 0**y = +0.0 (y > 0) or inf (y < 0); -0.0 counts as +0.0.",
            "Exact midpoints (x = a 2**e, a odd: a power of two with e*y = -150, or y = j/8 with 1 <= j <= 120 and "
            "x**j a perfect 8th power) are found and rounded exactly, ties to even.",
            "y is 0-d (one exponent) or of x's shape.",
        ),
        invariants=(Invariant("correctly rounded (60-digit decimal)", _correctly_rounded(_pow_decimal)),),
        golden=(
            Golden(
                Case((_a([4097, 2.0**-75, 3 * 2.0**-75, 3]), _a(2))),
                _a([16785408, 0, 4 * 2.0**-149, 9]),
                "4097**2 = 2**24 + 2**13 + 1, halfway between 16785408 and 16785410: to even; (2**-75)**2 = 2**-150, "
                "halfway between 0 and 2**-149: to +0.0; (3 * 2**-75)**2 = 9 * 2**-150, halfway between 4 and 5 "
                "times 2**-149: to 4; 3**2 = 9 exactly",
            ),  # fmt: skip
            Golden(
                Case((_a([0, 0, 0, 2, 1.0000001192092896]), _a([-1, 0, 1, 0.5, 0.5]))),
                _a([np.inf, 1, 0, 1.4142135381698608, 1]),
                "0**-1 = inf, 0**0 = 1, 0**1 = 0; sqrt 2 = 1.41421356...; sqrt(1 + 2**-23) = 1.0000000596046429..., "
                "just below the midpoint 1 + 2**-24: 1.0",
            ),  # fmt: skip
            Golden(
                Case((_a([-0.0, -0.0, -0.0]), _a([3, 0, -1]))),
                _a([0, 1, np.inf]),
                "-0.0 counts as +0.0: (-0)**3 = +0.0 (C's pow gives -0.0), (-0)**0 = 1, (-0)**-1 = +inf",
            ),
        ),
        bad=(
            Bad(Case((_a([-1.0]), _a(0.5))), ValueError, "x must be in [0.0, inf], got -1.0 at flat index 0"),
            Bad(Case((_a([1.0, 2.0]), _a([1.0, 2.0, 3.0]))), ValueError, "y must be 0-d or have x's shape (2,)"),
            Bad(Case((_a([1.0]), _a(np.nan))), ValueError, "y must be finite, got nan at flat index 0"),
        ),
        paper=CORE_MATH,
    ),
    Entry(
        name="cr_sigmoid",
        family="core",
        module="core.transcendental",
        summary="The logistic sigmoid 1 / (1 + e**-x), correctly rounded to float32.",
        strategy=S.sigmoid_cases,
        semantics=(*CERTIFIED, "sigmoid(0) = 0.5; 1.0 from about x = 17.33; +0.0 below about -103.97."),
        invariants=(
            Invariant(
                "correctly rounded (60-digit decimal)",
                _correctly_rounded(_sigmoid_decimal),
            ),
        ),
        golden=(
            Golden(
                Case((_a([0, 1, -200, 20]),)),
                _a([0.5, 0.7310585975646973, 0, 1]),
                "1 / (1 + 1/e) = 0.73105857...; e**-200 underflows; 1 - 2e-9 rounds to 1",
            ),  # fmt: skip
            Golden(Case((_a([1.1542994976043701]),)), _a([0.7602954]), "a hard case: 0.760295361280456..."),
        ),
        bad=(Bad(Case((_a([np.nan]),)), ValueError, "x must be finite, got nan at flat index 0"),),
        paper=CORE_MATH,
    ),
    Entry(
        name="cr_sqrt",
        family="core",
        module="core.transcendental",
        summary="The square root of a float32 or float64 x >= 0, correctly rounded to float32.",
        strategy=S.sqrt_cases,
        semantics=(
            "fl32(sqrt(x)) exactly: fl32 of the float64 sqrt, then the neighbour whose side of the exactly squared "
            "midpoint x lies on (25-bit midpoints square exactly in float64); ties (float64 inputs only) to even.",
            "sqrt(-0.0) = -0.0; inf where sqrt(x) >= 2**128 - 2**103.",
        ),
        invariants=(Invariant("exact: the squared midpoints bracket x", _sqrt_exact),),
        golden=(
            Golden(Case((_a([2, 4, -0.0, 0]),)), _a([1.4142135381698608, 2, -0.0, 0]), "sqrt 2 = 1.41421356..."),
            Golden(
                Case((_a([6.0, (1 + 2.0**-24) ** 2, 1e300, _F32_MAX**2], np.float64),)),
                _a([2.4494898319244385, 1, np.inf, _F32_MAX]),
                "float64 inputs: sqrt 6; (1 + 2**-24)**2 is exact in float64 and its root is the midpoint between 1 "
                "and 1 + 2**-23: to even, 1; 1e150 overflows; the largest float32 squared gives itself back",
            ),  # fmt: skip
        ),
        bad=(
            Bad(Case((_a([-1.0]),)), ValueError, "x must be in [0.0, inf], got -1.0 at flat index 0"),
            Bad(Case((_a([1], np.int32),)), TypeError, "x must have dtype float32 or float64, got int32"),
        ),
        paper=CORE_MATH,
    ),
]
