"""Registry entries for `reference.core.linalg` and its torch twin: cholesky, triangular_solve, cholesky_inverse."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from spec import strategies as S
from spec.catalog.common import array64 as _a
from spec.catalog.common import check_bits as _check_bits
from spec.catalog.common import fl as _fl
from spec.catalog.common import fraction_dot as _dot
from spec.entry import Bad, Case, Entry, Golden, Invariant

HIGHAM = "Higham, 2002. Accuracy and Stability of Numerical Algorithms, 2nd ed. SIAM. doi:10.1137/1.9780898718027"


def _half_gaps(y: float):
    """Half the distances from float64 `y > 0` to its two neighbours."""
    return (Fraction(y) - Fraction(float(np.nextafter(y, 0)))) / 2, (
        Fraction(float(np.nextafter(y, np.inf))) - Fraction(y)
    ) / 2


def _is_sqrt_rn(y: float, p: float) -> bool:
    """Whether float64 `y` is the correctly rounded square root of float64 `p > 0` (exact comparisons)."""
    down, up = _half_gaps(y)
    return (Fraction(y) - down) ** 2 < Fraction(p) < (Fraction(y) + up) ** 2


def _cholesky_is_its_definition(call, case, out):
    h = case.args[0]
    n = h.shape[0]
    assert np.array_equal(np.triu(out, 1).view(np.uint64), np.zeros((n, n), np.uint64)), "+0.0 above the diagonal"
    for j in range(n):
        row_j = [Fraction(float(v)) for v in out[j, :j]]
        pivot = _fl(Fraction(float(h[j, j])) - sum((v * v for v in row_j), Fraction(0)))
        assert pivot > 0 and _is_sqrt_rn(float(out[j, j]), pivot), f"L[{j}, {j}] is not sqrt_rn of pivot {pivot!r}"
        for i in range(j + 1, n):
            s = Fraction(float(h[i, j])) - _dot(out[i, :j], out[j, :j])
            want = _fl(s) / float(out[j, j])
            _check_bits(out[i, j], want, f"L[{i}, {j}]")


def _solve_is_its_definition(call, case, out):
    l, b = case.args
    lower, transpose = case.kwargs["lower"], case.kwargs["transpose"]
    a = l.T if transpose else l
    n = a.shape[0]
    x, b2 = out.reshape(n, -1), b.reshape(n, -1)
    forward = lower != transpose
    for i in range(n):
        before = range(i) if forward else range(i + 1, n)
        for c in range(b2.shape[1]):
            s = Fraction(float(b2[i, c])) - sum((Fraction(float(a[i, k])) * Fraction(float(x[k, c])) for k in before),
                                                Fraction(0))  # fmt: skip
            _check_bits(x[i, c], _fl(s) / float(a[i, i]), f"x[{i}, {c}]")


def _inverse_is_its_definition(call, case, out):
    l = case.args[0]
    n = l.shape[0]
    y = np.zeros((n, n))
    for i in range(n):  # Y = l^-1: forward substitution on the identity
        for c in range(n):
            s = Fraction(int(i == c)) - sum((Fraction(float(l[i, k])) * Fraction(float(y[k, c])) for k in range(i)),
                                            Fraction(0))  # fmt: skip
            y[i, c] = _fl(s) / float(l[i, i])
    want = [[_fl(_dot(y[:, i], y[:, j])) for j in range(n)] for i in range(n)]
    _check_bits(out, want, "Y^T Y")
    _check_bits(out.T, out, "cholesky_inverse transposed")


ENTRIES = [
    Entry(
        name="cholesky",
        family="core",
        module="core.linalg",
        summary="The lower Cholesky factor, each entry one exact inner product and one correctly rounded sqrt or "
        "division: the same factor, or the same error, everywhere.",
        strategy=S.spd_cases,
        semantics=(
            "Column by column: L[j, j] = sqrt_rn(fl(h[j, j] - sum_{k<j} L[j, k]**2)) and L[i, j] = "
            "fl(h[i, j] - sum_{k<j} L[i, k] L[j, k]) / L[j, j] (IEEE division), every sum exact and fl rounding once.",
            "sqrt_rn is the correctly rounded square root (torch's CPU float64 sqrt is not: it is settled exactly).",
            "A pivot fl(...) <= 0 raises ValueError naming the column and the pivot; an entry that overflows "
            "float64 raises ValueError naming it. h must be float64, square, non-empty, finite and exactly symmetric.",
            "+0.0 above the diagonal.",
        ),
        invariants=(Invariant("each entry is its definition, in exact arithmetic", _cholesky_is_its_definition),),
        golden=(
            Golden(Case((_a([[4, 2], [2, 5]]),)), _a([[2, 0], [1, 2]]), "sqrt(4), 2/2, sqrt(5 - 1)"),
            Golden(Case((_a([[9.0]]),)), _a([[3.0]]), "1x1"),
            Golden(Case((_a([[2.0]]),)), _a([[1.4142135623730951]]), "sqrt(2) correctly rounded"),
            Golden(Case((np.diag(_a([4, 9, 16])),)), np.diag(_a([2, 3, 4])), "diagonal"),
        ),
        bad=(
            Bad(Case((_a([[1, 2], [2, 1]]),)), ValueError, "h is not positive definite: the pivot of column 1 is -3.0"),
            Bad(Case((_a([[1, 1], [1, 1]]),)), ValueError, "the pivot of column 1 is 0.0"),
            Bad(Case((_a([[1, 2], [3, 4]]),)), ValueError, "h must be symmetric, got h[0, 1] = 2.0 but h[1, 0] = 3.0"),
            Bad(Case((_a([[1, 2]]),)), ValueError, "h must be a non-empty square matrix, got shape (1, 2)"),
            Bad(Case((np.zeros((0, 0)),)), ValueError, "h must be a non-empty square matrix, got shape (0, 0)"),
            Bad(Case((_a([[4.0]], np.float32),)), TypeError, "h must have dtype float64, got float32"),
            Bad(Case((_a([[4.0, np.nan], [np.nan, 4.0]]),)), ValueError, "h must be finite, got nan at flat index 1"),
            Bad(Case((_a([[1e-300, 1e200], [1e200, 1.0]]),)), ValueError, "L[1, 0] overflows float64 (it is inf)"),
        ),
        paper=HIGHAM,
    ),
    Entry(
        name="triangular_solve",
        family="core",
        module="core.linalg",
        summary="Solve a triangular system by substitution, each entry one exact inner product and one IEEE division.",
        strategy=S.triangular_solve_cases,
        semantics=(
            "op(l) = l, or l^T with transpose=True; lower-triangular op(l) is solved forward, upper backward.",
            "x[i, c] = fl(b[i, c] - sum over solved k of op(l)[i, k] x[k, c]) / op(l)[i, i], every sum exact.",
            "Only the triangle named by lower is read. A zero on the diagonal, or an entry of x that overflows "
            "float64, raises ValueError.",
        ),
        invariants=(Invariant("each entry is its definition, in exact arithmetic", _solve_is_its_definition),),
        golden=(
            Golden(Case((_a([[2, 0], [1, 4]]), _a([2, 9]))), _a([1, 2]), "x0 = 2/2, x1 = (9 - 1)/4"),
            Golden(Case((_a([[2, 0], [1, 4]]), _a([4, 8])), {"transpose": True}), _a([1, 2]), "l^T x = b"),
            Golden(Case((_a([[2, 1], [0, 4]]), _a([4, 8])), {"lower": False}), _a([1, 2]), "upper: backward"),
            Golden(Case((_a([[2, 7], [1, 4]]), _a([[2], [9]]))), _a([[1], [2]]), "the 7 above is not read"),
            Golden(Case((_a([[-2.0]]), _a([0.0]))), _a([-0.0]), "0 / -2 is -0.0, as IEEE"),
        ),
        bad=(
            Bad(Case((_a([[2, 0], [1, 0]]), _a([1, 1]))), ValueError, "l must have a nonzero diagonal, got l[1, 1]"),
            Bad(Case((_a([[2, 0], [1, 4]]), _a([1, 1, 1]))), ValueError, "b has shape (3,) but l of shape (2, 2)"),
            Bad(Case((_a([[2, 0], [1, 4]]), _a([1, 1])), {"lower": 1}), TypeError, "lower must be a bool, got int 1"),
            Bad(Case((_a([[1e-300]]), _a([1e10]))), ValueError, "x[0, 0] overflows float64 (it is inf)"),
        ),
        paper=HIGHAM,
    ),
    Entry(
        name="cholesky_inverse",
        family="core",
        module="core.linalg",
        summary="The inverse of l l^T from its Cholesky factor: Y = l^-1 by substitution, then exact Y^T Y; exactly "
        "symmetric.",
        strategy=S.cholesky_inverse_cases,
        semantics=(
            "Y = triangular_solve(l, I): each entry one exact inner product and one IEEE division; then each entry "
            "of Y^T Y one exact inner product of two columns of Y, rounded once (exact_gram(Y)).",
            "Only the lower triangle of l is read; its diagonal must be nonzero. An entry of Y that overflows "
            "raises ValueError; an entry of Y^T Y beyond float64's range is +-inf, as in exact_dot.",
        ),
        invariants=(Invariant("Y by substitution, then the exact Gram matrix; symmetric", _inverse_is_its_definition),),
        golden=(
            Golden(
                Case((_a([[2, 0], [1, 2]]),)),
                _a([[0.3125, -0.125], [-0.125, 0.25]]),
                "Y = [[0.5, 0], [-0.25, 0.5]]: the inverse of [[4, 2], [2, 5]]",
            ),
            Golden(Case((_a([[0.5]]),)), _a([[4.0]]), "1x1: (1 / 0.5)**2"),
        ),
        bad=(
            Bad(Case((_a([[2, 0], [1, 0]]),)), ValueError, "l must have a nonzero diagonal, got l[1, 1] = 0.0"),
            Bad(Case((_a([[1e-310]]),)), ValueError, "l^-1[0, 0] overflows float64 (it is inf)"),
        ),
        paper=HIGHAM,
    ),
]
