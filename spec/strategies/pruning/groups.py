"""Strategies of valid inputs for the entries of `reference.pruning.groups`: `group_score_cases`, `group_mask_cases`."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from spec.entry import Case
from spec.strategies.base import float32_arrays, float32_values, fractions_for, shapes

__all__ = ["group_score_cases", "group_mask_cases"]


@st.composite
def group_score_cases(draw):
    """`(values, units, count)` with `criterion` and `reduction`, or `(values, units, count, "taylor", reduction,
    grads)`: 0 to 6 units, 0 to 3 member slices of 0 to 8 entries, some slices repeating another's values negated
    (sums that cancel exactly)."""
    count = draw(st.integers(0, 6))
    values, units = [], []
    for _ in range(draw(st.integers(0, 3))):
        n = draw(st.integers(0, 8)) if count else 0
        v = draw(float32_arrays(shape=st.just((n,))))
        if values and draw(st.booleans()) and values[-1].size == n:
            v = -values[-1]
        values.append(v)
        units.append(np.array([draw(st.integers(0, count - 1)) for _ in range(n)], dtype=np.int64))
    criterion = draw(st.sampled_from(["l1", "l2", "taylor"]))
    reduction = draw(st.sampled_from(["mean", "sum"]))
    if criterion == "taylor":  # arrays go in args: the conformance check compares kwargs as plain values
        grads = [draw(float32_arrays(shape=st.just(v.shape))) for v in values]
        return Case((values, units, count, criterion, reduction, grads))
    return Case((values, units, count), {"criterion": criterion, "reduction": reduction})


@st.composite
def group_mask_cases(draw):
    """`(scores, ratio)` and `min_channels`: 1 to 4 groups of 0 to 8 units, a value shared across groups, +-inf."""
    shared = draw(float32_values())
    elements = st.one_of(float32_values(), st.just(shared), st.sampled_from([float("inf"), float("-inf")]))
    scores = draw(
        st.lists(float32_arrays(shape=shapes(min_dims=1, max_dims=1, max_side=8), elements=elements), max_size=4)
    )
    scores = scores or [np.zeros(0, dtype=np.float32)]
    total = sum(s.size for s in scores)
    return Case((scores, draw(fractions_for(total))), {"min_channels": draw(st.integers(0, 4))})
