"""Registry entries: L1 and group-lasso regularization, network slimming, sparsity schedules, iterative pruning."""

from __future__ import annotations

import numpy as np

from spec import strategies as S
from spec.entry import Bad, Case, Entry, Golden, Invariant

F32 = np.float32
T, F = True, False
INF = float("inf")

TIBSHIRANI = (
    "Tibshirani, 1996. Regression Shrinkage and Selection via the Lasso. Journal of the Royal Statistical Society B "
    "58(1). doi:10.1111/j.2517-6161.1996.tb02080.x"
)
PARIKH = "Parikh & Boyd, 2014. Proximal Algorithms. Foundations and Trends in Optimization 1(3). doi:10.1561/2400000003"
YUAN = (
    "Yuan & Lin, 2006. Model Selection and Estimation in Regression with Grouped Variables. Journal of the Royal "
    "Statistical Society B 68(1). doi:10.1111/j.1467-9868.2005.00532.x; Wen et al., 2016. Learning Structured "
    "Sparsity in Deep Neural Networks. NeurIPS. arXiv:1608.03665"
)
LIU = "Liu et al., 2017. Learning Efficient Convolutional Networks through Network Slimming. ICCV. arXiv:1708.06519"
ZHU = (
    "Zhu & Gupta, 2017. To prune, or not to prune: exploring the efficacy of pruning for model compression. "
    "arXiv:1710.01878"
)
FRANKLE = "Frankle & Carbin, 2019. The Lottery Ticket Hypothesis. ICLR. arXiv:1803.03635"
HAN = "Han et al., 2015. Learning both Weights and Connections for Efficient Neural Networks. NeurIPS. arXiv:1506.02626"


def _a(values, dtype=np.float32):
    return np.array(values, dtype=dtype)


def _s(v):
    return np.array(v, dtype=np.float32)


def _m(values):
    return np.array(values, dtype=bool)


def _f32(x):
    """A float64 value rounded once to float32 (inf beyond the range), as a Python float."""
    with np.errstate(over="ignore"):
        return float(np.float32(x))


def _bits(a):
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)


def _plus_zeros(out, what):
    a = np.asarray(out, dtype=np.float32)
    assert not np.any(_bits(a) == np.uint32(0x80000000)), f"{what}: a zero of the result is -0.0"


def _as_list(w):
    return list(w) if isinstance(w, list | tuple) else [w]


# ---- invariants: regularization -----------------------------------------------------------------------------


def _penalty_scalar(call, case, out):
    lam = case.args[1]
    assert out.dtype == np.float32 and out.shape == (), "the penalty is a 0-d float32 array"
    assert not np.isnan(out) and out >= 0, "the penalty is >= 0"
    _plus_zeros(out, "penalty")
    if lam == 0:
        assert _bits(out) == 0, "lam = 0 gives +0.0"


def _l1_monotone_in_lam(call, case, out):
    w, lam = case.args
    more = call(Case((w, lam * 2 + 1.0)))
    assert more >= out, "the penalty must not decrease as lam grows"


def _signed_values(w, c, out, what):
    """out is c where w > 0, -c where w < 0, +0.0 where w == 0 (and +0.0 for every zero)."""
    c = np.float32(c)
    expect = np.where(w > 0, c, -c)
    expect = np.where((w == 0) | (expect == 0), F32(0), expect)
    assert np.array_equal(_bits(out), _bits(expect)), f"{what}: not +-c by the sign of w"


def _l1_vjp_values(call, case, out):
    grad, w, lam = case.args
    c = _f32(float(grad) * lam)
    for x, o in zip(_as_list(w), _as_list(out), strict=True):
        assert o.shape == x.shape and o.dtype == np.float32
        _signed_values(x, c, o, "l1_penalty_vjp")


def _subgradient_values(call, case, out):
    w, lam = case.args
    _signed_values(w, _f32(lam), out, "l1_subgradient")


def _proximal_shrinks(call, case, out):
    w, lr, lam = case.args
    tau = _f32(lr * lam)
    assert out.shape == w.shape and out.dtype == np.float32
    assert np.all(np.abs(out) <= np.abs(w)), "the proximal step grew a magnitude"
    zeroed = np.abs(w) <= tau
    assert np.all(_bits(out[zeroed]) == 0), "|w| <= tau must become +0.0"
    kept = ~zeroed
    assert np.all(np.sign(out[kept]) == np.sign(w[kept])) and np.all(out[kept] != 0), "a kept weight changed sign"
    if tau == 0:
        assert np.array_equal(out, w), "tau = 0 must be the identity (up to signed zeros)"
    _plus_zeros(out, "l1_proximal")


def _group_view(w, axis):
    k = axis % w.ndim
    rows = np.moveaxis(w, k, 0).reshape(w.shape[k], -1) if w.size else np.zeros((w.shape[k], 0), np.float32)
    return k, rows


def _group_norms(w, axis):
    from reference.core.reduce import lp_norm

    _, rows = _group_view(w, axis)
    with np.errstate(over="ignore"):
        return lp_norm(rows, 2, axis=1)


def _group_vjp_values(call, case, out):
    grad, w, lam = case.args
    axis = case.kwargs["axis"]
    c = np.float32(_f32(float(grad) * lam))
    assert out.shape == w.shape and out.dtype == np.float32
    with np.errstate(invalid="ignore"):
        assert np.all((np.abs(out) <= abs(c)) | np.isnan(c)), "|gradient| must be at most |c|"
    _, rows = _group_view(out, axis)
    zero_groups = _group_norms(w, axis) == 0
    assert np.all(_bits(rows[zero_groups]) == 0), "a zero group must get +0.0"
    _plus_zeros(out, "group_lasso_penalty_vjp")


def _group_lasso_monotone(call, case, out):
    w, lam = case.args
    more = call(Case((w, lam * 2 + 1.0), case.kwargs))
    assert more >= out, "the penalty must not decrease as lam grows"


def _group_proximal_shrinks(call, case, out):
    w, lr, lam = case.args
    axis = case.kwargs["axis"]
    tau = _f32(lr * lam)
    assert out.shape == w.shape and out.dtype == np.float32
    assert np.all(np.abs(out) <= np.abs(w)), "the proximal step grew a magnitude"
    norms = _group_norms(w, axis)
    _, rows_out = _group_view(out, axis)
    _, rows_w = _group_view(w, axis)
    for norm, o, x in zip(norms, rows_out, rows_w, strict=True):
        if norm <= tau:
            assert np.all(_bits(o) == 0), "a group with norm <= tau must become +0.0"
        else:
            nonzero = o != 0
            assert np.all(np.sign(o[nonzero]) == np.sign(x[nonzero])), "a kept group changed sign"
    _plus_zeros(out, "group_lasso_proximal")


# ---- invariants: slimming ----------------------------------------------------------------------------------


def _slimming_grad_values(call, case, out):
    grads, gammas, lam = case.args
    c = np.float32(_f32(lam))
    assert len(out) == len(grads)
    for g, gamma, o in zip(grads, gammas, out, strict=True):
        sub = np.where(gamma > 0, c, -c)
        sub = np.where((gamma == 0) | (sub == 0), F32(0), sub)
        with np.errstate(over="ignore", invalid="ignore"):
            expect = g + sub
        assert np.array_equal(_bits(o), _bits(expect)), "not grad + lam * sign(gamma)"
        _plus_zeros(o, "slimming_penalty_grad")


def _slimming_masks_valid(call, case, out):
    gammas, ratio = case.args
    m = case.kwargs.get("min_channels", 1)
    assert [o.shape for o in out] == [g.shape for g in gammas] and all(o.dtype == bool for o in out)
    total = sum(g.size for g in gammas)
    k = round(ratio * total)
    kept = sum(int(o.sum()) for o in out)
    assert total - kept <= k, "pruned more than the ratio asks"
    short = False
    for g, o in zip(gammas, out, strict=True):
        assert o.sum() >= min(m, g.size), "a layer kept fewer than min_channels"
        a = np.abs(g)
        if o.any() and (~o).any():
            assert a[o].min() >= a[~o].max(), "within a layer a pruned |gamma| is larger than a kept one"
            tied = np.flatnonzero(a == a[o].min())
            assert np.all(np.diff(o[tied].astype(int)) <= 0), "among ties a higher channel was kept"
        short = short or o.sum() == min(m, g.size)
    if not short:
        assert total - kept == k, "no layer is at its minimum, so exactly k must be pruned"


def _slimming_global_rule(call, case, out):
    """With min_channels = 0 the masks are global_magnitude_masks of the scaling factors."""
    from reference.pruning.magnitude import global_magnitude_masks

    gammas, ratio = case.args
    plain = call(Case((gammas, ratio), {"min_channels": 0}))
    expect = global_magnitude_masks(gammas, ratio)
    for p, e, o in zip(plain, expect, out, strict=True):
        assert np.array_equal(p, e), "min_channels=0 must be global magnitude pruning of |gamma|"
        assert not np.any(p & ~o), "the per-layer minimum may only add channels"


def _slimming_nested(call, case, out):
    gammas, ratio = case.args
    denser = call(Case((gammas, max(0.0, ratio - 0.25)), case.kwargs))
    for d, o in zip(denser, out, strict=True):
        assert not np.any(o & ~d), "masks must be nested as the ratio grows"


# ---- invariants: schedules ----------------------------------------------------------------------------------


def _schedule_endpoints(call, case, out):
    (t,), kw = case.args, case.kwargs
    s_i, s_f = float(kw["s_i"]), float(kw["s_f"])
    assert type(out) is float
    assert min(s_i, s_f) <= out <= max(s_i, s_f), "the schedule left the interval between s_i and s_f"
    if t < kw["t0"] + kw["dt"]:
        assert out == s_i, "before the first update the sparsity is s_i"
    if t >= kw["t0"] + kw["n"] * kw["dt"]:
        assert out == s_f, "from t0 + n * dt on the sparsity is s_f"


def _schedule_monotone(call, case, out):
    (t,), kw = case.args, case.kwargs
    rising = kw["s_f"] >= kw["s_i"]
    for other_t, later in ((t + 1, True), (t + kw["dt"], True), (t - 1, False)):
        if other_t < 0:
            continue
        other = call(Case((other_t,), kw))
        if later == rising:
            assert other >= out, f"not monotone between t={t} and t={other_t}"
        else:
            assert other <= out, f"not monotone between t={t} and t={other_t}"


def _schedule_steps(call, case, out):
    (t,), kw = case.args, case.kwargs
    if t >= kw["t0"]:
        last = kw["t0"] + (t - kw["t0"]) // kw["dt"] * kw["dt"]
        assert call(Case((last,), kw)) == out, "the schedule must be constant between pruning steps"


def _iterative_valid(call, case, out):
    fraction, steps = case.args
    assert isinstance(out, list) and len(out) == steps and all(type(s) is float for s in out)
    assert all(0.0 <= s <= 1.0 for s in out) and all(a <= b for a, b in zip(out, out[1:], strict=False)), (
        "not in [0, 1], rising"
    )
    if case.kwargs["mode"] == "total":
        assert out == [k * fraction for k in range(1, steps + 1)]
    else:
        for k, s in enumerate(out, start=1):
            assert abs(s - (1.0 - (1.0 - fraction) ** k)) <= 1e-12, "remaining mode is 1 - (1 - f)**k"


def _mask_round(call, case, out, total):
    w, mask, fraction = case.args
    kept = int(mask.sum())
    k = round(fraction * (w.size if total else kept))
    assert out.dtype == bool and out.shape == w.shape
    assert not np.any(out & ~mask), "a pruned weight came back"
    assert int(out.sum()) == kept - k, "wrong number kept"
    a = np.abs(w)[mask]
    o = out[mask]
    if o.any() and (~o).any():
        assert a[o].min() >= a[~o].max(), "a newly pruned weight is larger than a kept one"
        tied = np.flatnonzero(a == a[o].min())
        assert np.all(np.diff(o[tied].astype(int)) <= 0), "among ties a higher index was kept over a lower one"


def _remaining_round(call, case, out):
    _mask_round(call, case, out, total=False)


def _total_round(call, case, out):
    _mask_round(call, case, out, total=True)


def _remaining_nested(call, case, out):
    w, mask, fraction = case.args
    more = call(Case((w, mask, min(1.0, fraction + 0.25))))
    assert not np.any(more & ~out), "masks must be nested as the fraction grows"


# ---- entries ------------------------------------------------------------------------------------------------

NO_VJP = "An optimizer step applied after the gradient step, not part of a forward pass: it has no VJP."
PLUS_ZERO = "Every zero of the result is +0.0."
STRENGTH = "lam and lr are real numbers >= 0 (negative, NaN or infinite ones are rejected)."
TAU = "tau = fl32(lr * lam): the float64 product, rounded once to float32 (inf beyond the float32 range)."
GROUPS = "Groups are the slices along `axis`; their norms are lp_norm's float32 L2 norms."

_GL = {"axis": 0}
_SCHED = {"s_i": 0.0, "s_f": 1.0, "t0": 0, "n": 4, "dt": 10}
_F6 = F32(1) - F32(2) / F32(5)  # 1 - fl32(2/5) in float32: 0.6000000238418579


SCHEDULE_BAD = (
    Bad(Case((5,), {**_SCHED, "n": 0}), ValueError, "n must be in [1, inf], got 0"),
    Bad(Case((5,), {**_SCHED, "dt": 0}), ValueError, "dt must be in [1, inf], got 0"),
    Bad(Case((5,), {**_SCHED, "s_f": 1.5}), ValueError, "s_f must be in [0.0, 1.0], got 1.5"),
    Bad(Case((5,), {**_SCHED, "s_i": -0.1}), ValueError, "s_i must be in [0.0, 1.0], got -0.1"),
    Bad(Case((-1,), _SCHED), ValueError, "t must be in [0, inf], got -1"),
    Bad(Case((1.5,), _SCHED), TypeError, "t must be an int, got float 1.5"),
    Bad(Case((5,), {**_SCHED, "t0": -2}), ValueError, "t0 must be in [0, inf], got -2"),
)


SCHEDULE_COMMON = (
    "k = floor((t - t0) / dt) (Python floor division): the last pruning step reached; constant between steps.",
    "k <= 0 (t < t0 + dt) gives exactly s_i; k >= n (t >= t0 + n * dt) gives exactly s_f.",
    "In between the float64 formula is clamped to the closed interval between s_i and s_f.",
    "Pure Python float64 arithmetic in both backends, the same operations in the same order; returns a Python float.",
    "t, t0 are ints >= 0; n, dt ints >= 1; s_i, s_f in [0, 1] (s_i > s_f allowed: a falling schedule).",
)

ENTRIES = [
    # ---- L1 ---------------------------------------------------------------------------------------------
    Entry(
        name="l1_penalty",
        family="pruning",
        module="pruning.regularization",
        summary="L1 penalty lam * sum|w| over one array or a list, canonical tree sum, one float32 rounding.",
        strategy=S.l1_penalty_cases,
        vjp="l1_penalty_vjp",
        semantics=(
            "P = fl32(lam * tree_sum(|w|)): float64 tree sum, float64 product, one rounding to float32.",
            "A list is one sum: magnitudes concatenated in list order, each array in C order.",
            "An empty array gives +0.0; a penalty beyond the float32 range is inf.",
            STRENGTH,
        ),
        invariants=(
            Invariant("0-d, >= 0, +0.0 at lam = 0", _penalty_scalar),
            Invariant("non-decreasing in lam", _l1_monotone_in_lam),
        ),
        golden=(
            Golden(Case((_a([1, -2, 0.5]), 0.1)), _s(0.1 * 3.5), "fl32(0.1 * 3.5) = 0.35 (float32)"),
            Golden(Case(([_a([1, -1]), _a([[2], [-0.0]])], 2.0)), _s(8.0), "one sum over the list: 2 * 4"),
            Golden(Case((_a([]), 1.0)), _s(0.0), "empty: +0.0"),
            Golden(Case((_a([3e38, 3e38]), 1.0)), _s(INF), "6e38 is beyond float32"),
        ),
        bad=(
            Bad(Case((_a([1.0]), -1.0)), ValueError, "lam must be in [0.0, inf], got -1.0"),
            Bad(Case((_a([1.0, np.nan]), 1.0)), ValueError, "w must be finite, got nan at flat index 1"),
            Bad(Case(([], 1.0)), ValueError, "w must hold at least one array, got an empty list"),
            Bad(Case(([_a([1.0]), _a([1.0], np.float64)], 1.0)), TypeError, "w[1] must have dtype float32"),
            Bad(Case((1.0, 1.0)), TypeError, "w must be an array (numpy.ndarray in reference"),
            Bad(Case((_a([1.0]), float("inf"))), ValueError, "lam must be finite, got inf"),
        ),
        paper=TIBSHIRANI,
    ),
    Entry(
        name="l1_penalty_vjp",
        family="pruning",
        module="pruning.regularization",
        summary="The gradient of l1_penalty: +-fl32(grad * lam) by the sign of w, +0.0 at zeros; torch's by autograd.",
        strategy=lambda: S.l1_penalty_cases(with_grad=True),
        semantics=(
            "c = fl32(grad * lam) (float64 product, one rounding); the gradient is c where w > 0, -c where w < 0.",
            "sign(0) = 0: w = +-0.0 gets +0.0. " + PLUS_ZERO,
            "grad is a 0-d float32 array, finite. A list w gives a list of gradients.",
        ),
        invariants=(Invariant("+-c by the sign of w, +0.0 at zeros", _l1_vjp_values),),
        golden=(
            Golden(Case((_s(2.0), _a([1.5, -3, 0, -0.0]), 0.25)), _a([0.5, -0.5, 0, 0]), "c = 0.5; sign(0) = 0"),
            Golden(Case((_s(1.0), [_a([1.0]), _a([-1.0, 0.0])], 0.5)), [_a([0.5]), _a([-0.5, 0.0])], "a list"),
            Golden(Case((_s(-0.0), _a([1.0, -1.0]), 1.0)), _a([0.0, 0.0]), "c = -0.0: zeros are +0.0"),
        ),
        bad=(
            Bad(
                Case((_a([1.0]), _a([1.0]), 1.0)),
                ValueError,
                "grad has shape (1,) but the scalar penalty needs shape ()",
            ),
            Bad(Case((_s(np.nan), _a([1.0]), 1.0)), ValueError, "grad must be finite, got nan"),
        ),
        paper=TIBSHIRANI,
    ),
    Entry(
        name="l1_subgradient",
        family="pruning",
        module="pruning.regularization",
        summary="lam * sign(w) in float32 with sign(0) = 0: the L1 subgradient added to a gradient.",
        strategy=S.l1_subgradient_cases,
        semantics=(
            "fl32(lam) where w > 0, -fl32(lam) where w < 0, +0.0 where w = +-0.0 (sign(0) = 0).",
            "lam is rounded once to float32, as lam * torch.sign(w) does on a float32 tensor. " + PLUS_ZERO,
            STRENGTH,
        ),
        invariants=(Invariant("+-fl32(lam) by the sign of w", _subgradient_values),),
        golden=(
            Golden(
                Case((_a([2.0, -0.5, 0.0, -0.0]), 0.1)),
                _a([_f32(0.1), -_f32(0.1), 0.0, 0.0]),
                "fl32(0.1) by the sign; sign(0) = 0",
            ),
            Golden(Case((_a([-1.0]), 0.0)), _a([0.0]), "lam = 0: +0.0, not -0.0"),
        ),
        bad=(
            Bad(Case((_a([1.0]), -0.5)), ValueError, "lam must be in [0.0, inf], got -0.5"),
            Bad(Case((_a([1.0]), float("nan"))), ValueError, "lam must be finite, got nan"),
            Bad(Case((_a([1.0], np.float16), 0.5)), TypeError, "w must have dtype float32, got float16"),
        ),
        paper=LIU,
    ),
    Entry(
        name="l1_proximal",
        family="pruning",
        module="pruning.regularization",
        summary="Soft thresholding sign(w) * max(|w| - lr * lam, 0): the proximal step of the L1 penalty.",
        strategy=S.l1_proximal_cases,
        semantics=(
            TAU,
            "w - tau where w > tau, w + tau where w < -tau (one float32 operation), +0.0 where |w| <= tau.",
            "Defined at w = 0 and for tau = 0 (the identity up to -0.0 -> +0.0); never NaN; |result| <= |w|.",
            "A kept weight keeps its sign and is never 0. " + PLUS_ZERO,
            STRENGTH,
            NO_VJP,
        ),
        invariants=(Invariant("shrinks, zeroes |w| <= tau, keeps signs", _proximal_shrinks),),
        golden=(
            Golden(
                Case((_a([1.0, -0.75, 0.5, -0.25, -0.0]), 1.0, 0.5)),
                _a([0.5, -0.25, 0.0, 0.0, 0.0]),
                "tau = 0.5; |w| = tau is zeroed",
            ),
            Golden(Case((_a([-0.0, 1.5]), 0.0, 3.0)), _a([0.0, 1.5]), "tau = 0: identity, -0.0 -> +0.0"),
            Golden(
                Case((_a([0.01, -0.02]), 0.1, 0.1)),
                _a([0.0, _f32(_f32(-0.02) + _f32(0.01))]),
                "fl32(0.1 * 0.1) = fl32(0.01): 0.01 sits on the threshold",
            ),
            Golden(Case((_a([3e38]), 1e20, 1e20)), _a([0.0]), "tau overflows to inf: everything is zeroed"),
        ),
        bad=(
            Bad(Case((_a([1.0]), -0.1, 1.0)), ValueError, "lr must be in [0.0, inf], got -0.1"),
            Bad(Case((_a([1.0]), 1.0, -2.0)), ValueError, "lam must be in [0.0, inf], got -2.0"),
            Bad(Case((_a([np.inf]), 1.0, 1.0)), ValueError, "w must be finite, got inf at flat index 0"),
        ),
        paper=PARIKH,
    ),
    # ---- group lasso ------------------------------------------------------------------------------------
    Entry(
        name="group_lasso_penalty",
        family="pruning",
        module="pruning.regularization",
        summary="Group lasso lam * sum_g ||w_g||_2 over the slices along an axis.",
        strategy=S.group_lasso_cases,
        vjp="group_lasso_penalty_vjp",
        semantics=(
            GROUPS,
            "P = fl32(lam * tree_sum(norms)): the float32 norms summed by the float64 tree, one rounding.",
            "A norm of inf (beyond float32) makes the penalty inf, except lam = 0, which always gives +0.0.",
            "w needs at least one dimension. " + STRENGTH,
        ),
        invariants=(
            Invariant("0-d, >= 0, +0.0 at lam = 0", _penalty_scalar),
            Invariant("non-decreasing in lam", _group_lasso_monotone),
        ),
        golden=(
            Golden(Case((_a([[3, 4], [0, 0.5]]), 2.0), _GL), _s(11.0), "norms 5 and 0.5"),
            Golden(Case((_a([[3, 4], [0, 0]]), 1.0), {"axis": 1}), _s(7.0), "columns: norms 3 and 4"),
            Golden(Case((_a([[3e38, 3e38]]), 1.0), _GL), _s(INF), "the norm 4.2e38 is beyond float32"),
            Golden(Case((_a([[3e38, 3e38]]), 0.0), _GL), _s(0.0), "lam = 0: +0.0 even then"),
        ),
        bad=(
            Bad(Case((_s(1.0), 1.0), _GL), ValueError, "w must have at least one dimension"),
            Bad(Case((_a([[1.0]]), 1.0), {"axis": 2}), ValueError, "axis 2 is out of range"),
            Bad(Case((_a([[1.0]]), -1.0), _GL), ValueError, "lam must be in [0.0, inf], got -1.0"),
        ),
        paper=YUAN,
    ),
    Entry(
        name="group_lasso_penalty_vjp",
        family="pruning",
        module="pruning.regularization",
        summary="The gradient of group_lasso_penalty: (w / ||w_g||) * fl32(grad * lam); torch's by autograd.",
        strategy=lambda: S.group_lasso_cases(with_grad=True),
        semantics=(
            "c = fl32(grad * lam); for w_i in group g: (w_i / ||w_g||) * c, float32 division then multiplication.",
            "A zero group gets +0.0 (the subgradient 0); so does w_i = +-0.0, also when c = +-inf.",
            "A group whose norm is inf gets +0.0 (its quotients are +-0). " + PLUS_ZERO,
        ),
        invariants=(Invariant("|grad| <= |c|, zero groups +0.0", _group_vjp_values),),
        golden=(
            Golden(
                Case((_s(1.0), _a([[3, 4], [0, 0]]), 2.0), _GL),
                _a([[1.2, 1.6], [0, 0]]),
                "2 * fl32(3/5), 2 * fl32(4/5); the zero group gets 0",
            ),
            Golden(Case((_s(1.0), _a([[-2.0], [0.0]]), 1.0), _GL), _a([[-1.0], [0.0]]), "a one-element group"),
        ),
        bad=(
            Bad(
                Case((_a([1.0]), _a([[1.0]]), 1.0), _GL),
                ValueError,
                "grad has shape (1,) but the scalar penalty needs shape ()",
            ),
        ),
        paper=YUAN,
    ),
    Entry(
        name="group_lasso_proximal",
        family="pruning",
        module="pruning.regularization",
        summary="Block soft thresholding w_g * max(0, 1 - lr * lam / ||w_g||): the group-lasso proximal step.",
        strategy=S.group_lasso_proximal_cases,
        semantics=(
            TAU,
            GROUPS,
            "Kept groups (norm > tau): w * (1 - tau / norm), float32 division, subtraction, multiplication.",
            "Groups with norm <= tau (zero groups included) become +0.0. " + PLUS_ZERO,
            "A norm of inf gives the factor 1 (the group is unchanged); no magnitude ever grows.",
            NO_VJP,
        ),
        invariants=(Invariant("shrinks, whole groups, zero groups stay zero", _group_proximal_shrinks),),
        golden=(
            Golden(
                Case((_a([[3, 4], [1, 1]]), 1.0, 2.0), _GL),
                _a([[F32(3) * _F6, F32(4) * _F6], [0, 0]]),
                "norms 5 and sqrt(2); factor 1 - fl32(2/5) = 0.6000000238; sqrt(2) <= 2 is zeroed",
            ),
            Golden(Case((_a([[3, 4]]), 1.0, 5.0), _GL), _a([[0, 0]]), "norm 5 = tau: zeroed"),
            Golden(
                Case((_a([[3, -1], [4, 0]]), 1.0, 2.5), {"axis": 1}),
                _a([[1.5, 0], [2, 0]]),
                "columns: norm 5 halves, norm 1 <= 2.5 vanishes",
            ),
        ),
        bad=(
            Bad(Case((_a([[1.0]]), -1.0, 1.0), _GL), ValueError, "lr must be in [0.0, inf], got -1.0"),
            Bad(Case((_s(1.0), 1.0, 1.0), _GL), ValueError, "w must have at least one dimension"),
        ),
        paper=PARIKH + "; " + YUAN,
    ),
    # ---- network slimming -------------------------------------------------------------------------------
    Entry(
        name="slimming_penalty_grad",
        family="pruning",
        module="pruning.slimming",
        summary="Network slimming's sparsity term: grad + lam * sign(gamma) for every batch-norm scale.",
        strategy=S.slimming_grad_cases,
        semantics=(
            "grad + l1_subgradient(gamma, lam): one float32 addition of +-fl32(lam), or of +0.0 where gamma = 0.",
            "Lists in, list out; grads[i] must have gammas[i]'s shape. " + PLUS_ZERO,
            "Equals grad.add_(lam * torch.sign(gamma)) bitwise except that the added zero is always +0.0.",
            STRENGTH,
        ),
        invariants=(Invariant("grad + lam * sign(gamma)", _slimming_grad_values),),
        golden=(
            Golden(
                Case(([_a([0.25, 0.25, 0.25])], [_a([2, -1, 0])], 0.5)),
                [_a([0.75, -0.25, 0.25])],
                "+-0.5 by the sign; nothing at gamma = 0",
            ),
            Golden(
                Case(([_a([-0.0]), _a([1.0, -0.0])], [_a([-3.0]), _a([0.0, 5.0])], 0.0)),
                [_a([0.0]), _a([1.0, 0.0])],
                "lam = 0 adds +0.0: -0.0 gradients become +0.0",
            ),
        ),
        bad=(
            Bad(Case(([_a([1.0])], [_a([1.0]), _a([1.0])], 0.1)), ValueError, "grads has 1 arrays but gammas has 2"),
            Bad(
                Case(([_a([1.0, 2.0])], [_a([1.0, 2.0, 3.0])], 0.1)),
                ValueError,
                "grads[0] has shape (2,) but gammas[0] needs shape (3,)",
            ),
            Bad(Case(([_a([1.0])], [_a([1.0])], -0.1)), ValueError, "lam must be in [0.0, inf], got -0.1"),
            Bad(Case((_a([1.0]), [_a([1.0])], 0.1)), TypeError, "grads must be a list of arrays"),
        ),
        paper=LIU,
    ),
    Entry(
        name="slimming_masks",
        family="pruning",
        module="pruning.slimming",
        summary="Network slimming channel masks: one global |gamma| ranking over all layers, a minimum per layer.",
        strategy=S.slimming_mask_cases,
        semantics=(
            "k = round_half_even(ratio * N) over all N channels; keep the N - k largest |gamma| "
            "(global_magnitude_masks): ties to the earlier layer, then the lower channel; +0.0 and -0.0 tie.",
            "Then each layer keeps at least min(min_channels, C): its mask is or-ed with its own min(min_channels, C) "
            "largest |gamma| (ties to the lower channel).",
            "The minimum only adds channels back: the total pruned can be less than k (ratio is an upper bound).",
            "gammas: a non-empty list of 1-D float32 arrays (0 channels allowed); min_channels an int >= 0.",
        ),
        invariants=(
            Invariant("count bound, minimum, order, ties", _slimming_masks_valid),
            Invariant("min_channels=0 is global magnitude pruning", _slimming_global_rule),
            Invariant("nested as the ratio grows", _slimming_nested),
        ),
        golden=(
            Golden(
                Case(([_a([0.1, 0.2]), _a([0.3, 0.05])], 0.5)),
                [_m([F, T]), _m([T, F])],
                "prunes 0.05 and 0.1 across layers",
            ),
            Golden(
                Case(([_a([0.1, 0.2]), _a([0.3, 0.05])], 1.0)),
                [_m([F, T]), _m([T, F])],
                "all pruned globally; each layer keeps its largest",
            ),
            Golden(
                Case(([_a([0.1, 0.2]), _a([0.3, 0.05])], 1.0), {"min_channels": 0}),
                [_m([F, F]), _m([F, F])],
                "no minimum: everything goes",
            ),
            Golden(
                Case(([_a([1, 1]), _a([-1, 1])], 0.5), {"min_channels": 0}),
                [_m([T, T]), _m([F, F])],
                "all tie: the earlier layer wins",
            ),
            Golden(
                Case(([_a([5.0]), _a([1, 2, 3])], 0.75), {"min_channels": 2}),
                [_m([T]), _m([F, T, T])],
                "k = 3 keeps only 5; the second layer gets its 2 largest back (1 pruned, not 3)",
            ),
            Golden(Case(([_a([]), _a([1.0, 2.0])], 0.5)), [_m([]), _m([F, T])], "a layer with no channels"),
        ),
        bad=(
            Bad(Case(([_a([1.0])], 1.5)), ValueError, "ratio must be in [0.0, 1.0], got 1.5"),
            Bad(
                Case(([_a([[1.0, 2.0]])], 0.5)),
                ValueError,
                "gammas[0] must be 1-D (one scaling factor per channel), got shape (1, 2)",
            ),
            Bad(Case(([_a([1.0])], 0.5), {"min_channels": -1}), ValueError, "min_channels must be in [0, inf], got -1"),
            Bad(Case(([_a([1.0])], 0.5), {"min_channels": 1.0}), TypeError, "min_channels must be an int"),
            Bad(Case(([], 0.5)), ValueError, "gammas must hold at least one array"),
        ),
        paper=LIU,
    ),
    # ---- schedules --------------------------------------------------------------------------------------
    Entry(
        name="agp_sparsity",
        family="pruning",
        module="pruning.schedules",
        summary="Zhu & Gupta's gradual pruning: s_f + (s_i - s_f) * (1 - k / n)**3 every dt steps from t0.",
        strategy=S.schedule_cases,
        semantics=(
            "r = 1.0 - k / n (k / n: Python's correctly rounded int division); s = s_f + (s_i - s_f) * (r * r * r).",
            *SCHEDULE_COMMON,
        ),
        invariants=(
            Invariant("endpoints and range", _schedule_endpoints),
            Invariant("monotone in t", _schedule_monotone),
            Invariant("constant between pruning steps", _schedule_steps),
        ),
        golden=(
            Golden(Case((5,), _SCHED), 0.0, "before the first update"),
            Golden(Case((10,), _SCHED), 0.578125, "k = 1: 1 - (3/4)**3"),
            Golden(Case((29,), _SCHED), 0.875, "k = 2 until step 29: 1 - (1/2)**3"),
            Golden(Case((39,), _SCHED), 0.984375, "k = 3: 1 - (1/4)**3"),
            Golden(Case((40,), _SCHED), 1.0, "t0 + n * dt: s_f"),
            Golden(Case((12,), {**_SCHED, "t0": 20}), 0.0, "before t0: s_i"),
        ),
        bad=SCHEDULE_BAD,
        paper=ZHU,
    ),
    Entry(
        name="linear_sparsity",
        family="pruning",
        module="pruning.schedules",
        summary="A linear ramp s_f + (s_i - s_f) * (1 - k / n) every dt steps from t0.",
        strategy=S.schedule_cases,
        semantics=("s = s_f + (s_i - s_f) * (1.0 - k / n).", *SCHEDULE_COMMON),
        invariants=(
            Invariant("endpoints and range", _schedule_endpoints),
            Invariant("monotone in t", _schedule_monotone),
            Invariant("constant between pruning steps", _schedule_steps),
        ),
        golden=(
            Golden(Case((2,), {"s_i": 0.0, "s_f": 0.5, "t0": 0, "n": 4, "dt": 1}), 0.25, "k = 2 of 4"),
            Golden(Case((25,), {**_SCHED, "s_i": 1.0, "s_f": 0.0}), 0.5, "falling: k = 2"),
        ),
        bad=SCHEDULE_BAD,
        paper=ZHU,
    ),
    Entry(
        name="cosine_sparsity",
        family="pruning",
        module="pruning.schedules",
        summary="A half cosine s_f + (s_i - s_f) * (1 + cos(pi * k / n)) / 2 every dt steps from t0.",
        strategy=S.schedule_cases,
        semantics=(
            "s = s_f + (s_i - s_f) * (0.5 * (1.0 + math.cos(math.pi * (k / n)))).",
            "math.cos is the C library's cos, called identically by both backends (not guaranteed correctly "
            "rounded: another machine may differ in the last bit).",
            *SCHEDULE_COMMON,
        ),
        invariants=(
            Invariant("endpoints and range", _schedule_endpoints),
            Invariant("monotone in t", _schedule_monotone),
            Invariant("constant between pruning steps", _schedule_steps),
        ),
        golden=(
            Golden(Case((1,), {"s_i": 0.0, "s_f": 1.0, "t0": 0, "n": 2, "dt": 1}), 0.5, "1 + cos(pi/2) rounds to 1"),
            Golden(Case((3,), {"s_i": 0.0, "s_f": 1.0, "t0": 0, "n": 2, "dt": 1}), 1.0, "past the end"),
        ),
        bad=SCHEDULE_BAD,
        paper="Loshchilov & Hutter, 2017. SGDR: Stochastic Gradient Descent with Warm Restarts. ICLR. arXiv:1608.03983",
    ),
    Entry(
        name="exponential_sparsity",
        family="pruning",
        module="pruning.schedules",
        summary="Geometric decay of the density: 1 - s = (1 - s_i) * ((1 - s_f) / (1 - s_i))**(k / n).",
        strategy=lambda: S.schedule_cases(exponential=True),
        semantics=(
            "s = 1.0 - (1.0 - s_i) * ((1.0 - s_f) / (1.0 - s_i)) ** (k / n); ** is the C library's pow.",
            "s_i = 1 or s_f = 1 (density 0) is rejected: a geometric path cannot reach or leave 0.",
            *SCHEDULE_COMMON,
        ),
        invariants=(
            Invariant("endpoints and range", _schedule_endpoints),
            Invariant("monotone in t", _schedule_monotone),
            Invariant("constant between pruning steps", _schedule_steps),
        ),
        golden=(
            Golden(Case((1,), {"s_i": 0.0, "s_f": 0.75, "t0": 0, "n": 2, "dt": 1}), 0.5, "1 - 0.25**(1/2)"),
            Golden(Case((2,), {"s_i": 0.0, "s_f": 0.75, "t0": 0, "n": 2, "dt": 1}), 0.75, "the end: s_f"),
        ),
        bad=(
            *SCHEDULE_BAD,
            Bad(Case((5,), _SCHED), ValueError, "exponential_sparsity needs s_i < 1 and s_f < 1"),
        ),
        paper=FRANKLE,
    ),
    Entry(
        name="iterative_sparsities",
        family="pruning",
        module="pruning.schedules",
        summary="Cumulative sparsity after each round of a fraction of the remaining weights, or of all weights.",
        strategy=S.iterative_sparsities_cases,
        semantics=(
            "mode='remaining': d_k = d_{k-1} * (1 - f) in float64 from d_0 = 1, s_k = 1 - d_k (torch.nn.utils.prune "
            "applied repeatedly).",
            "mode='total': s_k = k * f (one float64 product); steps * f > 1 is rejected.",
            "Returns a list of `steps` Python floats s_1..s_steps; steps = 0 gives [].",
        ),
        invariants=(Invariant("length, range, rising, formula", _iterative_valid),),
        golden=(
            Golden(Case((0.5, 3)), [0.5, 0.75, 0.875], "halve the rest each round"),
            Golden(Case((0.25, 4), {"mode": "total"}), [0.25, 0.5, 0.75, 1.0], "a quarter of all each round"),
            Golden(Case((0.2, 2)), [0.19999999999999996, 0.3599999999999999], "1 - 0.8 and 1 - 0.8 * 0.8 in float64"),
        ),
        bad=(
            Bad(Case((0.5, 3), {"mode": "total"}), ValueError, "more than all of them"),
            Bad(Case((0.5, 3), {"mode": "bogus"}), ValueError, "mode must be one of 'remaining', 'total'"),
            Bad(Case((0.5, -1)), ValueError, "steps must be in [0, 10000], got -1"),
            Bad(Case((1.5, 2)), ValueError, "fraction must be in [0.0, 1.0], got 1.5"),
        ),
        paper=HAN,
    ),
    Entry(
        name="prune_remaining_mask",
        family="pruning",
        module="pruning.schedules",
        summary="One round of iterative magnitude pruning: prune a fraction of the weights still kept.",
        strategy=S.iterative_mask_cases,
        semantics=(
            "k = round_half_even(fraction * m) of the m kept weights, the smallest |w| among them; pruned stay pruned.",
            "torch.nn.utils.prune semantics: l1_unstructured on a pruned tensor counts the unpruned entries only.",
            "Ties among kept weights go to the lower flat index; +0.0 and -0.0 tie.",
        ),
        invariants=(
            Invariant("nested, count, order, ties", _remaining_round),
            Invariant("nested as the fraction grows", _remaining_nested),
        ),
        golden=(
            Golden(Case((_a([4, 3, 2, 1]), _m([T, T, T, F]), 0.5)), _m([T, F, F, F]), "m = 3, k = rne(1.5) = 2"),
            Golden(Case((_a([1, -1, 1, 1]), _m([F, T, T, T]), 0.34)), _m([F, T, T, F]), "k = rne(1.02) = 1; ties"),
            Golden(
                Case((_a([4, 3, 2, 1, 0.5, 0.25]), _m([T, T, T, T, F, F]), 0.5)),
                _m([T, T, F, F, F, F]),
                "half of the 4 kept",
            ),
        ),
        bad=(
            Bad(Case((_a([1.0, 2.0]), _m([T]), 0.5)), ValueError, "mask has shape (1,) but w needs shape (2,)"),
            Bad(Case((_a([1.0]), _m([T]), -0.1)), ValueError, "fraction must be in [0.0, 1.0], got -0.1"),
            Bad(Case((_a([1.0]), _a([1.0]), 0.5)), TypeError, "mask must have dtype bool, got float32"),
        ),
        paper=HAN,
    ),
    Entry(
        name="prune_total_mask",
        family="pruning",
        module="pruning.schedules",
        summary="One round of iterative magnitude pruning: prune a fraction of all weights, among those still kept.",
        strategy=lambda: S.iterative_mask_cases(total=True),
        semantics=(
            "k = round_half_even(fraction * N) of all N weights, pruned among the kept ones by smallest |w|.",
            "k greater than the number still kept is rejected, never clipped.",
            "Ties among kept weights go to the lower flat index; +0.0 and -0.0 tie.",
        ),
        invariants=(Invariant("nested, count, order, ties", _total_round),),
        golden=(
            Golden(
                Case((_a([4, 3, 2, 1, 0.5, 0.25]), _m([T, T, T, T, F, F]), 0.5)),
                _m([T, F, F, F, F, F]),
                "rne(0.5 * 6) = 3 of the 4 kept",
            ),
            Golden(Case((_a([4, 3, 2, 1]), _m([T, T, T, F]), 0.25)), _m([T, T, F, F]), "k = 1"),
        ),
        bad=(
            Bad(
                Case((_a([4, 3, 2, 1]), _m([T, F, F, F]), 0.5)),
                ValueError,
                "fraction 0.5 of 4 weights prunes 2 more, but only 1 remain unpruned",
            ),
        ),
        paper=FRANKLE,
    ),
]
