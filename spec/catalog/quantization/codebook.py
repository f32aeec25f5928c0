"""Registry entries for `reference.quantization.codebook` and its torch twin: kmeans_codebook, codebook_assign,
codebook_decode, codebook_decode_vjp.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from spec import strategies as S
from spec.catalog.common import array as _a
from spec.catalog.common import exact_nearest as _exact_nearest
from spec.catalog.common import raw_bits as _bits
from spec.catalog.common import same_raw_bits as _same
from spec.catalog.common import u8 as _u8
from spec.entry import Bad, Case, Entry, Golden, Invariant

DEEP = (
    "Han et al., 2016. Deep Compression: Compressing Deep Neural Networks with Pruning, Trained Quantization and "
    "Huffman Coding. ICLR. arXiv:1510.00149"
)


def _assign_is_exact_nearest(call, case, out):
    w, c = case.args
    assert out.dtype == np.uint8 and out.shape == w.shape
    assert np.array_equal(out, _exact_nearest(w, c)), "every weight goes to its exactly nearest entry (lower on ties)"


def _kmeans_valid(call, case, out):
    w, k = case.args
    indices, codebook = out
    assert codebook.shape == (k,) and codebook.dtype == np.float32 and indices.shape == w.shape
    assert np.all(codebook[1:] >= codebook[:-1]), "the codebook stays sorted"
    assert np.all((w.min() <= codebook) & (codebook <= w.max())), "centroids lie within [min w, max w]"
    assert np.array_equal(indices, _exact_nearest(w, codebook)), "indices are the exact assignment to the codebook"


def _decode_is_lookup(call, case, out):
    indices, c = case.args
    _same(out, c[indices.astype(np.int64)], "codebook_decode is a table lookup")


def _decode_vjp_sums(call, case, out):
    grad, indices, c = case.args
    assert out.shape == c.shape and out.dtype == np.float32
    for j in np.flatnonzero(np.isfinite(out)):  # a sum beyond the float32 range is +-inf
        members = grad[indices == j]
        exact = sum((Fraction(float(g)) for g in members), Fraction(0))
        bound = sum((abs(Fraction(float(g))) for g in members), Fraction(0)) * Fraction(1, 2**22)
        if members.size == 0:
            assert _bits(out[j : j + 1])[0] == 0, "an entry without weights gets +0.0"
        else:
            assert abs(Fraction(float(out[j])) - exact) <= bound + Fraction(2.0**-149), "per-entry gradient sum"


ENTRIES = [
    Entry(
        name="kmeans_codebook",
        family="quantization",
        module="quantization.codebook",
        summary="Deterministic 1-D k-means weight sharing (Deep Compression): linear init, fixed iterations.",
        strategy=S.kmeans_cases,
        semantics=(
            "Init c_j = float32((lo * (k-1-j) + hi * j) / (k-1)) in float64 (exact at both ends); lo, hi = min, max w.",
            "Exactly `iterations` steps: assign (codebook_assign, exact, ties to the lower index), then update.",
            "Update: c_j = float32(fl64(exact_sum of its members) / count); an empty cluster keeps c_j.",
            "Returns (uint8 indices shaped like w, float32 codebook of k entries, sorted ascending).",
        ),
        invariants=(Invariant("sorted codebook, exact assignment", _kmeans_valid),),
        golden=(
            Golden(
                Case((_a([0, 1, 2, 10, 11, 12]), 2), {"iterations": 3}),
                (_u8([0, 0, 0, 1, 1, 1]), _a([1, 11])),
                "init [0, 12]; means 1 and 11",
            ),
            Golden(
                Case((_a([0, 0, 0, 9]), 3), {"iterations": 1}),
                (_u8([0, 0, 0, 2]), _a([0, 4.5, 9])),
                "the empty middle cluster keeps 4.5",
            ),
            Golden(Case((_a([5, 5, 5]), 3), {"iterations": 2}), (_u8([0, 0, 0]), _a([5, 5, 5])), "equal entries"),
            Golden(Case((_a([[0], [3]]), 4), {"iterations": 0}), (_u8([[0], [3]]), _a([0, 1, 2, 3])), "init only"),
            Golden(
                Case((_a([0, 1, 2]), 2), {"iterations": 1}),
                (_u8([0, 0, 1]), _a([0.5, 2])),
                "init [0, 2]; w = 1 is a tie between them and joins the lower index, so the means are 0.5 and 2",
            ),
            Golden(
                Case((_a([-(2.0**52), -0.5]), 2), {"iterations": 0}),
                (_u8([0, 1]), _a([-(2.0**52), -0.5])),
                "the ends are exact (lo + (hi - lo) would give 0)",
            ),
        ),
        bad=(
            Bad(Case((_a([1.0]), 1)), ValueError, "k must be in [2, 256], got 1"),
            Bad(Case((_a([1.0]), 257)), ValueError, "k must be in [2, 256], got 257"),
            Bad(Case((_a([]), 2)), ValueError, "k-means needs at least one weight"),
            Bad(Case((_a([1.0]), 2), {"iterations": -1}), ValueError, "iterations must be in [0, 10000], got -1"),
            Bad(Case((_a([np.nan]), 2)), ValueError, "w must be finite"),
        ),
        paper=DEEP,
    ),
    Entry(
        name="codebook_assign",
        family="quantization",
        module="quantization.codebook",
        summary="Index of the nearest entry of a sorted codebook, decided exactly; ties to the lower index.",
        strategy=S.codebook_assign_cases,
        semantics=(
            "Nearest by exact |w - c|: count midpoints with 2w > c_j + c_j+1 (TwoSum, exact), then the first equal.",
            "Ties go to the lower index; of equal entries only the first is ever chosen.",
            "The codebook must be 1-D, 1 to 256 entries (uint8 indices), finite, sorted ascending.",
        ),
        invariants=(Invariant("exactly nearest, lower index on ties", _assign_is_exact_nearest),),
        golden=(
            Golden(
                Case((_a([0.5]), _a([-(2.0**-60), 1.0]))),
                _u8([1]),
                "true distances 0.5 + 2**-60 and 0.5: float64 |w - c| would tie",
            ),
            Golden(
                Case((_a([1.2, 1.5, 1.6, -5.0, 100.0]), _a([0, 1, 1, 2]))),
                _u8([1, 1, 3, 0, 3]),
                "1.2 -> the first of the equal entries 1; the tie 1.5 -> the lower (index 1); out of range -> the ends",
            ),
            Golden(Case((_a([0.5, -0.0]), _a([0, 1]))), _u8([0, 0]), "the tie at 0.5 goes to index 0"),
        ),
        bad=(
            Bad(
                Case((_a([0.5]), _a([1, 0]))),
                ValueError,
                "codebook must be sorted ascending, got codebook[0] = 1.0 > codebook[1] = 0.0",
            ),
            Bad(Case((_a([0.5]), _a([]))), ValueError, "1 to 256 entries (uint8 indices), got shape (0,)"),
            Bad(Case((_a([0.5]), _a([[0, 1]]))), ValueError, "got shape (1, 2)"),
            Bad(Case((_a([0.5]), _a([0, np.nan]))), ValueError, "codebook must be finite, got nan"),
        ),
        paper=DEEP,
    ),
    Entry(
        name="codebook_decode",
        family="quantization",
        module="quantization.codebook",
        summary="Shared weights back to values: codebook[indices], differentiable in the codebook.",
        strategy=S.codebook_decode_cases,
        vjp="codebook_decode_vjp",
        semantics=("A table lookup; the codebook may be in any order (fine-tuning can reorder it).",),
        invariants=(Invariant("table lookup", _decode_is_lookup),),
        golden=(
            Golden(
                Case((_u8([0, 2, 1, 2]), _a([3, 1, 2]))),
                _a([3, 2, 1, 2]),
                "codebook[indices]; the codebook need not be sorted",
            ),
        ),
        bad=(
            Bad(Case((_u8([3]), _a([1, 2, 3]))), ValueError, "indices must be in [0, 2], got 3 at flat index 0"),
            Bad(Case((_a([0], np.int64), _a([1.0]))), TypeError, "indices must have dtype uint8, got int64"),
        ),
        paper=DEEP,
    ),
    Entry(
        name="codebook_decode_vjp",
        family="quantization",
        module="quantization.codebook",
        summary="Gradient of codebook_decode for the codebook: per entry, the exact sum of its weights' gradients.",
        strategy=lambda: S.codebook_decode_cases(with_grad=True),
        semantics=(
            "d/dc_j = float32(exact_sum of grad[indices == j], rounded to float64); an unused entry gets +0.0.",
            "grad must be finite and shaped like indices.",
        ),
        invariants=(Invariant("per-entry sums", _decode_vjp_sums),),
        golden=(
            Golden(
                Case((_a([1, 2, 3]), _u8([0, 1, 0]), _a([0.5, 1.5, 2.5]))),
                _a([4, 2, 0]),
                "entry 0 collects 1 + 3, entry 1 gets 2, the unused entry 2 gets +0.0",
            ),
        ),
        bad=(
            Bad(
                Case((_a([1, 2]), _u8([0]), _a([1.0]))), ValueError, "grad has shape (2,) but indices needs shape (1,)"
            ),
        ),
        paper=DEEP,
    ),
]
