"""Saliency scores, lottery rounds and sparse formats beyond the generic tests: peers, enumerations, divergences.

Peers: the Wanda authors' ranking (`torch.sort(stable=True)` of |W| * sqrt(scaler_row), `int()` count), the FPGM
authors' `scipy.spatial.distance.cdist` + `argsort`, the Taylor formula in torch float32, iterative
`torch.nn.utils.prune`, `scipy.sparse` and `torch.Tensor.to_sparse_csr`. Where a peer's rule is known to differ
(ties, truncated counts, dropped zeros) the difference is asserted on a fixed input.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
import scipy.sparse
import scipy.spatial.distance
import torch
from hypothesis import assume, given
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils import prune

import reference as R
import torch_backend as T
from spec import strategies as S
from tests.peer_record import observe

F32 = np.float32


def _t(a):
    return torch.from_numpy(np.array(a, copy=True))


def _bits(a):
    return np.ascontiguousarray(a, dtype=F32).view(np.uint32)


@st.composite
def _distinct(draw, shape):
    """float32 values with pairwise distinct magnitudes: a permutation of 1..n with random signs."""
    n = math.prod(shape)
    perm = np.array(draw(st.permutations(range(1, n + 1))), dtype=np.float64)
    signs = np.where(np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool), -1.0, 1.0)
    return (perm * signs).astype(F32).reshape(shape)


# ------------------------------------------------------------------------------------------------------------
# score_mask is magnitude pruning's rule
# ------------------------------------------------------------------------------------------------------------


@given(S.magnitude_cases())
def test_score_mask_of_abs_is_magnitude_mask(case):
    w, sparsity = case.args
    expected = R.magnitude_mask(w, sparsity)
    np.testing.assert_array_equal(R.score_mask(np.abs(w), sparsity), expected)
    np.testing.assert_array_equal(T.score_mask(torch.abs(_t(w)), sparsity).numpy(), expected)


# ------------------------------------------------------------------------------------------------------------
# Wanda: the authors' ranking
# ------------------------------------------------------------------------------------------------------------


def _wanda_authors(w, x, sparsity):
    """locuslab/wanda: scaler_row = ||X_j||^2 / nsamples (one batch), prune int(in * sparsity) by a stable sort."""
    wt, xt = _t(w), _t(x)
    scaler_row = torch.norm(xt.t(), p=2, dim=1) ** 2 / xt.shape[0]
    metric = torch.abs(wt) * torch.sqrt(scaler_row.reshape((1, -1)))
    pruned = torch.zeros_like(metric, dtype=torch.bool)
    order = torch.sort(metric, dim=-1, stable=True)[1]
    pruned.scatter_(1, order[:, : int(metric.shape[1] * sparsity)], True)
    return ~pruned.numpy()


@given(st.integers(1, 5), st.integers(1, 8), st.integers(1, 4), st.data())
def test_wanda_mask_matches_the_authors_ranking_without_ties(out, n_in, tokens, data):
    # one nonzero token per column with distinct integer norms: every step of the authors' float32 formula is exact
    x = np.zeros((tokens, n_in), F32)
    x[data.draw(st.integers(0, tokens - 1), label="token")] = data.draw(st.permutations(range(1, n_in + 1)))
    w = data.draw(_distinct((out, n_in)), label="w")
    k = data.draw(st.integers(0, n_in), label="pruned per row")
    sparsity = k / n_in  # int() and rne agree on an exact count
    scores = R.wanda_scores(w, x)
    assume(all(np.unique(row).size == n_in for row in scores))
    ours = R.wanda_mask(w, x, sparsity)
    np.testing.assert_array_equal(ours, _wanda_authors(w, x, sparsity))
    np.testing.assert_array_equal(T.wanda_mask(_t(w), _t(x), sparsity).numpy(), ours)


def test_wanda_diverges_from_the_authors_on_ties_and_counts():
    # all scores tie: the authors' ascending stable sort prunes the lowest indices, pqref keeps them
    w = np.ones((1, 4), F32)
    x = np.ones((1, 4), F32)
    assert _wanda_authors(w, x, 0.5).tolist() == [[False, False, True, True]]
    assert R.wanda_mask(w, x, 0.5).tolist() == [[True, True, False, False]]
    # counts: int(5 * 0.7) = 3 pruned by the authors, rne(3.5) = 4 here
    w = np.arange(1, 6, dtype=F32).reshape(1, 5)
    x = np.ones((1, 5), F32)
    assert (~_wanda_authors(w, x, 0.7)).sum() == 3
    assert (~R.wanda_mask(w, x, 0.7)).sum() == 4


def test_wanda_ranks_within_rows_not_globally():
    w = np.array([[1, 2], [30, 40]], F32)
    x = np.ones((1, 2), F32)
    np.testing.assert_array_equal(R.wanda_mask(w, x, 0.5), [[False, True], [False, True]])
    np.testing.assert_array_equal(R.score_mask(R.wanda_scores(w, x), 0.5), [[False, False], [True, True]])


# ------------------------------------------------------------------------------------------------------------
# FPGM: the authors' cdist + argsort; the exactness claim of the float64 differences
# ------------------------------------------------------------------------------------------------------------


@given(st.integers(2, 6), st.integers(1, 5), st.data())
def test_fpgm_matches_cdist_argsort_where_sums_are_distinct(c, d, data):
    f = data.draw(
        st.lists(st.lists(st.integers(-20, 20), min_size=d, max_size=d), min_size=c, max_size=c), label="filters"
    )
    w = np.array(f, dtype=F32)
    sums = np.sum(np.abs(scipy.spatial.distance.cdist(w, w, "euclidean")), axis=0)  # the authors' float64 sums
    ours = R.fpgm_scores(w)
    np.testing.assert_allclose(ours, sums, rtol=2e-7, atol=0)
    np.testing.assert_array_equal(_bits(T.fpgm_scores(_t(w)).numpy()), _bits(ours))
    gaps = np.diff(np.sort(sums))
    if gaps.size and gaps.min() < 1e-3 * max(1.0, sums.max()):
        return  # near-ties: float32 rounding may reorder them
    k = data.draw(st.integers(0, c), label="pruned")
    authors = np.ones(c, dtype=bool)
    authors[sums.argsort()[:k]] = False
    np.testing.assert_array_equal(R.fpgm_mask(w, k / c)[:, 0], authors)


def test_fpgm_difference_is_exact_up_to_29_exponent_steps():
    """The docstring's claim: f_i - f_j in float64 is exact when the binary exponents differ by at most 29 (the
    difference then spans at most 53 bits); at 30 apart it can be rounded."""
    rng = np.random.default_rng(0)
    for gap in range(0, 30):
        for _ in range(200):
            a = F32(rng.uniform(1, 2) * 2.0 ** rng.integers(-100, 100))
            b = F32(rng.uniform(1, 2) * 2.0 ** (math.frexp(float(a))[1] - 1 - gap)) * F32(rng.choice([-1, 1]))
            assert Fraction(float(a)) - Fraction(float(b)) == Fraction(np.float64(a) - np.float64(b))
    a, b = F32(1 + 2.0**-23), F32(2.0**-30 * (1 + 2.0**-23))  # bits 2^0 .. 2^-53: 54 of them
    assert Fraction(float(a)) - Fraction(float(b)) != Fraction(np.float64(a) - np.float64(b))


def test_fpgm_prunes_the_later_of_identical_filters():
    # sums: 12.14 (twin), 16.51, 12.14 (twin), 31.84: the twins are nearest the median, the later goes first
    w = np.array([[2, 2], [0, 1], [2, 2], [9, 9]], F32)
    scores = R.fpgm_scores(w)
    assert scores[0] == scores[2] < scores[1] < scores[3]
    assert R.fpgm_mask(w, 0.25)[:, 0].tolist() == [True, True, False, True]
    assert R.fpgm_mask(w, 0.5)[:, 0].tolist() == [False, True, False, True]
    authors = np.argsort(np.sum(scipy.spatial.distance.cdist(w, w), axis=0), kind="stable")[:1]
    assert authors.tolist() == [0], "a stable argsort, as the authors' code would with it, prunes the earlier twin"


# ------------------------------------------------------------------------------------------------------------
# Taylor: the formula in torch float32 agrees wherever every step is exact
# ------------------------------------------------------------------------------------------------------------


@given(st.integers(1, 5), st.integers(1, 6), st.data())
def test_taylor_matches_torch_float32_on_exact_inputs(c, d, data):
    ints = st.lists(st.integers(-64, 64), min_size=c * d, max_size=c * d)
    w = np.array(data.draw(ints), dtype=F32).reshape(c, d)
    g = np.array(data.draw(ints), dtype=F32).reshape(c, d)
    peer = (_t(w) * _t(g)).sum(dim=1).pow(2).numpy()  # NVlabs Taylor_pruning's (param * grad).sum(...).pow(2)
    np.testing.assert_array_equal(_bits(R.taylor_scores(w, g)), _bits(peer))
    np.testing.assert_array_equal(_bits(T.taylor_scores(_t(w), _t(g)).numpy()), _bits(peer))


def test_taylor_sums_in_float64_where_float32_cancels_badly():
    # float32 (2^24 + 1) - 2^24 loses the 1; the float64 tree sum keeps it
    w = np.array([[2.0**24, 1.0, -(2.0**24)]], F32)
    g = np.ones_like(w)
    assert (_t(w) * _t(g)).sum(dim=1).pow(2).item() in (0.0, 1.0)
    assert R.taylor_scores(w, g).tolist() == [1.0]


# ------------------------------------------------------------------------------------------------------------
# Lottery tickets: torch.nn.utils.prune applied iteratively is IMP without ties
# ------------------------------------------------------------------------------------------------------------


@given(st.integers(1, 40), st.sampled_from([0.2, 0.5, 0.3, 0.75]), st.integers(1, 4), st.data())
def test_imp_mask_definition_and_iterative_torch_prune(n, fraction, rounds, data):
    w = data.draw(_distinct((n,)), label="w")
    holder = nn.Module()
    holder.weight = nn.Parameter(_t(w))
    mask = np.ones(n, dtype=bool)
    order = np.argsort(-np.abs(w), kind="stable")  # distinct magnitudes: the survivors are always a prefix
    alive = n
    for _ in range(rounds):
        previous, mask = mask, R.imp_mask(w, mask, fraction)
        alive -= round(fraction * alive)  # the definition: rne(fraction * survivors) pruned per round
        want = np.zeros(n, bool)
        want[order[:alive]] = True
        np.testing.assert_array_equal(mask, want)
        np.testing.assert_array_equal(T.imp_mask(_t(w), _t(previous), fraction).numpy(), mask)
        prune.l1_unstructured(holder, "weight", amount=fraction)  # a fraction of the remaining weights: recorded
        observe("torch", holder.weight_mask.bool().numpy() != mask, what="l1_unstructured per IMP round")
    assert int(mask.sum()) == R.imp_schedule(n, fraction, rounds)[-1]


@given(st.integers(0, 10**6), st.floats(0, 1), st.integers(0, 30))
def test_imp_schedule_tracks_the_geometric_sparsity(n, fraction, rounds):
    counts = R.imp_schedule(n, fraction, rounds)
    assert counts == T.imp_schedule(n, fraction, rounds)
    for r, m in enumerate(counts):
        assert abs(m - n * (1 - fraction) ** r) <= 0.5 * r + 1e-6 * n, "each round rounds by at most 1/2"


def test_rewinding_to_step_k_is_passing_the_step_k_snapshot():
    w0 = np.array([0.5, -0.25, 1.0, -2.0], F32)
    wk = np.array([0.75, -0.5, 1.5, -1.0], F32)
    trained = np.array([3.0, -0.1, 2.0, -0.2], F32)
    mask = R.imp_mask(trained, np.ones(4, bool), 0.5)
    assert mask.tolist() == [True, False, True, False]
    assert R.lottery_rewind(w0, mask).tolist() == [0.5, 0.0, 1.0, 0.0]
    assert R.lottery_rewind(wk, mask).tolist() == [0.75, 0.0, 1.5, 0.0]
    assert _bits(R.lottery_rewind(w0, mask))[3] == 0, "pruned -2.0 becomes +0.0"


# ------------------------------------------------------------------------------------------------------------
# Sparse formats: every mask of up to 10 elements, peers, and the byte counts of the actual arrays
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", range(11))
def test_bitmask_round_trip_for_every_mask(n):
    w = np.array([(-1) ** i * (i + 0.5) for i in range(n)], F32)
    if n > 2:
        w[1], w[2] = F32(0.0), F32(-0.0)
    for bits in itertools.product([False, True], repeat=n):
        mask = np.array(bits, dtype=bool)
        packed, values = R.to_bitmask(w, mask)
        expected = [0] * ((n + 7) // 8)
        for i in np.flatnonzero(mask):
            expected[i // 8] |= 1 << (i % 8)
        assert packed.tolist() == expected
        tp, tv = T.to_bitmask(_t(w), _t(mask))
        assert np.array_equal(tp.numpy(), packed) and np.array_equal(_bits(tv.numpy()), _bits(values))
        dense, back = R.from_bitmask(packed, values, (n,))
        assert np.array_equal(_bits(dense), _bits(np.where(mask, w, F32(0)))) and np.array_equal(back, mask)


@given(S.to_csr_cases())
def test_csr_definition_and_peers_where_mask_is_nonzero(case):
    w, _ = case.args
    mask = w != 0
    indptr, indices, values = R.to_csr(w, mask)
    # the definition: row-major nonzeros, row pointers by cumulative count
    rows, cols = np.nonzero(mask)
    np.testing.assert_array_equal(indptr, np.concatenate([[0], np.cumsum(mask.sum(axis=1))]))
    np.testing.assert_array_equal(indices, cols)
    np.testing.assert_array_equal(_bits(values), _bits(w[rows, cols]))
    dense = R.from_csr(indptr, indices, values, w.shape)[0]
    np.testing.assert_array_equal(_bits(dense), _bits(np.where(mask, w, F32(0))))
    # torch's and scipy's CSR, recorded
    peer = _t(w).to_sparse_csr()
    observe("torch", not np.array_equal(peer.crow_indices().numpy(), indptr), what="to_sparse_csr crow_indices")
    observe("torch", not np.array_equal(peer.col_indices().numpy(), indices), what="to_sparse_csr col_indices")
    observe("torch", not np.array_equal(_bits(peer.values().numpy()), _bits(values)), what="to_sparse_csr values")
    observe("scipy", scipy.sparse.csr_matrix(w).toarray() != dense, what="csr_matrix round trip")


def test_csr_stores_every_masked_entry_peers_drop_stored_zeros():
    w = np.array([[0.0, 2.0], [-0.0, 3.0]], F32)
    mask = np.ones(w.shape, dtype=bool)  # every entry stored, zeros included
    indptr, indices, values = R.to_csr(w, mask)
    assert indptr.tolist() == [0, 2, 4] and _bits(values).tolist() == _bits(w.reshape(-1)).tolist()
    # recorded: torch 2.13 and scipy 1.16 and 1.17 keep 2 of the 4 masked entries (they drop zeros)
    observe("torch", _t(w).to_sparse_csr().values().numel() != 4, predicted=True, known={"2.13": 1}, what="zeros")
    observe(
        "scipy", scipy.sparse.csr_matrix(w).nnz != 4, predicted=True, known={"1.16": 1, "1.17": 1}, what="stored zeros"
    )


@given(S.to_csr_cases())
def test_byte_counts_equal_the_arrays_pqref_stores(case):
    w, mask = case.args
    nnz = int(mask.sum())
    indptr, indices, values = R.to_csr(w, mask)
    assert R.csr_bytes(w.shape, nnz, index_bits=64) == indptr.nbytes + indices.nbytes + values.nbytes
    packed, vals = R.to_bitmask(w, mask)
    assert R.bitmask_bytes(w.shape, nnz) == packed.nbytes + vals.nbytes
    assert R.dense_bytes(w.shape) == w.nbytes
    assert R.quantized_bytes(w.shape, 8, groups=0) == w.size


def test_csr_bytes_rejects_an_index_width_that_cannot_address_the_columns():
    assert R.csr_bytes((1, 256), 1, index_bits=8) == 2 + 1 + 4  # indptr, indices, one float32 value
    with pytest.raises(ValueError, match="index_bits 8 cannot hold the index 256"):
        R.csr_bytes((1, 257), 1, index_bits=8)
    with pytest.raises(ValueError, match="index_bits 8 cannot hold the index 256"):
        T.csr_bytes((1, 257), 1, index_bits=8)
