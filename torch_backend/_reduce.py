"""Reductions' unchecked arithmetic, shared inside `torch_backend`: the canonical float64 tree of `tree_sum`, which
backward passes call directly, and the exact float32 square root of float64 sums (package-private); see
`reference._reduce`."""

from __future__ import annotations

import math

import torch

from torch_backend.core import _host


def tree(a, axis=None):
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


def sqrt_to_float32(s):
    """The float32 nearest to the exact square root of float64 `s >= 0`; see the reference's `sqrt_to_float32`.

    Up to `HOST_MAX` plain CPU elements, all finite and outside autograd, the same steps run on Python floats
    (`_host.sqrt_float32`, as `cr_sqrt`'s host route): the float32 nearest the float64 square root, moved to a
    neighbour by the same exact comparisons with squared midpoints."""
    if s.device.type == "cpu" and s.numel() <= HOST_MAX and type(s) is torch.Tensor and not s.requires_grad:
        values = s.reshape(-1).tolist()
        if all(0.0 <= v < math.inf for v in values):  # a NaN fails too
            return torch.tensor([_host.sqrt_float32(v) for v in values], dtype=torch.float32).reshape(s.shape)
    y = torch.sqrt(s).to(torch.float32)
    for direction in (float("inf"), 0.0):
        other = torch.nextafter(y, torch.full_like(y, direction))
        mid = (_as_float64(y) + _as_float64(other)) * 0.5  # exact; no division by a Python number
        beyond = s > mid * mid if direction > 0 else s < mid * mid
        tie = (s == mid * mid) & (other != y) & _is_even(other)
        y = torch.where(beyond | tie, other, y)
    return y


HOST_MAX = 16  # up to this many CPU elements `sqrt_to_float32` works on Python floats


def _as_float64(y):
    return torch.where(torch.isinf(y), 2.0**128, y.to(torch.float64))


def _is_even(y):
    return (y.view(torch.int32) & 1) == 0
