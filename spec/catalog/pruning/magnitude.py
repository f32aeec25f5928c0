"""Registry entries for `reference.pruning.magnitude` and its torch twin: pruned_count, magnitude_mask,
magnitude_mask_by_count, magnitude_mask_by_threshold, global_magnitude_masks, apply_mask, apply_mask_vjp.
"""

from __future__ import annotations

import numpy as np

from spec import strategies as S
from spec.catalog.common import COUNT_RULE
from spec.catalog.common import array as _a
from spec.catalog.common import kept_count as _kept_count
from spec.catalog.common import magnitude_order as _magnitude_order
from spec.catalog.common import mask as _m
from spec.entry import Bad, Case, Entry, Golden, Invariant

HAN = "Han et al., 2015. Learning both Weights and Connections for Efficient Neural Networks. NeurIPS. arXiv:1506.02626"
T, F = True, False


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


def _count_range(call, case, out):
    sparsity, n = case.args
    assert isinstance(out, int) and 0 <= out <= n


TIE_RULE = "Ties in |w| go to the lower flat index (a stable descending sort); +0.0 and -0.0 tie."


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
        peers=(
            (
                "torch.nn.utils.prune",
                "`l1_unstructured` picks among equal magnitudes with `topk`, whose order among ties is unspecified and differs between CPU and CUDA; pqref keeps the lower flat index.",
            ),
        ),
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
        golden=(
            Golden(
                Case((_a([3, 1, 2, 1]), 2)),
                _m([T, F, T, F]),
                "the two 1s tie as the smallest: both pruned (count 2), 3 and 2 kept",
            ),
            Golden(
                Case((_a([0.0, -0.0, 2, 0.0]), 2)),
                _m([T, F, T, F]),
                "+0.0 and -0.0 tie: of the three zeros the lowest index (the +0.0 at 0) is kept",
            ),
        ),
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
        peers=(
            (
                "masking by multiplication",
                "`w * mask`, common in training code, turns a pruned negative weight into `-0.0` and a pruned Inf into NaN; `where(mask, w, +0.0)` gives `+0.0`.",
            ),
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
        golden=(
            Golden(
                Case((_a([-1.0, 2.0]), _a([3.0, 4.0]), _m([F, T]))),
                _a([0.0, 2.0]),
                "the pruned entry's gradient is +0.0 (not -0.0 from -1 * 0); the kept one passes",
            ),
        ),
        bad=(
            Bad(
                Case((_a([1.0]), _a([1.0, 2.0]), _m([T, T]))), ValueError, "grad has shape (1,) but w needs shape (2,)"
            ),
        ),
    ),
]
