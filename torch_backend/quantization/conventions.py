"""Named variants of integer quantization parameters in torch; the semantics are those of
`reference.quantization.conventions`."""

from __future__ import annotations

import math

import torch

from reference.common import validate
from reference.quantization.conventions import CONVENTIONS, DIVISORS
from torch_backend import _arrays
from torch_backend._rounding import half_away

__all__ = ["symmetric_scale", "affine_zero_point"]

TINY = 2.0**-126


def symmetric_scale(amax, *, bits, divisor):
    """amax / (2**(bits-1) - 1) or amax / ((2**bits - 1) / 2), one rounding; see the reference."""
    bits = validate.integer("bits", bits, lo=2, hi=16)
    divisor = validate.choice("divisor", divisor, DIVISORS)
    a = _arrays.array("amax", amax).detach()
    if a.numel():  # one reduction when all is well: a NaN or Inf, or a negative, fails it
        lo, hi = torch.aminmax(a)
        if not (lo.item() >= 0 and hi.item() < math.inf):
            _arrays.finite("amax", a)
            bad = a < 0
            i = int(bad.reshape(-1).nonzero()[0])
            raise ValueError(f"amax must be >= 0, got {a.reshape(-1)[i].item()!r} at flat index {i}")
    # in float32: fl32(a / d) = fl32(fl64(a / d)) for float32 a and d (rounding twice through float64 is innocuous
    # for a quotient), and d, an integer or half an odd one below 2**16, is a float32
    d = float(2 ** (bits - 1) - 1) if divisor == "qmax" else (2**bits - 1) / 2
    s = a / _arrays.constant(d, a)
    return s.masked_fill_(s < TINY, 1.0)


def affine_zero_point(min_val, scale, *, qmin, qmax, convention):
    """The zero point of a range minimum and a scale by a named convention; see the reference."""
    convention = validate.choice("convention", convention, CONVENTIONS)
    qmin, qmax = validate.qrange(qmin, qmax)
    if qmin == qmax:
        raise ValueError(f"quantization needs at least 2 codes, got qmin={qmin}, qmax={qmax}")
    min_val = _arrays.finite_array("min_val", min_val)
    scale = _arrays.shaped("scale", _arrays.finite_array("scale", scale), min_val.shape, "min_val")
    _arrays.positive("scale", scale)
    _arrays.same_device("scale", scale, "min_val", min_val)
    lo = torch.clamp(min_val.detach(), max=0.0)
    s = scale.detach()
    q = _arrays.scalar(float(qmin), lo, torch.float64)
    if convention == "pqref":
        z = q - torch.round(lo.to(torch.float64) / s.to(torch.float64))
    elif convention == "torch_ao":
        z = q - torch.round(lo / s).to(torch.float64)
    else:
        v = torch.clamp((_arrays.scalar(float(qmin), lo) - lo / s).to(torch.float64), qmin, qmax)
        z = torch.round(v) if convention == "onnx" else half_away(v)
    return torch.clamp(z, qmin, qmax).to(torch.int32)
