"""Array-free rules of the post-training methods (`reference.posttraining`), written once for both backends: the
sizes a Hadamard rotation is defined for, and the option checks of AWQ, SmoothQuant, HQQ and AdaRound.

Python values in, Python values out; the wording of every error is here or in `reference.common.validate`.
"""

from __future__ import annotations

from fractions import Fraction

from reference.common import validate

__all__ = ["hadamard_size", "MAX_HADAMARD", "quadratic_exact"]

MAX_HADAMARD = 2**20


def hadamard_size(n, name="n") -> int:
    """`n` if a Hadamard matrix of order `n` is built (2**m, 12 * 2**m or 20 * 2**m, at most 2**20), else
    `ValueError`. `name` says what `n` is (an argument is checked as an int first)."""
    if name == "n":
        n = validate.integer("n", n, lo=1, hi=MAX_HADAMARD)
    if n > MAX_HADAMARD or not any(n % b == 0 and _is_pow2(n // b) for b in (1, 12, 20)):
        raise ValueError(
            f"{name} is {n}: a Hadamard size is 2**m, 12 * 2**m or 20 * 2**m (QuaRot's constructions), at most 2**20"
        )
    return n


def _is_pow2(k) -> bool:
    return k >= 1 and k & (k - 1) == 0


def quadratic_exact(rows, h) -> Fraction:
    r"""The exact $\sum_r d_r^\top H d_r$ for float rows $d_r$ (lists of Python floats) and a float matrix $H$ (a list of
    rows), as a Fraction: every float is an integer in units of $2^{-1074}$, so the sum is an exact integer in units
    of $2^{-3222}$. Slow, and only used where a float64 bound cannot decide a comparison."""
    hu = [[_units(v) for v in row] for row in h]
    total = 0
    for row in rows:
        du = [_units(v) for v in row]
        nz = [(i, u) for i, u in enumerate(du) if u]
        for j, dj in enumerate(du):
            if dj:
                total += dj * sum(u * hu[i][j] for i, u in nz)
    return Fraction(total, 2 ** (3 * 1074))


def _units(v) -> int:
    n, d = float(v).as_integer_ratio()
    return (n << 1074) // d
