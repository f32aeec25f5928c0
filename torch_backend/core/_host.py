"""Python twins of torch operations, for tiny CPU inputs where a dozen tensor operations cost more than the
arithmetic (Python floats are IEEE float64, Python ints exact): float32 rounding, neighbours, the correctly rounded
square root, the stable selection of the largest values. Used by `torch_backend.core.transcendental`,
`torch_backend.core.select`, the per-tensor qparams, the magnitude masks and AWQ's scales (package-private)."""

from __future__ import annotations

import math
import struct


def sqrt_float32(s: float) -> float:
    """The float32 nearest to the square root of one finite float64 `s >= 0` (ties to even, `inf` past the largest
    float32), on the host: `cr_sqrt`'s host route (for `s` up to `2**254`) and `sqrt_to_float32`'s.

    The float64 steps of the tensor route on Python floats (IEEE float64 too): `y`, the float32 nearest to the
    float64 square root, moves to a neighbour when `s` lies beyond the midpoint towards it, or on it (a float64
    `s` can be the square of a midpoint, 25 significant bits) and the neighbour is even. The comparisons are
    exact: a midpoint's square is a float64. `+-0.0` is itself. From `HALFWAY**2` on (`HALFWAY`, halfway between
    the largest float32 and `2**128`, 25 bits: its square is a float64) the square root rounds to infinity (at
    `HALFWAY` itself the tie goes to the even `2**128`); below it the nearest float32 is finite, so `y` is taken
    no larger than the largest float32, whose upper neighbour (infinity) has an infinite midpoint and is never
    chosen.
    """
    if s == 0:
        return s
    if s >= HALFWAY * HALFWAY:
        return math.inf
    y = min(float32(math.sqrt(s)), FLOAT32_MAX)
    for other, beyond in ((next32(y, 1), s.__gt__), (next32(y, -1) if y > 0 else y, s.__lt__)):
        mid = (y + other) / 2
        square = mid * mid
        if beyond(square) or (s == square and other != y and bits32(other) % 2 == 0):
            return other
    return y


FLOAT32_MAX = 2.0**128 - 2.0**104
HALFWAY = 2.0**128 - 2.0**103


def float32(v: float) -> float:
    """The float64 `v` rounded to float32, to nearest with ties to even: from halfway between the largest float32
    (2**128 - 2**104, odd) and 2**128 on, infinity (decided here: `struct` raises or not depending on the
    Python version)."""
    if abs(v) >= 2.0**128 - 2.0**103:
        return math.copysign(math.inf, v)
    return struct.unpack("<f", struct.pack("<f", v))[0]


def bits32(v: float) -> int:
    return struct.unpack("<I", struct.pack("<f", v))[0]


def next32(v: float, direction: int) -> float:
    """The float32 after (+1) or before (-1) a finite float32 `v >= 0` (not before 0)."""
    return struct.unpack("<f", struct.pack("<I", bits32(v) + direction))[0]


def keep_largest(values, count: int) -> list[bool]:
    """`keep_largest`'s mask of a list of numbers without NaN: the `count` largest, ties to the lower index
    (Python's sort is stable; `-v` orders descending, `-0.0` and `+0.0` equal, as the reference's negated keys)."""
    keep = [False] * len(values)
    for i in sorted(range(len(values)), key=lambda i: -values[i])[:count]:
        keep[i] = True
    return keep


def tree_sum(values) -> float:
    """The canonical pairwise tree of `tree_sum` on a list of floats: `+0.0` padding to a power of two, then
    `a[:h] + a[h:]` until one value is left (the same float64 additions, in the same pairs)."""
    size = 1 if len(values) <= 1 else 1 << (len(values) - 1).bit_length()
    a = [float(v) for v in values] + [0.0] * (size - len(values))
    while len(a) > 1:
        h = len(a) // 2
        a = [a[i] + a[i + h] for i in range(h)]
    return a[0]
