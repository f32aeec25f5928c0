"""Exact linear algebra: Cholesky, triangular solves and the inverse from a Cholesky factor, identical everywhere.

Every entry of every result is one correctly rounded inner product (`exact_dot`: the exact real value rounded once
to float64) followed by at most one IEEE operation (a correctly rounded square root or division), in an order
stated by each function. No result depends on blocking, threads, the BLAS or the device. Each step computes all
the inner products it needs (a column of the factor, a row of a solve) with `reference.core._exact.dot_rows`:
exact float64 products and a proven rounding where the values allow it, Python integers elsewhere.
"""

from __future__ import annotations

import math

import numpy as np

from reference import _arrays
from reference.common import validate
from reference.core._exact import dot_rows, round_units
from reference.core.exact import exact_gram

__all__ = ["cholesky", "triangular_solve", "cholesky_inverse"]

_F64 = ("float64",)


def cholesky(h):
    r"""The lower Cholesky factor $L$ of a symmetric positive-definite matrix, $h = L L^\top$, column by column.

    For $j = 0, 1, \dots, n - 1$, with every inner product exact and rounded once ($\operatorname{fl}_{64}$):

    $$ L_{jj} = \operatorname{sqrt_{rn}}\Big(\operatorname{fl}_{64}\big(h_{jj}
       - \textstyle\sum_{k<j} L_{jk}^2\big)\Big),
       \qquad L_{ij} = \operatorname{fl}_{64}\big(h_{ij} - \textstyle\sum_{k<j} L_{ik} L_{jk}\big) \oslash L_{jj}
       \quad (i > j) $$

    where $\operatorname{sqrt_{rn}}$ is the correctly rounded square root and $\oslash$ IEEE division. Only the
    lower triangle of `h` is read for the arithmetic; the whole of `h` must be exactly symmetric.

    **Arguments:**

    - `h`: a float64 array of shape `(n, n)`, `n >= 1`, finite and symmetric.

    **Returns:**

    `L`, float64 `(n, n)`, lower triangular (`+0.0` above the diagonal), with a positive diagonal.

    !!! note
        The pivot $d_j = \operatorname{fl}_{64}(h_{jj} - \sum_{k<j} L_{jk}^2)$ must be `> 0`, else `ValueError`
        names the column and the pivot (a pivot below $2^{-1075}$ rounds to `0.0` and fails too): a matrix that
        is singular or indefinite in exact arithmetic on its own factor fails in the same column on every device.
        An entry that overflows float64 raises `ValueError` naming it. Example: `[[4, 2], [2, 5]]` gives
        `[[2, 0], [1, 2]]` ($\sqrt 4$, $2 / 2$, $\sqrt{5 - 1}$); `[[1, 2], [2, 1]]` fails at column 1 with pivot
        `-3.0`:

            >>> cholesky(np.float64([[4, 2], [2, 5]]))
            array([[2., 0.],
                   [1., 2.]])
            >>> cholesky(np.float64([[1, 2], [2, 1]]))
            Traceback (most recent call last):
            ...
            ValueError: h is not positive definite: the pivot of column 1 is -3.0, the exact h[1, 1] - sum_k L[1, k]**2 rounded once to float64; it must be > 0

    ??? cite
        Higham, 2002. Accuracy and Stability of Numerical Algorithms, 2nd ed., chapter 10 (Cholesky factorization).
        SIAM. doi:10.1137/1.9780898718027
    """
    h = _symmetric("h", h)
    n = h.shape[0]
    out = np.zeros((n, n), dtype=np.float64)
    for j in range(n):
        s = dot_rows(h[j:, j], -out[j:, :j], out[j, :j])  # fl(h_ij - sum_k L_ik L_jk), i >= j
        pivot = float(s[0])
        if not pivot > 0:
            raise validate.not_positive_definite("h", j, pivot)
        out[j, j] = _finite("L", j, j, _sqrt_rn(pivot))
        for i in range(j + 1, n):
            out[i, j] = _finite("L", i, j, float(s[i - j]) / float(out[j, j]))
    return out


def triangular_solve(l, b, *, lower=True, transpose=False):
    r"""Solve $\operatorname{op}(l)\, x = b$ for a triangular $l$, by substitution, each entry one exact inner
    product and one IEEE division.

    With $A = \operatorname{op}(l)$ ($l$, or $l^\top$ when `transpose`), lower-triangular $A$ is solved forward
    ($i = 0, 1, \dots$) and upper-triangular $A$ backward ($i = n - 1, \dots, 0$), for every column $c$ of $b$:

    $$ x_{ic} = \operatorname{fl}_{64}\Big(b_{ic} - \sum_{k \text{ solved before } i} A_{ik}\, x_{kc}\Big)
       \oslash A_{ii} $$

    **Arguments:**

    - `l`: a float64 array of shape `(n, n)`, `n >= 1`, finite, with a nonzero diagonal. Only the triangle named
      by `lower` is read (the other may hold anything finite), as in LAPACK.
    - `b`: a float64 array of shape `(n,)` or `(n, m)`, finite.
    - `lower`: `True` if `l` is lower triangular, `False` if upper.
    - `transpose`: solve with $l^\top$ instead of $l$.

    **Returns:**

    `x`, float64, shaped like `b`.

    !!! note
        A zero on the diagonal raises `ValueError`; an entry of `x` that overflows float64 raises `ValueError`
        naming it (a later entry would need an exact product with infinity). The sign of a zero follows IEEE
        division: `0 / -2` is `-0.0`. Example: `l = [[2, 0], [1, 4]]`, `b = [2, 9]` gives `x = [1, 2]`:

            >>> triangular_solve(np.float64([[2, 0], [1, 4]]), np.float64([2, 9]))
            array([1., 2.])
    """
    l, b = _solve_args(l, b, lower, transpose)
    return _solve(l, b, lower, transpose, "x")


def cholesky_inverse(l):
    r"""The inverse of $h = l\, l^\top$ from its lower Cholesky factor: $h^{-1} = Y^\top Y$ with $Y = l^{-1}$.

    Two stated steps: $Y = l^{-1}$ by forward substitution on the identity (`triangular_solve(l, I)`: each entry
    one exact inner product and one IEEE division), then every entry of $Y^\top Y$ one exact inner product of two
    columns of $Y$ (`exact_gram(Y)`), rounded once:

    $$ (h^{-1})_{ij} = \operatorname{fl}_{64}\Big(\sum_k Y_{ki} Y_{kj}\Big) $$

    The result is exactly symmetric, so it can be factored again (GPTQ takes the Cholesky factor of $h^{-1}$).

    **Arguments:**

    - `l`: a float64 array of shape `(n, n)`, `n >= 1`, finite, with a nonzero diagonal; only its lower triangle
      is read.

    **Returns:**

    float64 `(n, n)`, symmetric.

    !!! note
        An entry of $Y$ that overflows float64 raises `ValueError` naming it; an entry of $Y^\top Y$ beyond
        float64's range is `+-inf`, as in `exact_dot`. Example: `l = [[2, 0], [1, 2]]` gives $Y = [[0.5, 0],
        [-0.25, 0.5]]$ and the inverse `[[0.3125, -0.125], [-0.125, 0.25]]` of `[[4, 2], [2, 5]]`:

            >>> cholesky_inverse(np.float64([[2, 0], [1, 2]]))
            array([[ 0.3125, -0.125 ],
                   [-0.125 ,  0.25  ]])
    """
    l = _square("l", l)
    _nonzero_diagonal("l", l)
    y = _solve(l, np.eye(l.shape[0]), True, False, "l^-1")
    return exact_gram(y)


# ---- helpers ------------------------------------------------------------------------------------------------------


def _solve(l, b, lower, transpose, name):
    """The substitution of `triangular_solve` on checked inputs; `name` labels an overflowing entry."""
    n = l.shape[0]
    a = l.T if transpose else l
    forward = lower != transpose  # op(l) is lower triangular
    b2 = b.reshape(n, -1)
    x = np.zeros(b2.shape, dtype=np.float64)
    for i in range(n) if forward else range(n - 1, -1, -1):
        before = slice(0, i) if forward else slice(i + 1, n)
        s = dot_rows(b2[i], -x[before].T, a[i, before])  # fl(b_ic - sum_k a_ik x_kc) for every column c
        for c in range(b2.shape[1]):
            x[i, c] = _finite(name, i, c, float(s[c]) / float(a[i, i]))
    return x.reshape(b.shape)


def _sqrt_rn(d: float) -> float:
    """The float64 nearest to the square root of a float64 `d > 0` (no ties exist), from `math.isqrt`.

    `d = n / 2**k` exactly; with `k` even and `N = n * 4**t` of at least 110 bits, `r = isqrt(N)` has at least 55
    bits and `sqrt(d) = sqrt(N) / 2**(k/2 + t)` with `sqrt(N)` in `[r, r + 1)`. Rounding `r + 1/2` when
    `r * r < N` (a sticky bit below the last bit of `r`) or `r` itself gives the correctly rounded result.
    """
    if math.isinf(d):
        return d
    n, den = d.as_integer_ratio()
    k = den.bit_length() - 1
    if k % 2:
        n, k = n << 1, k + 1
    t = max(0, (111 - n.bit_length()) // 2)
    big = n << (2 * t)
    r = math.isqrt(big)
    return round_units(2 * r + (r * r != big), -(k // 2 + t) - 1)


def _finite(name, i, j, value: float) -> float:
    if not math.isfinite(value):
        raise validate.overflows(name, i, j, value)
    return value


def _square(name, m) -> np.ndarray:
    m = _arrays.finite_array(name, m, _F64)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] == 0:
        raise validate.not_square(name, m.shape)
    return m


def _symmetric(name, m) -> np.ndarray:
    m = _square(name, m)
    bad = m != m.T
    if bad.any():
        i, j = divmod(int(np.flatnonzero(bad)[0]), m.shape[0])
        raise validate.not_symmetric(name, i, j, float(m[i, j]), float(m[j, i]))
    return m


def _nonzero_diagonal(name, m) -> None:
    d = np.diagonal(m)
    if (d == 0).any():
        i = int(np.flatnonzero(d == 0)[0])
        raise validate.zero_diagonal(name, i, float(d[i]))


def _solve_args(l, b, lower, transpose):
    l = _square("l", l)
    b = _arrays.finite_array("b", b, _F64)
    validate.boolean("lower", lower)
    validate.boolean("transpose", transpose)
    if b.ndim not in (1, 2) or b.shape[0] != l.shape[0]:
        expected = (l.shape[0],) if b.ndim != 2 else (l.shape[0], b.shape[1])
        raise validate.shape_mismatch("b", b.shape, expected, f"l of shape {l.shape}")
    _nonzero_diagonal("l", l)
    return l, b
