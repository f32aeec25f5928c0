"""Per-slice parameters, shared by `reference.quantization.binary` and `reference.quantization.ternary`: a tensor as rows
(one per slice along an axis, or one for all of it), row results as the parameter's shape, and back to a view that
broadcasts against the tensor (package-private)."""

from __future__ import annotations

import math

import numpy as np

from reference import _arrays
from reference.common import shapes, validate


def check_slices(w, axis, what):
    """w: finite float32 with an element (`what` needs one); axis: None or normalized."""
    w = _arrays.finite_array("w", w)
    k = None if axis is None else validate.axis("axis", axis, w.ndim)
    if w.size == 0:
        raise ValueError(f"w has shape {w.shape}: {what} needs at least one element")
    return w, k


def rows(a, k):
    """(1, n) for the whole tensor, or (C, n) with one row per index along axis k (C order within a row)."""
    if k is None:
        return a.reshape(1, -1)
    return np.moveaxis(a, k, 0).reshape(a.shape[k], math.prod(a.shape) // a.shape[k])


def per_slice(values, k):
    """Row results (C,) as the parameter shape: () for the whole tensor, (C,) per channel."""
    return np.asarray(values.reshape(()) if k is None else values)


def expand(p, ndim, k):
    """A per-slice parameter, broadcastable against w."""
    if k is None:
        return p
    return p.reshape(shapes.per_axis(ndim, k))
