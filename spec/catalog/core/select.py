"""Registry entries for `reference.core.select` and its torch twin: keep_largest."""

from __future__ import annotations

import numpy as np

from spec import strategies as S
from spec.catalog.common import array as _a
from spec.entry import Bad, Case, Entry, Golden, Invariant


def _keeps_count_largest(call, case, out):
    scores, count = case.args
    assert out.sum() == count, f"kept {out.sum()}, asked {count}"
    kept, dropped = scores[out], scores[~out]
    if kept.size and dropped.size:
        assert kept.min() >= dropped.max(), "a kept score is below a dropped one"
        edge = kept.min()
        flat, mask = scores.reshape(-1), out.reshape(-1)
        tied = np.flatnonzero(flat == edge)
        assert np.all(np.diff(mask[tied].astype(int)) <= 0), "among ties, a higher index was kept over a lower one"


ENTRIES = [
    Entry(
        name="keep_largest",
        extra=(("kernels", "torch_backend.kernels.select:keep_largest"),),
        family="core",
        module="core.select",
        summary="Mask of the `count` largest scores; ties to the lower flat index.",
        strategy=S.select_cases,
        semantics=(
            "A stable descending sort of the flat scores; the first `count` are kept.",
            "Equal scores (including -0.0 and +0.0) go to the lower flat index, on every device.",
        ),
        invariants=(Invariant("count, order and tie rule", _keeps_count_largest),),
        golden=(
            Golden(Case((_a([1, 3, 3, 2]), 2)), np.array([False, True, True, False]), "3 and 3 beat 2"),
            Golden(Case((_a([3, 3, 3]), 1)), np.array([True, False, False]), "ties: lowest index"),
            Golden(Case((_a([0.0, -0.0]), 1)), np.array([True, False]), "signed zeros tie"),
            Golden(Case((_a([-(2**63), 0], np.int64), 1)), np.array([False, True]), "the int64 minimum is smallest"),
        ),
        bad=(Bad(Case((_a([1, 2]), 3)), ValueError, "count must be in [0, 2], got 3"),),
    ),
]
