r"""The correctly rounded float32 value of `exp`, `log`, `pow` and the sigmoid at one point, by exact arithmetic.

`reference.core.transcendental` and its torch twin compute these functions in float64 and prove, for almost every
element, which float32 the exact value rounds to (the float64 result lies within a stated relative error of the
exact value, and the whole interval rounds to one float32). The rare elements whose interval straddles a float32
rounding boundary come here, one at a time, on the host, in both backends: the very same code decides them.

**How a point is settled.** The function is evaluated with Python's `decimal` module at $P$ significant digits
(its `exp` and `ln` are correctly rounded to $P$ digits), which bounds the exact value in an interval of relative
width $10^{c - P}$; both ends are rounded to float32 exactly (`round_float32`, rational arithmetic). If they agree,
that float32 is the correctly rounded value; if not, $P$ doubles. This terminates whenever the exact value is not
itself a rounding boundary (a float32 midpoint, or the overflow threshold): true of $e^x$ ($x \ne 0$ rational gives
a transcendental value), $\ln x$ ($x \ne 1$), the sigmoid ($x \ne 0$), and of $x^y$ except in the cases
`exact_pow` finds and rounds exactly (ties to even).

Standard library only (`decimal`, `fractions`, `math`, `struct`), like the rest of `reference.common`.
"""

from __future__ import annotations

import math
import struct
from decimal import Context, Decimal
from fractions import Fraction

__all__ = [
    "exp_float32", "log_float32", "pow_float32", "sigmoid_float32", "round_float32", "exact_pow", "over_sqrt_float32",
    "hadamard_entry_float32",
]  # fmt: skip

OVERFLOW = Fraction(2**128 - 2**103)  # the midpoint between the largest float32 and 2**128: rounds to infinity
FIRST_DIGITS = 40
MAX_DIGITS = 5000


def round_float32(q: Fraction) -> float:
    """The float32 nearest to the rational `q` (ties to even; `+-inf` from the overflow threshold up), as a Python
    float. Exact: only integer arithmetic decides."""
    if q == 0:
        return 0.0
    sign = -1.0 if q < 0 else 1.0
    a = abs(q)
    if a >= OVERFLOW:
        return sign * math.inf
    e = a.numerator.bit_length() - a.denominator.bit_length()  # 2**(e - 1) < a < 2**(e + 1)
    if a < Fraction(2) ** e:
        e -= 1  # now 2**e <= a < 2**(e + 1)
    quantum = max(e - 23, -149)  # the spacing of float32 values at a's binade (subnormals: 2**-149)
    n = a / Fraction(2) ** quantum
    m = n.numerator // n.denominator
    rest = n - m
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and m % 2):
        m += 1
    return sign * math.ldexp(float(m), quantum)  # m <= 2**24: exact


def exp_float32(x: float) -> float:
    """$\\operatorname{fl}_{32}(e^x)$ for a finite float `x`, correctly rounded."""
    return _settle(lambda c: c.exp(Decimal(x)), 1)


def log_float32(x: float) -> float:
    """$\\operatorname{fl}_{32}(\\ln x)$ for a finite float `x > 0`, correctly rounded."""
    return _settle(lambda c: c.ln(Decimal(x)), 1)


def sigmoid_float32(x: float) -> float:
    """$\\operatorname{fl}_{32}(1 / (1 + e^{-x}))$ for a finite float `x`, correctly rounded."""
    return _settle(lambda c: c.divide(1, c.add(1, c.exp(Decimal(-x)))), 2)


def pow_float32(x: float, y: float) -> float:
    """$\\operatorname{fl}_{32}(x^y)$ for finite floats `x >= 0` and `y`, correctly rounded, ties to even (with
    `0**0 = 1`, `0**y = +0.0` for `y > 0` and `+inf` for `y < 0`)."""
    x = abs(x)  # -0.0 is +0.0
    if y == 0 or x == 1:
        return 1.0
    if x == 0:
        return 0.0 if y > 0 else math.inf
    exact = exact_pow(x, y)
    if exact is not None:
        return round_float32(exact)
    t = abs(y * math.log(x))
    if t > 300:  # |x**y| beyond 2**400 or below 2**-400: far from every finite nonzero float32
        return math.inf if y * math.log(x) > 0 else 0.0
    # exp(y ln x) with ln and exp correctly rounded to P digits and the product rounded once: the relative error
    # is below (|y ln x| + 3) * 10**(1 - P) < 10**(4 - P) for |y ln x| <= 300.
    return _settle(lambda c: c.exp(c.multiply(Decimal(y), c.ln(Decimal(x)))), 4)


def exact_pow(x: float, y: float) -> Fraction | None:
    r"""$x^y$ as an exact rational when it can be a float32 rounding boundary, else None.

    With $x = a 2^e$ ($a$ odd) and $y = p / 2^k$ in lowest terms, a boundary is $c\, 2^f$ with $c$ odd and
    $c < 2^{25}$ (a midpoint has at most 25 significant bits; the overflow threshold $2^{103}(2^{25} - 1)$ too).
    $x^y = c\,2^f$ needs $a^y = c$: either $a = 1$ ($x$ a power of two, $x^y = 2^{e y}$ with $e y$ an integer),
    or $a \ge 3$, $y > 0$ and $a = b^{2^k}$ with $c = b^p$, so $3^{2^k} \le a < 2^{24}$ gives $k \le 3$ and
    $3^p \le c < 2^{25}$ gives $p \le 15$: $y = j / 8$ for an int $1 \le j \le 120$. In both cases the exact
    rational is computed (an 8th root of $x^j$ in integers); every other $x^y$ is irrational or not dyadic, never a
    boundary.
    """
    fx, fy = Fraction(x), Fraction(y)
    num, den = fx.numerator, fx.denominator
    if num & (num - 1) == 0 and den & (den - 1) == 0:  # x = 2**e
        f = fy * ((num.bit_length() - 1) - (den.bit_length() - 1))
        if f.denominator == 1 and abs(f) <= 400:
            return Fraction(2) ** int(f)
        return None
    j = fy * 8
    if j.denominator != 1 or not 1 <= j <= 120:
        return None
    t = fx ** int(j)
    num, den = _root8(t.numerator), _root8(t.denominator)
    if num is None or den is None:
        return None
    return Fraction(num, den)


def _root8(n: int) -> int | None:
    """The integer 8th root of `n >= 1` if `n` is a perfect 8th power, else None."""
    r = math.isqrt(math.isqrt(math.isqrt(n)))
    return r if r**8 == n else None


def _settle(evaluate, c: int) -> float:
    """Evaluate at increasing precision until the interval of relative width 10**(c - P) rounds to one float32."""
    digits = FIRST_DIGITS
    while digits <= MAX_DIGITS:
        ctx = Context(prec=digits, Emax=10**6, Emin=-(10**6))
        d = Fraction(evaluate(ctx))
        width = abs(d) * Fraction(10) ** (c - digits)
        lo, hi = round_float32(d - width), round_float32(d + width)
        if _bits(lo) == _bits(hi):
            return lo
        digits *= 2
    raise ArithmeticError("the correctly rounded value was not settled at 5000 digits")  # never, see the module


def _bits(v: float) -> int:
    return struct.unpack("<I", struct.pack("<f", v))[0] if math.isfinite(v) else (1 if v > 0 else -1) << 40


def over_sqrt_float32(total: Fraction, n: int) -> float:
    r"""$\operatorname{fl}_{32}(s / \sqrt{n})$ for an exact rational $s$ and an int $n \ge 1$, ties to even.

    A float candidate is moved to its float32 neighbour while $s / \sqrt n$ lies beyond the midpoint on that side;
    the comparisons are exact: $|s| / \sqrt n > m \iff s^2 > n m^2$. An exact zero is `+0.0`; a nonzero value
    keeps its sign when it rounds to zero.
    """
    if total == 0:
        return 0.0
    sign = -1.0 if total < 0 else 1.0
    a2 = total * total
    c = abs(round_float32(Fraction(abs(float(total)) / math.sqrt(n)))) if math.isfinite(float(total)) else math.inf
    while True:
        if math.isfinite(c):
            up = _step32(c, 1)
            mid = (Fraction(c) + (Fraction(2**128) if math.isinf(up) else Fraction(up))) / 2
            if a2 > n * mid * mid or (a2 == n * mid * mid and _bits(up) % 2 == 0):
                c = up
                continue
        if c > 0:
            down = _step32(c, -1)
            mid = Fraction(2**128 - 2**103) if math.isinf(c) else (Fraction(c) + Fraction(down)) / 2
            if a2 < n * mid * mid or (a2 == n * mid * mid and _bits(down) % 2 == 0):
                c = down
                continue
        return sign * c


def hadamard_entry_float32(values, coefficients, n: int) -> float:
    r"""$\operatorname{fl}_{32}\big(\sum_j c_j v_j / \sqrt n\big)$ for float32 values $v_j$ and integer $c_j$ (the
    signs of a Hadamard row), the sum exact (integers in units of $2^{-149}$), rounded once."""
    units = sum(int(c) * int(v * 2.0**149) for v, c in zip(values, coefficients, strict=True))  # exact: v * 2**149
    # is an integer below 2**278 (a float32 times a power of two, no rounding)
    return over_sqrt_float32(Fraction(units, 2**149), n)


def _step32(c: float, direction: int) -> float:
    """The float32 after (+1) or before (-1) a float32 `c >= 0` (inf's predecessor is the largest float32)."""
    if math.isinf(c):
        return struct.unpack("<f", struct.pack("<I", 0x7F7FFFFF))[0]
    (b,) = struct.unpack("<I", struct.pack("<f", c))
    return struct.unpack("<f", struct.pack("<I", b + direction))[0]
