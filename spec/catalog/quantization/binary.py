"""Registry entries for `reference.quantization.binary` and its torch twin: binarize, binarize_vjp, binary_connect,
binary_connect_vjp, xnor_scale, xnor_binarize, xnor_binarize_vjp.
"""

from __future__ import annotations

import math

import numpy as np

from spec import strategies as S
from spec.catalog.common import AXIS_RULE, FINITE_RULE
from spec.catalog.common import array as _a
from spec.catalog.common import exact_mean as _exact_mean
from spec.catalog.common import float32_bits as _bits
from spec.catalog.common import rows as _rows
from spec.catalog.common import scalar as _s
from spec.catalog.common import spacing as _spacing
from spec.catalog.common import tree_error as _tree_error
from spec.entry import Bad, Case, Entry, Golden, Invariant

F = np.float32
BNN = (
    "Hubara et al., 2016. Binarized Neural Networks: Training Deep Neural Networks with Weights and Activations "
    "Constrained to +1 or -1. arXiv:1602.02830"
)
BINARYCONNECT = (
    "Courbariaux et al., 2015. BinaryConnect: Training Deep Neural Networks with binary weights during "
    "propagations. NeurIPS. arXiv:1511.00363"
)
XNOR = (
    "Rastegari et al., 2016. XNOR-Net: ImageNet Classification Using Binary Convolutional Neural Networks. ECCV. "
    "arXiv:1603.05279"
)


SIGN_RULE = "b(x) = +1 where x >= 0, -1 where x < 0: sign(0) = +1 for +0.0 and -0.0 (torch.sign gives 0)."
STE_RULE = "ste='clipped' passes the gradient where |x| <= 1 (inclusive), else +0.0; ste='identity' passes it all."


TREE_MEAN = "Means are the exact sum rounded once to float64, divided by n in float64, rounded once to float32."


def _plus_minus_one(call, case, out):
    x = case.args[-1]
    assert out.dtype == np.float32 and out.shape == x.shape
    expected = np.where(x >= 0, F(1), F(-1))
    assert np.array_equal(_bits(out), _bits(expected)), "b(x) must be +1 exactly where x >= 0 (zeros included)"


def _ste(call, case, out):
    grad, x = case.args
    passes = np.ones(x.shape, bool) if case.kwargs["ste"] == "identity" else np.abs(x) <= 1
    assert np.array_equal(_bits(out)[passes], _bits(grad)[passes]), "a passing gradient must be unchanged"
    assert np.all(_bits(out)[~passes] == 0), "a blocked gradient must be +0.0"


def _connect(call, case, out):
    from reference.core.random import uniform

    w, kw = case.args[0], case.kwargs
    assert out.dtype == np.float32 and set(np.unique(out).tolist()) <= {-1.0, 1.0}
    if not kw["stochastic"]:
        assert np.array_equal(_bits(out), _bits(np.where(w >= 0, F(1), F(-1)))), "deterministic is b(w)"
        return
    assert np.all(out[w >= 1] == 1) and np.all(out[w <= -1] == -1), "hard sigmoid saturates at +-1"
    if w.size:
        u = uniform(kw["key"], w.shape).astype(np.float64)
        up = 2 * u - 1 < w  # u < (w + 1) / 2, rearranged so that float64 evaluates it exactly
        assert np.array_equal(out == 1, up), "+1 iff u < (w + 1) / 2"


def _scale_is_mean(call, case, out):
    w, axis = case.args[0], case.kwargs["axis"]
    rows = _rows(np.abs(w), axis)
    got = np.asarray(out).reshape(-1)
    assert out.dtype == np.float32 and got.size == rows.shape[0]
    for row, alpha in zip(rows, got, strict=True):
        assert row.min() <= alpha <= row.max(), "the mean must lie between the smallest and largest |w|"
        assert abs(float(alpha) - _exact_mean(row)) <= _spacing(alpha), "alpha must be within 1 ulp of mean|w|"


def _xnor_values(call, case, out):
    w, axis = case.args[0], case.kwargs["axis"]
    mag = _rows(np.abs(out), axis)
    assert np.all(mag == mag[:, :1]), "every element of a slice is +-alpha"
    for row, alpha in zip(_rows(np.abs(w), axis), mag[:, 0], strict=True):
        assert abs(float(alpha) - _exact_mean(row)) <= _spacing(alpha)
    nonzero = out != 0
    assert np.array_equal((out > 0)[nonzero], (w >= 0)[nonzero]), "the sign of the output is b(w)"


def _xnor_grad(call, case, out):
    """Against the two-term chain rule evaluated independently (exact sums via fsum): within one float32 ulp."""
    grad, w = case.args
    axis, ste = case.kwargs["axis"], case.kwargs["ste"]
    g, a = _rows(grad.astype(np.float64), axis), _rows(w.astype(np.float64), axis)
    got = _rows(out.astype(np.float64), axis)
    for gr, ar, yr in zip(g, a, got, strict=True):
        alpha = float(np.float32(_exact_mean(np.abs(ar))))
        b = np.where(ar >= 0, 1.0, -1.0)
        m = math.fsum(b * gr) / len(gr)
        passes = np.ones(ar.shape, bool) if ste == "identity" else np.abs(ar) <= 1
        direct = np.where(passes, alpha * gr, 0.0)
        expected = direct + b * m
        ok = np.isinf(yr) & (np.abs(expected) >= 3.4028235e38)
        tree_error = _tree_error(gr)  # the tree mean of b * g may differ from the exact mean by this much
        tol = np.array([_spacing(min(v, 3.4e38)) for v in np.abs(direct) + abs(m)]) * 2 + tree_error + 2e-45
        assert np.all(ok | (np.abs(yr - expected) <= tol)), f"{yr} vs {expected}"


ENTRIES = [
    Entry(
        name="binarize",
        family="quantization",
        module="quantization.binary",
        summary="Sign binarization to +-1 with sign(0) = +1 and a straight-through gradient.",
        strategy=S.binarize_cases,
        vjp="binarize_vjp",
        semantics=(
            SIGN_RULE,
            "The output is exactly +1.0 or -1.0 in float32; empty arrays give empty arrays.",
            FINITE_RULE,
        ),
        invariants=(Invariant("+1 exactly where x >= 0", _plus_minus_one),),
        golden=(
            Golden(
                Case((_a([-2.5, -0.0, 0.0, 0.3, -1e-45]),)),
                _a([-1, 1, 1, 1, -1]),
                "both zeros give +1; a negative subnormal is negative",
            ),
            Golden(Case((_s(0.0),)), _s(1.0), "0-d"),
            Golden(Case((_a([]),)), _a([]), "empty in, empty out"),
        ),
        bad=(
            Bad(Case((_a([1.0, np.nan]),)), ValueError, "x must be finite, got nan at flat index 1"),
            Bad(Case((_a([-np.inf]),)), ValueError, "x must be finite, got -inf at flat index 0"),
            Bad(Case((_a([1.0], np.float64),)), TypeError, "x must have dtype float32, got float64"),
            Bad(Case(([1.0],)), TypeError, "x must be an array"),
            Bad(
                Case((_a([1.0]),), {"ste": "tanh"}), ValueError, "ste must be one of 'identity', 'clipped'; got 'tanh'"
            ),
        ),
        paper=BNN,
        peers=(("torch.sign, np.sign", "map 0 to 0; BNN, Distiller, Brevitas and QKeras map 0 to +1, as pqref."),),
    ),
    Entry(
        name="binarize_vjp",
        family="quantization",
        module="quantization.binary",
        summary="The straight-through gradient of binarize: identity, or clipped to |x| <= 1.",
        strategy=lambda: S.binarize_cases(with_grad=True),
        semantics=(STE_RULE, "clipped (the default) is BNN's hardtanh estimator.", FINITE_RULE),
        invariants=(Invariant("grad where it passes, +0.0 elsewhere", _ste),),
        golden=(
            Golden(
                Case((_a([1, 2, 3, 4, 5]), _a([-1, 1, 1.0000001, -2, 0]))),
                _a([1, 2, 0, 0, 5]),
                "clipped: x = +-1 pass (inclusive), the next float32 above 1 does not",
            ),
            Golden(Case((_a([1, -0.0]), _a([5, -5])), {"ste": "identity"}), _a([1, -0.0]), "identity keeps -0.0"),
        ),
        bad=(
            Bad(Case((_a([1, 1]), _a([1.0]))), ValueError, "grad has shape (2,) but x needs shape (1,)"),
            Bad(Case((_a([np.inf]), _a([1.0]))), ValueError, "grad must be finite, got inf at flat index 0"),
        ),
        paper=BNN,
    ),
    Entry(
        name="binary_connect",
        family="quantization",
        module="quantization.binary",
        summary="BinaryConnect: deterministic sign, or +1 with probability hard_sigmoid(w) from an explicit key.",
        strategy=S.binary_connect_cases,
        vjp="binary_connect_vjp",
        semantics=(
            "Deterministic: " + SIGN_RULE,
            "Stochastic: u = uniform(key, w.shape); +1 iff u < clip((w + 1) / 2, 0, 1), evaluated exactly as "
            "w > 2u - 1 (strict); P(+1) = ceil(2**24 * p) / 2**24.",
            "stochastic=True needs a key; a key with stochastic=False is an error.",
            "ste='identity' (the default, the paper's) or 'clipped' chooses the gradient only.",
            FINITE_RULE,
        ),
        invariants=(Invariant("b(w), or +1 iff u < (w + 1) / 2", _connect),),
        golden=(
            Golden(Case((_a([-0.5, 0.0, 2.0]),)), _a([-1, 1, 1]), "deterministic: the sign with b(0) = +1"),
            Golden(
                Case((_a([-0.0, 0.0, -1e-45]),)),
                _a([1, 1, -1]),
                "-0.0 is a zero: +1, as +0.0; the smallest negative subnormal is negative: -1",
            ),
            Golden(
                Case((_a([0.0, 0.0, -0.5674091577529907, 0.7]),), {"stochastic": True, "key": (0, 0)}),
                _a([1, -1, -1, 1]),
                "key (0, 0) draws u = [0.4185, 0.6005, 0.2163, 0.8041]; +1 iff w > 2u - 1 = [-0.163, 0.201, "
                "-0.5674091577529907, 0.608]; w[2] equals its threshold exactly, so -1",
            ),
            Golden(
                Case((_a([1.0, -1.0, 5.0, -5.0]),), {"stochastic": True, "key": (7, 9)}),
                _a([1, -1, 1, -1]),
                "p = 1 for w >= 1 and p = 0 for w <= -1, whatever u",
            ),
        ),
        bad=(
            Bad(Case((_a([1.0]),), {"stochastic": True}), ValueError, "stochastic=True needs a key"),
            Bad(Case((_a([1.0]),), {"key": (1, 2)}), ValueError, "key is only used with stochastic=True"),
            Bad(Case((_a([1.0]),), {"stochastic": True, "key": (1,)}), TypeError, "key must be a key"),
            Bad(Case((_a([1.0]),), {"stochastic": True, "key": (1, -2)}), ValueError, "key must be a key"),
            Bad(Case((_a([1.0]),), {"stochastic": 1}), TypeError, "stochastic must be a bool, got int 1"),
            Bad(Case((_a([np.inf]),)), ValueError, "w must be finite, got inf at flat index 0"),
        ),
        paper=BINARYCONNECT,
    ),
    Entry(
        name="binary_connect_vjp",
        family="quantization",
        module="quantization.binary",
        summary="The straight-through gradient of binary_connect (identity by default, or clipped).",
        strategy=lambda: S.binary_connect_cases(with_grad=True),
        semantics=(STE_RULE, "The random draw does not change the gradient.", FINITE_RULE),
        invariants=(Invariant("grad where it passes, +0.0 elsewhere", _ste),),
        golden=(
            Golden(Case((_a([1, 2, 3]), _a([-3, 0.5, 3]))), _a([1, 2, 3]), "identity: the gradient unchanged"),
            Golden(Case((_a([1, 2, 3]), _a([-3, 0.5, 3])), {"ste": "clipped"}), _a([0, 2, 0]), "clipped"),
            Golden(
                Case((_a([1, 2, 3]), _a([-3, 0.5, 3])), {"stochastic": True, "key": (0, 0)}),
                _a([1, 2, 3]),
                "stochastic with a key: the draw does not change the gradient (identity)",
            ),
            Golden(
                Case((_a([1, 2, 3]), _a([-3, 0.5, 3])), {"stochastic": True, "key": (0, 0), "ste": "clipped"}),
                _a([0, 2, 0]),
                "stochastic and clipped: |w| <= 1 passes, whatever the draw",
            ),
        ),
        bad=(Bad(Case((_a([1, 1]), _a([1.0]))), ValueError, "grad has shape (2,) but w needs shape (1,)"),),
        paper=BINARYCONNECT,
    ),
    Entry(
        name="xnor_scale",
        family="quantization",
        module="quantization.binary",
        summary="The XNOR-Net / BWN scale alpha = mean |w|, per tensor or per output channel.",
        strategy=lambda: S.xnor_cases(with_ste=False),
        semantics=(
            AXIS_RULE,
            "Default axis=None: one scale per tensor, which needs no assumption about where the filters are. "
            "XNOR-Net's BWN has one scale per output filter: axis=0 for (out, in, kh, kw) or (out, in).",
            TREE_MEAN,
            "An empty w raises ValueError.",
            FINITE_RULE,
        ),
        invariants=(Invariant("within 1 ulp of the exact mean |w|", _scale_is_mean),),
        golden=(
            Golden(Case((_a([[1, -2], [0.5, 0.5]]),), {"axis": 0}), _a([1.5, 0.5]), "per row"),
            Golden(Case((_a([[1, -2], [0.5, 0.5]]),), {"axis": 1}), _a([0.75, 1.25]), "per column"),
            Golden(Case((_a([[1, -2], [0.5, 0.5]]),)), _s(1.0), "per tensor"),
            Golden(Case((_a([0.0, -0.0]),)), _s(0.0), "all zero"),
        ),
        bad=(
            Bad(Case((_a([]),)), ValueError, "w has shape (0,): the XNOR scale needs at least one element"),
            Bad(Case((_a([1.0]),), {"axis": 1}), ValueError, "axis 1 is out of range for an array with 1 dimension(s)"),
            Bad(Case((_s(1.0),), {"axis": 0}), ValueError, "axis 0 is out of range for an array with 0 dimension(s)"),
            Bad(Case((_a([1.0]),), {"axis": 0.0}), TypeError, "axis must be an int, got float 0.0"),
            Bad(Case((_a([1.0, -np.inf]),)), ValueError, "w must be finite, got -inf at flat index 1"),
        ),
        paper=XNOR,
    ),
    Entry(
        name="xnor_binarize",
        family="quantization",
        module="quantization.binary",
        summary="XNOR-Net / BWN binary weights alpha * sign(w), with the chain-rule gradient through alpha.",
        strategy=S.xnor_cases,
        vjp="xnor_binarize_vjp",
        semantics=(
            "alpha * b(w) with alpha = xnor_scale(w, axis); " + SIGN_RULE,
            AXIS_RULE,
            "An all-zero slice gives +0.0 (its zeros binarize to +1).",
            FINITE_RULE,
        ),
        invariants=(Invariant("+-alpha per slice with the sign of b(w)", _xnor_values),),
        golden=(
            Golden(Case((_a([0.5, -1.0, 0.0, 2.5]),)), _a([1, -1, 1, 1]), "alpha = 4 / 4 = 1; b(0) = +1"),
            Golden(
                Case((_a([[1, -2], [0.5, -0.0]]),), {"axis": 0}),
                _a([[1.5, -1.5], [0.25, 0.25]]),
                "alpha = [1.5, 0.25] per row; -0.0 binarizes to +1",
            ),
            Golden(Case((_a([-0.0, 0.0]),)), _a([0.0, 0.0]), "all-zero: alpha = 0, +0.0 out"),
        ),
        bad=(
            Bad(Case((_a([1.0]),), {"ste": "none"}), ValueError, "ste must be one of"),
            Bad(Case((_a([[]]),), {"axis": 0}), ValueError, "w has shape (1, 0): the XNOR scale needs"),
        ),
        paper=XNOR,
    ),
    Entry(
        name="xnor_binarize_vjp",
        family="quantization",
        module="quantization.binary",
        summary="The gradient of xnor_binarize: alpha * g * pass + b * mean(b * g) per slice.",
        strategy=lambda: S.xnor_cases(with_grad=True),
        semantics=(
            "dL/dw_i = alpha g_i pass(w_i) + b_i * (1/n) sum_j b_j g_j over the slice of w_i (d|w|/dw = b, +1 at 0).",
            STE_RULE.replace("x", "w"),
            "The mean term is fl64(exact_sum(b g) / n); alpha g_i + b_i m is one float64 addition, rounded once to "
            "float32; beyond the float32 range it is +-inf.",
            "This is the chain rule of the forward pass. The paper prints (1/n + dsign/dw alpha) g_i and the authors' "
            "Lua code (allenai/XNOR-Net updateBinaryGradWeight) computes g (alpha 1{|w|<1} + 1/n); only a PyTorch "
            "port (jiecaoyu/XNOR-Net-PyTorch) has the b * mean(b * g) term. Both scale by n (1 - 1/C_in), left out.",
            FINITE_RULE,
        ),
        invariants=(Invariant("the chain rule within 2 ulp (independent exact sums)", _xnor_grad),),
        golden=(
            Golden(
                Case((_a([1, 1]), _a([0.5, -2.0]))),
                _a([1.25, 0.0]),
                "alpha = 1.25, m = (1 - 1) / 2 = 0; |-2| > 1 blocks the direct term",
            ),
            Golden(Case((_a([1, 1]), _a([0.5, -2.0])), {"ste": "identity"}), _a([1.25, 1.25]), "identity"),
            Golden(
                Case((_a([2, 0]), _a([1, 3]))),
                _a([5, 1]),
                "alpha = 2, b = [1, 1], m = 1: [2 * 2 + 1, 0 + 1]",
            ),
            Golden(
                Case((_a([[1, 0], [0, 4]]), _a([[1, -1], [2, 2]])), {"axis": 0}),
                _a([[1.5, -0.5], [2, 2]]),
                "row 0: alpha 1, m = 0.5 -> [1 + 0.5, 0 - 0.5]; row 1: alpha 2, m = 2, both blocked -> [2, 2]",
            ),
        ),
        bad=(
            Bad(Case((_a([1, 1]), _a([1.0]))), ValueError, "grad has shape (2,) but w needs shape (1,)"),
            Bad(Case((_a([np.nan]), _a([1.0]))), ValueError, "grad must be finite, got nan at flat index 0"),
        ),
        paper=XNOR,
    ),
]
