"""Correctly rounded float32 `exp`, `log`, `pow`, sigmoid and `sqrt` in torch: the semantics of
`reference.core.transcendental`, bit for bit, on any device.

torch's float64 `exp`, `log` and `pow` (the CPU's vectorized ones, CUDA's) give the approximation; the certified
interval is computed with tensor operations on the device; the rare elements it cannot settle are copied to the
host and settled by `reference.common.transcendentals`, the very code the reference uses.
"""

from __future__ import annotations

import math

import torch

from reference.common import transcendentals as host
from reference.core.transcendental import REL, TINY
from torch_backend import _arrays

__all__ = ["cr_exp", "cr_log", "cr_pow", "cr_sigmoid", "cr_sqrt"]

F32, F64 = torch.float32, torch.float64


def cr_exp(x):
    """`fl32(exp(x))`, correctly rounded; see `reference.core.transcendental.cr_exp`."""
    x = _arrays.finite_array("x", x).detach()
    return _settle(torch.exp(x.to(F64)), lambda v: [host.exp_float32(a) for a in v], x.reshape(-1))


def cr_log(x):
    """`fl32(log(x))` for `x > 0`, correctly rounded; see `reference.core.transcendental.cr_log`."""
    x = _arrays.positive("x", _arrays.finite_array("x", x)).detach()
    return _settle(torch.log(x.to(F64)), lambda v: [host.log_float32(a) for a in v], x.reshape(-1))


def cr_pow(x, y):
    """`fl32(x ** y)` for `x >= 0`, correctly rounded, ties to even; see `reference.core.transcendental.cr_pow`."""
    x = _arrays.within("x", _arrays.finite_array("x", x), 0.0, math.inf).detach()
    y = _arrays.finite_array("y", y).detach()
    if y.ndim != 0 and tuple(y.shape) != tuple(x.shape):
        raise ValueError(f"y must be 0-d or have x's shape {tuple(x.shape)}, got shape {tuple(y.shape)}")
    _arrays.same_device("y", y, "x", x)
    x64 = x.to(F64).abs()
    y64 = y.to(F64).expand(x.shape)
    approx = torch.pow(x64, y64)
    pairs = torch.stack([x64.reshape(-1), y64.reshape(-1)], dim=1)
    return _settle(approx, lambda v: [host.pow_float32(a, b) for a, b in v], pairs)


def cr_sigmoid(x):
    """`fl32(1 / (1 + exp(-x)))`, correctly rounded; see `reference.core.transcendental.cr_sigmoid`."""
    x = _arrays.finite_array("x", x).detach()
    one = _arrays.scalar(1.0, x, F64)
    approx = one / (one + torch.exp(-x.to(F64)))
    return _settle(approx, lambda v: [host.sigmoid_float32(a) for a in v], x.reshape(-1))


def cr_sqrt(x):
    """`fl32(sqrt(x))` for float32 or float64 `x >= 0`, settled by exact squared midpoints; see the reference."""
    x = _arrays.within("x", _arrays.finite_array("x", x, ("float32", "float64")), 0.0, math.inf).detach()
    s = x.to(F64)
    y = torch.sqrt(s).to(F32)
    for toward in (math.inf, 0.0):
        other = torch.nextafter(y, torch.full_like(y, toward))
        mid = (_wide(y) + _wide(other)) / _arrays.scalar(2.0, s)
        beyond = s > mid * mid if toward > 0 else s < mid * mid
        tie = (s == mid * mid) & (other != y) & ((other.view(torch.int32) & 1) == 0)
        y = torch.where(beyond | tie, other, y)
    return y


# ---- certification -----------------------------------------------------------------------------------------


def _settle(approx, exact, points):
    """`fl32` of the exact values: certified on the device where possible; the rest by `exact` on the host, from
    the rows of `points` (one per flat element) at the uncertified positions."""
    value, ok = _certified(approx)
    bad = (~ok).reshape(-1).nonzero().reshape(-1)
    if bad.numel() == 0:
        return value
    flat = value.reshape(-1).clone()
    flat[bad] = torch.tensor(exact(points[bad].tolist()), dtype=F32, device=value.device)
    return flat.reshape(value.shape)


def _certified(approx):
    """`(fl32(approx), ok)`; see the reference's `_certified` (the same interval)."""
    value = approx.to(F32)
    delta = approx.abs() * _arrays.scalar(REL, approx) + _arrays.scalar(TINY, approx)
    lo, hi = (approx - delta).to(F32), (approx + delta).to(F32)
    ok = torch.isinf(approx) | ((lo == value) & (hi == value))
    return value, ok


def _wide(y):
    """float32 as float64, with inf standing for 2**128."""
    return torch.where(torch.isinf(y), torch.full((), 2.0**128, dtype=F64, device=y.device), y.to(F64))
