"""Registry entries for `reference.pruning.structured` and its torch twin: ln_structured_mask, nm_mask."""

from __future__ import annotations

import math

import numpy as np

from spec import strategies as S
from spec.catalog.common import COUNT_RULE
from spec.catalog.common import array as _a
from spec.catalog.common import magnitude_order as _magnitude_order
from spec.catalog.common import mask as _m
from spec.entry import Bad, Case, Entry, Golden, Invariant

T, F = True, False


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


ENTRIES = [
    Entry(
        name="ln_structured_mask",
        family="pruning",
        module="pruning.structured",
        summary="Prune whole slices (channels, filters) with the smallest L1 or L2 norm.",
        strategy=S.structured_cases,
        semantics=(
            "Slice norms by lp_norm (the exact sum, rounded); " + COUNT_RULE + " n is the number of slices.",
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
            Golden(
                Case((_a([[1, 3, 0], [1, 0, 0.5]]), 1 / 3), {"p": 2, "axis": 1}),
                _m([[T, T, F], [T, T, F]]),
                "slices along axis 1 (columns): norms sqrt(2), 3, 0.5; the last column goes",
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
]
