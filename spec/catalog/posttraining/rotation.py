"""Registry entries for `reference.posttraining.rotation` and its torch twin: hadamard_matrix, hadamard_transform."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from spec import strategies as S
from spec.catalog.common import array as _a
from spec.entry import Bad, Case, Entry, Golden, Invariant

QUAROT = (
    "Ashkboos, Mohtashami, Croci, Li, Cameron, Jaggi, Alistarh, Hoefler and Hensman, 2024. QuaRot: Outlier-Free "
    "4-Bit Inference in Rotated LLMs. NeurIPS. arXiv:2404.00456 (code: fake_quant/hadamard_utils.py); "
    "N. J. A. Sloane, A Library of Hadamard Matrices (had.12, had.20.pal)"
)


def _hadamard(call, case, out):
    (n,) = case.args
    h = out.astype(np.int64)
    assert out.dtype == np.int8 and out.shape == (n, n) and np.all(np.abs(h) == 1)
    assert np.array_equal(h @ h.T, n * np.eye(n, dtype=np.int64)), "H H^T = n I"
    assert np.all(h[:, 0] == 1), "the first column is all +1 (normalized)"


def _neighbours(y):
    def value(v):
        return Fraction(2**128) if np.isinf(v) else Fraction(float(v))

    up, down = np.nextafter(y, np.float32(np.inf)), np.nextafter(y, np.float32(-np.inf))
    return (value(y) + value(down)) / 2, (value(y) + value(up)) / 2


def _exactly_rounded(call, case, out):
    """Every output is fl32(S / sqrt n) for the exact S = sum_j C_ij x_j: S**2 against n * midpoint**2, exactly."""
    from reference.core.random import random_bits
    from reference.posttraining.rotation import hadamard_matrix

    (x,) = case.args
    n = x.shape[-1]
    key, inverse = case.kwargs.get("key"), case.kwargs.get("inverse", False)
    d = np.ones(n, dtype=np.int64) if key is None else 1 - 2 * (random_bits(key, (n,)) & 1)
    c = hadamard_matrix(n).astype(np.int64) * d[None, :]
    c = c.T if inverse else c
    rows, ys = x.reshape(-1, n), np.asarray(out).reshape(-1, n)
    for r in range(rows.shape[0]):
        for i in range(n):
            s = sum((Fraction(float(v)) * int(k) for v, k in zip(rows[r], c[i], strict=True)), Fraction(0))
            y = ys[r, i]
            if s == 0:
                assert y.view(np.uint32) == 0, f"row {r}, output {i}: a zero sum must give +0.0, got {y!r}"
                continue
            assert (y > 0) == (s > 0) or y == 0, f"row {r}, output {i}: sign of {y!r} for a sum {float(s)!r}"
            a2 = s * s
            lo, hi = (abs(m) for m in _neighbours(np.float32(abs(y))))
            assert y == 0 or a2 >= n * lo * lo, f"row {r}, output {i}: {y!r} is too large in magnitude"
            assert math.isinf(y) or a2 <= n * hi * hi, f"row {r}, output {i}: {y!r} is too small in magnitude"


def _round_trip(call, case, out):
    """The inverse rotation undoes the forward one up to the two roundings: |x - inverse(forward(x))| is within
    2 * (2u) * ||x||_2 per element (Q orthogonal), u = 2**-24, plus subnormal slack."""
    (x,) = case.args
    if case.kwargs.get("inverse", False) or x.size == 0 or not np.all(np.abs(x) < 1e30):
        return
    back = call(Case((out,), {**case.kwargs, "inverse": True}))
    n = x.shape[-1]
    norm = np.sqrt(np.sum(x.astype(np.float64) ** 2, axis=-1, keepdims=True))
    bound = 4.0 * 2.0**-24 * norm * 1.0001 + n * 2.0**-148
    assert np.all(np.abs(back.astype(np.float64) - x.astype(np.float64)) <= bound), "round trip beyond the bound"


ENTRIES = [
    Entry(
        name="hadamard_matrix",
        family="quantization",
        module="posttraining.rotation",
        summary="The ±1 Hadamard matrix of QuaRot's constructions: Sylvester, H12 ⊗ S, H20 and S2 ⊗ H20 ⊗ S.",
        strategy=S.hadamard_size_cases,
        semantics=(
            "n = 2**m: Sylvester S_n (S_2k = [[S, S], [S, -S]]); n = 12 * 2**m: kron(H12, S_{2**m}); n = 20: H20; "
            "n = 20 * 2**m, m >= 1: kron(S_2, kron(H20, S_{2**(m-1)})) (QuaRot's 40-row table is kron(S_2, H20)).",
            "H12, H20: Paley's (Sloane's had.12, had.20.pal, QuaRot's tables): row 0 = (+1, -1, ..., -1); row r >= 1 "
            "= +1 then a fixed pattern rotated right by r - 1.",
            "QuaRot's matmul_hadU(x) = x H^T / sqrt(n) with this H.",
        ),
        invariants=(Invariant("H H^T = n I, first column +1", _hadamard),),
        golden=(
            Golden(Case((2,)), np.array([[1, 1], [1, -1]], np.int8), "Sylvester S_2"),
            Golden(
                Case((4,)),
                np.array([[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]], np.int8),
                "S_4 = [[S_2, S_2], [S_2, -S_2]]",
            ),  # fmt: skip
        ),
        bad=(
            Bad(Case((3,)), ValueError, "n is 3: a Hadamard size is 2**m, 12 * 2**m or 20 * 2**m"),
            Bad(Case((36,)), ValueError, "n is 36: a Hadamard size is"),
            Bad(Case((0,)), ValueError, "n must be in [1, 1048576], got 0"),
            Bad(Case((4.0,)), TypeError, "n must be an int, got float 4.0"),
        ),
        paper=QUAROT,
    ),
    Entry(
        name="hadamard_transform",
        family="quantization",
        module="posttraining.rotation",
        summary="x Q (or x Q^T), Q = D H^T / sqrt(n), along the last axis: each output the exact sum rounded once.",
        strategy=S.hadamard_transform_cases,
        semantics=(
            "Forward: y_i = fl32(sum_j H_ij d_j x_j / sqrt(n)); inverse: y_i = fl32(d_i sum_j H_ji x_j / sqrt(n)).",
            "d_j = 1 - 2 (random_bits(key, (n,))_j mod 2); all +1 without a key.",
            "Exact: the sum of +-x_j is exact and divided by sqrt(n) exactly, one rounding to float32, ties to even; "
            "a zero sum is +0.0.",
            "Rotating a weight's rows and the layer's input with one key preserves x . w_o within "
            "(2u + u**2) ||x|| ||w_o|| + 2**-149 sqrt(n) (||x|| + ||w_o||) + n 2**-298, u = 2**-24.",
        ),
        invariants=(
            Invariant("each output exactly rounded (Fractions)", _exactly_rounded),
            Invariant("inverse(forward(x)) within 4u ||x||", _round_trip),
        ),
        golden=(
            Golden(Case((_a([[3, 1]]),)), _a([[2.828427, 1.4142135]]), "[3 + 1, 3 - 1] / sqrt 2 = [2 sqrt 2, sqrt 2]"),
            Golden(
                Case((_a([[1, 2.0**-24, 0, 0]]),)),
                _a([[0.5, 0.49999997, 0.5, 0.49999997]]),
                "(1 + 2**-24) / 2 = 0.5 + 2**-25, halfway between 0.5 and 0.5 + 2**-24: to even, 0.5; "
                "(1 - 2**-24) / 2 = 0.5 - 2**-25 is a float32",
            ),  # fmt: skip
            Golden(
                Case((_a([[1, 2, 3, 4]]),), {"key": (0, 0)}),
                _a([[-3, -1, 4, -2]]),
                "random_bits((0, 0), (4,)) = [1797259609, 2579123966, 928981903, 3453687069]: d = [-1, 1, -1, -1]; "
                "S_4 (d x) / 2 = [-6, -2, 8, -4] / 2",
            ),  # fmt: skip
            Golden(
                Case((_a([[1] + [0] * 11]),), {"inverse": True}),
                _a([[0.28867513] + [-0.28867513] * 11]),
                "inverse: row 0 of H12, (+1, -1, ..., -1), divided by sqrt 12 (fl32(1 / sqrt 12) = 0.28867513)",
            ),  # fmt: skip
        ),
        bad=(
            Bad(Case((_a([[1, 2, 3]]),)), ValueError, "the last axis of x is 3: a Hadamard size is"),
            Bad(Case((_a(1.0),)), ValueError, "x must have at least 1 dimension"),
            Bad(Case((_a([[1, np.nan]]),)), ValueError, "x must be finite, got nan at flat index 1"),
            Bad(Case((_a([[1, 2]]),), {"key": 5}), TypeError, "key must be a key, got int 5"),
            Bad(Case((_a([[1, 2]]),), {"inverse": 1}), TypeError, "inverse must be a bool, got int 1"),
        ),
        paper=QUAROT,
    ),
]
