"""Dynamic activation quantization in torch; the semantics are those of `reference.quantization.dynamic`."""

from __future__ import annotations

from reference.common import validate
from torch_backend import _arrays
from torch_backend.quantization.affine import fake_quantize, integer_range, minmax_qparams

__all__ = ["per_token_fake_quantize"]


def per_token_fake_quantize(x, *, bits=8, symmetric=True):
    """Each token (row of the last axis) quantized with its own min-max parameters, computed at run time; see
    `reference.quantization.dynamic.per_token_fake_quantize`. The gradient is `fake_quantize`'s straight-through
    one, the parameters held constant."""
    x = _arrays.finite_array("x", x)
    bits = validate.integer("bits", bits, lo=2, hi=16)
    symmetric = validate.boolean("symmetric", symmetric)
    if x.ndim == 0 or x.shape[-1] == 0:
        raise ValueError(f"x must have shape (..., features) with features >= 1, got {tuple(x.shape)}")
    qmin, qmax = integer_range(bits, True, symmetric)
    rows = x.reshape(-1, x.shape[-1])
    if rows.shape[0] == 0:
        return x.clone()
    scale, zero_point = minmax_qparams(rows.detach(), qmin=qmin, qmax=qmax, symmetric=symmetric, axis=0)
    y = fake_quantize(rows, scale, zero_point, qmin=qmin, qmax=qmax, axis=0)
    return y.reshape(x.shape)
