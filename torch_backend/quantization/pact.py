"""PACT in torch; the semantics are those of `reference.quantization.pact`.

The gradient to `alpha` is the exact sum (`torch_backend.core._exact.sum_unchecked`, shared with the other learned
quantizers' backward passes), rounded once to float64, then to float32.
"""

from __future__ import annotations

import math

import torch

from reference.common import validate
from torch_backend import _arrays
from torch_backend.core._exact import sum_unchecked

__all__ = ["pact_quantize", "pact_quantize_vjp"]

TINY = 2.0**-126  # the smallest normal float32: the step s must be at least this


def pact_quantize(x, alpha, bits):
    """Clip to [0, alpha], quantize to `bits` bits with step alpha / (2**bits - 1); see the reference."""
    x, a, bits = _check(x, alpha, bits)
    if torch.is_grad_enabled() and (x.requires_grad or a.requires_grad):
        return _Pact.apply(x, a, bits)
    return _quantize(x.detach(), a.detach(), bits)  # nothing to record: no `Function.apply`


def pact_quantize_vjp(grad, x, alpha, bits):
    """The gradients of `pact_quantize` to `x` and `alpha`: its autograd
    function's backward applied to `grad`, without the forward (`torch_backend._arrays.vjp`)."""
    x, a, bits = _check(x, alpha, bits)
    grad = _arrays.shaped("grad", _arrays.finite_array("grad", grad), x.shape, "x")
    _arrays.same_device("grad", grad, "x", x)
    direct = lambda g: tuple(_arrays.backward_of(_Pact, g, (x.detach(), a.detach()))[:2])  # noqa: E731
    return _arrays.vjp(lambda *v: pact_quantize(*v, bits), (x, a), grad, wrt=(0, 1), direct=direct)


class _Pact(torch.autograd.Function):
    """Forward: rne(clip(x, 0, alpha) / s) * s. Backward: x passes on [0, alpha]; alpha collects x >= alpha."""

    @staticmethod
    def forward(ctx, x, a, bits):
        ctx.save_for_backward(x, a)
        return _quantize(x, a, bits)

    @staticmethod
    def backward(ctx, grad):
        x, a = ctx.saved_tensors
        grad_x = torch.where((x >= 0) & (x <= a), grad, 0.0)
        grad_alpha = sum_unchecked(torch.where(x >= a, grad, 0.0)).to(torch.float32)
        return grad_x, grad_alpha, None


def _step(a, bits):
    return a / _arrays.constant(float(2**bits - 1), a)


def _quantize(x, a, bits):
    """rne(clip(x, 0, alpha) / s) * s in float32, in place on one buffer; + 0.0 makes a clipped -0.0 the
    reference's +0.0 (no other value changes)."""
    s = _step(a, bits)
    return torch.clamp(x, min=_arrays.constant(0.0, x), max=a).add_(_arrays.constant(0.0, x)).div_(s).round_().mul_(s)


def _check(x, alpha, bits):
    bits = validate.integer("bits", bits, lo=1, hi=16)
    x = _arrays.finite_array("x", x)
    a = _arrays.array("alpha", alpha)
    value = a.item() if a.ndim == 0 else math.nan  # a 0-d alpha: its checks on the host, one read
    if not math.isfinite(value):
        a = _arrays.finite("alpha", a)
    a = _arrays.shaped("alpha", a, (), "PACT's single clipping level")
    if not value > 0:
        a = _arrays.positive("alpha", a)
    _arrays.same_device("alpha", a, "x", x)
    s = _step(a.detach(), bits).item()
    if s < TINY:
        raise ValueError(
            f"alpha / (2**bits - 1) must be a normal float32 (>= 2**-126), got {s!r} for alpha={value!r}, bits={bits}"
        )
    # the float32 product (2**bits - 1) * s is finite exactly when the exact one (at most 41 bits, exact as a
    # Python float) is below 2**128 - 2**103, the midpoint between the largest float32 and 2**128 (its tie
    # rounds to even: up)
    if not (2**bits - 1) * s < 2.0**128 - 2.0**103:
        raise ValueError(
            f"alpha is too large: the top level (2**bits - 1) * (alpha / (2**bits - 1)) overflows float32 "
            f"for alpha={value!r}, bits={bits}"
        )
    return x, a, bits
