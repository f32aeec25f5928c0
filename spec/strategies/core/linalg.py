"""Strategies of valid inputs for the entries of `reference.core.linalg`: `spd_cases`, `triangular_solve_cases`,
`cholesky_inverse_cases`.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from spec.entry import Case

__all__ = ["spd_cases", "triangular_solve_cases", "cholesky_inverse_cases"]


def _scales():
    """Powers of two that scale a matrix exactly, far from 1 in both directions."""
    return st.one_of(st.just(1.0), st.integers(-400, 400).map(lambda e: 2.0**e))


@st.composite
def spd_cases(draw):
    """`(h,)`: symmetric positive-definite float64 matrices that factor: strictly diagonally dominant (any signs
    off the diagonal, a diagonal from just above the row sum), or a Gram matrix `X^T X` plus a dominant diagonal;
    diagonal and 1x1 matrices; all at scales from 2**-400 to 2**400. Exactly symmetric (the lower triangle is
    mirrored)."""
    n = draw(st.integers(1, 6))
    kind = draw(st.sampled_from(["dominant", "gram", "diagonal"]))
    entries = st.one_of(st.floats(-4, 4), st.sampled_from([0.0, -0.0, 1.0, 0.1, 1 / 3]))
    if kind == "gram":
        x = draw(hnp.arrays(np.float64, (draw(st.integers(1, 6)), n), elements=entries))
        h = x.T @ x
    elif kind == "dominant":
        h = draw(hnp.arrays(np.float64, (n, n), elements=entries))
    else:
        h = np.zeros((n, n))
    h = np.tril(h) + np.tril(h, -1).T
    off = np.abs(h - np.diag(np.diag(h))).sum(axis=1)
    extra = draw(hnp.arrays(np.float64, (n,), elements=st.one_of(st.floats(1e-3, 10), st.sampled_from([1.0, 0.5]))))
    np.fill_diagonal(h, 2 * off + extra + (np.abs(np.diag(h)) if kind == "gram" else 0))
    return Case((h * draw(_scales()),))


def _unit_triangular(draw, n):
    """A float64 `(n, n)` matrix whose diagonal is in [1, 4] in magnitude (either sign) and off-diagonal entries in
    [-1, 1]: substitution cannot overflow for small `n`."""
    m = draw(hnp.arrays(np.float64, (n, n), elements=st.one_of(st.floats(-1, 1), st.sampled_from([0.0, -0.0, 0.5]))))
    d = draw(hnp.arrays(np.float64, (n,), elements=st.one_of(st.floats(1, 4), st.floats(-4, -1),
                                                             st.sampled_from([1.0, -1.0, 3.0]))))  # fmt: skip
    np.fill_diagonal(m, d)
    return m


@st.composite
def triangular_solve_cases(draw):
    """`(l, b)` with `lower` and `transpose`: both triangles of `l` hold values (only one is read), `b` is `(n,)`
    or `(n, m)`; `l` and `b` scaled independently by powers of two."""
    n = draw(st.integers(1, 6))
    l = _unit_triangular(draw, n) * draw(_scales())
    bshape = (n,) if draw(st.booleans()) else (n, draw(st.integers(1, 3)))
    b = draw(hnp.arrays(np.float64, bshape, elements=st.one_of(st.floats(-1e3, 1e3), st.sampled_from([0.0, -0.0]))))
    return Case((l, b * draw(_scales())), {"lower": draw(st.booleans()), "transpose": draw(st.booleans())})


@st.composite
def cholesky_inverse_cases(draw):
    """`(l,)`: a lower-triangular factor with a nonzero diagonal (random, or the Cholesky factor of an SPD matrix);
    the upper triangle may hold anything finite, it is not read."""
    if draw(st.booleans()):
        from reference.core.linalg import cholesky

        return Case((cholesky(draw(spd_cases()).args[0]),))
    n = draw(st.integers(1, 6))
    return Case((_unit_triangular(draw, n) * draw(_scales()),))
