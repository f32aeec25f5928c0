"""The cached float32 constants of the post-training algorithms, and the Python-float steps of their host routes
for tiny CPU inputs (package-private)."""

from __future__ import annotations

import math
from array import array

import torch

from reference.common import transcendentals as _exact
from reference.core.transcendental import REL, TINY
from torch_backend import _arrays


def f32(value, like: torch.Tensor) -> torch.Tensor:
    """The float32 0-d tensor `value` on `like`'s device, from `torch_backend._arrays.constant`'s cache: only for
    operands, never for a returned tensor. Every scalar of these algorithms enters as a 0-d tensor on the data's
    device, so that a division is IEEE on CUDA too."""
    return _arrays.constant(float(value), like, torch.float32)


def host_values(x, limit):
    """The values of the float tensor `x` as a flat list of Python floats (exact; `tolist` reads a negative-bit
    view's values), when `x` is a plain CPU tensor of at most `limit` elements, every one finite, outside a
    deferred block; else None, and the caller's tensor route runs its checks (which raise the reference's error).
    One Python `sum` decides finiteness: a NaN or an Inf makes it NaN or infinite, and finite float32 values
    cannot overflow it (float64 values near the limit can: they only take the tensor route). Used by
    `halfquadratic`, `scaling` and `adaround`, as `f32s` and `pow32`."""
    if x.numel() > limit or type(x) not in _arrays.PLAIN or x.device.type != "cpu" or _arrays.deferring():
        return None
    values = x.detach().reshape(-1).tolist()
    return values if math.isfinite(sum(values)) else None


def f32s(values):
    """The float64 `values` each rounded to float32, to nearest with ties to even (the C conversion of `array`,
    as `struct`'s; an overflow gives the signed infinity): each float32 operation of float32 operands, computed
    once in float64 (exact for `*`, correctly rounded for `+`, `-`, `/`: 53 >= 2 * 24 + 2 bits, so the second
    rounding is innocuous, subnormal results included), then rounded by this, is the float32 operation."""
    return array("f", values).tolist()


def pow32(a, b):
    """`cr_pow(a, b)` of one float32 `a >= 0` and a finite float32 `b` on Python floats, as the tensor route's host
    step (`transcendental._few`): the platform's float64 `pow` certified by the same half-width (`fl32` of both
    ends equal), else the exact `pow_float32` of the reference, which also takes the exact cases (`0**b`, `1**b`,
    `a**0`) and a float64 overflow. Either way the correctly rounded power, the tensor route's."""
    if a == 0.0 or a == 1.0 or b == 0.0:
        return _exact.pow_float32(a, b)
    try:
        v = math.pow(a, b)
    except OverflowError:
        return _exact.pow_float32(a, b)
    delta = max(min(v, _DBL_MAX) * REL, TINY)
    lo, mid, hi = array("f", (v - delta, v, v + delta))
    return mid if lo == hi else _exact.pow_float32(a, b)


_DBL_MAX = 1.7976931348623157e308
