"""PACT in torch; the semantics are those of `reference.quantization.pact`.

The gradient to `alpha` is the exact sum (`torch_backend.core._exact.sum_unchecked`, shared with the other learned
quantizers' backward passes), rounded once to float64, then to float32.
"""

from __future__ import annotations

import torch

from reference.common import validate
from torch_backend import _arrays
from torch_backend.core._exact import sum_unchecked

__all__ = ["pact_quantize", "pact_quantize_vjp"]

TINY = 2.0**-126  # the smallest normal float32: the step s must be at least this


def pact_quantize(x, alpha, bits):
    """Clip to [0, alpha], quantize to `bits` bits with step alpha / (2**bits - 1); see the reference."""
    x, a, bits = _check(x, alpha, bits)
    return _Pact.apply(x, a, bits)


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
        s = _step(a, bits)
        y = torch.where(x > 0, torch.minimum(x, a), 0.0)
        ctx.save_for_backward(x, a)
        return torch.round(y / s) * s

    @staticmethod
    def backward(ctx, grad):
        x, a = ctx.saved_tensors
        grad_x = torch.where((x >= 0) & (x <= a), grad, 0.0)
        grad_alpha = sum_unchecked(torch.where(x >= a, grad, 0.0)).to(torch.float32)
        return grad_x, grad_alpha, None


def _step(a, bits):
    return a / _arrays.scalar(float(2**bits - 1), a)


def _check(x, alpha, bits):
    bits = validate.integer("bits", bits, lo=1, hi=16)
    x = _arrays.finite_array("x", x)
    a = _arrays.shaped("alpha", _arrays.finite_array("alpha", alpha), (), "PACT's single clipping level")
    a = _arrays.positive("alpha", a)
    _arrays.same_device("alpha", a, "x", x)
    s = _step(a.detach(), bits)
    if bool(s < TINY):
        raise ValueError(
            f"alpha / (2**bits - 1) must be a normal float32 (>= 2**-126), got {float(s)!r} for "
            f"alpha={float(a)!r}, bits={bits}"
        )
    if not bool(torch.isfinite(float(2**bits - 1) * s)):
        raise ValueError(
            f"alpha is too large: the top level (2**bits - 1) * (alpha / (2**bits - 1)) overflows float32 "
            f"for alpha={float(a)!r}, bits={bits}"
        )
    return x, a, bits
