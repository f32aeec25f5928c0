"""Registry entries for `reference.core.rounding` and its torch twin: round_half_even, round_half_away, round_floor,
round_ceil, round_stochastic, round_with.
"""

from __future__ import annotations

import numpy as np

from spec import strategies as S
from spec.catalog.common import array as _a
from spec.entry import Bad, Case, Entry, Golden, Invariant


def _integral(call, case, out):
    assert np.array_equal(out, np.trunc(out)), "rounded values must be integers"


def _nearest(call, case, out):
    assert np.all(np.abs(out.astype(np.float64) - case.args[0]) <= 0.5), "nearest rounding moved a value by > 1/2"


def _sign_kept(call, case, out):
    assert np.array_equal(np.signbit(out), np.signbit(case.args[0])), "nearest rounding must keep the sign"


def _floor_or_ceil(call, case, out):
    x = case.args[0]
    assert np.all((out == np.floor(x)) | (out == np.ceil(x))), "stochastic rounding must give floor or ceil"


ENTRIES = [
    Entry(
        name="round_half_even",
        family="core",
        module="core.rounding",
        summary="Round to nearest, ties to even (IEEE roundTiesToEven).",
        strategy=S.rounding_cases,
        semantics=("Ties go to the even integer: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2.", "The sign of zero is kept."),
        invariants=(Invariant("integer", _integral), Invariant("within 1/2", _nearest), Invariant("sign", _sign_kept)),
        golden=(
            Golden(Case((_a([0.5, 1.5, 2.5, -2.5, -0.3, 0.49999997]),)), _a([0, 2, 2, -2, -0.0, 0]), "ties to even"),
        ),
        bad=(Bad(Case((_a([np.inf]),)), ValueError, "x must be finite, got inf at flat index 0"),),
    ),
    Entry(
        name="round_half_away",
        family="core",
        module="core.rounding",
        summary="Round to nearest, ties away from zero, exact for every float32.",
        strategy=S.rounding_cases,
        semantics=(
            "Ties go away from zero: 2.5 -> 3, -2.5 -> -3.",
            "0.49999997 -> 0 (floor(x + 0.5) would give 1); odd integers above 2**23 are unchanged.",
            "The sign of zero is kept: -0.3 -> -0.0.",
        ),
        invariants=(Invariant("integer", _integral), Invariant("within 1/2", _nearest), Invariant("sign", _sign_kept)),
        golden=(
            Golden(
                Case((_a([0.49999997, 2.5, -2.5, 8388609.0, -0.3, 0.5]),)),
                _a([0, 3, -3, 8388609.0, -0.0, 1]),
                "ties 2.5, -2.5 and 0.5 go away from zero; 0.49999997 is below the tie; -0.3 keeps its sign",
            ),
        ),
        bad=(Bad(Case((_a([1.0], np.float64),)), TypeError, "x must have dtype float32, got float64"),),
    ),
    Entry(
        name="round_floor",
        family="core",
        module="core.rounding",
        summary="Round toward minus infinity.",
        strategy=S.rounding_cases,
        invariants=(Invariant("integer", _integral),),
        golden=(Golden(Case((_a([1.5, -1.5, -0.0]),)), _a([1, -2, -0.0]), "down for either sign; -0.0 stays -0.0"),),
    ),
    Entry(
        name="round_ceil",
        family="core",
        module="core.rounding",
        summary="Round toward plus infinity.",
        strategy=S.rounding_cases,
        invariants=(Invariant("integer", _integral),),
        golden=(Golden(Case((_a([1.5, -1.5, -0.5]),)), _a([2, -1, -0.0]), "up for either sign; -0.5 goes up to -0.0"),),
    ),
    Entry(
        name="round_stochastic",
        family="core",
        module="core.rounding",
        summary="Round up with probability equal to the fractional part, from an explicit key.",
        strategy=lambda: S.rounding_cases(stochastic=True),
        semantics=(
            "up iff u < x - floor(x), u = uniform(key, x.shape) by flat index; integers never move.",
            "A value in (-1, 0) that rounds up gives +0.0.",
        ),
        invariants=(Invariant("integer", _integral), Invariant("floor or ceil", _floor_or_ceil)),
        golden=(
            Golden(Case((_a([3.0, -2.0, 0.0]), (0, 0))), _a([3, -2, 0]), "integers never move"),
            Golden(
                Case((_a([0.5, 0.5, 0.5, 0.5, -0.25, 2.75, -0.5, 1.0]), (0, 0))),
                _a([1, 0, 1, 0, -1, 3, -1, 1]),
                "u = uniform((0, 0), (8,)) = [0.418, 0.600, 0.216, 0.804, 0.965, 0.633, 0.575, 0.894]: up where "
                "u < x - floor(x) (0.5, 0.5, 0.5, 0.5, 0.75, 0.75, 0.5); the integer 1.0 never moves",
            ),
            Golden(
                Case((_a([0.5, 0.5, 0.5, 0.5, -0.25, 2.75, -0.5, 1.0]), (1, 2))),
                _a([1, 0, 1, 1, -1, 3, 0, 1]),
                "another key, other outcomes: u = [0.146, 0.546, 0.146, 0.307, 0.961, 0.546, 0.478, 0.438]; -0.5 "
                "rounds up to +0.0, not -0.0",
            ),
        ),
        bad=(Bad(Case((_a([0.5]), (1, 2, 3))), TypeError, "key must be a key"),),
        paper="Gupta et al., 2015. Deep Learning with Limited Numerical Precision. ICML. arXiv:1502.02551",
    ),
    Entry(
        name="round_with",
        family="core",
        module="core.rounding",
        summary="Round by a named rule; the `rounding=` parameter of every quantizer.",
        strategy=lambda: S.rounding_cases(with_mode=True),
        invariants=(Invariant("integer", _integral),),
        golden=(
            Golden(Case((_a([2.5]),), {"mode": "half_away"}), _a([3]), "the tie 2.5 away from zero"),
            Golden(Case((_a([2.5, -2.5, 0.5, -0.5]),), {"mode": "half_even"}), _a([2, -2, 0, -0.0]), "ties to even"),
            Golden(Case((_a([2.5, -2.5, -0.5, -0.3]),), {"mode": "floor"}), _a([2, -3, -1, -1]), "toward -inf"),
            Golden(
                Case((_a([0.5, 1.5, -0.5, -2.5]),), {"mode": "stochastic", "key": (0, 0)}),
                _a([1, 1, 0, -3]),
                "u = uniform((0, 0), (4,)) = [0.418, 0.600, 0.216, 0.804] against the fractional parts 0.5: up, "
                "down, up (to +0.0), down",
            ),
        ),
        bad=(
            Bad(Case((_a([0.5]),), {"mode": "stochastic"}), ValueError, "rounding='stochastic' needs a key"),
            Bad(Case((_a([0.5]),), {"mode": "half_even", "key": (0, 0)}), ValueError, "key is only used with"),
            Bad(Case((_a([0.5]),), {"mode": "nearest"}), ValueError, "rounding must be one of"),
        ),
    ),
]
