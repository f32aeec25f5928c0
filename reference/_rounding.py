"""Rounding without checks, shared inside `reference`: the arithmetic of `reference.core.rounding`, also used by the
quantizers and codecs that round values they have already checked (package-private)."""

from __future__ import annotations

import numpy as np

from reference.core.random import uniform


def round_by(x, mode, key):
    """Round without checks; also defined for +-Inf, which every mode maps to itself."""
    if mode == "half_even":
        return half_even(x)
    if mode == "half_away":
        return half_away(x)
    if mode == "floor":
        return np.asarray(np.floor(x))
    if mode == "ceil":
        return np.asarray(np.ceil(x))
    return stochastic(x, key)


def half_even(x):
    return np.asarray(np.rint(x))


def half_away(x):
    a = np.abs(x)
    whole = np.floor(a)
    up = (a - whole) >= np.float32(0.5)
    return np.asarray(np.copysign(np.where(up, whole + np.float32(1), whole), x))


def stochastic(x, key):
    down = np.floor(x)
    u = uniform(key, x.shape)
    return np.where(u < x - down, down + np.float32(1), down)
