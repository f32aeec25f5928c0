"""Registry entries for `reference.pruning.random` and its torch twin: random_mask."""

from __future__ import annotations

from spec import strategies as S
from spec.catalog.common import array as _a
from spec.catalog.common import kept_count as _kept_count
from spec.catalog.common import mask as _m
from spec.entry import Bad, Case, Entry, Golden, Invariant

T, F = True, False


def _random_count(call, case, out):
    w, sparsity, _ = case.args
    assert out.sum() == _kept_count(w, sparsity)


ENTRIES = [
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
