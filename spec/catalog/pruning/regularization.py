"""Registry entries for `reference.pruning.regularization` and its torch twin: l1_penalty, l1_penalty_vjp,
l1_subgradient, l1_proximal, group_lasso_penalty, group_lasso_penalty_vjp, group_lasso_proximal.
"""

from __future__ import annotations

import numpy as np

from spec import strategies as S
from spec.catalog.common import LIU, PLUS_ZERO, STRENGTH
from spec.catalog.common import array as _a
from spec.catalog.common import bits_of as _bits
from spec.catalog.common import plus_zeros_float32 as _plus_zeros
from spec.catalog.common import to_float32 as _f32
from spec.entry import Bad, Case, Entry, Golden, Invariant

F32 = np.float32


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


def _s(v):
    return np.array(v, dtype=np.float32)


def _as_list(w):
    return list(w) if isinstance(w, list | tuple) else [w]


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


NO_VJP = "An optimizer step applied after the gradient step, not part of a forward pass: it has no VJP."


TAU = "tau = fl32(lr * lam): the float64 product, rounded once to float32 (inf beyond the float32 range)."
GROUPS = "Groups are the slices along `axis`; their norms are lp_norm's float32 L2 norms."

_GL = {"axis": 0}


_F6 = F32(1) - F32(2) / F32(5)  # 1 - fl32(2/5) in float32: 0.6000000238418579


ENTRIES = [
    Entry(
        name="l1_penalty",
        family="pruning",
        module="pruning.regularization",
        summary="L1 penalty lam * sum|w| over one array or a list: the exact sum, one float32 rounding.",
        strategy=S.l1_penalty_cases,
        vjp="l1_penalty_vjp",
        semantics=(
            "P = fl32(lam * exact_sum(|w|)): the exact sum rounded to float64, float64 product, rounded to float32.",
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
    Entry(
        name="group_lasso_penalty",
        family="pruning",
        module="pruning.regularization",
        summary="Group lasso lam * sum_g ||w_g||_2 over the slices along an axis.",
        strategy=S.group_lasso_cases,
        vjp="group_lasso_penalty_vjp",
        semantics=(
            GROUPS,
            "P = fl32(lam * exact_sum(norms)): the float32 norms summed exactly, rounded to float64, then float32.",
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
            Golden(
                Case((_s(1.0), _a([[3.0, -0.0], [0.0, 0.0]]), 2.0), _GL),
                _a([[2.0, 0.0], [0.0, 0.0]]),
                "row [3, -0.0] has norm 3: 2 * 3/3, and w_i = -0.0 gets +0.0; the zero row gets +0.0",
            ),
            Golden(
                Case((_s(1.0), _a([[3.0, 0.0], [4.0, -0.0]]), 2.0), {"axis": 1}),
                _a([[1.2, 0.0], [1.6, 0.0]]),
                "groups along axis 1 (columns): [3, 4] has norm 5, 2 * 3/5 and 2 * 4/5; the zero column +0.0",
            ),
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
]
