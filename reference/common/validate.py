"""Input checks shared by every backend: one wording and one exception type per kind of bad input.

Both backends call these functions, so a bad input raises the same exception with the same message in
`reference` and in `torch_backend`. Scalar parameters (fractions, bit widths, axes, keys) are checked here
directly; array facts (dtype, finiteness, shape) are computed by each backend's private `_arrays` module and
reported through the message builders below.

The rule for exception types: a value of the wrong *kind* (a list where an array belongs, a float64 array where
float32 is required, a float where an int is required) raises `TypeError`; a value of the right kind but outside
its valid range (NaN, sparsity 1.5, qmin > qmax, mismatched shapes) raises `ValueError`.
"""

from __future__ import annotations

import math
import numbers

ARRAY_KIND = "an array (numpy.ndarray in reference, torch.Tensor in torch_backend)"
KEY_HELP = "a key is a tuple of two ints in [0, 2**32), made by make_key(seed)"


# ---------------------------------------------------------------------------------------------------------------
# Scalar parameters
# ---------------------------------------------------------------------------------------------------------------


def real(name, value, *, lo=None, hi=None, lo_open=False, hi_open=False) -> float:
    """A finite real number (int or float, not bool) within the optional bounds; returns it as a Python float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v!r}")
    below = lo is not None and (v <= lo if lo_open else v < lo)
    above = hi is not None and (v >= hi if hi_open else v > hi)
    if below or above:
        left = "(" if lo_open else "["
        right = ")" if hi_open else "]"
        lo_s = "-inf" if lo is None else repr(lo)
        hi_s = "inf" if hi is None else repr(hi)
        raise ValueError(f"{name} must be in {left}{lo_s}, {hi_s}{right}, got {value!r}")
    return v


def fraction(name, value) -> float:
    """A fraction in [0, 1] such as a sparsity."""
    return real(name, value, lo=0.0, hi=1.0)


def integer(name, value, *, lo=None, hi=None) -> int:
    """An int (not bool) within the optional inclusive bounds."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    v = int(value)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        lo_s = "-inf" if lo is None else str(lo)
        hi_s = "inf" if hi is None else str(hi)
        raise ValueError(f"{name} must be in [{lo_s}, {hi_s}], got {v}")
    return v


def boolean(name, value) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__} {value!r}")
    return value


def choice(name, value, choices) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


def axis(name, value, ndim: int) -> int:
    """An axis of an array with `ndim` dimensions; negative axes count from the end. Returns it normalized."""
    a = integer(name, value)
    if not -ndim <= a < ndim:
        raise ValueError(f"{name} {a} is out of range for an array with {ndim} dimension(s)")
    return a % ndim


def shape(name, value) -> tuple[int, ...]:
    if not isinstance(value, tuple | list):
        raise TypeError(f"{name} must be a tuple of ints, got {type(value).__name__} {value!r}")
    return tuple(integer(f"{name}[{i}]", s, lo=0) for i, s in enumerate(value))


def key(name, value) -> tuple[int, int]:
    """A random key: a tuple of two 32-bit unsigned ints."""
    if not isinstance(value, tuple) or len(value) != 2:
        raise TypeError(f"{name} must be a key, got {type(value).__name__} {value!r}; {KEY_HELP}")
    for word in value:
        if isinstance(word, bool) or not isinstance(word, numbers.Integral) or not 0 <= word < 2**32:
            raise ValueError(f"{name} must be a key, got {value!r}; {KEY_HELP}")
    return int(value[0]), int(value[1])


def qrange(qmin, qmax) -> tuple[int, int]:
    """An integer quantization range: -2**15 <= qmin <= qmax <= 2**16 - 1 (the 16-bit signed and unsigned ranges)."""
    qmin = integer("qmin", qmin, lo=-(2**15), hi=2**16 - 1)
    qmax = integer("qmax", qmax, lo=-(2**15), hi=2**16 - 1)
    if qmin > qmax:
        raise ValueError(f"qmin must be <= qmax, got qmin={qmin}, qmax={qmax}")
    return qmin, qmax


# ---------------------------------------------------------------------------------------------------------------
# Array facts, computed by a backend and reported here
# ---------------------------------------------------------------------------------------------------------------


def not_array(name, value) -> TypeError:
    return TypeError(f"{name} must be {ARRAY_KIND}, got {type(value).__name__}")


def bad_dtype(name, got: str, allowed) -> TypeError:
    want = " or ".join(allowed)
    return TypeError(f"{name} must have dtype {want}, got {got}")


def not_finite(name, flat_index: int, value: float) -> ValueError:
    return ValueError(f"{name} must be finite, got {float(value)!r} at flat index {flat_index}")


def not_a_number(name, flat_index: int) -> ValueError:
    return ValueError(f"{name} must not contain NaN, got nan at flat index {flat_index}")


def shape_mismatch(name, got, expected, why: str) -> ValueError:
    return ValueError(f"{name} has shape {tuple(got)} but {why} needs shape {tuple(expected)}")


def out_of_range(name, flat_index: int, value, lo, hi) -> ValueError:
    return ValueError(f"{name} must be in [{lo}, {hi}], got {value!r} at flat index {flat_index}")


def not_positive(name, flat_index: int, value: float) -> ValueError:
    return ValueError(f"{name} must be > 0, got {float(value)!r} at flat index {flat_index}")


# ---- exact linear algebra (reference.core.exact, reference.core.linalg) --------------------------------------


def not_matrix(name, shape) -> ValueError:
    return ValueError(f"{name} must have at least 2 dimensions (..., rows, columns), got shape {tuple(shape)}")


def not_square(name, shape) -> ValueError:
    return ValueError(f"{name} must be a non-empty square matrix, got shape {tuple(shape)}")


def not_symmetric(name, i: int, j: int, value: float, mirror: float) -> ValueError:
    return ValueError(f"{name} must be symmetric, got {name}[{i}, {j}] = {value!r} but {name}[{j}, {i}] = {mirror!r}")


def zero_diagonal(name, i: int, value: float) -> ValueError:
    return ValueError(f"{name} must have a nonzero diagonal, got {name}[{i}, {i}] = {value!r}")


def not_positive_definite(name, column: int, pivot: float) -> ValueError:
    return ValueError(
        f"{name} is not positive definite: the pivot of column {column} is {pivot!r}, the exact "
        f"{name}[{column}, {column}] - sum_k L[{column}, k]**2 rounded once to float64; it must be > 0"
    )


def overflows(name, i: int, j: int, value: float) -> ValueError:
    return ValueError(f"{name}[{i}, {j}] overflows float64 (it is {value!r}); scale the input down")


def not_state(name, shape, limbs: int) -> ValueError:
    return ValueError(f"{name} must have shape (..., {limbs}), a state of exact_sum_state; got {tuple(shape)}")


def not_canonical_state(name, flat_index: int, limbs: int, value: int) -> ValueError:
    return ValueError(
        f"{name} is not a canonical state: limb {flat_index % limbs} is {value} at flat index {flat_index} "
        f"(limbs 0 to {limbs - 2} must be in [0, 2**32), the top limb in [-2**31, 2**31))"
    )


def state_overflow(flat_index: int) -> ValueError:
    return ValueError(
        f"the combined exact sum at flat index {flat_index} is beyond the state's range (|sum| >= 2**1101); "
        "round the summed states with exact_sum_round instead"
    )
