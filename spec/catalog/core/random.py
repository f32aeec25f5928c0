"""Registry entries for `reference.core.random` and its torch twin: threefry2x32, make_key, split, fold_in,
random_bits, uniform.
"""

from __future__ import annotations

import numpy as np

from spec import strategies as S
from spec.catalog.common import array as _a
from spec.entry import Bad, Case, Entry, Golden, Invariant

F = np.float32
THREEFRY = "Salmon et al., 2011. Parallel Random Numbers: As Easy as 1, 2, 3. SC'11. doi:10.1145/2063384.2063405"


def _words(call, case, out):
    for y in out:
        assert y.dtype == np.int64 and np.all((y >= 0) & (y < 2**32)), "threefry words must be uint32 values"


def _unit_interval(call, case, out):
    assert np.all((out >= 0) & (out < 1)), "uniform values must lie in [0, 1)"
    assert np.array_equal(out * F(2**24), np.trunc(out * F(2**24))), "uniform values must lie on the 2**-24 grid"


def _distinct_keys(call, case, out):
    assert len(set(out)) == len(out), "split keys must differ"


ENTRIES = [
    Entry(
        name="threefry2x32",
        family="core",
        module="core.random",
        summary="The Threefry-2x32-20 block cipher: the counter-based generator behind every random choice.",
        strategy=S.threefry_cases,
        semantics=("Words are uint32 values held in int64 arrays.", "Known answers of Random123 are goldens."),
        invariants=(Invariant("uint32 words", _words),),
        golden=(
            Golden(
                Case(((0, 0), _a([0], np.int64), _a([0], np.int64))),
                (_a([0x6B200159], np.int64), _a([0x99BA4EFE], np.int64)),
                "Random123 known answer",
            ),
            Golden(
                Case(((2**32 - 1, 2**32 - 1), _a([2**32 - 1], np.int64), _a([2**32 - 1], np.int64))),
                (_a([0x1CB996FC], np.int64), _a([0xBB002BE7], np.int64)),
                "Random123 known answer",
            ),
            Golden(
                Case(((0x13198A2E, 0x03707344), _a([0x243F6A88], np.int64), _a([0x85A308D3], np.int64))),
                (_a([0xC4923A9C], np.int64), _a([0x483DF7A0], np.int64)),
                "Random123 known answer (pi digits)",
            ),
        ),  # fmt: skip
        bad=(
            Bad(Case(((0, 0), _a([2**32], np.int64), _a([0], np.int64))), ValueError, "x0 must be in [0, 4294967295]"),
            Bad(Case(((0, 0), _a([0, 1], np.int64), _a([0], np.int64))), ValueError, "x1 has shape (1,)"),
        ),
        paper=THREEFRY,
    ),
    Entry(
        name="make_key",
        family="core",
        module="core.random",
        summary="A key from a 64-bit seed.",
        strategy=S.seed_cases,
        golden=(Golden(Case((2**32 + 5,)), (1, 5), "the seed's high and low 32-bit words: (2**32 + 5) -> (1, 5)"),),
        bad=(Bad(Case((-1,)), ValueError, "seed must be in [0, 18446744073709551615], got -1"),),
        paper=THREEFRY,
    ),
    Entry(
        name="split",
        family="core",
        module="core.random",
        summary="New independent keys from a key.",
        strategy=S.split_cases,
        invariants=(Invariant("distinct", _distinct_keys),),
        golden=(
            Golden(
                Case(((0, 0),)),
                ((3520496301, 2513315811), (1065179034, 1741568792)),
                "threefry((0, 0), (0xFFFFFFFF, j)) for j = 0, 1: a pinned stream",
            ),
        ),  # fmt: skip
        bad=(Bad(Case(((0, 0),), {"num": 0}), ValueError, "num must be in [1, 1048576], got 0"),),
        paper=THREEFRY,
    ),
    Entry(
        name="fold_in",
        family="core",
        module="core.random",
        summary="A new key from a key and an int (a step, a layer index).",
        strategy=S.fold_in_cases,
        golden=(
            Golden(Case(((0, 0), 1)), (3248552896, 93766516), "threefry((0, 0), (0xFFFFFFFE, 1)): a pinned stream"),
        ),
        bad=(Bad(Case(((0, 0), 2**32)), ValueError, "data must be in [0, 4294967295]"),),
        paper=THREEFRY,
    ),
    Entry(
        name="random_bits",
        family="core",
        module="core.random",
        summary="Uniform 32-bit integers by flat index, a pure function of the key.",
        strategy=S.bits_cases,
        semantics=("Flat index i takes word i % 2 of threefry(key, counter i // 2).",),
        golden=(Golden(Case(((0, 0), (2,))), _a([0x6B200159, 0x99BA4EFE], np.int64), "counter 0, both words"),),
        bad=(Bad(Case(((0, 0), (2, -1))), ValueError, "shape[1] must be in [0, inf], got -1"),),
        paper=THREEFRY,
    ),
    Entry(
        name="uniform",
        family="core",
        module="core.random",
        summary="Uniform float32 in [0, 1) on the 2**-24 grid.",
        strategy=S.bits_cases,
        semantics=("u = (bits >> 8) * 2**-24, exact.",),
        invariants=(Invariant("in [0, 1) on the grid", _unit_interval),),
        golden=(Golden(Case(((0, 0), (1,))), _a([(0x6B200159 >> 8) * 2.0**-24]), "first word of counter 0"),),
        paper=THREEFRY,
    ),
]
