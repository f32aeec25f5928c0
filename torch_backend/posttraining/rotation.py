"""Hadamard rotations in torch: the semantics of `reference.posttraining.rotation`, bit for bit, on any device.

The ±1 matrix is integer data built once by the reference's Kronecker construction and returned here as an int8
tensor (`hadamard_matrix`, the same entries); the transform is
a float64 matrix product on the device, certified by the same error bound, with the rare uncertain entries rounded
exactly on the host by the reference's own code.
"""

from __future__ import annotations

import math

import torch

from reference.common import posttraining as rules
from reference.common import transcendentals as host
from reference.common import validate
from reference.posttraining import rotation as construction
from reference.posttraining.rotation import EPS
from torch_backend import _arrays
from torch_backend.codecs._bytes import host_tensor
from torch_backend.core import _host
from torch_backend.core.random import random_bits

__all__ = ["hadamard_matrix", "hadamard_transform"]

F32, F64 = torch.float32, torch.float64


def hadamard_transform(x, *, key=None, inverse=False):
    """The randomized Hadamard rotation along the last axis, each output the exact value rounded once; see
    `reference.posttraining.rotation.hadamard_transform`."""
    x = _arrays.finite_array("x", x)
    if x.ndim == 0:
        raise ValueError("x must have at least 1 dimension (..., n), got a 0-d array")
    n = rules.hadamard_size(x.shape[-1], "the last axis of x")
    key = None if key is None else validate.key("key", key)
    inverse = validate.boolean("inverse", inverse)
    x = x.detach()
    c = _coefficients(n, key, inverse, x.device)
    if x.numel() * n <= HOST_MAX and type(x) in _arrays.PLAIN and x.device.type == "cpu":
        return _transform_host(x.reshape(-1).tolist(), c.to(torch.int64).tolist(), n, x.shape)
    rows = x.reshape(-1, n).to(F64)
    root = _arrays.scalar(math.sqrt(n), rows)
    approx = (rows @ c.T) / root
    magnitude = _sum_abs(rows)
    value, ok = _certified(approx, magnitude, n, root)
    bad = (~ok).nonzero()
    if bad.numel():  # the rows and coefficients read from the device once each, then the exact sums on the host
        pairs = bad.tolist()
        needed = sorted({r for r, _ in pairs})
        where = {r: k for k, r in enumerate(needed)}
        rows_list = x.reshape(-1, n)[torch.tensor(needed, device=x.device)].tolist()
        coefficients = c.to(torch.int64).tolist()
        exact = [host.hadamard_entry_float32(rows_list[where[r]], coefficients[i], n) for r, i in pairs]
        value[bad[:, 0], bad[:, 1]] = torch.tensor(exact, dtype=value.dtype, device=value.device)
    return value.reshape(x.shape)


HOST_MAX = 256  # up to this many products (elements times n), a CPU transform runs on Python floats


def _transform_host(values, coefficients, n, shape):
    """`hadamard_transform` on Python floats for a tiny checked CPU `x` (its flat `values`) and the integer
    coefficients: the tensor route's steps, with the same certificate. Each output's float64 approximation is a
    plain running sum of `c_j x_j` (exact products of a float32 and +-1) divided by `sqrt(n)`, within the error
    bound the certificate assumes for any order of the additions, as is the row's float64 sum of `|x_j|`; an
    output whose interval rounds to one float32 is that float32 (the correctly rounded value, as on the tensor
    route), the others are rounded exactly by the reference's host code; a row of zeros gives `+0.0`s."""
    root = math.sqrt(n)
    scale = 2.0 * (n + 4) * EPS
    out = []
    for start in range(0, len(values), n):
        row = values[start : start + n]
        magnitude = sum(map(abs, row))
        if magnitude == 0:
            out += [0.0] * n
            continue
        for c in coefficients:
            a = 0.0
            for cj, v in zip(c, row, strict=True):
                a += cj * v
            a /= root
            bound = max(scale * (magnitude / root + abs(a)), 2.0**-999) * 2.0
            value = _host.float32(a)
            if _host.float32(a - bound) == value == _host.float32(a + bound) and (value != 0 or _same_zero(a, bound)):
                out.append(value)
            else:
                out.append(host.hadamard_entry_float32(row, c, n))
    return host_tensor("f", out, F32, shape)


def _same_zero(a, bound):
    """Whether `a - bound` and `a + bound`, both rounding to a float32 zero, round to zeros of one sign (the
    tensor route compares bit patterns: `-0.0` and `+0.0` differ)."""
    return math.copysign(1.0, _host.float32(a - bound)) == math.copysign(1.0, _host.float32(a + bound))


def hadamard_matrix(n):
    """The ±1 Hadamard matrix $H_n$ as an int8 tensor (CPU); see `reference.posttraining.rotation.hadamard_matrix`.

    The entries are integers built by the reference's construction (no arithmetic to redo on a device); this twin
    returns them as a tensor, as every torch-backend function returns tensors.
    """
    return torch.from_numpy(construction.hadamard_matrix(n))


def _coefficients(n, key, inverse, device):
    """float64 C with y_i = fl32(sum_j C_ij x_j / sqrt n): H * d (columns) forward, (H * d)^T inverse."""
    h = hadamard_matrix(n).to(device=device, dtype=F64)
    if key is not None:
        d = 1 - 2 * (random_bits(key, (n,), device=device) & 1)
        h = h * d.to(F64)[None, :]
    return h.T if inverse else h


def _sum_abs(rows):
    """Sum of |x_j| per row in float64: any order (only bounded, never returned)."""
    return rows.abs().sum(dim=1, keepdim=True)


def _certified(approx, magnitude, n, root):
    """`(fl32(approx), ok)`; see the reference's `_certified`, whose interval this one contains: with `A` its bound
    before the floor `TINY = 2**-1060`, the half-width `B = 2 max(A, 2**-999)` is at least the reference's
    `fl(A + TINY)` (which is `A` when `A >= 2**-999`, `TINY` being below half an ulp of `A`, and at most `2**-998`
    otherwise), so by monotonic rounding
    `fl(a - B) <= fl(a - fl(A + TINY))` and likewise above: a value certified here is certified there. No
    addition of the subnormal `TINY` (10 to 15 times a normal addition on the CPU)."""
    scale = _arrays.scalar(2.0 * (n + 4) * EPS, approx)
    bound = (scale * (magnitude / root + approx.abs())).clamp_min_(2.0**-999).mul_(_arrays.constant(2.0, approx))
    value = approx.to(F32)
    lo, hi = (approx - bound).to(F32), (approx + bound).to(F32)
    same = (lo.view(torch.int32) == value.view(torch.int32)) & (hi.view(torch.int32) == value.view(torch.int32))
    zero = (magnitude == 0).expand(approx.shape)
    value = torch.where(zero, torch.zeros((), dtype=F32, device=value.device), value)
    return value, (same | zero) & ~torch.isnan(approx)
