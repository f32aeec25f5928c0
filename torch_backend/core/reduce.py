"""Reductions in torch: the float64 pairwise tree and the norm on the exact sum of `reference.core.reduce`, on any
device."""

from __future__ import annotations

import math

import torch

from reference.common import validate
from torch_backend import _arrays, _reduce
from torch_backend.core import _host
from torch_backend.core.exact import exact_sum

__all__ = ["tree_sum", "tree_mean", "lp_norm"]

_FLOATS = ("float32", "float64")


def tree_sum(x, axis=None):
    """Sum in float64 along the fixed pairwise tree; see `reference.core.reduce.tree_sum` for the semantics.

    A whole tensor of at most `PYTHON_MAX` CPU elements, recorded by no autograd graph, is summed on Python floats
    (`_host.tree_sum`: the same additions)."""
    x = _arrays.array("x", x, _FLOATS)
    if (
        axis is None
        and x.device.type == "cpu"
        and x.numel() <= PYTHON_MAX
        and not (torch.is_grad_enabled() and x.requires_grad)
    ):
        values = x.detach().reshape(-1).tolist()
        if all(map(math.isfinite, values)):
            return torch.tensor(_host.tree_sum(values), dtype=torch.float64)
    x = _arrays.finite("x", x)
    return _reduce.tree(x, None if axis is None else validate.axis("axis", axis, x.ndim))


PYTHON_MAX = 64


def tree_mean(x, axis=None):
    """Mean in float64: the canonical tree sum divided by the count; see `reference.core.reduce.tree_mean`."""
    x = _arrays.array("x", x, _FLOATS)
    n = x.numel() if axis is None else x.shape[validate.axis("axis", axis, x.ndim)]
    if n == 0:
        raise ValueError(f"x has no elements to average along axis={axis!r}")
    s = tree_sum(x, axis)
    return s / _arrays.scalar(float(n), s)


def lp_norm(x, p=2, axis=None):
    """The L1 or L2 norm in float32 from the exact sum rounded to float64; see `reference.core.reduce.lp_norm`."""
    x = _arrays.finite_array("x", x)
    validate.choice("p", p, (1, 2))
    if p == 1:  # |x| in float32 (exact): the exact sum of the same values as the reference's float64 |x|
        return exact_sum(torch.abs(x.detach()), axis).to(torch.float32)
    a = x.detach().to(torch.float64)
    return _reduce.sqrt_to_float32(exact_sum(a * a, axis))
