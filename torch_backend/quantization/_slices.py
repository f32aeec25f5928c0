"""Per-slice parameters in torch, shared by `torch_backend.quantization.binary` and `torch_backend.quantization.ternary`
(package-private); see `reference.quantization._slices`."""

from __future__ import annotations

import math

import torch

from reference.common import shapes, validate
from torch_backend import _arrays


def check_slices(w, axis, what):
    """w: finite float32 with an element (`what` needs one); axis: None or normalized."""
    w = _arrays.finite_array("w", w)
    k = None if axis is None else validate.axis("axis", axis, w.ndim)
    if w.numel() == 0:
        raise ValueError(f"w has shape {tuple(w.shape)}: {what} needs at least one element")
    return w, k


def rows(a, k):
    """(1, n) for the whole tensor, or (C, n) with one row per index along axis k (C order within a row)."""
    if k is None:
        return a.reshape(1, -1)
    return torch.movedim(a, k, 0).reshape(a.shape[k], math.prod(a.shape) // a.shape[k])


def per_slice(values, k):
    return values.reshape(()) if k is None else values


def expand(p, ndim, k):
    if k is None:
        return p
    return p.reshape(shapes.per_axis(ndim, k))
