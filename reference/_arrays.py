"""Array checks for the NumPy reference; the wording lives in `reference.common.validate`, shared with torch_backend."""

from __future__ import annotations

import numpy as np

from reference.common import validate


def array(name, x, dtypes=("float32",)) -> np.ndarray:
    """`x` must be an `np.ndarray` (or a NumPy scalar, taken as 0-d) whose dtype name is one of `dtypes`.

    Returns `x` as every algorithm may assume it: a plain `np.ndarray` in native byte order, with the same
    values. This is the one place where layouts are settled, for every function:

    - a non-native (big-endian on the usual little-endian machines, `astype(">f4")`) array becomes a native copy:
      the algorithms read float bits with `view(np.uint32)`, which would read the bytes swapped, and outputs
      must be native. Converted, not rejected: byte order is storage, not value (files and network formats
      bring big-endian data), and the copy changes no value;
    - an ndarray subclass (`np.matrix`, `np.memmap`) is viewed as a plain ndarray (`np.matrix` redefines `*`
      and keeps every result 2-D); a masked array (`np.ma`) is rejected with `TypeError`, as its mask would
      silently be ignored;
    - strided, reversed, Fortran-ordered, read-only, zero-stride (broadcast) and unaligned arrays pass as they
      are: NumPy computes the same values on them and no function writes to its inputs.
    """
    if isinstance(x, np.generic):
        x = np.asarray(x)
    if not isinstance(x, np.ndarray) or isinstance(x, np.ma.MaskedArray):
        raise validate.not_array(name, x)
    if x.dtype.name not in dtypes:
        raise validate.bad_dtype(name, x.dtype.name, dtypes)
    if type(x) is not np.ndarray:
        x = x.view(np.ndarray)
    if not x.dtype.isnative:
        x = x.astype(x.dtype.newbyteorder("="))
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


def finite_arrays(name, ws) -> list:
    """A nonempty list or tuple of finite float32 arrays (element `i` checked as `name[i]`)."""
    if isinstance(ws, np.ndarray):
        raise TypeError(f"{name} must be a list of arrays, got a single array")
    if not isinstance(ws, list | tuple):
        raise TypeError(f"{name} must be a list of arrays, got {type(ws).__name__}")
    if len(ws) == 0:
        raise ValueError(f"{name} must hold at least one array, got an empty {type(ws).__name__}")
    return [finite_array(f"{name}[{i}]", w) for i, w in enumerate(ws)]
