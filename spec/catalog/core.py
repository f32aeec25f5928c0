"""Registry entries for the exact primitives: canonical sums, rounding, the counter-based RNG, selection."""

from __future__ import annotations

import math

import numpy as np

from spec import strategies as S
from spec.entry import Bad, Case, Entry, Golden, Invariant

F = np.float32
THREEFRY = "Salmon et al., 2011. Parallel Random Numbers: As Easy as 1, 2, 3. SC'11. doi:10.1145/2063384.2063405"


def _a(values, dtype=np.float32):
    return np.array(values, dtype=dtype)


# ---- invariants ---------------------------------------------------------------------------------------------


def _tree_sum_error_bound(call, case, out):
    x, axis = case.args[0], case.kwargs.get("axis")
    a = x.astype(np.float64)
    if axis is None:
        a = a.reshape(-1, 1)
    else:
        a = np.moveaxis(a, axis, 0)
        a = a.reshape(a.shape[0], math.prod(a.shape[1:]))
    got = np.asarray(out).reshape(-1)
    for j in range(a.shape[1]):
        col = a[:, j]
        exact = math.fsum(col)
        levels = max(1, math.ceil(math.log2(max(len(col), 1))))
        bound = levels * 2.0**-53 * math.fsum(np.abs(col)) * 1.0000001
        assert abs(got[j] - exact) <= bound, f"column {j}: {got[j]} vs exact {exact}, bound {bound}"


def _norm_correctly_rounded(call, case, out):
    """Against exact rational arithmetic: the L2 norm is the float32 nearest to sqrt(tree_sum(x * x))."""
    from fractions import Fraction

    from reference.core.reduce import tree_sum

    x, axis, p = case.args[0], case.kwargs.get("axis"), case.kwargs["p"]
    a = x.astype(np.float64)
    if p == 1:
        assert np.array_equal(out, np.asarray(tree_sum(np.abs(a), axis)).astype(np.float32)), "L1 is one cast"
        return
    sums = np.asarray(tree_sum(a * a, axis)).reshape(-1)
    for s, y in zip(sums, np.asarray(out).reshape(-1), strict=True):
        target = Fraction(float(s))
        up, down = np.nextafter(y, np.float32(np.inf)), np.nextafter(y, np.float32(0))

        def value(v):
            return Fraction(2**128) if np.isinf(v) else Fraction(float(v))

        hi, lo = (value(y) + value(up)) / 2, (value(y) + value(down)) / 2
        assert y == 0 or lo * lo <= target, f"sqrt({s}) rounded up too far to {y}"
        assert np.isinf(y) or target <= hi * hi, f"sqrt({s}) rounded down too far to {y}"


def _integral(call, case, out):
    assert np.array_equal(out, np.trunc(out)), "rounded values must be integers"


def _nearest(call, case, out):
    assert np.all(np.abs(out.astype(np.float64) - case.args[0]) <= 0.5), "nearest rounding moved a value by > 1/2"


def _sign_kept(call, case, out):
    assert np.array_equal(np.signbit(out), np.signbit(case.args[0])), "nearest rounding must keep the sign"


def _floor_or_ceil(call, case, out):
    x = case.args[0]
    assert np.all((out == np.floor(x)) | (out == np.ceil(x))), "stochastic rounding must give floor or ceil"


def _words(call, case, out):
    for y in out:
        assert y.dtype == np.int64 and np.all((y >= 0) & (y < 2**32)), "threefry words must be uint32 values"


def _unit_interval(call, case, out):
    assert np.all((out >= 0) & (out < 1)), "uniform values must lie in [0, 1)"
    assert np.array_equal(out * F(2**24), np.trunc(out * F(2**24))), "uniform values must lie on the 2**-24 grid"


def _distinct_keys(call, case, out):
    assert len(set(out)) == len(out), "split keys must differ"


def _keeps_count_largest(call, case, out):
    scores, count = case.args
    assert out.sum() == count, f"kept {out.sum()}, asked {count}"
    kept, dropped = scores[out], scores[~out]
    if kept.size and dropped.size:
        assert kept.min() >= dropped.max(), "a kept score is below a dropped one"
        edge = kept.min()
        flat, mask = scores.reshape(-1), out.reshape(-1)
        tied = np.flatnonzero(flat == edge)
        assert np.all(np.diff(mask[tied].astype(int)) <= 0), "among ties, a higher index was kept over a lower one"


# ---- entries ------------------------------------------------------------------------------------------------

ENTRIES = [
    Entry(
        name="tree_sum",
        extra=(("kernels", "torch_backend.kernels.reduce:tree_sum"),),
        family="core",
        module="core.reduce",
        summary="Float64 sum over a fixed pairwise tree, identical on every backend and device.",
        strategy=S.reduce_cases,
        semantics=(
            "Zero-pad at the end to the next power of two, then `a = a[:h] + a[h:]` until one value is left.",
            "float32 inputs are widened to float64 first (exact); the result is float64.",
            "The empty sum is `+0.0`; padding is `+0.0`, so `[-0.0]` sums to `-0.0` but `[-0.0] * 3` to `+0.0`.",
            "NaN and Inf are rejected.",
        ),
        invariants=(Invariant("within log2(n) ulp-sums of the exact sum", _tree_sum_error_bound),),
        golden=(
            Golden(Case((_a([1, 2, 3]),)), np.array(6.0), "pad to [1, 2, 3, 0]; [4, 2]; 6"),
            Golden(Case((_a([1e8, 1, -1e8, 1]),)), np.array(2.0), "(1e8 - 1e8) + (1 + 1): no cancellation loss"),
            Golden(Case((_a([-0.0]),)), np.array(-0.0), "one element, no padding"),
            Golden(Case((_a([-0.0, -0.0, -0.0]),)), np.array(0.0), "the +0.0 pad wins"),
            Golden(Case((_a([[1, 2], [3, 4]]),), {"axis": 0}), np.array([4.0, 6.0]), "per column"),
        ),
        bad=(
            Bad(Case((_a([1, np.nan]),)), ValueError, "x must be finite, got nan at flat index 1"),
            Bad(Case((_a([1, 2], np.int32),)), TypeError, "x must have dtype float32 or float64, got int32"),
            Bad(Case((_a([1, 2]),), {"axis": 1}), ValueError, "axis 1 is out of range"),
            Bad(Case(([1.0, 2.0],)), TypeError, "x must be an array"),
        ),
        paper="Higham, 1993. The Accuracy of Floating Point Summation. SIAM J. Sci. Comput. 14(4).",
    ),
    Entry(
        name="tree_mean",
        family="core",
        module="core.reduce",
        summary="Float64 mean: the canonical tree sum divided by the count.",
        strategy=lambda: S.reduce_cases(mean=True),
        semantics=("`tree_sum(x, axis) / n` in float64, one rounding.", "An empty mean raises ValueError."),
        golden=(Golden(Case((_a([1, 2, 3, 4]),)), np.array(2.5), "10 / 4"),),
        bad=(Bad(Case((_a([]),)), ValueError, "x has no elements to average"),),
    ),
    Entry(
        name="lp_norm",
        family="core",
        module="core.reduce",
        summary="L1 and L2 norms: canonical float64 tree sum, then one exact rounding to float32.",
        strategy=lambda: S.reduce_cases(norm=True),
        semantics=(
            "L1 = float32(tree_sum(|x|)); L2 = the float32 nearest to sqrt(tree_sum(x * x)), ties to even.",
            "The square root is settled exactly (squared float32 midpoints are exact in float64): torch's CPU float64 "
            "sqrt is not correctly rounded, so no library sqrt is trusted to the last bit.",
        ),
        invariants=(Invariant("correctly rounded", _norm_correctly_rounded),),
        golden=(
            Golden(Case((_a([3, -4]),), {"p": 2}), np.array(5.0, np.float32), "sqrt(9 + 16)"),
            Golden(Case((_a([3, -4]),), {"p": 1}), np.array(7.0, np.float32), "3 + 4"),
            Golden(
                Case((_a([0.10153881, 5.5, 8.0]),), {"p": 2}),
                np.array(9.708775, np.float32),
                "torch's CPU float64 sqrt gives ...127 instead of ...129 here; the float32 result is exact",
            ),
            Golden(Case((_a([3e38, 3e38]),), {"p": 2}), np.array(np.inf, np.float32), "beyond float32: inf"),
        ),
        bad=(Bad(Case((_a([3, -4]),), {"p": 3}), ValueError, "p must be one of 1, 2; got 3"),),
    ),
    Entry(
        name="round_half_even",
        family="core",
        module="core.rounding",
        summary="Round to nearest, ties to even (IEEE roundTiesToEven).",
        strategy=S.rounding_cases,
        semantics=("Ties go to the even integer: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2.", "The sign of zero is kept."),
        invariants=(Invariant("integer", _integral), Invariant("within 1/2", _nearest), Invariant("sign", _sign_kept)),
        golden=(
            Golden(Case((_a([0.5, 1.5, 2.5, -2.5, -0.3, 0.49999997]),)), _a([0, 2, 2, -2, -0.0, 0]), "ties to even"),
        ),
        bad=(Bad(Case((_a([np.inf]),)), ValueError, "x must be finite, got inf at flat index 0"),),
    ),
    Entry(
        name="round_half_away",
        family="core",
        module="core.rounding",
        summary="Round to nearest, ties away from zero, exact for every float32.",
        strategy=S.rounding_cases,
        semantics=(
            "Ties go away from zero: 2.5 -> 3, -2.5 -> -3.",
            "0.49999997 -> 0 (floor(x + 0.5) would give 1); odd integers above 2**23 are unchanged.",
            "The sign of zero is kept: -0.3 -> -0.0.",
        ),
        invariants=(Invariant("integer", _integral), Invariant("within 1/2", _nearest), Invariant("sign", _sign_kept)),
        golden=(
            Golden(
                Case((_a([0.49999997, 2.5, -2.5, 8388609.0, -0.3, 0.5]),)),
                _a([0, 3, -3, 8388609.0, -0.0, 1]),
                "the pinned examples of the foundation issue",
            ),
        ),
        bad=(Bad(Case((_a([1.0], np.float64),)), TypeError, "x must have dtype float32, got float64"),),
    ),
    Entry(
        name="round_floor",
        family="core",
        module="core.rounding",
        summary="Round toward minus infinity.",
        strategy=S.rounding_cases,
        invariants=(Invariant("integer", _integral),),
        golden=(Golden(Case((_a([1.5, -1.5, -0.0]),)), _a([1, -2, -0.0])),),
    ),
    Entry(
        name="round_ceil",
        family="core",
        module="core.rounding",
        summary="Round toward plus infinity.",
        strategy=S.rounding_cases,
        invariants=(Invariant("integer", _integral),),
        golden=(Golden(Case((_a([1.5, -1.5, -0.5]),)), _a([2, -1, -0.0])),),
    ),
    Entry(
        name="round_stochastic",
        family="core",
        module="core.rounding",
        summary="Round up with probability equal to the fractional part, from an explicit key.",
        strategy=lambda: S.rounding_cases(stochastic=True),
        semantics=(
            "up iff u < x - floor(x), u = uniform(key, x.shape) by flat index; integers never move.",
            "A value in (-1, 0) that rounds up gives +0.0.",
        ),
        invariants=(Invariant("integer", _integral), Invariant("floor or ceil", _floor_or_ceil)),
        golden=(Golden(Case((_a([3.0, -2.0, 0.0]), (0, 0))), _a([3, -2, 0]), "integers never move"),),
        bad=(Bad(Case((_a([0.5]), (1, 2, 3))), TypeError, "key must be a key"),),
        paper="Gupta et al., 2015. Deep Learning with Limited Numerical Precision. ICML. arXiv:1502.02551",
    ),
    Entry(
        name="round_with",
        family="core",
        module="core.rounding",
        summary="Round by a named rule; the `rounding=` parameter of every quantizer.",
        strategy=lambda: S.rounding_cases(with_mode=True),
        invariants=(Invariant("integer", _integral),),
        golden=(Golden(Case((_a([2.5]),), {"mode": "half_away"}), _a([3])),),
        bad=(
            Bad(Case((_a([0.5]),), {"mode": "stochastic"}), ValueError, "rounding='stochastic' needs a key"),
            Bad(Case((_a([0.5]),), {"mode": "half_even", "key": (0, 0)}), ValueError, "key is only used with"),
            Bad(Case((_a([0.5]),), {"mode": "nearest"}), ValueError, "rounding must be one of"),
        ),
    ),
    Entry(
        name="threefry2x32",
        family="core",
        module="core.random",
        summary="The Threefry-2x32-20 block cipher: the counter-based generator behind every random choice.",
        strategy=S.threefry_cases,
        semantics=("Words are uint32 values held in int64 arrays.", "Known answers of Random123 are goldens."),
        invariants=(Invariant("uint32 words", _words),),
        golden=(
            Golden(
                Case(((0, 0), _a([0], np.int64), _a([0], np.int64))),
                (_a([0x6B200159], np.int64), _a([0x99BA4EFE], np.int64)),
                "Random123 known answer",
            ),
            Golden(
                Case(((2**32 - 1, 2**32 - 1), _a([2**32 - 1], np.int64), _a([2**32 - 1], np.int64))),
                (_a([0x1CB996FC], np.int64), _a([0xBB002BE7], np.int64)),
                "Random123 known answer",
            ),
            Golden(
                Case(((0x13198A2E, 0x03707344), _a([0x243F6A88], np.int64), _a([0x85A308D3], np.int64))),
                (_a([0xC4923A9C], np.int64), _a([0x483DF7A0], np.int64)),
                "Random123 known answer (pi digits)",
            ),
        ),  # fmt: skip
        bad=(
            Bad(Case(((0, 0), _a([2**32], np.int64), _a([0], np.int64))), ValueError, "x0 must be in [0, 4294967295]"),
            Bad(Case(((0, 0), _a([0, 1], np.int64), _a([0], np.int64))), ValueError, "x1 has shape (1,)"),
        ),
        paper=THREEFRY,
    ),
    Entry(
        name="make_key",
        family="core",
        module="core.random",
        summary="A key from a 64-bit seed.",
        strategy=S.seed_cases,
        golden=(Golden(Case((2**32 + 5,)), (1, 5)),),
        bad=(Bad(Case((-1,)), ValueError, "seed must be in [0, 18446744073709551615], got -1"),),
        paper=THREEFRY,
    ),
    Entry(
        name="split",
        family="core",
        module="core.random",
        summary="New independent keys from a key.",
        strategy=S.split_cases,
        invariants=(Invariant("distinct", _distinct_keys),),
        golden=(
            Golden(
                Case(((0, 0),)),
                ((3520496301, 2513315811), (1065179034, 1741568792)),
                "threefry((0, 0), (0xFFFFFFFF, j)) for j = 0, 1: a pinned stream",
            ),
        ),  # fmt: skip
        bad=(Bad(Case(((0, 0),), {"num": 0}), ValueError, "num must be in [1, 1048576], got 0"),),
        paper=THREEFRY,
    ),
    Entry(
        name="fold_in",
        family="core",
        module="core.random",
        summary="A new key from a key and an int (a step, a layer index).",
        strategy=S.fold_in_cases,
        golden=(
            Golden(Case(((0, 0), 1)), (3248552896, 93766516), "threefry((0, 0), (0xFFFFFFFE, 1)): a pinned stream"),
        ),
        bad=(Bad(Case(((0, 0), 2**32)), ValueError, "data must be in [0, 4294967295]"),),
        paper=THREEFRY,
    ),
    Entry(
        name="random_bits",
        family="core",
        module="core.random",
        summary="Uniform 32-bit integers by flat index, a pure function of the key.",
        strategy=S.bits_cases,
        semantics=("Flat index i takes word i % 2 of threefry(key, counter i // 2).",),
        golden=(Golden(Case(((0, 0), (2,))), _a([0x6B200159, 0x99BA4EFE], np.int64), "counter 0, both words"),),
        bad=(Bad(Case(((0, 0), (2, -1))), ValueError, "shape[1] must be in [0, inf], got -1"),),
        paper=THREEFRY,
    ),
    Entry(
        name="uniform",
        family="core",
        module="core.random",
        summary="Uniform float32 in [0, 1) on the 2**-24 grid.",
        strategy=S.bits_cases,
        semantics=("u = (bits >> 8) * 2**-24, exact.",),
        invariants=(Invariant("in [0, 1) on the grid", _unit_interval),),
        golden=(Golden(Case(((0, 0), (1,))), _a([(0x6B200159 >> 8) * 2.0**-24]), "first word of counter 0"),),
        paper=THREEFRY,
    ),
    Entry(
        name="keep_largest",
        extra=(("kernels", "torch_backend.kernels.select:keep_largest"),),
        family="core",
        module="core.select",
        summary="Mask of the `count` largest scores; ties to the lower flat index.",
        strategy=S.select_cases,
        semantics=(
            "A stable descending sort of the flat scores; the first `count` are kept.",
            "Equal scores (including -0.0 and +0.0) go to the lower flat index, on every device.",
        ),
        invariants=(Invariant("count, order and tie rule", _keeps_count_largest),),
        golden=(
            Golden(Case((_a([1, 3, 3, 2]), 2)), np.array([False, True, True, False]), "3 and 3 beat 2"),
            Golden(Case((_a([3, 3, 3]), 1)), np.array([True, False, False]), "ties: lowest index"),
            Golden(Case((_a([0.0, -0.0]), 1)), np.array([True, False]), "signed zeros tie"),
            Golden(Case((_a([-(2**63), 0], np.int64), 1)), np.array([False, True]), "the int64 minimum is smallest"),
        ),
        bad=(Bad(Case((_a([1, 2]), 3)), ValueError, "count must be in [0, 2], got 3"),),
    ),
]
