"""Registry entries for the exact sums and the exact linear algebra: every sum is the exact sum, rounded once."""

from __future__ import annotations

import math
import struct
from fractions import Fraction

import numpy as np

from spec import strategies as S
from spec.entry import Bad, Case, Entry, Golden, Invariant

NEAL = "Neal, 2015. Fast exact summation using small and large superaccumulators. arXiv:1505.05571"
DEMMEL = "Demmel and Hida, 2003. Accurate and Efficient Floating Point Summation. SIAM J. Sci. Comput. 25(4)."
OGITA = "Ogita, Rump and Oishi, 2005. Accurate Sum and Dot Product. SIAM J. Sci. Comput. 26(6)."
OZAKI = (
    "Ozaki, Ogita, Oishi and Rump, 2012. Error-free transformations of matrix multiplication by using fast routines "
    "of matrix multiplication and its applications. Numerical Algorithms 59(1)."
)
HIGHAM = "Higham, 2002. Accuracy and Stability of Numerical Algorithms, 2nd ed. SIAM. doi:10.1137/1.9780898718027"

ROUNDED_ONCE = (
    "The exact real value, rounded once to float64: to nearest, ties to even (a pinned fact, not an error bound).",
    "An exact zero is `+0.0`; a sum beyond float64's range is `+-inf`: magnitudes from `2**1024 - 2**970` (a tie "
    "between the largest float64 and `2**1024`, which is even) round to infinity. It is not an error.",
)
STATE = (
    "The state: 68 int64 limbs, limb `k` weighing `2**(32 k - 1074)`; canonical when limbs 0 to 66 are in "
    "`[0, 2**32)` and the top limb in `[-2**31, 2**31)` (two's complement style, unique for each value).",
    "States add limb by limb (any order, any number of shards, `all_reduce(SUM)`): up to `2**31` canonical states "
    "fit int64, and `exact_sum_round` rounds any int64 limbs exactly.",
)


def _a(values, dtype=np.float64):
    return np.array(values, dtype=dtype)


def _state(*limbs_at):
    """A state with the given `(limb, value)` pairs, zeros elsewhere."""
    s = np.zeros(68, dtype=np.int64)
    for k, v in limbs_at:
        s[k] = v
    return s


ONE = _state((33, 2**18))  # 1.0 = 2**18 * 2**(32 * 33 - 1074)
MINUS_ONE = np.array([0] * 33 + [2**32 - 2**18] + [2**32 - 1] * 33 + [-1], dtype=np.int64)
HALF = _state((33, 2**17))
ONE_AND_HALF = _state((33, 2**18 + 2**17))

# ---- exact arithmetic for the invariants: Fractions, independent of the implementations -------------------------

OVERFLOW = Fraction(2**1024 - 2**970)


def _fl(q: Fraction) -> float:
    """IEEE rounding of an exact rational to float64, ties to even (CPython's int / int is correctly rounded)."""
    if q == 0:
        return 0.0
    if abs(q) >= OVERFLOW:
        return math.inf if q > 0 else -math.inf
    return float(q)


def _check_bits(got, want, where):
    got, want = np.asarray(got, dtype=np.float64).reshape(-1), np.asarray(want, dtype=np.float64).reshape(-1)
    assert got.shape == want.shape, f"{where}: shape {got.shape} vs {want.shape}"
    for i, (g, w) in enumerate(zip(got.tolist(), want.tolist(), strict=True)):
        assert struct.pack("<d", g) == struct.pack("<d", w), f"{where}[{i}]: got {g!r}, exact rounding gives {w!r}"


def _lines(x, axis):
    """`x` as a 2-d array with one row per output of a reduction along `axis` (`None`: everything)."""
    if axis is None:
        return x.reshape(1, x.size)
    a = np.moveaxis(x, axis, -1)
    return a.reshape(math.prod(a.shape[:-1]), a.shape[-1])


def _rows(x, axis):
    return [[Fraction(float(v)) for v in row] for row in _lines(x, axis)]


def _value(state) -> list[Fraction]:
    return [sum(Fraction(int(v)) * Fraction(2) ** (32 * k - 1074) for k, v in enumerate(row))
            for row in np.asarray(state).reshape(-1, 68).tolist()]  # fmt: skip


def _dot(p, q) -> Fraction:
    return sum((Fraction(float(u)) * Fraction(float(v)) for u, v in zip(p, q, strict=True)), Fraction(0))


def _half_gaps(y: float):
    """Half the distances from float64 `y > 0` to its two neighbours."""
    return (Fraction(y) - Fraction(float(np.nextafter(y, 0)))) / 2, (
        Fraction(float(np.nextafter(y, np.inf))) - Fraction(y)
    ) / 2


def _is_sqrt_rn(y: float, p: float) -> bool:
    """Whether float64 `y` is the correctly rounded square root of float64 `p > 0` (exact comparisons)."""
    down, up = _half_gaps(y)
    return (Fraction(y) - down) ** 2 < Fraction(p) < (Fraction(y) + up) ** 2


# ---- invariants ---------------------------------------------------------------------------------------------------


def _sum_is_exact(call, case, out):
    x, axis = case.args[0], case.kwargs.get("axis")
    _check_bits(out, [_fl(sum(row, Fraction(0))) for row in _rows(x, axis)], "exact_sum")


def _sum_ignores_order(call, case, out):
    x, axis = case.args[0], case.kwargs.get("axis")
    flipped = np.ascontiguousarray(x.reshape(-1)[::-1].reshape(x.shape) if axis is None else np.flip(x, axis))
    _check_bits(call(Case((flipped,), case.kwargs)), out, "exact_sum of the reversed values")


def _state_is_canonical(call, case, out):
    x, axis = case.args[0], case.kwargs.get("axis")
    flat = out.reshape(-1, 68)
    assert out.dtype == np.int64 and ((flat[:, :67] >= 0) & (flat[:, :67] < 2**32)).all(), "low limbs in [0, 2**32)"
    assert ((flat[:, 67] >= -(2**31)) & (flat[:, 67] < 2**31)).all(), "top limb in [-2**31, 2**31)"
    assert _value(out) == [sum(row, Fraction(0)) for row in _rows(x, axis)], "the state's value is the exact sum"


def _states_of_halves_add_up(call, case, out):
    x, axis = case.args[0], case.kwargs.get("axis")
    if axis is None:
        flat = x.reshape(-1)
        halves = (flat[: flat.size // 2], flat[flat.size // 2 :])
        pieces = [call(Case((np.ascontiguousarray(h),), {"axis": None})) for h in halves]
    else:
        n = x.shape[axis]
        halves = (np.take(x, range(n // 2), axis), np.take(x, range(n // 2, n), axis))
        pieces = [call(Case((np.ascontiguousarray(h),), case.kwargs)) for h in halves]
    assert _value(pieces[0] + pieces[1]) == _value(out), "limb-wise sum of the halves' states != the whole's value"


def _combine_is_the_total(call, case, out):
    states = case.args[0]
    flat = out.reshape(-1, 68)
    assert ((flat[:, :67] >= 0) & (flat[:, :67] < 2**32)).all(), "canonical: low limbs in [0, 2**32)"
    totals = [sum(vs, Fraction(0)) for vs in zip(*(_value(s) for s in states), strict=True)]
    assert _value(out) == totals, "the combined state's value is the sum of the values"


def _combine_ignores_order(call, case, out):
    again = call(Case((list(reversed(case.args[0])),)))
    assert np.array_equal(again, out), "combining the states in reverse order changed the state"


def _round_is_exact(call, case, out):
    _check_bits(out, [_fl(v) for v in _value(case.args[0])], "exact_sum_round")


def _dot_is_exact(call, case, out):
    a, b = case.args
    axis = case.kwargs.get("axis", -1)
    pairs = zip(_lines(a, axis), _lines(b, axis), strict=True)
    _check_bits(out, [_fl(_dot(p, q)) for p, q in pairs], "exact_dot")


def _dot_is_symmetric(call, case, out):
    a, b = case.args
    _check_bits(call(Case((b, a), case.kwargs)), out, "exact_dot(b, a)")


def _matmul_is_exact(call, case, out):
    a, b = case.args
    want = np.empty(out.shape)
    for index in np.ndindex(out.shape):
        *batch, i, j = index
        want[index] = _fl(_dot(a[tuple(batch) + (i,)], b[tuple(batch) + (slice(None), j)]))
    _check_bits(out, want, "exact_matmul")


def _matmul_transposes(call, case, out):
    a, b = case.args
    swapped = call(Case((np.ascontiguousarray(np.swapaxes(b, -1, -2)), np.ascontiguousarray(np.swapaxes(a, -1, -2)))))
    _check_bits(np.swapaxes(swapped, -1, -2), out, "(B^T A^T)^T")


def _gram_is_exact_and_symmetric(call, case, out):
    x = case.args[0]
    want = np.empty(out.shape)
    for index in np.ndindex(out.shape):
        *batch, i, j = index
        col = x[tuple(batch)]
        want[index] = _fl(_dot(col[:, i], col[:, j]))
    _check_bits(out, want, "exact_gram")
    _check_bits(np.swapaxes(out, -1, -2), out, "exact_gram transposed")


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


# ---- entries ------------------------------------------------------------------------------------------------------

ENTRIES = [
    Entry(
        name="exact_sum",
        family="core",
        module="core.exact",
        summary="The exact sum of the values, rounded once to float64: the same for any order, blocking or sharding.",
        strategy=S.exact_sum_cases,
        semantics=ROUNDED_ONCE
        + (
            "A function of the multiset of values only: no order, tree, thread count, device or split changes a bit.",
            "float32 and float64 inputs; the result is float64. NaN and Inf inputs are rejected.",
        ),
        invariants=(
            Invariant("the exact sum of Fractions, rounded once", _sum_is_exact),
            Invariant("reversing the values changes no bit", _sum_ignores_order),
        ),
        golden=(
            Golden(Case((_a([1e308, -1e308, 1.0]),)), np.array(1.0), "cancellation: a float64 loop gives 1.0 or 0.0"),
            Golden(Case((_a([2.0**53, 1, -(2.0**53)]),)), np.array(1.0), "2**53 + 1 is not a float64; the sum is"),
            Golden(Case((_a([1.0, 2.0**-53]),)), np.array(1.0), "a tie between 1 and 1 + 2**-52: to even"),
            Golden(
                Case((_a([1.0, 2.0**-53, 2.0**-1074]),)),
                np.array(1.0000000000000002),
                "just above the tie (by 2**-1074): rounds up; any float64 loop gives 1.0",
            ),
            Golden(Case((_a([1e308, 1e308]),)), np.array(np.inf), "beyond the range: inf, not an error"),
            Golden(Case((_a([-1e308, -1e308]),)), np.array(-np.inf), "beyond the range, negative: -inf"),
            Golden(
                Case((_a([np.finfo(np.float64).max, 2.0**970]),)),
                np.array(np.inf),
                "max + 2**970 = 2**1024 - 2**970: the tie rounds to even, 2**1024: inf",
            ),
            Golden(
                Case((_a([np.finfo(np.float64).max, 2.0**969]),)),
                np.array(np.finfo(np.float64).max),
                "below the threshold: the largest float64",
            ),
            Golden(Case((_a([-0.0, -0.0]),)), np.array(0.0), "a zero sum is +0.0"),
            Golden(Case((_a([]),)), np.array(0.0), "the empty sum is +0.0"),
            Golden(Case((_a([2.0**-1074, 2.0**-1074]),)), np.array(1e-323), "subnormals add exactly"),
            Golden(Case((_a([1, 2, 3], np.float32),)), np.array(6.0), "float32 in, float64 out"),
            Golden(Case((_a([[1, 2], [3, 4]], np.float32),), {"axis": 0}), _a([4, 6]), "per column"),
        ),
        bad=(
            Bad(Case((_a([1, np.nan]),)), ValueError, "x must be finite, got nan at flat index 1"),
            Bad(Case((_a([1, np.inf], np.float32),)), ValueError, "x must be finite, got inf at flat index 1"),
            Bad(Case((_a([1, 2], np.int32),)), TypeError, "x must have dtype float32 or float64, got int32"),
            Bad(Case((_a([1, 2]),), {"axis": 1}), ValueError, "axis 1 is out of range"),
            Bad(Case(([1.0, 2.0],)), TypeError, "x must be an array"),
        ),
        paper=NEAL,
    ),
    Entry(
        name="exact_sum_state",
        family="core",
        module="core.exact",
        summary="The exact sum as a fixed-point integer in 68 limbs: states of the pieces of a tensor add up exactly.",
        strategy=S.exact_sum_cases,
        semantics=STATE
        + (
            "`exact_sum_round(exact_sum_state(x, axis))` is `exact_sum(x, axis)`, bit for bit.",
            "The state is a function of the exact sum only, the same on every backend and device.",
        ),
        invariants=(
            Invariant("canonical limbs whose value is the exact sum", _state_is_canonical),
            Invariant("the states of two halves add up to the whole", _states_of_halves_add_up),
        ),
        golden=(
            Golden(Case((_a([1.0]),)), ONE, "1 = 2**18 * 2**(32 * 33 - 1074): limb 33"),
            Golden(Case((_a([-1.0]),)), MINUS_ONE, "-1 in two's complement limbs: the top limb is -1"),
            Golden(Case((_a([0.5, 1.0, -1.0], np.float32),)), HALF, "float32 in: the same state as for float64"),
            Golden(Case((_a([2.0**-1074, 2.0**-1074]),)), _state((0, 2)), "limb 0 counts units of 2**-1074"),
            Golden(Case((_a([]),)), _state(), "the empty sum: all limbs zero"),
        ),
        bad=(
            Bad(Case((_a([np.inf]),)), ValueError, "x must be finite, got inf at flat index 0"),
            Bad(Case((_a([1.0], np.float16),)), TypeError, "x must have dtype float32 or float64, got float16"),
        ),
        paper=NEAL,
    ),
    Entry(
        name="exact_sum_combine",
        family="core",
        module="core.exact",
        summary="Add states of exact_sum_state exactly and return the canonical state of the total.",
        strategy=S.exact_combine_cases,
        semantics=STATE
        + (
            "Each state must be canonical; a total beyond the state's range (|value| >= 2**1101, far past any sum "
            "of float64 values) raises ValueError.",
            "Any order or grouping of the states gives the same state.",
        ),
        invariants=(
            Invariant("canonical, with the value of the total", _combine_is_the_total),
            Invariant("the order of the states changes no bit", _combine_ignores_order),
        ),
        golden=(
            Golden(Case(([ONE_AND_HALF, MINUS_ONE],)), HALF, "1.5 + (-1) = 0.5: the borrow runs through the limbs"),
            Golden(Case(([ONE],)), ONE, "one state: itself"),
            Golden(Case(([ONE, MINUS_ONE],)), _state(), "1 + (-1): the zero state"),
        ),
        bad=(
            Bad(Case(([],)), ValueError, "states must hold at least one state, got an empty list"),
            Bad(Case((ONE,)), TypeError, "states must be a list of states, got a single array"),
            Bad(Case(([ONE, _state((3, -1))],)), ValueError, "states[1] is not a canonical state: limb 3 is -1"),
            Bad(Case(([ONE, ONE[:67]],)), ValueError, "states[1] must have shape (..., 68)"),
            Bad(Case(([ONE, np.stack([ONE, ONE])],)), ValueError, "states[1] has shape (2, 68)"),
            Bad(Case(([ONE, ONE.astype(np.int32)],)), TypeError, "states[1] must have dtype int64, got int32"),
            Bad(
                Case(([_state((67, 2**31 - 1)), _state((67, 2**31 - 1))],)),
                ValueError,
                "the combined exact sum at flat index 0 is beyond the state's range",
            ),
        ),
        paper=NEAL,
    ),
    Entry(
        name="exact_sum_round",
        family="core",
        module="core.exact",
        summary="The float64 nearest to the value of a state (ties to even): exact_sum from its state.",
        strategy=S.exact_round_cases,
        semantics=STATE + ROUNDED_ONCE[1:],
        invariants=(Invariant("the state's exact value, rounded once", _round_is_exact),),
        golden=(
            Golden(Case((ONE,)), np.array(1.0), "limb 33 = 2**18"),
            Golden(Case((MINUS_ONE,)), np.array(-1.0), "two's complement limbs"),
            Golden(Case((ONE + MINUS_ONE,)), np.array(0.0), "a limb-wise sum, not canonical: its value is 0"),
            Golden(Case((_state((0, 1)),)), np.array(5e-324), "limb 0 = 1: 2**-1074"),
            Golden(Case((_state((67, 1)),)), np.array(np.inf), "2**1070 is beyond float64: inf"),
            Golden(Case((np.stack([ONE, HALF]),)), _a([1.0, 0.5]), "a state per output"),
        ),
        bad=(
            Bad(
                Case((ONE[:60],)), ValueError, "state must have shape (..., 68), a state of exact_sum_state; got (60,)"
            ),
            Bad(Case((ONE.astype(np.float64),)), TypeError, "state must have dtype int64, got float64"),
        ),
        paper=NEAL,
    ),
    Entry(
        name="exact_dot",
        family="core",
        module="core.exact",
        summary="The exact dot product along one axis, rounded once to float64.",
        strategy=S.exact_dot_cases,
        semantics=ROUNDED_ONCE
        + (
            "Every product is exact too: float32 products fit float64; float64 significands are split into "
            "integer halves (Dekker/Veltkamp in integers), no fused multiply-add.",
            "A nonzero value keeps its sign when it rounds to zero: -0.0 for a value in (-2**-1075, 0), as IEEE.",
            "a and b must have one dtype and one shape.",
        ),
        invariants=(
            Invariant("the exact dot product of Fractions, rounded once", _dot_is_exact),
            Invariant("exact_dot(a, b) == exact_dot(b, a) bit for bit", _dot_is_symmetric),
        ),
        golden=(
            Golden(Case((_a([3, 4], np.float32), _a([3, 4], np.float32))), np.array(25.0), "3*3 + 4*4"),
            Golden(
                Case((_a([1e200, -1e200, 1.0]), _a([1e200, 1e200, 1.0]))),
                np.array(1.0),
                "the products 1e400 are beyond float64; their exact sum is not",
            ),
            Golden(Case((_a([2.0**-1074]), _a([0.75]))), np.array(5e-324), "0.75 * 2**-1074 rounds to 2**-1074"),
            Golden(Case((_a([2.0**-1074]), _a([0.5]))), np.array(0.0), "a tie between 0 and 2**-1074: to even"),
            Golden(Case((_a([-(2.0**-1074)]), _a([0.5]))), np.array(-0.0), "a negative value rounding to zero: -0.0"),
            Golden(Case((_a([1e308, 1e308]), _a([2.0, 2.0]))), np.array(np.inf), "beyond the range: inf"),
            Golden(Case((_a([[1, 2], [3, 4]]), _a([[1, 1], [1, 1]])), {"axis": 0}), _a([4, 6]), "along axis 0"),
            Golden(Case((_a([]), _a([]))), np.array(0.0), "empty: +0.0"),
        ),
        bad=(
            Bad(Case((_a([1, 2]), _a([1, 2, 3]))), ValueError, "b has shape (3,) but a dot product with a needs"),
            Bad(Case((_a([1, 2]), _a([1, 2], np.float32))), TypeError, "b must have dtype float64, got float32"),
            Bad(Case((_a([1, np.nan]), _a([1, 2]))), ValueError, "a must be finite, got nan at flat index 1"),
            Bad(Case((_a(1.0), _a(1.0))), ValueError, "axis -1 is out of range for an array with 0 dimension(s)"),
        ),
        paper=OGITA,
    ),
    Entry(
        name="exact_matmul",
        family="core",
        module="core.exact",
        summary="The matrix product with every entry an exact dot product, rounded once: no BLAS or device changes it.",
        strategy=S.exact_matmul_cases,
        semantics=ROUNDED_ONCE
        + (
            "C[..., i, j] = exact_dot(a[..., i, :], b[..., :, j]); batch dimensions must be equal (no broadcasting).",
            "The torch backend multiplies integer slices (Ozaki's scheme) with float64 matmuls whose every partial "
            "sum is an integer below 2**53, hence exact in any summation order, then rounds each entry once.",
        ),
        invariants=(
            Invariant("every entry the exact dot product of its row and column, rounded once", _matmul_is_exact),
            Invariant("(B^T A^T)^T == A B bit for bit", _matmul_transposes),
        ),
        golden=(
            Golden(Case((_a([[1, 2], [3, 4]]), _a([[5, 6], [7, 8]]))), _a([[19, 22], [43, 50]]), "by hand"),
            Golden(
                Case((_a([[1e308, 1e308, -1e308]], np.float64), _a([[2.0], [-1.0], [1.0]]))),
                _a([[0.0]]),
                "2e308 - 1e308 - 1e308 = 0 exactly, though 2e308 is not a float64",
            ),
            Golden(Case((_a([[1, 2]], np.float32), _a([[3], [4]], np.float32))), _a([[11.0]]), "float32 in"),
            Golden(Case((np.zeros((2, 0)), np.zeros((0, 3)))), np.zeros((2, 3)), "k = 0: +0.0 everywhere"),
        ),
        bad=(
            Bad(Case((_a([1, 2]), _a([[1], [2]]))), ValueError, "a must have at least 2 dimensions"),
            Bad(Case((_a([[1, 2]]), _a([[1, 2]]))), ValueError, "b has shape (1, 2) but a of shape (1, 2) needs"),
            Bad(Case((np.ones((2, 1, 2)), np.ones((3, 2, 1)))), ValueError, "b has shape (3, 2, 1)"),
        ),
        paper=OZAKI,
    ),
    Entry(
        name="exact_gram",
        family="core",
        module="core.exact",
        summary="The Gram matrix X^T X, every entry an exact dot product of two columns rounded once: exactly "
        "symmetric.",
        strategy=S.exact_gram_cases,
        semantics=ROUNDED_ONCE
        + ("The calibration Hessian of GPTQ-style methods; equal bit for bit to exact_matmul(x.T, x).",),
        invariants=(Invariant("exact, rounded once, exactly symmetric", _gram_is_exact_and_symmetric),),
        golden=(
            Golden(Case((_a([[1, 2], [3, 4]]),)), _a([[10, 14], [14, 20]]), "1+9, 2+12, 4+16"),
            Golden(Case((np.zeros((0, 2)),)), np.zeros((2, 2)), "no rows: zeros"),
        ),
        bad=(Bad(Case((_a([1, 2]),)), ValueError, "x must have at least 2 dimensions"),),
        paper=OZAKI,
    ),
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
