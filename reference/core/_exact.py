"""Exact sums of products, rounded once: the arithmetic shared by `reference.core.exact` and `reference.core.linalg`
(package-private).

Two routes give the same bits:

- **Python integers** (`units`, `round_units`): a float64 is an integer multiple of $2^{-1074}$, so a sum of products
  of float64 values is an integer in units of $2^{-2148}$; it is rounded once. Exact for every finite input, slow.
- **Exact float64 steps, then a proof** (`dot_rows`), for values between $2^{-480}$ and $2^{480}$ in magnitude: each
  product $a b$ is the exact sum $p + e$ of two float64 (`two_product`: Dekker's product with Veltkamp's split, no
  fused multiply-add), and each row of terms is added by `sum_rows`: every term is cut at the same power of two into
  a high part, whose sum is exact in any order, and a low part, whose float64 sum comes with a rigorous error bound;
  when the bound cannot move the result across a rounding boundary, that result is the exact sum rounded once.
  The rows the bound cannot settle go to `math.fsum`, which is correctly rounded too (Shewchuk's algorithm: exact
  partials, one final rounding); in this range neither the products nor `fsum`'s partials can overflow or underflow.

The torch backend computes the same values by integer slices (Ozaki's scheme); the tests compare the routes bit for
bit and both against `fractions.Fraction`.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

UNIT = 1074  # every float64 is an integer multiple of 2**-UNIT
# The state of `exact_sum_state`: limb k weighs 2**(LIMB_BITS * k - UNIT). Limbs 0 .. LIMBS-2 lie in [0, 2**LIMB_BITS);
# the top limb is signed, in [-TOP_LIMB, TOP_LIMB). A canonical state holds any integer in [-2**2175, 2**2175) units,
# that is |value| < 2**1101, far past any sum of fewer than 2**77 finite float64 values.
LIMB_BITS = 32
LIMBS = 68
TOP_LIMB = 2**31
# The smallest magnitude that rounds to infinity: 2**1024 - 2**970 is the midpoint between the largest float64 and
# 2**1024, and the tie goes to the even neighbour, 2**1024, which overflows.
OVERFLOW = Fraction(2**1024 - 2**970)
SAFE = 2.0**480  # `dot_rows` takes its float64 route when every nonzero magnitude lies in [1 / SAFE, SAFE]


# ---- Python integers ---------------------------------------------------------------------------------------------


def units(values) -> list[int]:
    """Float values as exact Python ints in units of 2**-1074 (as_integer_ratio gives a power-of-two denominator)."""
    return [(n << UNIT) // d for n, d in (float(v).as_integer_ratio() for v in np.asarray(values).reshape(-1))]


def dot_units(p: list[int], q: list[int]) -> int:
    """The exact dot product of two lists of units, in units of 2**-2148."""
    return sum(u * v for u, v in zip(p, q, strict=True))


def round_units(n: int, exponent: int) -> float:
    """The float64 nearest to n * 2**exponent, ties to even.

    Below `2**53` in magnitude `n` converts exactly, and a power-of-two scaling that stays in the normal range is
    exact. Otherwise `float(Fraction)` divides int by int, which CPython rounds correctly (subnormals included), but
    it raises OverflowError past float64's range, where IEEE rounding gives infinity: that case is settled first.
    """
    if n == 0:
        return 0.0  # an exact zero is +0.0
    if abs(n) < 2**53 and -1022 <= n.bit_length() + exponent <= 1023:
        return math.ldexp(float(n), exponent)
    q = Fraction(n) * Fraction(2) ** exponent
    if abs(q) >= OVERFLOW:
        return math.inf if n > 0 else -math.inf
    return float(q)  # a nonzero value keeps its sign, also when it rounds to zero (-0.0 below -2**-1075)


# ---- exact float64 steps and a proof --------------------------------------------------------------------------------


def dot_rows(c, a, b) -> np.ndarray:
    r"""For each row `i`: $\operatorname{fl}_{64}(c_i + \sum_k a_{ik} b_k)$, the exact value rounded once.

    `c` `(m,)`, `a` `(m, K)`, `b` `(K,)` (the same for every row) or `(m, K)` float64. Takes the float64 route when
    every nonzero magnitude lies in `[1 / SAFE, SAFE]`, else Python integers, row by row.
    """
    c, a = np.asarray(c, dtype=np.float64), np.asarray(a, dtype=np.float64)
    b = np.broadcast_to(np.asarray(b, dtype=np.float64), a.shape)
    if not _safe(c, a, b):
        return np.array([round_units((cu << UNIT) + dot_units(units(ra), units(rb)), -2 * UNIT)
                         for cu, ra, rb in zip(units(c), a, b, strict=True)], dtype=np.float64)  # fmt: skip
    p, e = two_product(a, b)
    return sum_rows(np.concatenate([c[:, None], p, e], axis=1))


def two_product(a, b):
    """`(p, e)` with `p = fl(a * b)` and `p + e = a * b` exactly, elementwise (Dekker, 1971).

    Veltkamp's split writes each factor as `hi + lo` with at most 26 significant bits each, so the four partial
    products are exact and `e` is computed exactly from them. Needs no overflow in `x * (2**27 + 1)` and no underflow
    in `e` (both hold between `1 / SAFE` and `SAFE`)."""
    ah, al = _halves(a)
    bh, bl = _halves(b)
    p = a * b
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def _halves(x):
    c = x * 134217729.0  # 2**27 + 1
    hi = c - (c - x)
    return hi, x - hi


def sum_rows(t) -> np.ndarray:
    r"""The exact sum of each row of `t` `(m, K)` (float64 values, magnitudes below `2**1000`), rounded once.

    With $2^M \ge 2 K \max_k |t_k|$ for the row, adding and subtracting $1.5 \cdot 2^M$ rounds every term to a
    multiple of $2^{M - 52}$ (the high part, exact, and the low part $t - \text{high}$, below $2^{M - 53}$, exact
    too). The high parts sum exactly in any order (multiples of $2^{M-52}$ below $2^{M+1}$); the low parts' float64
    sum is off by at most $\gamma_K \sum |\text{low}|$ (Higham, Thm. 3.1). The rounding of the whole is proven when
    the interval around $\text{high} + \text{low}$, widened by one step of its last bit on each side, rounds to one
    float64 (`_interval`); the other rows are added by `math.fsum`.
    """
    t = np.asarray(t, dtype=np.float64)
    m, k = t.shape
    top = np.abs(t).max(axis=1, initial=0.0)
    sigma = 1.5 * np.ldexp(1.0, np.frexp(top * (2.0 * k))[1])  # 1.5 * 2**M, 2**M > 2 K max|t|
    high = (t + sigma[:, None]) - sigma[:, None]
    low = t - high
    s_high, s_low = high.sum(axis=1), low.sum(axis=1)
    bound = np.abs(low).sum(axis=1) * ((k + 2) * 2.0**-52)
    value, proven = _interval(s_high, s_low, bound)
    for i in np.flatnonzero(~proven):
        value[i] = math.fsum(t[i].tolist()) + 0.0  # + 0.0: an exact zero is +0.0
    return value


def _interval(p, q, bound):
    """`fl(p + q)` for a value within `bound` of `p + q`, and where that is proven: the ends `q -+ bound`, pushed out
    by one step of their last bit so that they hold the exact ends, round with `p` to one nonzero float64 (rounding
    is monotonic), or the bound is zero. An exact zero is `+0.0`."""
    with np.errstate(over="ignore", invalid="ignore"):
        lo = p + np.nextafter(q - bound, -np.inf)
        hi = p + np.nextafter(q + bound, np.inf)
        value = (p + q) + 0.0
    return value, ((lo == hi) & (lo != 0)) | (bound == 0)


def _safe(*arrays) -> bool:
    for x in arrays:
        a = np.abs(x)
        if ((a > SAFE) | ((a < 1 / SAFE) & (a > 0))).any():
            return False
    return True
