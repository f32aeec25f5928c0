r"""Correctly rounded float32 transcendental functions: `cr_exp`, `cr_log`, `cr_pow`, `cr_sigmoid`, `cr_sqrt`.

Every result is the exact real value rounded once to float32 (to nearest, ties to even), so it is the same on
every backend and device, whatever libm, SIMD approximation or GPU intrinsic is underneath. (The prefix is
CORE-MATH's, whose `cr_expf` and friends are correctly rounded in C.)

**How** (`cr_exp`, `cr_log`, `cr_pow`, `cr_sigmoid`): the function is evaluated in float64 by the backend's own
library, whose result $\tilde v$ is assumed within a relative error of $2^{-46}$ of the exact value $v$ (measured:
below one float64 ulp, $2^{-52}$, for NumPy and torch on the CPU; CUDA documents at most 2 ulps). The interval
$[\tilde v - \delta, \tilde v + \delta]$, $\delta = 2^{-45} |\tilde v| + 2^{-1060}$, then contains $v$; when both
of its ends round to the same float32, that float32 is $\operatorname{fl}_{32}(v)$. This settles all but about
one element in $2^{20}$. The others are settled on the host, one by one, by exact arithmetic
(`reference.common.transcendentals`: decimal evaluation at increasing precision, exact rational rounding, and the
exact powers $x^y$ that land on a float32 midpoint), with the same code in both backends.

`cr_sqrt` needs no fallback: the float64 square root rounded to float32 is the right float32 or a neighbour, and
the squared midpoints between them are exact in float64, so comparisons settle it.
"""

from __future__ import annotations

import math

import numpy as np

from reference import _arrays
from reference.common import transcendentals as host

__all__ = ["cr_exp", "cr_log", "cr_pow", "cr_sigmoid", "cr_sqrt"]

F32, F64 = np.float32, np.float64
REL = 2.0**-45  # the half-width of the certified interval, relative (twice the assumed float64 error, 2**-46)
TINY = 2.0**-1060  # plus an absolute part, for float64 results that underflow (far below every float32)


def cr_exp(x):
    r"""The exponential, correctly rounded to float32: $\operatorname{fl}_{32}(e^x)$.

    $$ y = \operatorname{fl}_{32}\big(e^{x}\big) $$

    **Arguments:**

    - `x`: a float32 array, any shape, finite.

    **Returns:**

    A float32 array shaped like `x`.

    !!! note
        $e^x$ overflows to `inf` from $x \approx 88.72$ (the exact value at or past $2^{128} - 2^{103}$) and is
        `+0.0` below about $-103.97$ (the exact value below $2^{-150}$); subnormal results are correctly rounded
        too. `cr_exp(0) = 1`. NumPy's and torch's float32 `exp` are not correctly rounded and differ from each
        other (see the exactness page for the counts). Example: the float32 nearest $e = 2.71828182\ldots$

            >>> cr_exp(np.float32([1.0]))
            array([2.7182817], dtype=float32)
    """
    x = _arrays.finite_array("x", x)
    with np.errstate(over="ignore", under="ignore"):
        approx = np.exp(x.astype(F64))
    return _settle(approx, lambda i: host.exp_float32(float(x.reshape(-1)[i])))


def cr_log(x):
    r"""The natural logarithm, correctly rounded to float32: $\operatorname{fl}_{32}(\ln x)$.

    $$ y = \operatorname{fl}_{32}\big(\ln x\big), \qquad x > 0 $$

    **Arguments:**

    - `x`: a float32 array, any shape, finite, every element `> 0` (subnormals included).

    **Returns:**

    A float32 array shaped like `x`.

    !!! note
        `cr_log(1) = +0.0`, the only exact case. Zero or a negative `x` raises `ValueError` (no `-inf` or NaN).
        Example: the float32 nearest $\ln 2 = 0.693147180\ldots$

            >>> cr_log(np.float32([2.0]))
            array([0.6931472], dtype=float32)
    """
    x = _arrays.positive("x", _arrays.finite_array("x", x))
    approx = np.log(x.astype(F64))
    return _settle(approx, lambda i: host.log_float32(float(x.reshape(-1)[i])))


def cr_pow(x, y):
    r"""The power $x^y$ of a non-negative base, correctly rounded to float32, ties to even.

    $$ z = \operatorname{fl}_{32}\big(x^{y}\big), \qquad x \ge 0 $$

    **Arguments:**

    - `x`: a float32 array, any shape, finite, every element `>= 0`.
    - `y`: a float32 array of the same shape, or 0-d (one exponent for all), finite.

    **Returns:**

    A float32 array shaped like `x`.

    !!! note
        $x^0 = 1$ (also $0^0$), $1^y = 1$, $0^y = +0.0$ for $y > 0$ and `inf` for $y < 0$; `-0.0` counts as
        `+0.0` (the result is never negative). Unlike $e^x$, a power can be exactly a float32 midpoint:
        $4097^2 = 2^{24} + 2^{13} + 1$ lies halfway between two float32 values and rounds to even,
        `16785408.0`; $(2^{-75})^2 = 2^{-150}$ lies halfway between `0` and the smallest subnormal and gives
        `+0.0`. These cases are found and rounded exactly (see `reference.common.transcendentals.exact_pow`).
        Example: $\sqrt 2$, and the tie $4097^2$:

            >>> cr_pow(np.float32([2.0]), np.float32(0.5))
            array([1.4142135], dtype=float32)
            >>> int(cr_pow(np.float32([4097.0]), np.float32(2.0))[0])  # 2**24 + 2**13, the even neighbour
            16785408
    """
    x = _arrays.within("x", _arrays.finite_array("x", x), 0.0, math.inf)
    y = _exponent(x, _arrays.finite_array("y", y))
    x64 = np.abs(x.astype(F64))  # -0.0 as +0.0
    y64 = np.broadcast_to(y.astype(F64), x.shape)
    with np.errstate(over="ignore", under="ignore", divide="ignore"):
        approx = np.power(x64, y64)
    xf, yf = x64.reshape(-1), y64.reshape(-1)
    return _settle(approx, lambda i: host.pow_float32(float(xf[i]), float(yf[i])))


def cr_sigmoid(x):
    r"""The logistic sigmoid, correctly rounded to float32: $\operatorname{fl}_{32}\big(1 / (1 + e^{-x})\big)$.

    $$ y = \operatorname{fl}_{32}\Big(\frac{1}{1 + e^{-x}}\Big) $$

    **Arguments:**

    - `x`: a float32 array, any shape, finite.

    **Returns:**

    A float32 array shaped like `x`, in `[0, 1]`.

    !!! note
        `cr_sigmoid(0) = 0.5`; the result is `1.0` from about $x = 17.33$ and `+0.0` below about $-103.97$.
        The float64 evaluation $1 / (1 + e^{-x})$ is certified like `cr_exp` (its relative error stays within the
        same bound). Example:

            >>> cr_sigmoid(np.float32([1.0]))
            array([0.7310586], dtype=float32)
    """
    x = _arrays.finite_array("x", x)
    with np.errstate(over="ignore", under="ignore"):
        approx = 1.0 / (1.0 + np.exp(-x.astype(F64)))
    return _settle(approx, lambda i: host.sigmoid_float32(float(x.reshape(-1)[i])))


def cr_sqrt(x):
    r"""The square root, correctly rounded to float32, of a float32 or float64 value.

    $$ y = \operatorname{fl}_{32}\big(\sqrt{x}\big), \qquad x \ge 0 $$

    A float64 square root rounded to float32 is the right value or a neighbour; the midpoint between two adjacent
    float32 values has at most 25 significant bits, so its square is exact in float64, and comparing $x$ with the
    squared midpoints on either side decides exactly (ties, which float32 inputs never produce, to even).

    **Arguments:**

    - `x`: a float32 or float64 array, any shape, finite, every element `>= 0`.

    **Returns:**

    A float32 array shaped like `x`; `inf` where $\sqrt x \ge 2^{128} - 2^{103}$ (float64 inputs only).

    !!! note
        `cr_sqrt(-0.0) = -0.0` (IEEE). torch's CPU float64 `sqrt` is not correctly rounded, so a plain
        `sqrt(x).float()` can differ between backends; this cannot. Example, from float32 and float64:

            >>> cr_sqrt(np.float32([2.0]))
            array([1.4142135], dtype=float32)
            >>> cr_sqrt(np.float64([6.0]))
            array([2.4494898], dtype=float32)
    """
    x = _arrays.within("x", _arrays.finite_array("x", x, ("float32", "float64")), 0.0, math.inf)
    s = x.astype(F64)
    with np.errstate(over="ignore"):
        y = np.sqrt(s).astype(F32)
    for toward in (F32(np.inf), F32(0)):
        with np.errstate(over="ignore"):
            other = np.nextafter(y, toward)
        mid = (_wide(y) + _wide(other)) / 2
        beyond = s > mid * mid if toward > 0 else s < mid * mid
        tie = (s == mid * mid) & (other != y) & ((other.view(np.uint32) & 1) == 0)
        y = np.where(beyond | tie, other, y)
    return np.asarray(y)


# ---- certification -----------------------------------------------------------------------------------------


def _settle(approx, exact):
    """`fl32` of the exact values: certified from the float64 `approx` where possible, else `exact(flat index)`."""
    value, ok = _certified(approx)
    if not ok.all():
        flat = value.reshape(-1)
        for i in np.flatnonzero(~ok):
            flat[i] = exact(int(i))
    return np.asarray(value)


def _certified(approx):
    """`(fl32(approx), ok)`: `ok` where every value within `REL * |approx| + TINY` rounds to the same float32."""
    with np.errstate(over="ignore", invalid="ignore"):
        value = approx.astype(F32)
        delta = np.abs(approx) * REL + TINY
        lo, hi = (approx - delta).astype(F32), (approx + delta).astype(F32)
    ok = np.isinf(approx) | ((lo == value) & (hi == value))
    return value, ok


def _exponent(x, y):
    if y.ndim != 0 and y.shape != x.shape:
        raise ValueError(f"y must be 0-d or have x's shape {tuple(x.shape)}, got shape {tuple(y.shape)}")
    return y


def _wide(y):
    """float32 as float64, with inf standing for 2**128 (the first value past the float32 range)."""
    return np.where(np.isinf(y), F64(2.0**128), y.astype(F64))
