"""Registry entries for `reference.pruning.slimming` and its torch twin: slimming_penalty_grad, slimming_masks."""

from __future__ import annotations

import numpy as np

from spec import strategies as S
from spec.catalog.common import LIU, PLUS_ZERO, STRENGTH
from spec.catalog.common import array as _a
from spec.catalog.common import bits_of as _bits
from spec.catalog.common import mask as _m
from spec.catalog.common import plus_zeros_float32 as _plus_zeros
from spec.catalog.common import to_float32 as _f32
from spec.entry import Bad, Case, Entry, Golden, Invariant

F32 = np.float32
T, F = True, False


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


ENTRIES = [
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
            Golden(
                Case(([_a([0.0, -0.0]), _a([-0.0, 1.0])], 0.5), {"min_channels": 0}),
                [_m([T, F]), _m([F, T])],
                "|gamma| of +0.0 and -0.0 tie: of the three zeros only the first (layer 0, channel 0) is kept",
            ),
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
]
