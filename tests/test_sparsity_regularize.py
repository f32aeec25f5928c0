"""Peers and exact cross-checks for L1 / group-lasso regularization, network slimming, schedules, iterative pruning.

Oracles: torch.nn.utils.prune applied twice (iterative pruning of the remaining weights), the network-slimming
authors' `updateBN` and `vggprune.py` selection (re-typed here from github.com/Eric-mingjie/network-slimming),
`torch.nn.functional.softshrink`, torch autograd of the textbook penalties, exact rational arithmetic for the
schedules. Where a peer differs by design (signed zeros, the authors' threshold count), the difference is asserted
on a fixed input.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from torch import nn
from torch.nn.utils import prune

import reference as R
import torch_backend as T
from spec import strategies as S
from tests.peer_record import observe

F32 = np.float32


def _bits(a):
    return np.ascontiguousarray(a, dtype=F32).view(np.uint32)


def _t(a):
    return torch.from_numpy(np.array(a, dtype=F32))


@st.composite
def _distinct(draw, n):
    """n float32 values with pairwise distinct, nonzero magnitudes: a permutation of 1..n, random signs, a factor."""
    perm = np.array(draw(st.permutations(range(1, n + 1))), dtype=np.float64)
    signs = np.where(np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool), -1.0, 1.0)
    c = draw(st.floats(2.0**-10, 2.0**10, width=32))
    return (perm * signs * c).astype(F32)


_moderate = st.floats(-1e3, 1e3, width=32)


# ------------------------------------------------------------------------------------------------------------
# Iterative pruning: torch.nn.utils.prune applied twice counts the remaining weights
# ------------------------------------------------------------------------------------------------------------


class _Holder(nn.Module):
    def __init__(self, w):
        super().__init__()
        self.weight = nn.Parameter(torch.from_numpy(np.array(w, dtype=F32)))


@given(st.integers(1, 40).flatmap(_distinct), S.fractions_for(40), S.fractions_for(40))
def test_prune_remaining_mask_twice_definition_and_l1_unstructured_twice(w, a1, a2):
    ours = R.prune_remaining_mask(w, R.prune_remaining_mask(w, np.ones(w.shape, bool), a1), a2)
    mine = T.prune_remaining_mask(_t(w), T.prune_remaining_mask(_t(w), torch.ones(w.shape, dtype=torch.bool), a1), a2)
    np.testing.assert_array_equal(mine.numpy(), ours)
    # the definition: round 1 keeps the n - rne(a1 n) largest |w|; round 2 prunes rne(a2 m) more of the m left
    n = w.size
    kept1 = n - round(float(a1) * n)
    kept2 = kept1 - round(float(a2) * kept1)
    order = np.argsort(-np.abs(w).reshape(-1), kind="stable")  # distinct magnitudes: no ties
    want = np.zeros(n, bool)
    want[order[:kept2]] = True
    np.testing.assert_array_equal(ours.reshape(-1), want)
    # torch.nn.utils.prune applied twice (a PruningContainer: a2 of the still unpruned), recorded
    m = _Holder(w)
    prune.l1_unstructured(m, "weight", amount=float(a1))
    prune.l1_unstructured(m, "weight", amount=float(a2))
    observe("torch", m.weight_mask.bool().numpy() != ours, what="l1_unstructured twice, distinct magnitudes")


def test_remaining_and_total_rounds_count_differently():
    """The docstring example: two rounds of 0.5 on 10 weights prune 5 + rne(2.5) = 7, not rne(7.5) = 8."""
    w = np.arange(1, 11, dtype=F32)
    m = np.ones(10, bool)
    for _ in range(2):
        m = R.prune_remaining_mask(w, m, 0.5)
    assert int((~m).sum()) == 7
    assert R.iterative_sparsities(0.5, 2) == [0.5, 0.75] and R.pruned_count(0.75, 10) == 8
    with pytest.raises(ValueError, match="prunes 5 more, but only 3 remain unpruned"):
        R.prune_total_mask(w, m, 0.5)


@given(S.float32_arrays(max_dims=2, max_side=6), st.lists(st.floats(0, 1), min_size=1, max_size=4), st.booleans())
def test_rounds_prune_the_smallest_overall(w, fractions, total):
    """Rounds nest: after them the mask is magnitude_mask_by_count of the total pruned, ties included."""
    mask = np.ones(w.shape, bool)
    for f in fractions:
        if total:
            kept = int(mask.sum())
            f = min(f, kept / w.size) if w.size else 0.0
            if round(f * w.size) > kept:
                f = 0.0
            mask = R.prune_total_mask(w, mask, f)
        else:
            mask = R.prune_remaining_mask(w, mask, f)
    np.testing.assert_array_equal(mask, R.magnitude_mask_by_count(w, int((~mask).sum())))


# ------------------------------------------------------------------------------------------------------------
# Network slimming: the authors' updateBN and vggprune.py
# ------------------------------------------------------------------------------------------------------------


def _update_bn(grads, gammas, s):
    """The authors' `updateBN`: m.weight.grad.data.add_(args.s * torch.sign(m.weight.data)) on BatchNorm2d."""
    out = []
    for g, gamma in zip(grads, gammas, strict=True):
        bn = nn.BatchNorm2d(gamma.size)
        with torch.no_grad():
            bn.weight.copy_(_t(gamma))
        bn.weight.grad = _t(g)
        bn.weight.grad.data.add_(s * torch.sign(bn.weight.data))
        out.append(bn.weight.grad.numpy().copy())
    return out


@st.composite
def _bn_layers(draw):
    sizes = draw(st.lists(st.integers(1, 8), min_size=1, max_size=4))
    elements = st.one_of(_moderate, st.sampled_from([0.0, -0.0, 1.0, -1.0]))
    gammas = [draw(hnp.arrays(F32, n, elements=elements)) for n in sizes]
    grads = [draw(hnp.arrays(F32, n, elements=_moderate.filter(lambda v: not (v == 0 and math.copysign(1, v) < 0))))
             for n in sizes]  # fmt: skip
    return grads, gammas


@given(_bn_layers(), st.one_of(st.floats(1e-8, 1e3), st.sampled_from([1e-4, 1e-5, 0.1, 0.5])))
def test_slimming_penalty_grad_matches_update_bn(layers, lam):
    grads, gammas = layers
    theirs = _update_bn(grads, gammas, lam)
    ours = R.slimming_penalty_grad(grads, gammas, lam)
    mine = T.slimming_penalty_grad([_t(g) for g in grads], [_t(x) for x in gammas], lam)
    for t_, o, m in zip(theirs, ours, mine, strict=True):
        np.testing.assert_array_equal(_bits(t_), _bits(o))
        np.testing.assert_array_equal(_bits(m.numpy()), _bits(o))


def test_slimming_penalty_grad_diverges_from_update_bn_on_signed_zeros():
    """lam = 0, gamma < 0, grad = -0.0: updateBN adds 0.0 * -1 = -0.0 and keeps -0.0; we add +0.0 and give +0.0."""
    grads, gammas = [F32([-0.0, -0.0])], [F32([-2.0, 3.0])]
    theirs = _update_bn(grads, gammas, 0.0)[0]
    ours = R.slimming_penalty_grad(grads, gammas, 0.0)[0]
    assert _bits(theirs).tolist() == [0x80000000, 0]
    assert _bits(ours).tolist() == [0, 0]


def _vggprune_masks(gammas, percent):
    """The authors' selection in vggprune.py: threshold at sorted |gamma|[int(total * percent)], keep |gamma| > it."""
    bn = torch.cat([_t(g).abs() for g in gammas])
    y, _ = torch.sort(bn)
    thre = y[int(bn.numel() * percent)]
    return [_t(g).abs().gt(thre).numpy() for g in gammas]


@given(
    st.lists(st.integers(1, 6), min_size=1, max_size=4).flatmap(
        lambda sizes: st.tuples(st.just(sizes), _distinct(sum(sizes)))
    ),
    st.floats(0, 0.999),
)
def test_slimming_masks_match_vggprune_up_to_the_count(layers, percent):
    """On distinct magnitudes the authors prune floor(percent * N) + 1 channels, with the same global ranking."""
    sizes, flat = layers
    bounds = np.cumsum([0] + sizes)
    gammas = [flat[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    theirs = _vggprune_masks(gammas, percent)
    n = len(flat)
    count = int(n * percent) + 1
    ratio = count / n  # rne(ratio * n) == count
    assert R.pruned_count(ratio, n) == count
    ours = R.slimming_masks(gammas, ratio, min_channels=0)
    mine = T.slimming_masks([_t(g) for g in gammas], ratio, min_channels=0)
    for t_, o, m in zip(theirs, ours, mine, strict=True):
        np.testing.assert_array_equal(t_, o)
        np.testing.assert_array_equal(m.numpy(), o)


def test_slimming_masks_diverge_from_vggprune():
    """percent=0.5 of 4 distinct channels: the authors prune 3 (one past the half), we prune 2; on ties at the
    threshold they prune every tie (here a whole layer), we prune by index and keep min_channels per layer."""
    gammas = [F32([0.1, 0.2]), F32([0.3, 0.05])]
    theirs = _vggprune_masks(gammas, 0.5)
    ours = R.slimming_masks(gammas, 0.5)
    assert sum(int((~m).sum()) for m in theirs) == 3 and sum(int((~m).sum()) for m in ours) == 2
    ties = [F32([1.0, 1.0]), F32([1.0, 2.0])]
    theirs = _vggprune_masks(ties, 0.25)  # threshold = 1.0: every 1.0 goes, the first layer entirely
    assert [m.tolist() for m in theirs] == [[False, False], [False, True]]
    ours = R.slimming_masks(ties, 0.25)
    assert [m.tolist() for m in ours] == [[True, True], [False, True]]  # the last of the tied 1.0s


# ------------------------------------------------------------------------------------------------------------
# L1: softshrink and torch autograd of the textbook penalty
# ------------------------------------------------------------------------------------------------------------


@given(S.float32_arrays(max_dims=2), st.one_of(S.float32_values(max_abs=1e30).map(abs), st.just(0.0)))
def test_l1_proximal_matches_softshrink_except_signed_zeros(w, tau):
    tau = float(F32(tau))
    theirs = torch.nn.functional.softshrink(_t(w), tau).numpy()
    ours = R.l1_proximal(w, 1.0, tau)
    mine = T.l1_proximal(_t(w), 1.0, tau).numpy()
    np.testing.assert_array_equal(_bits(mine), _bits(ours))
    assert np.array_equal(theirs, ours), "values differ"  # == treats -0.0 and +0.0 as equal
    nonzero = ours != 0
    np.testing.assert_array_equal(_bits(theirs[nonzero]), _bits(ours[nonzero]))


def test_l1_proximal_diverges_from_softshrink_on_signed_zeros():
    """softshrink keeps the sign of a thresholded negative weight (-0.0); the proximal step gives +0.0."""
    w = F32([-0.5, -0.25, -0.0, 0.25])
    theirs = torch.nn.functional.softshrink(_t(w), 0.5).numpy()
    assert _bits(theirs).tolist() == [0x80000000, 0x80000000, 0x80000000, 0]
    assert _bits(R.l1_proximal(w, 1.0, 0.5)).tolist() == [0, 0, 0, 0]


@given(S.float32_arrays(elements=_moderate), st.floats(1e-30, 1e3))
def test_l1_vjp_matches_autograd_of_lam_abs_sum(w, lam):
    """torch autograd of `lam * w.abs().sum()` in float32 is +-fl32(lam) by the sign, 0 at zeros: the same bits."""
    leaf = _t(w).requires_grad_(True)
    (lam * leaf.abs().sum()).backward()
    theirs = leaf.grad.numpy()
    ours = R.l1_penalty_vjp(F32(1.0), w, lam)
    np.testing.assert_array_equal(_bits(theirs), _bits(ours))
    np.testing.assert_array_equal(_bits(R.l1_subgradient(w, lam)), _bits(ours))
    mine = T.l1_penalty_vjp(torch.tensor(1.0), _t(w), lam)
    np.testing.assert_array_equal(_bits(mine.numpy()), _bits(ours))
    np.testing.assert_array_equal(_bits(T.l1_subgradient(_t(w), lam).numpy()), _bits(ours))


def test_l1_vjp_diverges_from_autograd_at_lam_zero():
    """lam = 0: autograd of `lam * w.abs().sum()` gives 0 * sign(w), -0.0 for a negative weight; we give +0.0."""
    leaf = _t([-2.0, 3.0]).requires_grad_(True)
    (0.0 * leaf.abs().sum()).backward()
    assert _bits(leaf.grad.numpy()).tolist() == [0x80000000, 0]
    assert _bits(R.l1_penalty_vjp(F32(1.0), F32([-2.0, 3.0]), 0.0)).tolist() == [0, 0]


@given(st.lists(S.float32_arrays(max_dims=2), min_size=1, max_size=3), st.floats(0, 1e3))
def test_l1_penalty_is_the_exact_sum_rounded(ws, lam):
    """The tree sum of float32 magnitudes in float64 is within half an ulp of float64 of the exact sum (fsum) here,
    so the float32 penalty is the exact value rounded, or its float32 neighbour."""
    exact = math.fsum(abs(float(v)) for w in ws for v in w.reshape(-1))
    with np.errstate(over="ignore"):
        expect = F32(lam * exact)
        got = R.l1_penalty(ws, lam)
    assert got == expect or got == np.nextafter(expect, F32(np.inf)) or got == np.nextafter(expect, F32(0))
    for lam_ in (0.0, lam):
        same = T.l1_penalty([_t(w) for w in ws], lam_).numpy()
        np.testing.assert_array_equal(_bits(same), _bits(R.l1_penalty(ws, lam_)))


# ------------------------------------------------------------------------------------------------------------
# Group lasso: torch autograd of the textbook penalty and a float64 proximal step
# ------------------------------------------------------------------------------------------------------------


@st.composite
def _nonzero_groups(draw):
    shape = draw(S.shapes(min_dims=1, max_dims=3, min_side=1, max_side=5))
    w = draw(hnp.arrays(F32, shape, elements=st.floats(0.5, 4, width=32)))
    signs = draw(hnp.arrays(np.bool_, shape))
    return np.where(signs, -w, w).astype(F32), draw(st.integers(-len(shape), len(shape) - 1))


@given(_nonzero_groups(), st.floats(0.01, 10))
def test_group_lasso_vjp_matches_autograd_of_norms(case, lam):
    w, axis = case
    leaf = torch.from_numpy(w.astype(np.float64)).requires_grad_(True)
    rows = torch.movedim(leaf, axis, 0).reshape(w.shape[axis], -1)
    (lam * torch.linalg.vector_norm(rows, dim=1).sum()).backward()
    ours = R.group_lasso_penalty_vjp(F32(1.0), w, lam, axis=axis)
    np.testing.assert_allclose(ours, leaf.grad.numpy(), rtol=2e-6, atol=0)
    mine = T.group_lasso_penalty_vjp(torch.tensor(1.0), _t(w), lam, axis=axis).numpy()
    np.testing.assert_array_equal(_bits(mine), _bits(ours))
    value = float(lam * torch.linalg.vector_norm(rows.detach(), dim=1).sum())
    np.testing.assert_allclose(R.group_lasso_penalty(w, lam, axis=axis), value, rtol=2e-6)


@given(_nonzero_groups(), st.floats(0, 20))
def test_group_lasso_proximal_is_close_to_float64(case, tau):
    w, axis = case
    tau = float(F32(tau))
    a = np.moveaxis(w.astype(np.float64), axis, 0)
    norms = np.sqrt((a.reshape(a.shape[0], -1) ** 2).sum(axis=1)).reshape((-1,) + (1,) * (w.ndim - 1))
    expect = np.moveaxis(a * np.maximum(0.0, 1.0 - tau / norms), 0, axis)
    ours = R.group_lasso_proximal(w, 1.0, tau, axis=axis)
    np.testing.assert_allclose(ours, expect, rtol=1e-5, atol=8 * tau * 2.0**-24)


# ------------------------------------------------------------------------------------------------------------
# Schedules: exact rational arithmetic, the iterative relation, monotone scans
# ------------------------------------------------------------------------------------------------------------


@given(
    st.integers(1, 200),
    st.integers(1, 7),
    st.integers(0, 50),
    st.data(),
)
def test_agp_is_the_rounded_rational_formula(n, dt, t0, data):
    s_i = data.draw(st.sampled_from([0.0, 0.1, 0.5]), label="s_i")
    s_f = data.draw(st.sampled_from([0.5, 0.9, 0.95, 1.0]), label="s_f")
    t = data.draw(st.integers(0, t0 + (n + 1) * dt), label="t")
    got = R.agp_sparsity(t, s_i=s_i, s_f=s_f, t0=t0, n=n, dt=dt)
    k = min(max((t - t0) // dt, 0), n)
    exact = Fraction(s_f) + (Fraction(s_i) - Fraction(s_f)) * (1 - Fraction(k, n)) ** 3
    assert abs(Fraction(got) - exact) <= 8 * Fraction(2) ** -53, (got, float(exact))
    assert got == T.agp_sparsity(t, s_i=s_i, s_f=s_f, t0=t0, n=n, dt=dt)


@given(st.floats(0.01, 0.5), st.integers(1, 20))
def test_exponential_schedule_is_iterative_pruning_of_the_remaining(f, n):
    """From s_i = 0, step k of the geometric schedule to s_n is s_k: 1 - (1 - f)**k (to float64 rounding)."""
    s = R.iterative_sparsities(f, n)
    for k in range(n + 1):
        got = R.exponential_sparsity(k, s_i=0.0, s_f=s[-1], t0=0, n=n)
        assert abs(got - (s[k - 1] if k else 0.0)) <= 1e-9


@pytest.mark.parametrize("fn", ["agp_sparsity", "linear_sparsity", "cosine_sparsity", "exponential_sparsity"])
@pytest.mark.parametrize(("s_i", "s_f"), [(0.0, 0.9), (0.95, 0.05), (0.3, 0.30000000000000004)])
def test_schedules_are_monotone_over_every_step(fn, s_i, s_f):
    """Every pruning step of n = 5000 (the claim in the docstrings; libm cos and pow included)."""
    n = 5_000
    values = [getattr(R, fn)(k, s_i=s_i, s_f=s_f, t0=1, n=n) for k in range(n + 3)]
    steps = np.diff(np.array(values))
    assert np.all(steps >= 0) if s_f >= s_i else np.all(steps <= 0)
    assert values[0] == values[1] == s_i and values[-1] == s_f


def test_schedules_match_across_backends_on_a_grid():
    for fn in ("agp_sparsity", "linear_sparsity", "cosine_sparsity", "exponential_sparsity"):
        for t in range(0, 130, 3):
            kw = {"s_i": 0.05, "s_f": 0.875, "t0": 7, "n": 11, "dt": 10}
            a, b = getattr(R, fn)(t, **kw), getattr(T, fn)(t, **kw)
            assert type(a) is type(b) is float and a.hex() == b.hex()
