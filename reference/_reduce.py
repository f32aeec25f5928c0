"""Reductions' unchecked arithmetic, shared inside `reference`: the exact float32 square root of float64 sums that
`lp_norm`, the saliency and group scores and the GGUF codec take (package-private)."""

from __future__ import annotations

import numpy as np


def sqrt_to_float32(s):
    """The float32 nearest to the exact square root of float64 values `s >= 0` (ties to even).

    A float64 `sqrt` rounded to float32 lands on the right float32 or on a neighbour (double rounding, or a `sqrt`
    that is not correctly rounded). The midpoint between two adjacent float32 values has at most 25 significant
    bits, so its square is exact in float64: comparing `s` with the squared midpoints on either side settles the
    choice exactly. Infinity stands for 2**128 in the midpoints, the first value past the float32 range.
    """
    s = np.asarray(s, dtype=np.float64)
    y = np.sqrt(s).astype(np.float32)
    for direction in (np.float32(np.inf), np.float32(0)):
        other = np.nextafter(y, direction)
        mid = (_as_float64(y) + _as_float64(other)) / 2
        beyond = s > mid * mid if direction > 0 else s < mid * mid
        tie = (s == mid * mid) & (other != y) & _is_even(other)
        y = np.where(beyond | tie, other, y)
    return np.asarray(y)


def _as_float64(y):
    return np.where(np.isinf(y), np.float64(2.0**128), y.astype(np.float64))


def _is_even(y):
    return (y.view(np.uint32) & np.uint32(1)) == 0
