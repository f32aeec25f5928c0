"""Registry entries for pruning masks (bool, True = kept)."""

from __future__ import annotations

import math

import numpy as np

from spec import strategies as S
from spec.entry import Bad, Case, Entry, Golden, Invariant

HAN = "Han et al., 2015. Learning both Weights and Connections for Efficient Neural Networks. NeurIPS. arXiv:1506.02626"
T, F = True, False


def _a(values, dtype=np.float32):
    return np.array(values, dtype=dtype)


def _m(values):
    return np.array(values, dtype=bool)


# ---- invariants ---------------------------------------------------------------------------------------------


def _kept_count(w, sparsity):
    return w.size - round(sparsity * w.size)


def _magnitude_order(w, mask):
    """Every kept |w| >= every pruned |w|, and at the boundary value lower indices are kept first."""
    a = np.abs(w).reshape(-1)
    m = mask.reshape(-1)
    if m.any() and (~m).any():
        assert a[m].min() >= a[~m].max(), "a pruned weight is larger than a kept one"
        tied = np.flatnonzero(a == a[m].min())
        assert np.all(np.diff(m[tied].astype(int)) <= 0), "among ties a higher index was kept over a lower one"


def _magnitude(call, case, out):
    w, sparsity = case.args
    assert out.dtype == bool and out.shape == w.shape
    assert out.sum() == _kept_count(w, sparsity), "wrong number kept"
    _magnitude_order(w, out)


def _nested(call, case, out):
    w, sparsity = case.args
    denser = call(Case((w, min(1.0, sparsity + 0.25))))
    assert not np.any(denser & ~out), "masks must be nested as sparsity grows"


def _by_count(call, case, out):
    w, count = case.args
    assert out.sum() == w.size - count
    _magnitude_order(w, out)


def _threshold(call, case, out):
    w, t = case.args
    assert np.array_equal(out, np.abs(w).astype(np.float64) > t)


def _global(call, case, out):
    ws, sparsity = case.args
    flat_w = np.concatenate([w.reshape(-1) for w in ws])
    flat_m = np.concatenate([m.reshape(-1) for m in out])
    assert [m.shape for m in out] == [w.shape for w in ws]
    assert flat_m.sum() == _kept_count(flat_w, sparsity)
    _magnitude_order(flat_w, flat_m)


def _masked(call, case, out):
    w, mask = case.args
    assert np.array_equal(out[mask].view(np.uint32), w[mask].view(np.uint32)), "kept values must pass unchanged"
    assert np.all(out[~mask].view(np.uint32) == 0), "pruned values must be +0.0"


def _masked_grad(call, case, out):
    grad, _, mask = case.args
    assert np.array_equal(out[mask].view(np.uint32), grad[mask].view(np.uint32)), "kept gradients must pass unchanged"
    assert np.all(out[~mask].view(np.uint32) == 0), "pruned gradients must be +0.0"


def _structured(call, case, out):
    w, sparsity = case.args
    axis = case.kwargs["axis"] % w.ndim
    slices = np.moveaxis(out, axis, 0)
    slices = slices.reshape(slices.shape[0], math.prod(slices.shape[1:]))
    if slices.shape[1]:
        assert np.all(slices == slices[:, :1]), "a slice is partly pruned"
        c = w.shape[axis]
        assert slices[:, 0].sum() == c - round(sparsity * c), "wrong number of slices kept"


def _nm(call, case, out):
    w, n, m = case.args
    a = np.moveaxis(np.abs(w), case.kwargs["axis"], -1)
    g = a.reshape(-1, m)
    k = np.moveaxis(out, case.kwargs["axis"], -1).reshape(-1, m)
    assert np.all(k.sum(axis=1) == n), "each group must keep exactly n"
    for row, keep in zip(g, k, strict=True):
        _magnitude_order(row, keep)


def _random_count(call, case, out):
    w, sparsity, _ = case.args
    assert out.sum() == _kept_count(w, sparsity)


def _count_range(call, case, out):
    sparsity, n = case.args
    assert isinstance(out, int) and 0 <= out <= n


# ---- entries ------------------------------------------------------------------------------------------------

TIE_RULE = "Ties in |w| go to the lower flat index (a stable descending sort); +0.0 and -0.0 tie."
COUNT_RULE = "Pruned count k = round_half_even(sparsity * n) in float64, as torch.nn.utils.prune."

ENTRIES = [
    Entry(
        name="pruned_count",
        family="pruning",
        module="pruning.magnitude",
        summary="How many of n units a sparsity prunes: round half to even of sparsity * n.",
        strategy=S.count_cases,
        semantics=(COUNT_RULE,),
        invariants=(Invariant("in [0, n]", _count_range),),
        golden=(
            Golden(Case((0.5, 5)), 2, "2.5 rounds to even 2"),
            Golden(Case((0.5, 7)), 4, "3.5 rounds to even 4"),
            Golden(Case((0.25, 2)), 0, "0.5 rounds to even 0"),
        ),
        bad=(
            Bad(Case((1.5, 4)), ValueError, "sparsity must be in [0.0, 1.0], got 1.5"),
            Bad(Case((float("nan"), 4)), ValueError, "sparsity must be finite, got nan"),
            Bad(Case((True, 4)), TypeError, "sparsity must be a real number, got bool"),
            Bad(Case((0.5, -1)), ValueError, "n must be in [0, 1099511627776], got -1"),
        ),
    ),
    Entry(
        name="magnitude_mask",
        extra=(("kernels", "torch_backend.kernels.select:magnitude_mask"),),
        family="pruning",
        module="pruning.magnitude",
        summary="Unstructured magnitude pruning to a sparsity fraction.",
        strategy=S.magnitude_cases,
        semantics=(COUNT_RULE, "Kept: the n - k largest |w|.", TIE_RULE),
        invariants=(Invariant("count, order, ties", _magnitude), Invariant("nested as sparsity grows", _nested)),
        golden=(
            Golden(Case((_a([1, -1, 1, 0.5]), 0.5)), _m([T, T, F, F]), "three tie at 1; lower indices win"),
            Golden(Case((_a([1, 2, 3, 4, 5]), 0.5)), _m([F, F, T, T, T]), "k = rne(2.5) = 2"),
            Golden(Case((_a([0.0, -0.0, 1.0]), 0.34)), _m([T, F, T]), "signed zeros tie; k = rne(1.02) = 1"),
        ),
        bad=(
            Bad(Case((_a([1.0, np.nan]), 0.5)), ValueError, "w must be finite, got nan at flat index 1"),
            Bad(Case((_a([1.0, 2.0], np.float64), 0.5)), TypeError, "w must have dtype float32, got float64"),
            Bad(Case((_a([1.0]), -0.1)), ValueError, "sparsity must be in [0.0, 1.0], got -0.1"),
            Bad(Case(([1.0], 0.5)), TypeError, "w must be an array"),
        ),
        paper=HAN,
    ),
    Entry(
        name="magnitude_mask_by_count",
        extra=(("kernels", "torch_backend.kernels.select:magnitude_mask_by_count"),),
        family="pruning",
        module="pruning.magnitude",
        summary="Prune exactly `count` smallest-magnitude weights.",
        strategy=S.magnitude_count_cases,
        semantics=(TIE_RULE,),
        invariants=(Invariant("count, order, ties", _by_count),),
        golden=(Golden(Case((_a([3, 1, 2, 1]), 2)), _m([T, F, T, F])),),
        bad=(Bad(Case((_a([1.0, 2.0]), 3)), ValueError, "count must be in [0, 2], got 3"),),
        paper=HAN,
    ),
    Entry(
        name="magnitude_mask_by_threshold",
        family="pruning",
        module="pruning.magnitude",
        summary="Keep weights with |w| strictly above a threshold.",
        strategy=S.threshold_cases,
        semantics=("kept iff |w| > threshold (strict); threshold 0 prunes exactly the zeros.",),
        invariants=(Invariant("|w| > t", _threshold),),
        golden=(Golden(Case((_a([0.5, -0.5, 0.6, 0.0]), 0.5)), _m([F, F, T, F]), "0.5 is not above 0.5"),),
        bad=(Bad(Case((_a([1.0]), -1.0)), ValueError, "threshold must be in [0.0, inf], got -1.0"),),
        paper=HAN,
    ),
    Entry(
        name="global_magnitude_masks",
        extra=(("kernels", "torch_backend.kernels.select:global_magnitude_masks"),),
        family="pruning",
        module="pruning.magnitude",
        summary="Magnitude pruning over several tensors ranked together.",
        strategy=S.global_cases,
        semantics=(
            COUNT_RULE + " n is the total over all tensors.",
            "The flat index runs through the list in order; ties go to the earlier tensor, then the lower index.",
        ),
        invariants=(Invariant("count, order, ties over the concatenation", _global),),
        golden=(
            Golden(Case(([_a([1, 2]), _a([3, 0.5])], 0.5)), [_m([F, T]), _m([T, F])], "prunes 0.5 and 1"),
            Golden(Case(([_a([1, 1]), _a([1, 1])], 0.5)), [_m([T, T]), _m([F, F])], "all tie: the first tensor wins"),
        ),
        bad=(
            Bad(Case(([], 0.5)), ValueError, "ws must hold at least one array"),
            Bad(Case(([_a([1.0]), _a([1.0], np.float64)], 0.5)), TypeError, "ws[1] must have dtype float32"),
            Bad(Case((_a([1.0]), 0.5)), TypeError, "ws must be a list of arrays"),
        ),
        paper="Frankle & Carbin, 2019. The Lottery Ticket Hypothesis. ICLR. arXiv:1803.03635",
    ),
    Entry(
        name="apply_mask",
        family="pruning",
        module="pruning.magnitude",
        summary="where(mask, w, +0.0): pruned entries are +0.0, never -0.0 or NaN.",
        strategy=S.apply_mask_cases,
        vjp="apply_mask_vjp",
        semantics=(
            "Pruned entries are +0.0; kept entries pass unchanged, NaN and Inf included "
            "(the only function that accepts them).",
            "The mask must have exactly w's shape; it is not broadcast.",
        ),
        invariants=(Invariant("kept unchanged, pruned +0.0", _masked),),
        golden=(
            Golden(
                Case((_a([-1.0, np.inf, np.nan, 2.0]), _m([F, F, F, T]))),
                _a([0.0, 0.0, 0.0, 2.0]),
                "w * mask would give -0.0, NaN, NaN",
            ),
        ),  # fmt: skip
        bad=(
            Bad(Case((_a([1.0, 2.0]), _m([T]))), ValueError, "mask has shape (1,) but w needs shape (2,)"),
            Bad(Case((_a([1.0]), _a([1.0]))), TypeError, "mask must have dtype bool, got float32"),
        ),
    ),
    Entry(
        name="apply_mask_vjp",
        family="pruning",
        module="pruning.magnitude",
        summary="The gradient of apply_mask: where(mask, grad, +0.0); torch's is computed by autograd.",
        strategy=lambda: S.apply_mask_cases(with_grad=True),
        semantics=("Pruned weights get exactly +0.0 gradient; kept ones get the cotangent unchanged.",),
        invariants=(Invariant("grad where kept, +0.0 elsewhere", _masked_grad),),
        golden=(Golden(Case((_a([-1.0, 2.0]), _a([3.0, 4.0]), _m([F, T]))), _a([0.0, 2.0])),),
        bad=(
            Bad(
                Case((_a([1.0]), _a([1.0, 2.0]), _m([T, T]))), ValueError, "grad has shape (1,) but w needs shape (2,)"
            ),
        ),
    ),
    Entry(
        name="ln_structured_mask",
        family="pruning",
        module="pruning.structured",
        summary="Prune whole slices (channels, filters) with the smallest L1 or L2 norm.",
        strategy=S.structured_cases,
        semantics=(
            "Slice norms by lp_norm (float64, canonical tree sum); " + COUNT_RULE + " n is the number of slices.",
            "Equal norms go to the lower slice index.",
            "Default p = 2 (L2, as Soft Filter Pruning), which is not Li et al.'s criterion: they rank filters by "
            "the L1 norm, p = 1 with axis = 0; the default serves any slice and is kept so pinned outputs stay.",
        ),
        invariants=(Invariant("whole slices, count", _structured),),
        golden=(
            Golden(
                Case((_a([[1, 1], [3, 0], [0, 0.5]]), 1 / 3), {"p": 2, "axis": 0}),
                _m([[T, T], [T, T], [F, F]]),
                "norms sqrt(2), 3, 0.5; k = 1",
            ),
            Golden(
                Case((_a([[1, 1], [2, 0]]), 0.5), {"p": 1, "axis": 0}),
                _m([[T, T], [F, F]]),
                "L1 norms tie at 2: row 0 wins",
            ),
        ),  # fmt: skip
        bad=(
            Bad(Case((_a([[1.0]]), 0.5), {"p": 3}), ValueError, "p must be one of 1, 2; got 3"),
            Bad(Case((_a(1.0), 0.5), {}), ValueError, "w must have at least one dimension"),
        ),
        paper="Li et al., 2017. Pruning Filters for Efficient ConvNets. ICLR. arXiv:1608.08710",
    ),
    Entry(
        name="nm_mask",
        extra=(("kernels", "torch_backend.kernels.select:nm_mask"),),
        family="pruning",
        module="pruning.structured",
        summary="N:M sparsity: keep the n largest |w| of every m consecutive weights along an axis.",
        strategy=S.nm_cases,
        semantics=(
            "Groups are consecutive along `axis`; its length must be a multiple of m (never padded).",
            "Ties go to the lower index within the group.",
        ),
        invariants=(Invariant("n per group, order, ties", _nm),),
        golden=(
            Golden(Case((_a([1, 1, 1, 1]), 2, 4)), _m([T, T, F, F]), "all tie"),
            Golden(Case((_a([0.1, -0.9, 0.5, 0.3]), 2, 4)), _m([F, T, T, F]), "2:4"),
            Golden(Case((_a([[1, 2], [4, 3]]), 1, 2), {"axis": 0}), _m([[F, F], [T, T]]), "groups down the columns"),
        ),
        bad=(
            Bad(Case((_a([1, 2, 3, 4]), 5, 4)), ValueError, "n must be in [0, 4], got 5"),
            Bad(Case((_a([1, 2, 3, 4, 5, 6]), 2, 4)), ValueError, "m 4 does not divide w.shape[0] = 6"),
            Bad(Case((_a([1, 2, 3, 4]), 2, 0)), ValueError, "m must be in [1, 1099511627776], got 0"),
        ),
        paper="Mishra et al., 2021. Accelerating Sparse Deep Neural Networks. arXiv:2104.08378",
    ),
    Entry(
        name="random_mask",
        family="pruning",
        module="pruning.random",
        summary="Prune exactly round(sparsity * n) weights chosen uniformly from a key.",
        strategy=S.random_mask_cases,
        semantics=("Scores are random_bits(key, w.shape); the n - k largest are kept, ties to the lower index.",),
        invariants=(Invariant("count", _random_count),),
        golden=(Golden(Case((_a([1, 1]), 0.5, (0, 0))), _m([F, T]), "bits 0x6b200159 < 0x99ba4efe"),),
        bad=(Bad(Case((_a([1.0]), 0.5, (0, -1))), ValueError, "key must be a key"),),
    ),
]
