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

    Up to `PYTHON_MAX` CPU elements recorded by no autograd graph, the lines are summed on Python floats
    (`_host.tree_sum`: the same additions)."""
    x = _arrays.array("x", x, _FLOATS)
    values = _host_values(x)
    if values is None:
        x = _arrays.finite("x", x)
        return _reduce.tree(x, None if axis is None else validate.axis("axis", axis, x.ndim))
    k = None if axis is None else validate.axis("axis", axis, x.ndim)
    return _host_result([_host.tree_sum(line) for line in _lines(values, x.shape, k)], x.shape, k)


def _host_values(x):
    """The elements of `x` (a checked float tensor) as a flat list of Python floats (row-major), when `x` is a
    plain CPU tensor of at most `PYTHON_MAX` finite elements recorded by no autograd graph; else None (the tensor
    route and its checks). A Python `sum` decides finiteness (a NaN or Inf makes it NaN or infinite; should
    finite float64 values overflow it, the tensor route takes them)."""
    if (
        x.numel() > PYTHON_MAX
        or type(x) not in _arrays.PLAIN
        or x.device.type != "cpu"
        or (x.requires_grad and torch.is_grad_enabled())
    ):
        return None
    values = x.detach().reshape(-1).tolist()
    return values if math.isfinite(sum(values)) else None


def _lines(values, shape, k):
    """The lines of the flat row-major `values` of `shape` along axis `k` (all of them for `k` None), in the
    row-major order of the other axes: a line starts at `outer * n * inner + j` and steps by `inner`."""
    if k is None:
        return [values]
    n, inner = shape[k], math.prod(shape[k + 1 :])
    return [
        values[start : start + n * inner : inner] if n else []
        for outer in range(math.prod(shape[:k]))
        for start in range(outer * n * inner, outer * n * inner + inner)
    ]


def _host_result(values, shape, k):
    """The float64 result tensor of one value per line: 0-d for the whole tensor, else `shape` without `k`."""
    if k is None:
        return torch.tensor(values[0], dtype=torch.float64)
    return torch.tensor(values, dtype=torch.float64).reshape(shape[:k] + shape[k + 1 :])


PYTHON_MAX = 64


def tree_mean(x, axis=None):
    """Mean in float64: the canonical tree sum divided by the count; see `reference.core.reduce.tree_mean`."""
    x = _arrays.array("x", x, _FLOATS)
    n = x.numel() if axis is None else x.shape[validate.axis("axis", axis, x.ndim)]
    if n == 0:
        raise ValueError(f"x has no elements to average along axis={axis!r}")
    values = _host_values(x)
    if values is not None:  # the float64 divisions of Python floats: IEEE, as the tensor route's
        k = None if axis is None else validate.axis("axis", axis, x.ndim)
        return _host_result([_host.tree_sum(line) / float(n) for line in _lines(values, x.shape, k)], x.shape, k)
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
