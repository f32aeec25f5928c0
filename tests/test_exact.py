"""Exact sums and linear algebra beyond the generic registry tests: shards compose, threads change nothing, large
inputs agree bit for bit, the square root is correctly rounded, failures name the same column everywhere.

The generic suite (tests/test_conformance.py, tests/test_properties.py) already checks every entry's goldens, bad
inputs, invariants against `fractions.Fraction` and bitwise agreement on its strategy's small cases.
"""

from __future__ import annotations

import math
import random
import struct
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import reference.core._exact as RX
import reference.core.exact as RE
import reference.core.linalg as RL
import torch_backend.core._exact as TX
import torch_backend.core.exact as TE
import torch_backend.core.linalg as TL
from spec import strategies as S
from tests.helpers import torch_devices

DEVICES = [pytest.param(d, id=d) for d in torch_devices()]


def _bits(a):
    a = np.asarray(a)
    return a.view(f"u{a.dtype.itemsize}") if a.dtype.kind == "f" else a


def _same(expected, got, where=""):
    expected = np.asarray(expected)
    got = got.detach().cpu().numpy() if isinstance(got, torch.Tensor) else np.asarray(got)
    assert expected.dtype == got.dtype and expected.shape == got.shape, (where, expected.dtype, got.dtype)
    bad = _bits(expected) != _bits(got)
    assert not bad.any(), (
        f"{where}: {int(bad.sum())} of {bad.size} differ, first expected {expected[bad][0]!r}, got {got[bad][0]!r}"
    )


def _t(a, device):
    return torch.from_numpy(np.array(a, copy=True)).to(device)


def _outcome(fn, *args, **kwargs):
    try:
        return "ok", fn(*args, **kwargs)
    except (TypeError, ValueError) as e:
        return "error", f"{type(e).__name__}: {e}"


def _adversarial(rng, n, dtype=np.float64):
    """Huge dynamic range, cancelling pairs, subnormals, signed zeros and repeated values, shuffled."""
    lo, hi = (-1074, 1000) if dtype == np.float64 else (-149, 120)
    a = rng.standard_normal(n) * np.exp2(rng.integers(lo, hi, n).astype(np.float64))
    a[rng.random(n) < 0.05] = 0.0
    a[rng.random(n) < 0.05] = -0.0
    a[rng.random(n) < 0.1] = 1.0
    half = n // 3
    a[half : 2 * half] = -a[:half]
    a = a.astype(dtype)
    rng.shuffle(a)
    return a


# The torch backend's routes for sums and products, each forced everywhere (they must give the same bits):
# "fsum" (small CPU tensors), "proof" (the proven float64 cut; products written out as exact terms), "bins"
# (int64 bins; products by integer slices). "fsum" also takes states with Python integers (`small_states`,
# `small_values`) and every product of float64 factors outside the float route's range (`integer_products`).
# "default" leaves the size thresholds as they are.
NO_INTEGERS = {"SMALL_INTEGER": -1, "FEW_OUTPUTS": -1}  # float64 factors outside the range: the slices' general path
ROUTES = {
    "default": {},
    "proof": {"SMALL_CPU": -1, "PROOF_LENGTH": 1 << 40, "SMALL_PRODUCTS": 1 << 22, "SMALL_STATES": -1, **NO_INTEGERS},
    "bins": {"SMALL_CPU": -1, "PROOF_LENGTH": -1, "SMALL_PRODUCTS": -1, "SMALL_STATES": -1, **NO_INTEGERS},
    "fsum": {"SMALL_CPU": 1 << 40, "SMALL_PRODUCTS": 1 << 22, "SMALL_STATES": 1 << 40, "SMALL_INTEGER": 1 << 40},
}


# The linear algebra's tiny-input route (Python integers, `TL.SMALL`): on for "fsum", off for "proof" and "bins"
# (their fast and exact routes).
LINALG_SMALL = {"default": None, "proof": -1, "bins": -1, "fsum": 1 << 40}


@pytest.fixture(params=list(ROUTES))
def route(request, monkeypatch):
    for name, value in ROUTES[request.param].items():
        monkeypatch.setattr(TX, name, value)
    if LINALG_SMALL[request.param] is not None:
        monkeypatch.setattr(TL, "SMALL", LINALG_SMALL[request.param])
    return request.param


# ---- shards compose ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_states_of_random_pieces_combine_to_the_whole(device, dtype, route):
    """Split random tensors into random pieces, take their states in random order (on the reference and on torch),
    combine them: the same bits as the state and the sum of the unsplit tensor; so does a plain limb-wise sum of the
    states (an all_reduce(SUM)) once rounded."""
    rng = np.random.default_rng(5)
    for trial in range(12):
        x = _adversarial(rng, int(rng.integers(1, 3000)), dtype)
        cuts = np.sort(rng.integers(0, x.size + 1, int(rng.integers(0, 9))))
        pieces = np.split(x, cuts)
        order = rng.permutation(len(pieces))
        ref_states = [RE.exact_sum_state(pieces[i]) for i in order]
        torch_states = [TE.exact_sum_state(_t(pieces[i], device)) for i in order]
        for r, t in zip(ref_states, torch_states, strict=True):
            _same(r, t, f"trial {trial}: piece state")
        whole = RE.exact_sum_state(x)
        _same(whole, TE.exact_sum_combine(torch_states), f"trial {trial}: torch combine")
        _same(whole, RE.exact_sum_combine(ref_states), f"trial {trial}: reference combine")
        reduced = torch.stack(torch_states).sum(0)  # what all_reduce(SUM) would give: not canonical
        _same(RE.exact_sum(x), TE.exact_sum_round(reduced), f"trial {trial}: round of the summed limbs")
        _same(RE.exact_sum(x), TE.exact_sum(_t(x, device)), f"trial {trial}: unsplit sum")


@pytest.mark.parametrize("device", DEVICES)
def test_batches_of_rows_compose_along_an_axis(device, route):
    """A calibration set in batches: the column sums of the whole are the combined column states of the batches."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((300, 7)).astype(np.float32) * np.float32(1e30)
    x[::2] *= np.float32(-1e-30)
    batches = np.array_split(x, [17, 100, 101, 250])
    states = [TE.exact_sum_state(_t(b, device), axis=0) for b in reversed(batches)]
    _same(RE.exact_sum(x, axis=0), TE.exact_sum_round(TE.exact_sum_combine(states)), "column sums from batches")


# ---- threads and devices -----------------------------------------------------------------------------------------


def test_torch_results_do_not_change_with_the_thread_count(route):
    rng = np.random.default_rng(7)
    x = torch.from_numpy(_adversarial(rng, 300_000, np.float32))
    a = torch.from_numpy(rng.standard_normal((64, 96)))
    b = torch.from_numpy(rng.standard_normal((96, 48)) * np.exp2(rng.integers(-30, 30, (96, 48))))
    g = torch.from_numpy(rng.standard_normal((200, 40)).astype(np.float32))
    h = TE.exact_gram(torch.from_numpy(rng.standard_normal((60, 30)))) + torch.eye(30, dtype=torch.float64)

    def run():
        return [TE.exact_sum(x), TE.exact_matmul(a, b), TE.exact_gram(g), TL.cholesky(h)]

    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = run()
        torch.set_num_threads(2)
        two = run()
    finally:
        torch.set_num_threads(old)
    for i, (p, q) in enumerate(zip(one, two, strict=True)):
        _same(p.numpy(), q, f"result {i}: 1 vs 2 threads")


# ---- large inputs, bit for bit -----------------------------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
def test_large_sums_match_the_reference(device, route):
    rng = np.random.default_rng(8)
    for dtype in (np.float32, np.float64):
        x = _adversarial(rng, 200_000, dtype)
        _same(RE.exact_sum(x), TE.exact_sum(_t(x, device)), f"{dtype.__name__} sum")
        m = _adversarial(rng, 40 * 333, dtype).reshape(40, 333)
        for axis in (0, 1):
            _same(RE.exact_sum(m, axis), TE.exact_sum(_t(m, device), axis), f"{dtype.__name__} axis {axis}")
        _same(RE.exact_sum_state(m, 1), TE.exact_sum_state(_t(m, device), 1), f"{dtype.__name__} states")


@pytest.mark.parametrize("device", DEVICES)
def test_a_long_row_flushed_in_segments_gives_the_same_sum(device, monkeypatch):
    """The bins of a long row are flushed into digits every `SEGMENT` elements (2**28: no bin can overflow); a tiny
    segment exercises the flush on a small input and must change nothing."""
    rng = np.random.default_rng(9)
    x = _adversarial(rng, 1 << 18, np.float32)
    expected = RE.exact_sum(x)
    monkeypatch.setattr(TX, "SEGMENT", 1 << 16)
    _same(expected, TE.exact_sum(_t(x, device)), "flushed every 2**16 elements")


@pytest.mark.parametrize("device", DEVICES)
def test_large_products_match_the_reference(device, route):
    rng = np.random.default_rng(10)
    for dtype in (np.float32, np.float64):
        a = (rng.standard_normal((20, 70)) * np.exp2(rng.integers(-40, 40, (20, 70)))).astype(dtype)
        b = (rng.standard_normal((70, 15)) * np.exp2(rng.integers(-40, 40, (70, 15)))).astype(dtype)
        _same(RE.exact_matmul(a, b), TE.exact_matmul(_t(a, device), _t(b, device)), f"{dtype.__name__} matmul")
        _same(RE.exact_gram(a), TE.exact_gram(_t(a, device)), f"{dtype.__name__} gram")
        _same(RE.exact_dot(a, a * 3, axis=0), TE.exact_dot(_t(a, device), _t(a * 3, device), axis=0), "dot")
    wide = np.array([[1e300, 1e-300, 3.0], [5e-324, -1e308, 2.0**-1000]])  # rows spanning 2000+ bits
    _same(RE.exact_matmul(wide, wide.T), TE.exact_matmul(_t(wide, device), _t(wide.T, device)), "wide rows")


@pytest.mark.parametrize("device", DEVICES)
def test_gram_is_the_matmul_of_the_transpose(device):
    rng = np.random.default_rng(11)
    x = _t(rng.standard_normal((33, 9)).astype(np.float32), device)
    _same(TE.exact_matmul(x.T.contiguous(), x).cpu().numpy(), TE.exact_gram(x), "gram vs matmul")


@pytest.mark.parametrize("device", DEVICES)
def test_linear_algebra_matches_the_reference_on_larger_matrices(device, route):
    rng = np.random.default_rng(12)
    x = rng.standard_normal((50, 24))
    h = RE.exact_gram(x) + np.diag(np.full(24, 0.5))
    _same(RL.cholesky(h), TL.cholesky(_t(h, device)), "cholesky 24")
    l = RL.cholesky(h)
    b = rng.standard_normal((24, 3))
    for lower in (True, False):
        for transpose in (False, True):
            m = l if lower else l.T.copy()
            _same(
                RL.triangular_solve(m, b, lower=lower, transpose=transpose),
                TL.triangular_solve(_t(m, device), _t(b, device), lower=lower, transpose=transpose),
                f"solve lower={lower} transpose={transpose}",
            )
    _same(RL.cholesky_inverse(l), TL.cholesky_inverse(_t(l, device)), "cholesky_inverse 24")


def test_blocks_of_outputs_change_nothing(monkeypatch, route):
    """Sums take their outputs `BLOCK_ROWS` at a time and products `BLOCK_OUTPUTS` at a time (to bound memory);
    tiny blocks must give the same bits as the reference."""
    monkeypatch.setattr(TX, "BLOCK_ROWS", 3)
    monkeypatch.setattr(TX, "BLOCK_OUTPUTS", 5)
    rng = np.random.default_rng(16)
    x = _adversarial(rng, 10 * 7).reshape(10, 7)
    _same(RE.exact_sum(x, 1), TE.exact_sum(torch.from_numpy(x), 1), "sum by blocks of rows")
    _same(RE.exact_sum_state(x, 0), TE.exact_sum_state(torch.from_numpy(x), 0), "states by blocks")
    _same(RE.exact_sum(x, 1), TX.sum_unchecked(torch.from_numpy(x), 1), "unchecked sum by blocks")
    bad = x.copy()
    bad[8, 2] = np.nan
    with pytest.raises(ValueError, match="x must be finite, got nan at flat index 58"):
        TE.exact_sum(torch.from_numpy(bad), 1)
    a, b = rng.standard_normal((2, 3, 5)), rng.standard_normal((2, 5, 4))
    _same(RE.exact_matmul(a, b), TE.exact_matmul(torch.from_numpy(a), torch.from_numpy(b)), "matmul by blocks")
    g = rng.standard_normal((6, 5)).astype(np.float32)
    _same(RE.exact_gram(g), TE.exact_gram(torch.from_numpy(g)), "gram by blocks")


@pytest.mark.parametrize("whole", [-1, 1 << 40], ids=["row-by-row carry", "whole-array carry"])
def test_both_carry_paths_round_exactly(whole, monkeypatch):
    """`_round` carries limbs row by row (many columns) or by whole-array operations (few columns); forcing each
    path everywhere must give the reference's bits: negative totals, subnormal results with ties, long carries.
    (The bins and the slices are forced: the other routes carry nothing.)"""
    monkeypatch.setattr(TX, "WHOLE", whole)
    for name, value in ROUTES["bins"].items():
        monkeypatch.setattr(TX, name, value)
    rng = np.random.default_rng(14)
    for _ in range(20):
        x = _adversarial(rng, int(rng.integers(1, 200)))
        _same(RE.exact_sum(x), TE.exact_sum(torch.from_numpy(x)), "sum")
    tiny = rng.standard_normal((30, 4)) * np.exp2(rng.integers(-560, -520, (30, 4)).astype(np.float64))
    tiny[::3] = 2.0**-537  # products of exactly 2**-1074, halves of it, ties on the subnormal grid
    tiny[1::3, :2] = [2.0**-538, -(2.0**-538)]
    _same(RE.exact_dot(tiny, tiny[::-1]), TE.exact_dot(torch.from_numpy(tiny), torch.from_numpy(tiny[::-1].copy())))
    a = rng.standard_normal((9, 13)) * np.exp2(rng.integers(-60, 60, (9, 13)).astype(np.float64))
    _same(RE.exact_matmul(a, a.T), TE.exact_matmul(torch.from_numpy(a), torch.from_numpy(a.T.copy())), "matmul")
    h = RE.exact_gram(rng.standard_normal((12, 8))) + np.eye(8)
    _same(RL.cholesky(h), TL.cholesky(torch.from_numpy(h)), "cholesky")


@pytest.mark.parametrize("device", DEVICES)
def test_the_unchecked_sum_for_backward_passes(device, route):
    """`torch_backend.core._exact.sum_unchecked` (for VJPs, as `torch_backend._reduce.tree` is for `tree_sum`): finite values give
    `exact_sum` bit for bit, along any axis; a NaN or both infinities give NaN, one infinity gives itself, per
    output, as IEEE addition would, instead of raising inside autograd."""
    rng = np.random.default_rng(15)
    for dtype in (np.float32, np.float64):
        x = _adversarial(rng, 6 * 50, dtype).reshape(6, 50)
        for axis in (None, 0, 1):
            _same(RE.exact_sum(x, axis), TX.sum_unchecked(_t(x, device), axis), f"{dtype.__name__} axis {axis}")
        y = x.copy()
        y[1, 3], y[2, 0], y[2, 9], y[3, 4], y[4, 4] = np.inf, np.inf, -np.inf, np.nan, -np.inf
        want = RE.exact_sum(np.where(np.isfinite(y), y, 0), 1)
        want[1], want[2], want[3], want[4] = np.inf, np.nan, np.nan, -np.inf
        _same(want, TX.sum_unchecked(_t(y, device), 1), f"{dtype.__name__} with specials")


# ---- failures are the same everywhere ----------------------------------------------------------------------------


@st.composite
def maybe_spd(draw):
    """Symmetric matrices that may fail to factor: rank-deficient Gram matrices (a pivot of exactly 0 or a tiny
    negative one), indefinite ones, tiny diagonals next to huge entries (overflow), and positive-definite ones."""
    n = draw(st.integers(1, 6))
    kind = draw(st.sampled_from(["low rank", "indefinite", "overflow", "spd"]))
    entries = st.one_of(st.floats(-4, 4), st.integers(-3, 3).map(float))
    if kind == "low rank":
        x = draw(hnp.arrays(np.float64, (draw(st.integers(1, max(1, n - 1))), n), elements=entries))
        h = x.T @ x
    elif kind == "overflow":
        h = draw(hnp.arrays(np.float64, (n, n), elements=st.sampled_from([1e200, -1e150, 1.0, 0.0])))
        np.fill_diagonal(h, draw(hnp.arrays(np.float64, (n,), elements=st.sampled_from([1e-300, 1e-200, 1.0]))))
    elif kind == "indefinite":
        h = draw(hnp.arrays(np.float64, (n, n), elements=entries))
    else:
        return draw(S.spd_cases()).args[0]
    return np.tril(h) + np.tril(h, -1).T


@pytest.mark.parametrize("small", [-1, 1 << 40], ids=["fast and exact routes", "python integers"])
def test_cholesky_fails_in_the_same_column_with_the_same_pivot(small):
    @settings(max_examples=150)
    @given(maybe_spd())
    def check(h):
        ref = _outcome(RL.cholesky, h)
        with pytest.MonkeyPatch.context() as m:
            m.setattr(TL, "SMALL", small)
            got = _outcome(TL.cholesky, torch.from_numpy(h.copy()))
        assert ref[0] == got[0], (ref, got)
        if ref[0] == "error":
            assert ref[1] == got[1]
        else:
            _same(ref[1], got[1], "factor")

    check()


def test_a_nearly_singular_matrix_names_its_column_and_pivot(route):
    """[[1, 1], [1, 1 + 2**-52]] factors (pivot 2**-52, L[1, 1] = 2**-26); [[1, 2], [2, 4]] and
    [[1, 1, 1], [1, 2, 2], [1, 2, 2]] have exact factors and a pivot of exactly 0.0 in column 1 and 2. A matrix that
    is singular only in real arithmetic may still factor: the Gram matrix of [[1, 2, 3], [4, 5, 6]] leaves a tiny
    positive pivot on its rounded factor, the same on both backends."""
    ok = np.array([[1.0, 1.0], [1.0, 1.0 + 2.0**-52]])
    _same(RL.cholesky(ok), TL.cholesky(torch.from_numpy(ok)))
    assert RL.cholesky(ok)[1, 1] == 2.0**-26
    singular = (np.array([[1.0, 2.0], [2.0, 4.0]]), np.array([[1.0, 1, 1], [1, 2, 2], [1, 2, 2]]))
    for h, column in zip(singular, (1, 2), strict=True):
        for fn, arg in ((RL.cholesky, h), (TL.cholesky, torch.from_numpy(h))):
            with pytest.raises(ValueError, match=f"the pivot of column {column} is 0.0, "):
                fn(arg)
    rank_two = RE.exact_gram(np.array([[1.0, 2, 3], [4, 5, 6]]))
    _same(RL.cholesky(rank_two), TL.cholesky(torch.from_numpy(rank_two)), "rank-2 Gram matrix")
    assert 0 < RL.cholesky(rank_two)[2, 2] < 1e-6


@pytest.mark.parametrize(
    ("fn", "args", "match"),
    [
        ("triangular_solve", ([[1e-300, 0.0], [1.0, 1.0]], [1e10, 1.0]), "x[0, 0] overflows"),
        ("triangular_solve", ([[1.0, 0.0], [1e300, 1e-10]], [1.0, 0.0]), "x[1, 0] overflows"),
        ("cholesky_inverse", ([[1.0, 0.0], [1e300, 1e-10]],), "l^-1[1, 0] overflows"),
        ("cholesky", ([[1e-300, 1e200], [1e200, 1.0]],), "L[1, 0] overflows"),
    ],
)
def test_overflow_raises_the_same_error_naming_the_entry(fn, args, match, route):
    arrays = [np.array(a, dtype=np.float64) for a in args]
    ref = _outcome(getattr(RL, fn), *arrays)
    got = _outcome(getattr(TL, fn), *[torch.from_numpy(a) for a in arrays])
    assert ref == got and ref[0] == "error" and match in ref[1], (ref, got)


# ---- the fast routes against the exact ones ---------------------------------------------------------------------


def _matrices(rng, count):
    """Symmetric matrices of every kind the fast route must get right or hand over: Gram matrices with a damped
    diagonal, small integers (exact sums, ties), blocks of zeros (exact zeros), scales from 2**-100 to 2**100 within
    one matrix, the whole matrix near 2**-600 or 2**700 (outside the fast route's range), rank-deficient ones (pivot
    errors) and diagonal ones."""
    out = []
    for trial in range(count):
        kind = trial % 7
        n = int(rng.integers(1, 5 if kind == 5 else 26))  # kind 5 takes the slow exact route
        x = rng.standard_normal((n + int(rng.integers(0, 4)), n))
        if kind == 1:
            x = rng.integers(-3, 4, x.shape).astype(np.float64)
        if kind == 3:
            x = x * np.exp2(rng.integers(-50, 50, n).astype(np.float64))
        h = RE.exact_gram(x)
        if kind == 2:
            h = h * ((np.arange(n)[:, None] // 4) == (np.arange(n)[None, :] // 4))
        if kind == 5:
            h = h * 2.0 ** (-600 if trial % 2 else 700)
        if kind == 6:
            h = np.diag(rng.random(n) + 0.5)
        if kind != 4:
            h = h + np.diag(np.abs(np.diag(h)) * 0.01 + (2.0**-600 if kind == 5 and trial % 2 else 1.0))
        out.append(np.tril(h) + np.tril(h, -1).T)
    return out


@pytest.mark.parametrize("block", [3, 32], ids=["blocks of 3", "blocks of 32"])
def test_the_fast_linear_algebra_gives_the_references_bits(block, monkeypatch):
    """`cholesky`, `triangular_solve` and `cholesky_inverse` prove each rounding (blocks, slices, a bound) and hand over
    to the exact integer route outside their range: the same bits and the same errors as the reference (its own
    route: exact float64 products and `fsum`), for blocks of 3 (many panels) and of 32; the exact integer route
    agrees on the first matrices."""
    monkeypatch.setattr(TL, "_BLOCK", block)
    monkeypatch.setattr(TL, "SMALL", -1)  # the fast route even on the smallest matrices
    rng = np.random.default_rng(17)
    every_solve = ((True, False), (True, True), (False, False), (False, True))
    for i, h in enumerate(_matrices(rng, 35)):
        _linear_algebra_agrees(i, h, rng, columns=3, solves=every_solve, exact_route=i < 7)


def test_the_python_integer_route_gives_the_references_bits(monkeypatch):
    """Tiny CPU inputs take the reference's loops in Python integers (`TL.SMALL`); forced on every matrix of the
    fast route's test (extreme scales, ties, zeros, pivot errors, negative diagonals), the same bits and errors."""
    monkeypatch.setattr(TL, "SMALL", 1 << 40)
    rng = np.random.default_rng(18)
    for i, h in enumerate(_matrices(rng, 21)):
        _linear_algebra_agrees(i, h, rng, columns=2, solves=((True, False), (False, True), (False, False)))


def _linear_algebra_agrees(i, h, rng, columns, solves, exact_route=False):
    """The torch factor of `h` (or its error) is the reference's; then, from the factor with some diagonal entries
    negated, the inverse and the solves `(lower, transpose)` of `columns` right-hand sides; with `exact_route`, the
    exact integer route agrees too."""
    ht = torch.from_numpy(h)
    got, want = _outcome(TL.cholesky, ht), _outcome(RL.cholesky, h)
    assert got[0] == want[0] and (got[0] == "ok" or got[1] == want[1]), (i, got, want)
    if exact_route:
        assert _outcome(TL._cholesky_exact, ht)[0] == got[0]
    if got[0] != "ok":
        return
    _same(want[1], got[1], f"matrix {i}: factor")
    if exact_route:
        _same(want[1], TL._cholesky_exact(ht), f"matrix {i}: exact route")
    l = want[1] * np.where(rng.random(h.shape[0]) < 0.3, -1.0, 1.0)  # negative diagonal entries
    _same(RL.cholesky_inverse(l), TL.cholesky_inverse(torch.from_numpy(l)), f"matrix {i}: inverse")
    b = rng.standard_normal((h.shape[0], columns))
    for lower, transpose in solves:
        m = l if lower else l.T.copy()
        want = _outcome(RL.triangular_solve, m, b, lower=lower, transpose=transpose)
        got = _outcome(TL.triangular_solve, torch.from_numpy(m), torch.from_numpy(b), lower=lower,
                       transpose=transpose)  # fmt: skip
        assert got[0] == want[0] and (got[0] == "ok" or got[1] == want[1]), (i, lower, transpose, got, want)
        if got[0] == "ok":
            _same(want[1], got[1], f"matrix {i}: solve lower={lower} transpose={transpose}")


def test_unproven_roundings_are_computed_exactly(monkeypatch):
    """Where the bound cannot settle a rounding, the block goes back to its first such column, computes those entries
    exactly and redoes the columns after it. Declaring one rounding in 16 unproven must change no bit."""
    real = TL.certify

    def doubtful(p, q, bound):  # about one rounding in 16, always the same ones
        value, ok = real(p, q, bound)
        return value, ok & ((p.view(torch.int64) & 15) != 5)

    monkeypatch.setattr(TL, "certify", doubtful)
    monkeypatch.setattr(TL, "_BLOCK", 8)
    monkeypatch.setattr(TL, "SMALL", -1)
    for i, h in enumerate(_matrices(np.random.default_rng(19), 14)):
        ht = torch.from_numpy(h)
        got, want = _outcome(TL.cholesky, ht), _outcome(TL._cholesky_exact, ht)
        assert got[0] == want[0] and (got[0] == "ok" or got[1] == want[1]), (i, got, want)
        if got[0] == "ok":
            _same(want[1], got[1], f"matrix {i}: factor")
            eye = torch.eye(h.shape[0], dtype=torch.float64)
            _same(TL._solve_exact(got[1], eye, True, False, "x").numpy(), TL._solve_op(got[1], eye, True, False, True))


def test_the_fast_route_hands_over_outside_its_range(monkeypatch):
    """Scales beyond 2**+-400 (or values below 2**-440) are outside the range where every product of slices is a
    normal float64: the fast route says so before computing anything wrong, and the exact route answers."""
    monkeypatch.setattr(TL, "SMALL", -1)
    h = np.diag([2.0**-900, 1.0, 2.0**900])
    with pytest.raises(TL._Slow):
        TL._cholesky_fast(torch.from_numpy(h))
    _same(RL.cholesky(h), TL.cholesky(torch.from_numpy(h)), "extreme diagonal")


def test_products_round_their_slice_groups_exactly(monkeypatch):
    """`exact_matmul`, `exact_gram` and `exact_dot` carry the int64 sums of their slice groups once and add them in
    float64 with an exact remainder (round to odd): the bits of the general carry of `products_exact`, on integers
    (ties), cancellations, wide and narrow spans (one to three slices, and more: handed over), and results below
    2**-1022 (handed over)."""
    monkeypatch.setattr(TX, "CHUNK", 7)  # many chunks
    rng = np.random.default_rng(20)
    for trial in range(40):
        dtype = (np.float32, np.float64)[trial % 2]
        lo, hi = [(-2, 2), (-20, 20), (-60, 60), (-140, 100), (-1074, 1000)][trial % 5]
        lo, hi = (max(lo, -149), min(hi, 100)) if dtype == np.float32 else (lo, hi)
        shape = (int(rng.integers(1, 3)), int(rng.integers(1, 7)), int(rng.integers(1, 30)), int(rng.integers(1, 7)))
        a = rng.standard_normal(shape[:3]) * np.exp2(rng.integers(lo, hi + 1, shape[:3]).astype(np.float64))
        b = rng.standard_normal(shape[0:1] + shape[2:]) * np.exp2(rng.integers(lo, hi + 1, shape[0:1] + shape[2:]))
        if trial % 3 == 0:
            a, b = np.round(a * 4) / 4, np.round(b * 4) / 4
        half = shape[2] // 2
        a[..., :half] = -a[..., shape[2] - half :]
        b[:, :half] = b[:, shape[2] - half :]
        at, bt = torch.from_numpy(a.astype(dtype)), torch.from_numpy(b.astype(dtype))
        _same(TX.products_exact(at, bt).numpy(), TX.products(at, bt), f"trial {trial}: matmul")
        _same(TX.products_exact(bt.transpose(1, 2), bt, True).numpy(), TX.products(bt.transpose(1, 2), bt, True))


def test_the_reference_float_route_agrees_with_its_integers(monkeypatch):
    """The reference computes inner products with exact float64 steps and a proof (or `math.fsum`) between 2**-480
    and 2**480, with Python integers elsewhere: forcing the integers everywhere, or `fsum` for every row, changes no
    bit."""
    rng = np.random.default_rng(21)
    cases = []
    for trial in range(30):
        n = int(rng.integers(1, 12))
        a = rng.standard_normal((4, n)) * np.exp2(rng.integers(-30, 30, (4, n)).astype(np.float64))
        if trial % 3 == 0:
            a = np.round(a)
        cases.append((a, rng.standard_normal(n), RE.exact_gram(rng.standard_normal((n + 2, n))) + np.eye(n)))
    expected = [(RE.exact_sum(a, 1), RE.exact_matmul(a, a.T), RX.dot_rows(a[:, 0], a, b), RL.cholesky(h))
                for a, b, h in cases]  # fmt: skip
    for patch in (("SAFE", 1.0), ("_interval", lambda p, q, bound: (p + q, np.zeros(p.shape, dtype=bool)))):
        with monkeypatch.context() as m:
            m.setattr(RX, *patch)
            m.setattr(RE, "SUM_SAFE", 0.0)
            for (a, b, h), want in zip(cases, expected, strict=True):
                got = (RE.exact_sum(a, 1), RE.exact_matmul(a, a.T), RX.dot_rows(a[:, 0], a, b), RL.cholesky(h))
                for w, g in zip(want, got, strict=True):
                    _same(w, g, f"{patch[0]}")


# ---- the correctly rounded square root ---------------------------------------------------------------------------


def _sqrt_truth(d: float) -> float:
    """The nearest float64 to sqrt(d), from math.isqrt on a 200-bit scaling (the sticky rule)."""
    n, den = Fraction(d).as_integer_ratio()
    k = den.bit_length() - 1
    scale = 200 + (k % 2)
    big = n << scale
    r = math.isqrt(big)
    return float(Fraction(2 * r + (r * r != big), 2) / 2 ** ((k + scale) // 2))


def _hard_square_roots():
    """Squares of floats and their neighbours (results at exact halfway points are impossible, near them not), the
    extremes of the range, subnormals, and random values."""
    rnd = random.Random(13)
    out = [5e-324, 1e-310, 2.2250738585072014e-308, 1.7976931348623157e308, 1.0, 2.0, 3.0, 0.5, 94.2603101293582]
    for _ in range(3000):
        y = rnd.uniform(1, 2) * 2.0 ** rnd.randint(-500, 500)
        for v in (y * y, math.nextafter(y * y, 0), math.nextafter(y * y, math.inf)):
            out.append(v)
        mid = (y + math.nextafter(y, math.inf)) / 2  # rounded: its square is near a rounding boundary of sqrt
        out.append(mid * mid)
        out.append(rnd.uniform(0, 1000))
        out.append(rnd.random() * 2.0 ** rnd.randint(-1074, 1023))
    return [v for v in out if 0 < v < math.inf]


def test_sqrt_rn_is_correctly_rounded_in_both_backends():
    values = _hard_square_roots()
    truth = [_sqrt_truth(v) for v in values]
    ref = [RL._sqrt_rn(v) for v in values]
    host = [TL._sqrt_rn_host(v) for v in values]
    got = TL._sqrt_rn(torch.tensor(values, dtype=torch.float64)).tolist()
    for name, result in (("reference", ref), ("torch host", host), ("torch vectorized", got)):
        bad = [
            (v, t, r)
            for v, t, r in zip(values, truth, result, strict=True)
            if struct.pack("<d", t) != struct.pack("<d", r)
        ]
        assert not bad, f"{name}: {len(bad)} of {len(values)} wrong, first {bad[0]}"
    assert TL._sqrt_rn(torch.tensor([math.inf], dtype=torch.float64)).item() == math.inf


# ---- peers as oracles --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("forced", ["proof", "bins"])
def test_every_route_gives_the_reference_bits_on_drawn_rows(forced):
    """Rows drawn over float64's whole range (zeros of both signs, subnormals, cancelling pairs, values near
    `SUM_SAFE` and past it), summed by one route forced everywhere, then multiplied as matrices: the reference's
    bits. The proof route hands what it cannot settle to the bins, so this also checks that hand-over."""

    @settings(max_examples=60, deadline=None)
    @given(
        hnp.arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(0, 30)), elements=S.exact_values("float64")),
        st.sampled_from([np.float32, np.float64]),
    )
    def check(x, dtype):
        with np.errstate(over="ignore"):
            y = x.astype(dtype)
        y = np.where(np.isfinite(y), y, dtype(1.0)).astype(dtype)
        with pytest.MonkeyPatch.context() as m:
            for name, value in ROUTES[forced].items():
                m.setattr(TX, name, value)
            _same(RE.exact_sum(y, 1), TE.exact_sum(torch.from_numpy(y), 1), f"{forced} sum")
            _same(RE.exact_sum(y, 1), TX.sum_unchecked(torch.from_numpy(y), 1), f"{forced} unchecked sum")
            if y.shape[1]:
                _same(RE.exact_matmul(y, y.T), TE.exact_matmul(torch.from_numpy(y), torch.from_numpy(y.T.copy())))
                _same(RE.exact_gram(y), TE.exact_gram(torch.from_numpy(y)), f"{forced} gram")

    check()


@pytest.mark.parametrize("level", [1, 2])
def test_rows_the_proof_leaves_open_go_to_the_bins(level, monkeypatch):
    """`proven_sums` certifies in two levels and leaves the rest to the bins: refusing every certificate of one
    level (or both) must change no bit, and the second level must settle what the first leaves on a tie."""
    real = TX.certify
    calls = []

    def refuse(p, q, bound):
        calls.append(1)
        value, ok = real(p, q, bound)
        return value, ok & (len(calls) % 2 == 0 if level == 1 else torch.zeros_like(ok))

    monkeypatch.setattr(TX, "SMALL_CPU", -1)
    monkeypatch.setattr(TX, "certify", refuse)
    rng = np.random.default_rng(21)
    x = _adversarial(rng, 40 * 50).reshape(40, 50)
    _same(RE.exact_sum(x, 1), TE.exact_sum(torch.from_numpy(x), 1), f"level {level} refused")
    a = rng.standard_normal((1, 12, 32)).astype(np.float32)
    b = rng.standard_normal((1, 32, 12)).astype(np.float32)
    _same(RE.exact_matmul(a, b), TE.exact_matmul(torch.from_numpy(a), torch.from_numpy(b)), "products on ties")
    monkeypatch.setattr(TX, "certify", real)
    # dot products of 32 float32 terms: exact sums of 48-bit products land on float64 ties; level 2 settles them
    terms = (torch.from_numpy(a[0]).double()[:, None, :] * torch.from_numpy(b[0]).double().T[None]).reshape(-1, 32)
    value, ok = TX.proven_sums(terms)
    assert bool(ok.all()), f"{int((~ok).sum())} of {ok.numel()} rows left open"
    _same(RE.exact_matmul(a, b)[0].reshape(-1), value, "settled by the proof")


@given(hnp.arrays(np.float64, st.integers(0, 40), elements=S.exact_values("float64")))
def test_exact_sum_agrees_with_fsum_wherever_fsum_answers(x):
    """math.fsum is correctly rounded too (Shewchuk's algorithm) but raises OverflowError when a partial sum
    overflows, which exact_sum handles; where fsum answers with a nonzero value, the bits agree. (A zero differs on
    purpose: fsum keeps -0.0 for [-0.0], exact_sum pins +0.0.)"""
    try:
        expected = math.fsum(x.tolist())
    except OverflowError:
        return
    if expected != 0:
        _same(np.array(expected), TE.exact_sum(torch.from_numpy(x)), "torch vs fsum")
        _same(np.array(expected), RE.exact_sum(x), "reference vs fsum")


def test_the_pairwise_tree_loses_what_the_exact_sum_keeps():
    """The motivating cases of the issue: the canonical tree (zero-padded, a[:h] + a[h:]) rounds 2**53 + 1 and
    1e308 + 1 before the large terms cancel; the exact sum does not."""
    from reference.core.reduce import tree_sum

    for values in ([2.0**53, -(2.0**53), 1.0], [1e308, -1e308, 1.0]):
        x = np.array(values)
        assert tree_sum(x) == 0.0 and RE.exact_sum(x) == 1.0
        assert TE.exact_sum(torch.from_numpy(x)).item() == 1.0
