"""Registry entries for `reference.pruning.saliency` and its torch twin: score_mask, movement_scores, snip_scores,
taylor_scores, taylor_mask, wanda_scores, wanda_mask, fpgm_scores, fpgm_mask, block_scores, block_mask.
"""

from __future__ import annotations

import math

import numpy as np

from spec import strategies as S
from spec.catalog.common import TIE_RULE
from spec.catalog.common import array as _a
from spec.catalog.common import kept as _kept
from spec.catalog.common import mask as _m
from spec.catalog.common import ranked as _ranked
from spec.catalog.common import same_float32_bits as _same
from spec.entry import Bad, Case, Entry, Golden, Invariant

T, F = True, False
INF = float("inf")
MAX = float(np.finfo(np.float32).max)

SANH = "Sanh et al., 2020. Movement Pruning: Adaptive Sparsity by Fine-Tuning. NeurIPS. arXiv:2005.07683"
LEE = "Lee et al., 2019. SNIP: Single-shot Network Pruning based on Connection Sensitivity. ICLR. arXiv:1810.02340"
MOLCHANOV = "Molchanov et al., 2019. Importance Estimation for Neural Network Pruning. CVPR. arXiv:1906.10771"
SUN = "Sun et al., 2023. A Simple and Effective Pruning Approach for Large Language Models. arXiv:2306.11695"
HE = (
    "He et al., 2019. Filter Pruning via Geometric Median for Deep Convolutional Neural Networks Acceleration. "
    "CVPR. arXiv:1811.00250"
)
GRAY = "Gray et al., 2017. GPU Kernels for Block-Sparse Weights. OpenAI technical report."


COUNT_RULE = "Pruned count k = round_half_even(sparsity * n) in float64 (pruned_count), as torch.nn.utils.prune."


SHAPES_RULE = "All score and weight arrays must have exactly the same shape (never broadcast): ValueError otherwise."


def _nonnegative(out):
    assert out.dtype == np.float32
    assert not np.isnan(out).any(), "a score is NaN"
    assert np.all(out.view(np.uint32) >> 31 == 0), "a score is negative or -0.0"


def _rows(a, axis):
    """`a` as `(C, D)` float64: row c is slice c along `axis`, flattened in C order."""
    c = a.shape[axis]
    return np.moveaxis(a.astype(np.float64), axis, 0).reshape(c, math.prod(a.shape) // max(c, 1))


def _per_slice(mask, axis):
    """The per-slice decisions of a mask constant over the slices along `axis`."""
    slices = np.moveaxis(mask, axis, 0)
    slices = slices.reshape(slices.shape[0], math.prod(slices.shape[1:]))
    if slices.shape[1]:
        assert np.all(slices == slices[:, :1]), "a slice is partly pruned"
    return slices[:, 0] if slices.shape[1] else None


def _score_mask(call, case, out):
    scores, sparsity = case.args
    assert out.shape == scores.shape and out.sum() == _kept(scores.size, sparsity), "wrong number kept"
    _ranked(scores, out)


def _score_mask_nested(call, case, out):
    scores, sparsity = case.args
    denser = call(Case((scores, min(1.0, sparsity + 0.25))))
    assert not np.any(denser & ~out), "masks must be nested as sparsity grows"


def _movement(call, case, out):
    scores, w, grad = case.args
    with np.errstate(over="ignore"):
        expected = scores + (-(w * grad))
    _same(out, expected, "S - w g must equal S + (-(w g)) bit for bit")


def _movement_zero_grad(call, case, out):
    scores, w, grad = case.args
    still = call(Case((scores, w, np.zeros_like(grad))))
    assert np.array_equal(still, scores), "a zero gradient must leave the scores (up to the sign of zero)"


def _snip(call, case, out):
    w, grad = case.args
    _nonnegative(out)
    with np.errstate(over="ignore"):
        _same(out, np.abs(w) * np.abs(grad), "|w g| must equal |w| |g| bit for bit")


def _taylor_sign(call, case, out):
    w, grad = case.args
    _nonnegative(out)
    assert out.shape == (w.shape[case.kwargs["axis"]],)
    _same(call(Case((w, -grad), case.kwargs)), out, "negating the gradient must not change the squared sums")


def _taylor_value(call, case, out):
    """Against exact rational arithmetic: the exact sum rounded once to float64 (CPython's int / int is correctly
    rounded), squared in float64, then rounded to float32."""
    from fractions import Fraction

    w, grad = case.args
    axis = case.kwargs["axis"] % w.ndim
    a, g = _rows(w, axis), _rows(grad, axis)
    for c in range(w.shape[axis]):
        p = a[c] * g[c]
        s = np.float64(float(sum((Fraction(float(v)) for v in p), Fraction(0))))
        with np.errstate(over="ignore"):
            want = np.float32(s * s)
        _same(np.asarray(out[c]), np.asarray(want), f"slice {c}")


def _taylor_mask(call, case, out):
    from reference.pruning.saliency import taylor_scores

    w, grad, sparsity = case.args
    axis = case.kwargs["axis"] % w.ndim
    keep = _per_slice(out, axis)
    if keep is not None:
        assert keep.sum() == _kept(w.shape[axis], sparsity), "wrong number of slices kept"
        _ranked(taylor_scores(w, grad, axis), keep)


def _wanda(call, case, out):
    w, x = case.args
    _nonnegative(out)
    assert out.shape == w.shape
    assert np.all(out[w == 0] == 0), "a zero weight must score +0"
    _same(call(Case((-w, -x))), out, "scores depend on |w| and on the feature norms only")


def _wanda_mask(call, case, out):
    from reference.pruning.saliency import wanda_scores

    w, x, sparsity = case.args
    assert out.shape == w.shape
    scores = wanda_scores(w, x)
    for row, keep in zip(scores, out, strict=True):
        assert keep.sum() == _kept(w.shape[1], sparsity), "wrong number kept in a row"
        _ranked(row, keep)


def _wanda_nested(call, case, out):
    w, x, sparsity = case.args
    denser = call(Case((w, x, min(1.0, sparsity + 0.25))))
    assert not np.any(denser & ~out), "masks must be nested as sparsity grows"


def _fpgm(call, case, out):
    w = case.args[0]
    axis = case.kwargs["axis"] % w.ndim
    _nonnegative(out)
    assert out.shape == (w.shape[axis],)
    _same(call(Case((-w,), case.kwargs)), out, "negating every filter must not change the distances")
    if w.shape[axis] <= 2:
        assert np.unique(out.view(np.uint32)).size <= 1, "with one or two filters every score is the same"


def _fpgm_value(call, case, out):
    """Close to the float64 pairwise distances (numpy.linalg.norm) wherever both are finite."""
    w = case.args[0]
    axis = case.kwargs["axis"] % w.ndim
    f = _rows(w, axis)
    with np.errstate(over="ignore"):
        plain = np.array([sum(np.linalg.norm(fi - fj) for fj in f) for fi in f], dtype=np.float64)
    finite = np.isfinite(out) & (plain < MAX / 2)
    assert np.all(np.abs(out[finite] - plain[finite]) <= 1e-5 * plain[finite] + 1e-44), "far from the plain sums"


def _fpgm_mask(call, case, out):
    from reference.pruning.saliency import fpgm_scores

    w, sparsity = case.args
    axis = case.kwargs["axis"] % w.ndim
    keep = _per_slice(out, axis)
    if keep is not None:
        assert keep.sum() == _kept(w.shape[axis], sparsity), "wrong number of filters kept"
        _ranked(fpgm_scores(w, axis), keep)


def _fpgm_nested(call, case, out):
    w, sparsity = case.args
    denser = call(Case((w, min(1.0, sparsity + 0.25)), case.kwargs))
    assert not np.any(denser & ~out), "masks must be nested as sparsity grows"


def _block_scores(call, case, out):
    from reference.core.reduce import lp_norm

    w, (b0, b1) = case.args
    assert out.shape == (w.shape[0] // b0, w.shape[1] // b1) and out.dtype == np.float32
    for r in range(out.shape[0]):
        for c in range(out.shape[1]):
            tile = w[r * b0 : (r + 1) * b0, c * b1 : (c + 1) * b1]
            _same(out[r : r + 1, c], lp_norm(tile.reshape(-1), 2).reshape(1), f"tile ({r}, {c}) is its L2 norm")


def _block_mask(call, case, out):
    from reference.pruning.saliency import block_scores

    w, sparsity, (b0, b1) = case.args
    assert out.shape == w.shape
    grid = out.reshape(w.shape[0] // b0, b0, w.shape[1] // b1, b1)
    keep = grid[:, 0, :, 0]
    assert np.all(grid == keep[:, None, :, None]), "a block is partly pruned"
    assert keep.sum() == _kept(keep.size, sparsity), "wrong number of blocks kept"
    _ranked(block_scores(w, (b0, b1)), keep)


def _block_nested(call, case, out):
    w, sparsity, block = case.args
    denser = call(Case((w, min(1.0, sparsity + 0.25), block)))
    assert not np.any(denser & ~out), "masks must be nested as sparsity grows"


ENTRIES = [
    Entry(
        name="score_mask",
        family="pruning",
        module="pruning.saliency",
        summary="Keep the largest scores of any saliency (movement, SNIP, per-channel): magnitude pruning's rule.",
        strategy=S.score_mask_cases,
        semantics=(COUNT_RULE, TIE_RULE, "Scores are float32; +-Inf are ordinary scores, NaN is rejected."),
        invariants=(
            Invariant("count, order, ties", _score_mask),
            Invariant("nested as sparsity grows", _score_mask_nested),
        ),
        golden=(
            Golden(Case((_a([2, 5, 2, 2]), 0.5)), _m([T, T, F, F]), "k = 2; three tie at 2: index 0 wins"),
            Golden(Case((_a([-INF, 1, INF]), 1 / 3)), _m([F, T, T]), "an overflowed score is the largest"),
            Golden(Case((_a([-0.0, 0.0, 0.0]), 1 / 3)), _m([T, T, F]), "signed zeros tie"),
            Golden(Case((_a([1, 2, 3, 4, 5]), 0.5)), _m([F, F, T, T, T]), "k = rne(2.5) = 2"),
        ),
        bad=(
            Bad(Case((_a([1.0, np.nan]), 0.5)), ValueError, "scores must not contain NaN, got nan at flat index 1"),
            Bad(Case((_a([1.0]), 1.5)), ValueError, "sparsity must be in [0.0, 1.0], got 1.5"),
            Bad(Case((_a([1.0], np.float64), 0.5)), TypeError, "scores must have dtype float32, got float64"),
        ),
        paper=SANH,
    ),
    Entry(
        name="movement_scores",
        family="pruning",
        module="pruning.saliency",
        summary="One step of movement pruning's score accumulation: scores - w * grad in float32.",
        strategy=S.movement_cases,
        semantics=(
            "S' = fl32(S - fl32(w * g)): two float32 roundings, never a fused multiply-add.",
            "A product beyond the float32 range overflows to +-inf (IEEE); the score follows.",
            SHAPES_RULE,
        ),
        invariants=(
            Invariant("equals S + (-(w g))", _movement),
            Invariant("a zero gradient leaves the scores", _movement_zero_grad),
        ),
        golden=(
            Golden(
                Case((_a([0.5, 0, 0]), _a([2, 1, -1]), _a([-0.25, 0.5, 0.5]))),
                _a([1.0, -0.5, 0.5]),
                "moving away from zero gains score, toward zero loses it",
            ),
            Golden(Case((_a([1.0]), _a([MAX]), _a([2.0]))), _a([-INF]), "w * g overflows"),
            Golden(Case((_a([-0.0]), _a([0.0]), _a([1.0]))), _a([-0.0]), "-0 - (+0) is -0 under IEEE"),
        ),
        bad=(
            Bad(
                Case((_a([0, 0, 0]), _a([1, 2]), _a([1, 2]))),
                ValueError,
                "scores has shape (3,) but w needs shape (2,)",
            ),
            Bad(
                Case((_a([0, 0]), _a([1, 2]), _a([INF, 2]))), ValueError, "grad must be finite, got inf at flat index 0"
            ),
            Bad(Case((_a([0]), _a([1]), _a([[1]]))), ValueError, "grad has shape (1, 1) but w needs shape (1,)"),
        ),
        paper=SANH,
    ),
    Entry(
        name="snip_scores",
        family="pruning",
        module="pruning.saliency",
        summary="SNIP connection sensitivity |w * g| (unnormalized; rank with score_mask).",
        strategy=S.snip_cases,
        semantics=(
            "s = |fl32(w * g)|: one rounding; never -0.0; overflow gives inf.",
            "SNIP's division by the sum of sensitivities is left out: it does not change the ranking.",
            SHAPES_RULE,
        ),
        invariants=(Invariant("equals |w| |g|, nonnegative", _snip),),
        golden=(
            Golden(Case((_a([-3, 2, 0]), _a([0.5, -1, -5]))), _a([1.5, 2, 0]), "|0 * -5| is +0.0"),
            Golden(Case((_a([MAX]), _a([-2.0]))), _a([INF]), "overflow"),
            Golden(
                Case((_a([-0.0, -2.0, 0.0]), _a([3.0, 0.0, -0.0]))),
                _a([0, 0, 0]),
                "the products -0.0 * 3, -2 * 0 and 0 * -0.0 are -0.0; the scores are +0.0",
            ),
        ),
        bad=(Bad(Case((_a([1, 2]), _a([1]))), ValueError, "grad has shape (1,) but w needs shape (2,)"),),
        paper=LEE,
    ),
    Entry(
        name="taylor_scores",
        family="pruning",
        module="pruning.saliency",
        summary="First-order Taylor importance per slice: (sum of w * g over the slice)^2.",
        strategy=S.taylor_cases,
        semantics=(
            "Products w * g are exact in float64; their exact sum per slice, rounded once to float64.",
            "The square is rounded to float64, then to float32 (two pinned roundings); beyond float32: inf.",
            "Slices are indexed along `axis`; w needs at least one dimension.",
            SHAPES_RULE,
        ),
        invariants=(
            Invariant("nonnegative, sign of g irrelevant", _taylor_sign),
            Invariant("the exact sum rounded to float64, squared, rounded twice", _taylor_value),
        ),
        golden=(
            Golden(Case((_a([[1, 2], [3, 1]]), _a([[2, -1], [1, 1]])), {"axis": 0}), _a([0, 16]), "(2-2)^2, (3+1)^2"),
            Golden(Case((_a([[1, 2], [3, 1]]), _a([[2, -1], [1, 1]])), {"axis": 1}), _a([25, 1]), "(2+3)^2, (-2+1)^2"),
            Golden(Case((_a([[MAX, MAX]]), _a([[1, 1]])), {"axis": 0}), _a([INF]), "the square overflows float32"),
        ),
        bad=(
            Bad(Case((_a(1.0), _a(1.0)), {"axis": 0}), ValueError, "w must have at least one dimension"),
            Bad(Case((_a([[1.0]]), _a([[1.0]])), {"axis": 2}), ValueError, "axis 2 is out of range"),
            Bad(
                Case((_a([1.0]), _a([1.0, 2.0])), {"axis": 0}), ValueError, "grad has shape (2,) but w needs shape (1,)"
            ),
        ),
        paper=MOLCHANOV,
    ),
    Entry(
        name="taylor_mask",
        family="pruning",
        module="pruning.saliency",
        summary="Prune the whole slices with the smallest first-order Taylor importance.",
        strategy=lambda: S.taylor_cases(mask=True),
        semantics=(COUNT_RULE + " n is the number of slices.", "Equal importances go to the lower slice index."),
        invariants=(Invariant("whole slices, count, order by taylor_scores", _taylor_mask),),
        golden=(
            Golden(
                Case((_a([[1, 2], [3, 1], [1, 1]]), _a([[2, -1], [1, 1], [1, 0]]), 1 / 3), {"axis": 0}),
                _m([[F, F], [T, T], [T, T]]),
                "importances 0, 16, 1",
            ),
            Golden(
                Case((_a([[1, 3, 1], [2, 1, 1]]), _a([[2, 1, 1], [-1, 1, 0]]), 1 / 3), {"axis": 1}),
                _m([[F, T, T], [F, T, T]]),
                "slices along axis 1 (columns): importances 0, 16, 1; the first column goes",
            ),
        ),
        bad=(Bad(Case((_a([1.0]), _a([1.0]), -0.5), {"axis": 0}), ValueError, "sparsity must be in [0.0, 1.0]"),),
        paper=MOLCHANOV,
    ),
    Entry(
        name="wanda_scores",
        family="pruning",
        module="pruning.saliency",
        summary="Wanda scores |W_ij| * ||X_j||_2 with the feature norms from canonical sums.",
        strategy=S.wanda_cases,
        semantics=(
            "Norms: lp_norm(x, 2, axis=0), the correctly rounded float32 norm of the canonical float64 sum.",
            "Score: one float32 product; a zero weight scores +0.0 even where the norm is inf (never NaN).",
            "w is (out, in), x is (tokens, in) with tokens >= 1.",
        ),
        invariants=(Invariant("nonnegative, zero weights +0, sign-free", _wanda),),
        golden=(
            Golden(Case((_a([[1, -2]]), _a([[3, 0], [4, 1]]))), _a([[5, 2]]), "norms 5 and 1"),
            Golden(Case((_a([[0, 1]]), _a([[MAX, 1], [MAX, 0]]))), _a([[0, 1]]), "0 * inf would be NaN: +0"),
            Golden(Case((_a([[1, 1]]), _a([[MAX, 0], [MAX, 0]]))), _a([[INF, 0]]), "the norm overflows"),
        ),
        bad=(
            Bad(Case((_a([[1, 2, 3, 4]]), _a([[1, 2, 3]]))), ValueError, "x has shape (1, 3) but w with 4 input"),
            Bad(Case((_a([[1, 2]]), np.zeros((0, 2), np.float32))), ValueError, "x must hold at least one"),
            Bad(Case((_a([1, 2]), _a([[1, 2]]))), ValueError, "w must be 2-D (out, in), got shape (2,)"),
        ),
        paper=SUN,
    ),
    Entry(
        name="wanda_mask",
        family="pruning",
        module="pruning.saliency",
        summary="Wanda pruning: the same fraction pruned in every output row, by |W_ij| * ||X_j||_2.",
        strategy=lambda: S.wanda_cases(mask=True),
        semantics=(
            "Weights compete within their output row only: k = round_half_even(sparsity * in) per row.",
            "Equal scores go to the lower input index within the row.",
            "Divergence (asserted in tests): the authors' code prunes int(sparsity * in) and, among ties, the "
            "lower indices.",
        ),
        invariants=(
            Invariant("count and order per row", _wanda_mask),
            Invariant("nested as sparsity grows", _wanda_nested),
        ),
        golden=(
            Golden(
                Case((_a([[1, -2, 3, 0.5], [4, 4, 4, 4]]), _a([[1, 1, 1, 2]]), 0.5)),
                _m([[F, T, T, F], [T, F, F, T]]),
                "scores [1, 2, 3, 1] and [4, 4, 4, 8]; two kept per row, ties to index 0",
            ),
        ),
        bad=(Bad(Case((_a([[1.0]]), _a([[1.0]]), 2)), ValueError, "sparsity must be in [0.0, 1.0], got 2"),),
        paper=SUN,
    ),
    Entry(
        name="fpgm_scores",
        family="pruning",
        module="pruning.saliency",
        summary="FPGM: each filter's summed Euclidean distance to all filters (small = near the geometric median).",
        strategy=S.fpgm_cases,
        semantics=(
            "f_i - f_j and its square in float64 (IEEE; exact for nearby exponents), exact sum rounded to float64, "
            "correctly rounded float32 square root per pair.",
            "score_i = fl32(exact_sum_j d_ij), j = 0..C-1 including d_ii = 0; an infinite distance gives inf.",
            "Filters are the slices along `axis`, flattened in C order; w needs at least one dimension.",
        ),
        invariants=(
            Invariant("nonnegative, symmetric, negation-invariant", _fpgm),
            Invariant("close to float64 numpy.linalg.norm sums", _fpgm_value),
        ),
        golden=(
            Golden(Case((_a([[0, 0], [3, 4], [6, 8]]),), {"axis": 0}), _a([15, 10, 15]), "5 + 10, 5 + 5, 10 + 5"),
            Golden(Case((_a([[0, 3], [0, 4]]),), {"axis": 1}), _a([5, 5]), "filters are columns"),
            Golden(Case((_a([[MAX], [-MAX]]),), {"axis": 0}), _a([INF, INF]), "the distance overflows float32"),
        ),
        bad=(
            Bad(Case((_a(1.0),), {"axis": 0}), ValueError, "w must have at least one dimension"),
            Bad(Case((_a([np.nan]),), {"axis": 0}), ValueError, "w must be finite, got nan at flat index 0"),
        ),
        paper=HE,
    ),
    Entry(
        name="fpgm_mask",
        family="pruning",
        module="pruning.saliency",
        summary="FPGM filter pruning: prune the filters nearest the geometric median.",
        strategy=lambda: S.fpgm_cases(mask=True),
        semantics=(
            COUNT_RULE + " n is the number of filters.",
            "The smallest scores are pruned; equal scores go to the lower filter index (identical filters: the "
            "later ones are pruned first).",
        ),
        invariants=(
            Invariant("whole filters, count, order by fpgm_scores", _fpgm_mask),
            Invariant("nested as sparsity grows", _fpgm_nested),
        ),
        golden=(
            Golden(
                Case((_a([[0, 0], [3, 4], [6, 8]]), 1 / 3), {"axis": 0}),
                _m([[T, T], [F, F], [T, T]]),
                "the middle filter is the median",
            ),
            Golden(
                Case((_a([[1, 1], [1, 1], [5, 5]]), 1 / 3), {"axis": 0}),
                _m([[T, T], [F, F], [T, T]]),
                "identical filters tie: the later one is pruned",
            ),
            Golden(
                Case((_a([[0, 3, 6], [0, 4, 8]]), 1 / 3), {"axis": 1}),
                _m([[T, F, T], [T, F, T]]),
                "filters along axis 1 (columns [0, 0], [3, 4], [6, 8]): distances 15, 10, 15; the median goes",
            ),
        ),
        bad=(Bad(Case((_a([[1.0]]), 1.5), {"axis": 0}), ValueError, "sparsity must be in [0.0, 1.0], got 1.5"),),
        paper=HE,
    ),
    Entry(
        name="block_scores",
        family="pruning",
        module="pruning.saliency",
        summary="The L2 norm of every b0 x b1 tile of a 2-D weight.",
        strategy=S.block_cases,
        semantics=(
            "lp_norm over the tile flattened row-major: canonical float64 sum, correctly rounded float32 sqrt.",
            "block must divide w's shape (never padded); w must be 2-D.",
        ),
        invariants=(Invariant("each tile's L2 norm", _block_scores),),
        golden=(
            Golden(Case((_a([[3, 4, 0, 1]]), (1, 2))), _a([[5, 1]]), "tiles [3, 4] and [0, 1]"),
            Golden(Case((_a([[1, 1, 0, 0], [1, 1, 0, 2]]), (2, 2))), _a([[2, 2]]), "both tiles have norm 2"),
        ),
        bad=(
            Bad(
                Case((np.zeros((3, 4), np.float32), (2, 2))), ValueError, "block (2, 2) does not divide w.shape (3, 4)"
            ),
            Bad(
                Case((np.zeros((2, 2), np.float32), (0, 1))),
                ValueError,
                "block[0] must be in [1, 1099511627776], got 0",
            ),
            Bad(Case((np.zeros((2, 2), np.float32), 2)), TypeError, "block must be a tuple of two ints, got int 2"),
            Bad(Case((np.zeros(4, np.float32), (1, 1))), ValueError, "w must be 2-D for block sparsity"),
        ),
        paper=GRAY,
    ),
    Entry(
        name="block_mask",
        family="pruning",
        module="pruning.saliency",
        summary="Block sparsity: prune whole b0 x b1 tiles with the smallest L2 norm.",
        strategy=lambda: S.block_cases(mask=True),
        semantics=(
            COUNT_RULE + " n is the number of tiles.",
            "Equal norms go to the lower tile index, tiles numbered row-major over the tile grid.",
            "block must divide w's shape: ValueError otherwise.",
        ),
        invariants=(
            Invariant("whole blocks, count, order", _block_mask),
            Invariant("nested as sparsity grows", _block_nested),
        ),
        golden=(
            Golden(
                Case((_a([[1, 1, 0, 0], [1, 1, 0, 2]]), 0.5, (2, 2))),
                _m([[T, T, F, F], [T, T, F, F]]),
                "equal norms: the lower tile wins",
            ),
            Golden(
                Case((_a([[1, 0], [1, 0], [0, 3], [0, 0]]), 0.5, (2, 1))),
                _m([[T, F], [T, F], [F, T], [F, T]]),
                "tile norms [[sqrt 2, 0], [0, 3]]",
            ),
        ),
        bad=(
            Bad(Case((np.zeros((3, 4), np.float32), 0.5, (2, 2))), ValueError, "block (2, 2) does not divide"),
            Bad(Case((np.zeros((2, 2), np.float32), 1.5, (1, 1))), ValueError, "sparsity must be in [0.0, 1.0]"),
        ),
        paper=GRAY,
    ),
]
