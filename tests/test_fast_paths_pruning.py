"""The torch backend's pruning fast paths, against the reference, bit for bit.

Pinned here: the arithmetic forms of the L1 steps (`sign(w) * c + 0` for `lam * sign(w)`, with `c = inf` as
`sign(w) * FLT_MAX * 2`; `w - clamp(w, -tau, tau)` for soft thresholding, `tau = 0` apart), the float32 threshold
of `magnitude_mask_by_threshold`, the in-place products and masks (`movement_scores`, `prune_*_mask`,
`apply_mask_vjp`), `to_bitmask`'s scan of 8-element runs, `group_scores`' narrow sort with its slice and scatter
layouts, and the one-element groups and filters of the group lasso and FPGM. Inputs hold both zeros, subnormals,
the float32 extremes, values one ulp around the thresholds and ties; parameters reach 0, subnormal results and
values past the float32 range; each size route is forced on both sides of its threshold.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import reference as R
import torch_backend as T
from torch_backend import _arrays
from torch_backend.pruning import _elementwise, groups, saliency, sparse_formats

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # overflow to inf, by design

F32 = np.float32
FMAX = float(np.finfo(F32).max)
TINY = float(np.finfo(F32).smallest_subnormal)


def _bits(a) -> bytes:
    a = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    return np.ascontiguousarray(a).view(np.uint8).tobytes() if a.dtype.kind == "f" else a.tobytes()


def _same(ref, got):
    ref, got = (list(ref), list(got)) if isinstance(ref, list | tuple) else ([ref], [got])
    assert len(ref) == len(got)
    for r, g in zip(ref, got, strict=True):
        r = np.asarray(r)
        assert isinstance(g, torch.Tensor) and g.dtype == torch.from_numpy(r).dtype
        assert tuple(g.shape) == r.shape
        assert _bits(g) == _bits(r)


def _t(a):
    return torch.from_numpy(np.array(a, copy=True))


def _adversarial(n, seed, around=()):
    """`n` float32 values: both zeros, subnormals, the extremes, the values `around` and their neighbours one ulp
    away (of both signs), ties, and a spread over many exponents."""
    rng = np.random.default_rng(seed)
    special = [0.0, -0.0, TINY, -TINY, 2 * TINY, 1e-40, -1e-40, 1.1754944e-38, FMAX, -FMAX, 1.0, -1.0, 0.5, 2.0]
    base = np.float32(special + [a for v in around for a in (v, -v)])
    pool = np.concatenate([base, np.nextafter(base, F32(np.inf)), np.nextafter(base, F32(-np.inf))])
    pool = pool[np.isfinite(pool)]
    spread = (rng.standard_normal(n) * 2.0 ** rng.integers(-140, 120, n)).astype(F32)
    x = np.where(rng.random(n) < 0.5, rng.choice(pool, n), spread).astype(F32)
    x[: len(pool)] = pool[:n]
    return x


# ---- the host-side float32 values ------------------------------------------------------------------------------


def test_float32_value_and_float32_below_match_numpy():
    rng = np.random.default_rng(0)
    edges = [0.0, -0.0, TINY / 2, TINY * 0.75, FMAX, 3.4028235677973366e38, 3.4028235677973362e38, 1e39, 1e300]
    edges += [float(np.nextafter(np.float64(e), np.inf)) for e in edges] + [2.0**128 - 2.0**103]
    xs = edges + list(rng.random(500) * 10.0 ** rng.integers(-50, 40, 500))
    for x in xs:
        with np.errstate(over="ignore"):
            want = float(np.float64(x).astype(F32))
        got = _elementwise.float32_value(x)
        assert np.float64(got).tobytes() == np.float64(want).tobytes(), x
        if x >= 0:
            d = _elementwise.float32_below(x)
            assert np.float32(d) == d and d <= x
            assert float(np.nextafter(F32(d), F32(np.inf))) > x or d == FMAX


# ---- L1: subgradient, its VJP, slimming, proximal step ---------------------------------------------------------

LAMS = [0.0, -0.0, 1e-46, 1e-45, 3e-39, 0.1, 1.0, 0.75, FMAX, 3.4028235677973362e38, 3.4028235677973366e38, 1e39]


@pytest.mark.parametrize("lam", LAMS)
def test_l1_subgradient_matches_the_reference(lam):
    w = _adversarial(4099, seed=1)
    _same(R.l1_subgradient(w, lam), T.l1_subgradient(_t(w), lam))


@pytest.mark.parametrize("grad", [1.0, -1.0, 0.0, -0.0, 2.5, -3e38, 1e-40])
@pytest.mark.parametrize("lam", [0.0, 1.0, 0.1, 1e10, 1e-300])
@pytest.mark.parametrize("autograd", [False, True])
def test_l1_penalty_vjp_matches_the_reference(grad, lam, autograd):
    ws = [_adversarial(1031, seed=2), _adversarial(7, seed=3)]
    g = np.asarray(F32(grad))
    want = R.l1_penalty_vjp(g, ws, lam)
    if autograd:
        with _arrays.vjps_by_autograd():
            got = T.l1_penalty_vjp(_t(g), [_t(w) for w in ws], lam)
    else:
        got = T.l1_penalty_vjp(_t(g), [_t(w) for w in ws], lam)
    _same(want, got)


def test_l1_penalty_backward_with_a_nan_cotangent_takes_the_where_formula():
    w = _t(_adversarial(257, seed=4)).requires_grad_(True)
    (grad,) = torch.autograd.grad(T.l1_penalty(w, 0.5), w, torch.tensor(float("nan")))
    zero = w.detach() == 0
    assert bool(torch.isnan(grad[~zero]).all())
    assert _bits(grad[zero]) == _bits(torch.zeros(int(zero.sum())))


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), 0.0, -0.0, -2.5, TINY, -FMAX])
def test_signed_equals_the_where_formula(value):
    w = _t(_adversarial(515, seed=5))
    c = torch.tensor(value, dtype=torch.float32)
    old = torch.where(w > 0, c, -c)
    old = torch.where((w == 0) | (old == 0), 0.0, old)
    assert _bits(_elementwise.signed(w, value, c)) == _bits(old)


@pytest.mark.parametrize("lam", LAMS)
def test_slimming_penalty_grad_matches_the_reference(lam):
    gammas = [_adversarial(2053, seed=6), _adversarial(5, seed=7), np.float32([-0.0, 0.0, -0.0, 1.0])]
    grads = [_adversarial(2053, seed=8), np.float32([-0.0, 0.0, FMAX, -1e-45, 3.0]), np.float32([-0.0] * 4)]
    _same(R.slimming_penalty_grad(grads, gammas, lam), T.slimming_penalty_grad([_t(g) for g in grads],
          [_t(g) for g in gammas], lam))  # fmt: skip


@pytest.mark.parametrize(
    ("lr", "lam"),
    [(0.0, 1.0), (-0.0, 1.0), (1.0, 0.0), (1e-30, 1e-30), (1.0, 1e-45), (1.0, 3e-39), (0.5, 1.0), (1.0, 0.1),
     (1.0, FMAX), (1e20, 1e20), (1.0, 2.0 ** -126)],
)  # fmt: skip
def test_l1_proximal_matches_the_reference(lr, lam):
    tau = float(np.float64(lr * lam).astype(F32)) if abs(lr * lam) < 1e38 else FMAX
    w = _adversarial(4099, seed=9, around=[tau, 2 * tau, tau / 2])
    _same(R.l1_proximal(w, lr, lam), T.l1_proximal(_t(w), lr, lam))


# ---- magnitude threshold, movement scores, masks -----------------------------------------------------------------


@pytest.mark.parametrize(
    "threshold", [0.0, -0.0, TINY, 0.1, 0.5, 1.0 + 2.0**-30, 1.0 - 2.0**-30, 3e-39, FMAX, 3.4028235e38, 3.5e38, 1e300]
)
def test_magnitude_mask_by_threshold_matches_the_reference(threshold):
    near = float(np.float64(threshold).astype(F32)) if threshold < 3.4e38 else FMAX
    w = _adversarial(4099, seed=10, around=[near])
    _same(R.magnitude_mask_by_threshold(w, threshold), T.magnitude_mask_by_threshold(_t(w), threshold))


def test_movement_scores_matches_the_reference():
    s, w, g = (_adversarial(4099, seed=k) for k in (11, 12, 13))
    g[:4], w[:4], s[:4] = [FMAX, -0.0, 0.0, 2.0], [FMAX, 1.0, -1.0, -0.0], [0.0, -0.0, -0.0, -0.0]
    _same(R.movement_scores(s, w, g), T.movement_scores(_t(s), _t(w), _t(g)))
    wt = _t(w.reshape(-1, 1).repeat(2, 1)).t()  # a strided product
    _same(R.movement_scores(s[None].repeat(2, 0), wt.numpy(), g[None].repeat(2, 0)),
          T.movement_scores(_t(s[None].repeat(2, 0)), wt, _t(g[None].repeat(2, 0))))  # fmt: skip


@pytest.mark.parametrize("n", [33, 1 << 15])  # the small route and radix select (RADIX_MIN = 2**14)
@pytest.mark.parametrize("fraction", [0.0, 0.25, 0.5])
def test_prune_masks_match_the_reference(n, fraction):
    rng = np.random.default_rng(n)
    w = np.float32(rng.choice([0.0, -0.0, 1.0, -1.0, 2.0, TINY, -3.0], n))
    mask = rng.random(n) < 0.8
    _same(R.prune_remaining_mask(w, mask, fraction), T.prune_remaining_mask(_t(w), _t(mask), fraction))
    _same(R.prune_total_mask(w, mask, fraction), T.prune_total_mask(_t(w), _t(mask), fraction))


@pytest.mark.parametrize("n", [100, 1 << 15])  # `where_kept` below WHERE_KEPT_MIN, the in-place AND above
@pytest.mark.parametrize("autograd", [False, True])
def test_apply_mask_vjp_matches_the_reference(n, autograd):
    rng = np.random.default_rng(n)
    grad, w = _adversarial(n, seed=14), _adversarial(n, seed=15)
    grad[:4] = [np.nan, np.inf, -0.0, -np.inf]
    mask = rng.random(n) < 0.7
    mask[:2] = True
    want = R.apply_mask_vjp(grad, w, mask)
    if autograd:
        with _arrays.vjps_by_autograd():
            got = T.apply_mask_vjp(_t(grad), _t(w), _t(mask))
    else:
        got = T.apply_mask_vjp(_t(grad), _t(w), _t(mask))
    _same(want, got)
    assert _bits(_arrays.where_kept(_t(mask), _t(grad))) == _bits(torch.where(_t(mask), _t(grad), 0.0))


# ---- to_bitmask ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [40, 1000, (1 << 15) + 5, 1 << 15])
@pytest.mark.parametrize("density", [0.0, 0.02, 0.3, 0.9])
def test_to_bitmask_matches_the_reference(n, density):
    rng = np.random.default_rng(int(n * density * 100) + n)
    w = _adversarial(n, seed=16)
    mask = rng.random(n) < density
    _same(R.to_bitmask(w, mask), T.to_bitmask(_t(w), _t(mask)))


def test_to_bitmask_runs_route_forced_both_ways_and_on_odd_layouts(monkeypatch):
    rng = np.random.default_rng(17)
    w = _adversarial(4 * 1003, seed=18).reshape(4, 1003)
    mask = rng.random(w.shape) < 0.05
    for runs_min in (0, 1 << 40):
        monkeypatch.setattr(sparse_formats, "RUNS_MIN", runs_min)
        _same(R.to_bitmask(w, mask), T.to_bitmask(_t(w), _t(mask)))
        mt = _t(mask.T.copy()).t()  # not contiguous
        _same(R.to_bitmask(w, mask), T.to_bitmask(_t(w), mt))
        big = _t(np.concatenate([[True], mask.reshape(-1)]))[1:].reshape(w.shape)  # storage offset 1
        _same(R.to_bitmask(w, mask), T.to_bitmask(_t(w), big))
    values, flat = _t(w.reshape(-1)), _t(mask.reshape(-1))
    monkeypatch.setattr(sparse_formats, "RUNS_MIN", 0)
    assert _bits(sparse_formats._kept_values(values, flat)) == _bits(values[flat])


# ---- group scores ------------------------------------------------------------------------------------------------


def _group_inputs(n_slices, n, count, seed):
    rng = np.random.default_rng(seed)
    values = [_adversarial(n, seed=seed + m) for m in range(n_slices)]
    # even units only: the odd ones own nothing
    units = [rng.integers(0, max(count // 2, 1), n).astype(np.int64) * 2 % max(count, 1) for _ in range(n_slices)]
    grads = [_adversarial(n, seed=seed + 50 + m) for m in range(n_slices)]
    return values, units, grads


@pytest.mark.parametrize("criterion", ["l1", "l2", "taylor"])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize(("slices_min", "slices_max"), [(1 << 40, 64), (0, 1 << 40), (0, 0)])
@pytest.mark.parametrize(("n_slices", "count"), [(1, 4), (2, 300), (1, 70000), (3, 1)])
def test_group_scores_routes_match_the_reference(criterion, reduction, slices_min, slices_max, n_slices, count,
                                                 monkeypatch):  # fmt: skip
    monkeypatch.setattr(groups, "SLICES_MIN", slices_min)
    monkeypatch.setattr(groups, "SLICES_MAX", slices_max)
    values, units, grads = _group_inputs(n_slices, 3001, count, seed=count)
    g = grads if criterion == "taylor" else None
    want = R.group_scores(values, units, count, criterion, reduction, g)
    got = T.group_scores([_t(v) for v in values], [_t(u) for u in units], count, criterion, reduction,
                         None if g is None else [_t(x) for x in g])  # fmt: skip
    _same(want, got)


def test_group_scores_at_the_default_thresholds_and_the_narrow_dtypes():
    assert [groups._narrowest(c) for c in (0, 1, 256, 257, 32768, 32769, 2**31, 2**31 + 1)] == [
        torch.uint8, torch.uint8, torch.uint8, torch.int16, torch.int16, torch.int32, torch.int32, torch.int64
    ]  # fmt: skip
    for count in (3, 256, 257):
        values, units, grads = _group_inputs(1, groups.SLICES_MIN + 17, count, seed=count + 1)
        units[0][-1] = count - 1
        _same(R.group_scores(values, units, count, "taylor", "sum", grads),
              T.group_scores([_t(v) for v in values], [_t(u) for u in units], count, "taylor", "sum",
                             [_t(x) for x in grads]))  # fmt: skip


# ---- one-element groups and filters ------------------------------------------------------------------------------


@pytest.mark.parametrize("shape_axis", [((2053,), -1), ((2053, 1), 0), ((1, 1, 7), 2), ((6, 5), 0)])
def test_group_lasso_with_one_element_groups_matches_the_reference(shape_axis):
    shape, axis = shape_axis
    w = _adversarial(int(np.prod(shape)), seed=19).reshape(shape)
    g = np.asarray(F32(0.5))
    for lam in (0.0, 0.3, 1e-40):
        _same(R.group_lasso_penalty(w, lam, axis=axis), T.group_lasso_penalty(_t(w), lam, axis=axis))
        _same(R.group_lasso_penalty_vjp(g, w, lam, axis=axis), T.group_lasso_penalty_vjp(_t(g), _t(w), lam, axis=axis))
        _same(R.group_lasso_proximal(w, 1.0, lam, axis=axis), T.group_lasso_proximal(_t(w), 1.0, lam, axis=axis))


def test_fpgm_with_one_element_filters_rounds_the_distance_like_the_reference():
    rng = np.random.default_rng(20)
    edges = [FMAX, -FMAX, -(2.0**103), -(2.0**102), 1.0, -(2.0**-24), -(2.0**-24 + 2.0**-47), 2.0**-24, 0.0, -0.0,
             TINY, -TINY, 3 * TINY, 1e-38, -1e-38, 2.0**127, -(2.0**127), 1.5, 3.0]  # fmt: skip
    w = np.float32(edges + list((rng.standard_normal(300) * 2.0 ** rng.integers(-149, 126, 300)).astype(F32)))
    w = np.concatenate([w, np.nextafter(w[2:42], F32(np.inf))])
    _same(R.fpgm_scores(w, axis=-1), T.fpgm_scores(_t(w), axis=-1))
    _same(R.fpgm_scores(w[:, None], axis=0), T.fpgm_scores(_t(w[:, None]), axis=0))
    _same(R.fpgm_mask(w, 0.4, axis=-1), T.fpgm_mask(_t(w), 0.4, axis=-1))
    mid = np.float32([1.0, -(2.0**-24), -(2.0**-24 + 2.0**-47), FMAX, -(2.0**103), -(2.0**102)])
    _same(R.fpgm_scores(mid, axis=0), T.fpgm_scores(_t(mid), axis=0))
    two = _adversarial(2 * 64, seed=21).reshape(64, 2)  # two elements per filter: the general route
    two[np.abs(two) > 1e30] = F32(1.0)
    _same(R.fpgm_scores(two, axis=0), T.fpgm_scores(_t(two), axis=0))


def test_fpgm_distance_identity_on_many_float64_differences():
    """`sqrt_to_float32(fl64(x * x)) == fl32(x)` for float64 `x = |a - b|` of float32 values, float32 midpoints
    (exact and one float64 ulp away) included."""
    from torch_backend._reduce import sqrt_to_float32

    rng = np.random.default_rng(22)
    a = (rng.standard_normal(20000) * 2.0 ** rng.integers(-149, 126, 20000)).astype(F32).astype(np.float64)
    b = (rng.standard_normal(20000) * 2.0 ** rng.integers(-149, 126, 20000)).astype(F32).astype(np.float64)
    f = np.float32(rng.standard_normal(2000) * 2.0 ** rng.integers(-126, 127, 2000)).astype(np.float64)
    mids = (f + np.nextafter(f.astype(F32), F32(np.inf)).astype(np.float64)) / 2
    x = np.abs(np.concatenate([a - b, mids, np.nextafter(mids, 0), np.nextafter(mids, np.inf), [2.0**128 - 2.0**103]]))
    x = torch.from_numpy(x)
    assert _bits(sqrt_to_float32(x * x)) == _bits(x.to(torch.float32))


def test_fpgm_mask_default_route_is_unchanged_for_wider_filters():
    w = _adversarial(24 * 9, seed=23).reshape(24, 9)
    w[np.abs(w) > 1e30] = F32(2.0)
    _same(R.fpgm_mask(w, 0.5), T.fpgm_mask(_t(w), 0.5))
    assert saliency.fpgm_scores is T.fpgm_scores


# ---- FPGM: each pair of filters once ------------------------------------------------------------------------------


@pytest.mark.parametrize("pairs_min", [0, 1 << 40])  # each pair once (`_symmetric`), and all pairs at once
@pytest.mark.parametrize("shape_axis", [((7, 5), 0), ((6, 1), 0), ((1, 9), 0), ((5, 3, 4), -1), ((4, 0), 0),
                                        ((0, 3), 0), ((9,), 0), ((3, 2, 2), 1)])  # fmt: skip
def test_fpgm_pairs_route_forced_both_ways(pairs_min, shape_axis, monkeypatch):
    monkeypatch.setattr(saliency, "_PAIRS_MIN", pairs_min)
    shape, axis = shape_axis
    n = int(np.prod(shape))
    w = _adversarial(n, seed=40 + n).reshape(shape)  # zeros of both signs, subnormals, ±FLT_MAX: infinite distances
    _same(R.fpgm_scores(w, axis=axis), T.fpgm_scores(_t(w), axis=axis))
    if n:
        _same(R.fpgm_mask(w, 0.4, axis=axis), T.fpgm_mask(_t(w), 0.4, axis=axis))
    tame = w.copy()
    tame[np.abs(tame) > 1e30] = F32(-3.0)  # finite distances; ties between equal filters
    if shape[0] > 2:
        tame[1] = tame[0]
        tame[2] = -tame[0]
    _same(R.fpgm_scores(tame, axis=axis), T.fpgm_scores(_t(tame), axis=axis))


def test_fpgm_pairs_are_symmetric_and_the_diagonal_is_positive_zero():
    w = _adversarial(6 * 33, seed=44).reshape(6, 33)
    w[0] = -0.0
    w[1] = 0.0  # `+0.0 - -0.0` and `-0.0 - +0.0`: zero differences of both signs
    f = _t(w).to(torch.float64)
    d = saliency._distances(f)
    assert _bits(d) == _bits(d.t())
    assert _bits(torch.diagonal(d)) == _bits(torch.zeros(6))
    full = f[:, None, :] - f[None, :, :]
    for i in range(6):
        for j in range(6):
            assert _bits(full[i, j] * full[i, j]) == _bits(full[j, i] * full[j, i])


def test_fpgm_default_pairs_threshold_on_a_large_layer():
    w = _adversarial(4 * 3000, seed=45).reshape(4, 3000)  # past _PAIRS_MIN: each pair once
    assert w.size > saliency._PAIRS_MIN
    _same(R.fpgm_scores(w), T.fpgm_scores(_t(w)))
    _same(R.fpgm_scores(w, axis=1)[:50], T.fpgm_scores(_t(w), axis=1)[:50])


# ---- the sampled finiteness check --------------------------------------------------------------------------------


def _error(fn, *args):
    try:
        fn(*args)
    except (TypeError, ValueError) as e:
        return type(e), str(e)
    return None


@pytest.mark.parametrize("sample_min", [0, 1 << 40])  # the sampled route, and the sum first
@pytest.mark.parametrize("sample", [1, 1024, 1 << 20])
def test_sampled_finite_check_gives_the_same_result_and_error(sample_min, sample, monkeypatch):
    """`_arrays.finite` looks at the first `SAMPLE` elements of a large CPU tensor and, when they are huge, takes
    `aminmax` without the sum: the same tensor back, and the same error (naming the first bad element) as with
    the sum first, for huge and tame values, parameters, strided tensors, float64 and non-tensors."""

    def plain(fn, *args):  # the route without the sample
        with pytest.MonkeyPatch.context() as m:
            m.setattr(_arrays, "SAMPLE_MIN", 1 << 40)
            return _error(fn, *args)

    monkeypatch.setattr(_arrays, "SAMPLE_MIN", sample_min)
    monkeypatch.setattr(_arrays, "SAMPLE", sample)
    n = 5000
    huge = _adversarial(n, seed=46)
    huge[:3] = [FMAX, -FMAX, FMAX]  # the first elements are huge: the sampled route goes to aminmax first
    tame = np.float32(np.random.default_rng(47).standard_normal(n))
    for base in (huge, tame):
        x = _t(base)
        assert _arrays.finite("w", x) is x
        assert _arrays.finite_array("w", x) is x
        p = torch.nn.Parameter(_t(base))
        assert _arrays.finite("w", p) is p
        for bad, at in [(np.nan, 0), (np.inf, 1), (-np.inf, 2), (np.nan, n - 1), (-np.inf, 3000), (np.inf, n - 1)]:
            b = base.copy()
            b[at] = bad
            b[at + 1 if at + 1 < n else 0] = np.nan  # a second bad value: the first is named
            want = plain(_arrays.finite, "w", _t(b))
            assert want is not None
            assert _error(_arrays.finite, "w", _t(b)) == want
            assert _error(_arrays.finite_array, "w", _t(b)) == want
            strided = _t(np.stack([b, b], 1)).t()[0]  # not contiguous
            assert _error(_arrays.finite, "w", strided) == want
    x64 = _t(huge.astype(np.float64))
    assert _error(_arrays.finite_array, "w", x64) == plain(_arrays.finite_array, "w", x64)
    assert _arrays.finite("w", x64) is x64
    assert _error(_arrays.finite_array, "w", [1.0]) == plain(_arrays.finite_array, "w", [1.0])


@pytest.mark.parametrize("sample_min", [0, 1 << 40])
def test_checked_entries_match_the_reference_with_huge_and_bad_inputs(sample_min, monkeypatch):
    monkeypatch.setattr(_arrays, "SAMPLE_MIN", sample_min)
    n = 4099
    s, w, g = (_adversarial(n, seed=k) for k in (48, 49, 50))
    s[:2], w[:2], g[:2] = [FMAX, -FMAX], [FMAX, -FMAX], [-FMAX, FMAX]  # huge first elements; products overflow
    mask = np.random.default_rng(51).random(n) < 0.3
    cases = [
        (R.movement_scores, T.movement_scores, (s, w, g)),
        (R.snip_scores, T.snip_scores, (w, g)),
        (R.lottery_rewind, T.lottery_rewind, (w, mask)),
        (R.to_bitmask, T.to_bitmask, (w, mask)),
        (R.fpgm_scores, T.fpgm_scores, (w.reshape(1, n),)),
    ]
    for ref, fn, args in cases:
        _same(ref(*args), fn(*(_t(a) for a in args)))
        for k, a in enumerate(args):
            if a.dtype != F32:
                continue
            for bad, at in [(np.nan, n - 1), (-np.inf, 7), (np.inf, 0)]:
                b = [x.copy() for x in args]
                b[k].reshape(-1)[at] = bad
                if k + 1 < len(b) and b[k + 1].dtype == F32:
                    b[k + 1].reshape(-1)[0] = np.nan  # a later argument is bad too: the earlier one is named
                assert _error(fn, *(_t(x) for x in b)) == _error(ref, *b)
        if len(args) > 1:  # a shape mismatch after a bad first argument: the finiteness error comes first
            b = [x.copy() for x in args]
            b[0].reshape(-1)[5] = np.inf
            b[1] = b[1][:-1]
            assert _error(fn, *(_t(x) for x in b)) == _error(ref, *b)


def test_to_bitmask_packed_shift_in_place_matches_packbits():
    rng = np.random.default_rng(52)
    for n in (8, 64, 8 * 1001):
        mask = rng.random(n) < 0.5
        mask[:8] = True
        assert sparse_formats._packed(_t(mask)).numpy().tobytes() == np.packbits(mask, bitorder="little").tobytes()


def _csr_cases():
    """Valid CSR encodings (empty rows, an empty matrix, -0.0 and subnormal values, full rows) and one of each
    malformation `from_csr` names, in its order of checks."""
    i64, f32 = np.int64, np.float32
    ok = [
        ([0, 2, 2, 5], [1, 3, 0, 1, 3], [1.5, -0.0, TINY, -FMAX, 2.0], (3, 4)),
        ([0], [], [], (0, 7)),
        ([0, 0, 0], [], [], (2, 0)),
        ([0, 3], [0, 1, 2], [0.0, -0.0, 1.0], (1, 3)),
        ([0, 1, 2, 3, 4], [3, 2, 1, 0], [1.0, 2.0, 3.0, 4.0], (4, 4)),
    ]
    bad = [
        ([1, 2], [0], [1.0], (1, 3)),  # start
        ([0, 2, 1, 3], [0, 1, 2], [1.0, 2.0, 3.0], (3, 3)),  # order of indptr
        ([0, 2], [0], [1.0], (1, 3)),  # length of indices
        ([0, 2], [0, 1], [1.0], (1, 3)),  # length of values
        ([0, 2], [0, 3], [1.0, 2.0], (1, 3)),  # column past the end
        ([0, 2], [-1, 1], [1.0, 2.0], (1, 3)),  # negative column
        ([0, 1, 3], [2, 1, 1], [1.0, 2.0, 3.0], (2, 3)),  # repeated column within a row
        ([0, 3], [0, 2, 1], [1.0, 2.0, 3.0], (1, 3)),  # decreasing within a row
        ([0, 1], [0], [np.nan], (1, 3)),  # a value not finite
        ([0, 1], [0], [1.0], (1, 3, 1)),  # not 2-D
        ([0, 1, 1], [0], [1.0], (1, 3)),  # indptr's length
    ]
    return [(np.array(p, i64), np.array(i, i64), np.array(v, f32), s) for p, i, v, s in ok + bad]


@pytest.mark.parametrize("python_max", [None, 0, 1 << 40])
def test_from_csr_host_route_forced_both_ways(python_max, monkeypatch):
    """`from_csr` on Python numbers (small CPU encodings) and by tensors, forced both ways: valid encodings bit for
    bit, and every malformation with the reference's error, in its order of checks; the inputs unchanged."""
    if python_max is not None:
        monkeypatch.setattr(sparse_formats, "CSR_PYTHON_MAX", python_max)
    for indptr, indices, values, shape in _csr_cases():
        args = (indptr, indices, values, shape)
        want = _error(R.from_csr, *args)
        targs = (_t(indptr), _t(indices), _t(values), shape)
        assert _error(T.from_csr, *targs) == want, (indptr, indices, values, shape)
        if want is None:
            _same(R.from_csr(*args), T.from_csr(*targs))
            w, mask = T.from_csr(*targs)
            _same(R.to_csr(w.numpy(), mask.numpy()), T.to_csr(w, mask))
        assert _bits(targs[2]) == _bits(values) and _bits(targs[0]) == _bits(indptr)


@pytest.mark.parametrize("python_max", [None, 0, 1 << 40])
def test_to_csr_host_route_forced_both_ways(python_max, monkeypatch):
    """`to_csr` on Python numbers and by tensors, forced both ways: random masks over shapes with empty rows and
    columns, -0.0 and subnormal values, and its errors (not 2-D, a mask of another shape or dtype, NaN)."""
    if python_max is not None:
        monkeypatch.setattr(sparse_formats, "CSR_PYTHON_MAX", python_max)
    rng = np.random.default_rng(5)
    for shape in ((0, 0), (0, 3), (4, 0), (1, 1), (3, 5), (7, 6), (16, 16), (20, 13)):
        w = _adversarial(max(1, shape[0] * shape[1]), 6)[: shape[0] * shape[1]].reshape(shape)
        for density in (0.0, 0.4, 1.0):
            mask = rng.random(shape) < density
            _same(R.to_csr(w, mask), T.to_csr(_t(w), _t(mask)))
    w = np.ones((2, 3), F32)
    for args in ((w[0], np.ones(3, bool)), (w, np.ones((3, 2), bool)), (w, np.ones((2, 3), np.int64))):
        assert _error(T.to_csr, *map(_t, args)) == _error(R.to_csr, *args) is not None
    w[1, 2] = np.nan
    assert _error(T.to_csr, _t(w), _t(np.ones((2, 3), bool))) == _error(R.to_csr, w, np.ones((2, 3), bool))
