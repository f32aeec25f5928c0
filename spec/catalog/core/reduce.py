"""Registry entries for `reference.core.reduce` and its torch twin: tree_sum, tree_mean, lp_norm."""

from __future__ import annotations

import math

import numpy as np

from spec import strategies as S
from spec.catalog.common import array as _a
from spec.entry import Bad, Case, Entry, Golden, Invariant


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
    """Against exact rational arithmetic: the L2 norm is the float32 nearest to sqrt(exact_sum(x * x))."""
    from fractions import Fraction

    from reference.core.exact import exact_sum

    x, axis, p = case.args[0], case.kwargs.get("axis"), case.kwargs["p"]
    a = x.astype(np.float64)
    if p == 1:
        assert np.array_equal(out, np.asarray(exact_sum(np.abs(a), axis)).astype(np.float32)), "L1 is one cast"
        return
    sums = np.asarray(exact_sum(a * a, axis)).reshape(-1)
    for s, y in zip(sums, np.asarray(out).reshape(-1), strict=True):
        target = Fraction(float(s))
        up, down = np.nextafter(y, np.float32(np.inf)), np.nextafter(y, np.float32(0))

        def value(v):
            return Fraction(2**128) if np.isinf(v) else Fraction(float(v))

        hi, lo = (value(y) + value(up)) / 2, (value(y) + value(down)) / 2
        assert y == 0 or lo * lo <= target, f"sqrt({s}) rounded up too far to {y}"
        assert np.isinf(y) or target <= hi * hi, f"sqrt({s}) rounded down too far to {y}"


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
        golden=(
            Golden(Case((_a([1, 2, 3, 4]),)), np.array(2.5), "10 / 4"),
            Golden(
                Case((_a([[1, 2, 3], [4, 5, 7]]),), {"axis": 1}),
                np.array([2.0, 5.333333333333333]),
                "per row: 6 / 3 and 16 / 3, one float64 division each",
            ),
        ),
        bad=(Bad(Case((_a([]),)), ValueError, "x has no elements to average"),),
    ),
    Entry(
        name="lp_norm",
        family="core",
        module="core.reduce",
        summary="L1 and L2 norms: the exact sum rounded once to float64, then one exact rounding to float32.",
        strategy=lambda: S.reduce_cases(norm=True),
        semantics=(
            "L1 = float32(exact_sum(|x|)); L2 = the float32 nearest to sqrt(exact_sum(x * x)), ties to even.",
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
            Golden(
                Case((_a([1, 2**-12, 2**-12, 2**-24]),), {"p": 2}),
                np.array(1.0, np.float32),
                "a tie: the sum of squares is exactly (1 + 2**-24)**2, so the root is the midpoint between 1 and "
                "1 + 2**-23; to even: 1",
            ),
            Golden(
                Case((_a([1, 2**-12, 2**-12, 2**-12, 2**-12, 2**-12, 2**-12, 3 * 2**-24]),), {"p": 2}),
                np.array(1 + 2**-22, np.float32),
                "a tie rounding up: the root is exactly 1 + 3 * 2**-24, between 1 + 2**-23 and 1 + 2**-22 (even)",
            ),
            Golden(
                Case((_a([[3, 4], [1, 1], [0, -0.0]]),), {"p": 2, "axis": 1}),
                np.array([5.0, 1.4142135, 0.0], np.float32),
                "per row: 5, the float32 nearest sqrt(2), and +0.0 for a row of zeros",
            ),
        ),
        bad=(Bad(Case((_a([3, -4]),), {"p": 3}), ValueError, "p must be one of 1, 2; got 3"),),
        peers=(
            (
                "torch",
                "CPU float64 `torch.sqrt` is not correctly rounded (torch 2.13, AVX512): an L2 norm taken through it can differ in the last bit.",
            ),
            (
                "torch, NumPy",
                "`torch.sum` and `np.sum` add in orders of their own choosing, so their norms differ from each other and from the canonical tree.",
            ),
        ),
    ),
]
