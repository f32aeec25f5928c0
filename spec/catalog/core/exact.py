"""Registry entries for `reference.core.exact` and its torch twin: exact_sum, exact_sum_state, exact_sum_combine,
exact_sum_round, exact_dot, exact_matmul, exact_gram.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from spec import strategies as S
from spec.catalog.common import array64 as _a
from spec.catalog.common import check_bits as _check_bits
from spec.catalog.common import fl as _fl
from spec.catalog.common import fraction_dot as _dot
from spec.entry import Bad, Case, Entry, Golden, Invariant

NEAL = "Neal, 2015. Fast exact summation using small and large superaccumulators. arXiv:1505.05571"
DEMMEL = "Demmel and Hida, 2003. Accurate and Efficient Floating Point Summation. SIAM J. Sci. Comput. 25(4)."
OGITA = "Ogita, Rump and Oishi, 2005. Accurate Sum and Dot Product. SIAM J. Sci. Comput. 26(6)."
OZAKI = (
    "Ozaki, Ogita, Oishi and Rump, 2012. Error-free transformations of matrix multiplication by using fast routines "
    "of matrix multiplication and its applications. Numerical Algorithms 59(1)."
)


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
            Golden(
                Case((_a([[1.0, 0.5], [-1.0, 0.5]]),), {"axis": 0}),
                np.stack([_state(), ONE]),
                "one state per column: 1 + (-1) is the zero state, 0.5 + 0.5 is the state of 1",
            ),
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
            Golden(
                Case((_state((33, 2**18), (31, 2**29)),)),
                np.array(1.0),
                "1 + 2**-53 (limb 31 = 2**29 is 2**-53): a tie between 1 and 1 + 2**-52, to even: 1",
            ),
            Golden(
                Case((_state((33, 2**18), (31, 3 * 2**29)),)),
                np.array(1 + 2**-51),
                "1 + 3 * 2**-53: a tie between 1 + 2**-52 and 1 + 2**-51 (even): up",
            ),
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
            Golden(
                Case((_a([[1.0, 2.0**-53]]), _a([[1.0], [1.0]]))),
                _a([[1.0]]),
                "1 + 2**-53 is a tie between 1 and 1 + 2**-52: to even, 1",
            ),
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
            Golden(
                Case((_a([[1.0, 1.0], [2.0**-26, 2.0**-27]]),)),
                _a([[1 + 2**-52, 1.0], [1.0, 1.0]]),
                "1 + 2**-52 is exact; the off-diagonal 1 + 2**-53 is a tie (to even: 1); 1 + 2**-54 rounds down",
            ),
        ),
        bad=(Bad(Case((_a([1, 2]),)), ValueError, "x must have at least 2 dimensions"),),
        paper=OZAKI,
    ),
]
