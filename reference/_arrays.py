"""Array checks for the NumPy reference; the wording lives in `reference.common.validate`, shared with torch_backend."""

from __future__ import annotations

import numpy as np

from reference.common import validate


def array(name, x, dtypes=("float32",)) -> np.ndarray:
    """`x` must be an `np.ndarray` (or a NumPy scalar, taken as 0-d) whose dtype name is one of `dtypes`."""
    if isinstance(x, np.generic):
        x = np.asarray(x)
    if not isinstance(x, np.ndarray):
        raise validate.not_array(name, x)
    if x.dtype.name not in dtypes:
        raise validate.bad_dtype(name, x.dtype.name, dtypes)
    return x


def finite(name, x) -> np.ndarray:
    bad = ~np.isfinite(x)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise validate.not_finite(name, i, x.reshape(-1)[i])
    return x


def not_nan(name, x) -> np.ndarray:
    bad = np.isnan(x) if x.dtype.kind == "f" else np.zeros(x.shape, dtype=bool)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise validate.not_a_number(name, i)
    return x


def finite_array(name, x, dtypes=("float32",)) -> np.ndarray:
    return finite(name, array(name, x, dtypes))


def positive(name, x) -> np.ndarray:
    bad = ~(x > 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise validate.not_positive(name, i, x.reshape(-1)[i])
    return x


def within(name, x, lo, hi) -> np.ndarray:
    bad = (x < lo) | (x > hi)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise validate.out_of_range(name, i, x.reshape(-1)[i].item(), lo, hi)
    return x


def shaped(name, x, expected, why) -> np.ndarray:
    if tuple(x.shape) != tuple(expected):
        raise validate.shape_mismatch(name, x.shape, expected, why)
    return x
