"""Canonical reductions in torch: the float64 pairwise tree of `reference.core.reduce`, on any device."""

from __future__ import annotations

import torch

from reference.common import validate
from torch_backend import _arrays

__all__ = ["tree_sum", "tree_mean", "lp_norm"]

_FLOATS = ("float32", "float64")


def tree_sum(x, axis=None):
    """Sum in float64 along the fixed pairwise tree; see `reference.core.reduce.tree_sum` for the semantics."""
    x = _arrays.finite_array("x", x, _FLOATS)
    return _tree(x, None if axis is None else validate.axis("axis", axis, x.ndim))


def tree_mean(x, axis=None):
    """Mean in float64: the canonical tree sum divided by the count; see `reference.core.reduce.tree_mean`."""
    x = _arrays.array("x", x, _FLOATS)
    n = x.numel() if axis is None else x.shape[validate.axis("axis", axis, x.ndim)]
    if n == 0:
        raise ValueError(f"x has no elements to average along axis={axis!r}")
    s = tree_sum(x, axis)
    return s / _arrays.scalar(float(n), s)


def lp_norm(x, p=2, axis=None):
    """The L1 or L2 norm in float32 from the canonical float64 tree sum; see `reference.core.reduce.lp_norm`."""
    x = _arrays.finite_array("x", x)
    validate.choice("p", p, (1, 2))
    a = x.detach().to(torch.float64)
    if p == 1:
        return tree_sum(torch.abs(a), axis).to(torch.float32)
    return _sqrt_to_float32(tree_sum(a * a, axis))


def _tree(a, axis=None):
    """The canonical tree of `tree_sum` (float64, `+0.0` padding to a power of two, `a[:h] + a[h:]`), unchecked.

    `tree_sum` calls it after its checks; backward passes call it directly, so that a non-finite cotangent (AMP
    loss scaling) propagates as IEEE addition says instead of raising inside autograd. `axis` is None or valid.
    """
    a = a.to(torch.float64)
    a = a.reshape(-1) if axis is None else torch.movedim(a, axis, -1)
    n = a.shape[-1]
    size = 1 if n <= 1 else 1 << (n - 1).bit_length()
    a = torch.nn.functional.pad(a, (0, size - n))
    while a.shape[-1] > 1:
        h = a.shape[-1] // 2
        a = a[..., :h] + a[..., h:]
    return a.reshape(a.shape[:-1])


def _sqrt_to_float32(s):
    """The float32 nearest to the exact square root of float64 `s >= 0`; see the reference's `_sqrt_to_float32`."""
    y = torch.sqrt(s).to(torch.float32)
    for direction in (float("inf"), 0.0):
        other = torch.nextafter(y, torch.full_like(y, direction))
        mid = (_as_float64(y) + _as_float64(other)) / 2
        beyond = s > mid * mid if direction > 0 else s < mid * mid
        tie = (s == mid * mid) & (other != y) & _is_even(other)
        y = torch.where(beyond | tie, other, y)
    return y


def _as_float64(y):
    return torch.where(torch.isinf(y), 2.0**128, y.to(torch.float64))


def _is_even(y):
    return (y.view(torch.int32) & 1) == 0
