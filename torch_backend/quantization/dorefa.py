"""DoReFa-Net quantizers in torch; the semantics are those of `reference.quantization.dorefa`.

tanh is evaluated in float64 and rounded once to float32, which for a float32 input is the float32 nearest the
exact tanh on any backend whose float64 tanh errs by less than 16 ulps (see the reference). Gradients are private
`torch.autograd.Function`s whose backward computes exactly the reference VJP.
"""

from __future__ import annotations

import torch

from reference.common import validate
from torch_backend import _arrays
from torch_backend.core._exact import sum_unchecked
from torch_backend.core.exact import exact_sum

__all__ = ["dorefa_weight", "dorefa_weight_vjp", "dorefa_activation", "dorefa_activation_vjp"]


def dorefa_weight(w, bits):
    """DoReFa k-bit weights: tanh, normalise by max |tanh w|, quantize, map to [-1, 1]; see the reference."""
    bits = _check_bits(bits)
    w = _arrays.finite_array("w", w)
    if torch.is_grad_enabled() and w.requires_grad:
        return _DorefaWeight.apply(w, bits)
    return _weight(w.detach(), bits)  # nothing to record: no `Function.apply` (it costs a few microseconds)


def dorefa_weight_vjp(grad, w, bits):
    """The gradient of `dorefa_weight` to `w`: its autograd
    function's backward applied to `grad`, without the forward (`torch_backend._arrays.vjp`)."""
    bits = _check_bits(bits)
    w = _arrays.finite_array("w", w)
    grad = _arrays.shaped("grad", _arrays.finite_array("grad", grad), w.shape, "w")
    _arrays.same_device("grad", grad, "w", w)

    def direct(g):
        saved = () if bits == 1 or w.numel() == 0 else (_tanh32(w.detach()),)
        return _arrays.backward_of(_DorefaWeight, g, saved, bits=bits)[0]

    return _arrays.vjp(lambda v: dorefa_weight(v, bits), (w,), grad, direct=direct)


def dorefa_activation(x, bits):
    """DoReFa k-bit activations: clip to [0, 1], then rne(n * y) / n; see the reference."""
    bits = _check_bits(bits)
    x = _arrays.finite_array("x", x)
    if torch.is_grad_enabled() and x.requires_grad:
        return _DorefaActivation.apply(x, bits)
    return _activation(x.detach(), bits)  # nothing to record: no `Function.apply`


def dorefa_activation_vjp(grad, x, bits):
    """The gradient of `dorefa_activation` to `x`: its autograd
    function's backward applied to `grad`, without the forward (`torch_backend._arrays.vjp`)."""
    bits = _check_bits(bits)
    x = _arrays.finite_array("x", x)
    grad = _arrays.shaped("grad", _arrays.finite_array("grad", grad), x.shape, "x")
    _arrays.same_device("grad", grad, "x", x)
    xd = x.detach()
    direct = lambda g: _arrays.backward_of(_DorefaActivation, g, ((xd >= 0) & (xd <= 1),))[0]  # noqa: E731
    return _arrays.vjp(lambda v: dorefa_activation(v, bits), (x,), grad, direct=direct)


class _DorefaWeight(torch.autograd.Function):
    """Forward: the reference's float32 steps. Backward: straight through the rounding, autograd's chain rule
    through the max normalisation (split evenly among ties) and tanh, in float64, rounded once."""

    @staticmethod
    def forward(ctx, w, bits):
        ctx.bits = bits
        if w.numel() == 0 or bits == 1:
            return _weight(w, bits)
        t = _tanh32(w)
        ctx.save_for_backward(t)
        return _levels(t, bits)

    @staticmethod
    def backward(ctx, grad):
        if ctx.bits == 1 or grad.numel() == 0:
            return grad.clone(), None
        (t,) = ctx.saved_tensors
        m = torch.abs(t).max()
        if not bool(m > 0):
            return torch.zeros_like(grad), None
        g64, t64, m64 = grad.to(torch.float64), t.to(torch.float64), m.to(torch.float64)
        d = -sum_unchecked(g64 * t64) / (m64 * m64)
        at_max = torch.abs(t) == m
        share = d / at_max.sum().to(torch.float64)
        direct = g64 / m64
        dt = torch.where(at_max, direct + torch.where(t64 > 0, share, -share), direct)
        return (dt * (1 - t64 * t64)).to(torch.float32), None


class _DorefaActivation(torch.autograd.Function):
    """Forward: rne(n * clip(x, 0, 1)) / n. Backward: pass where 0 <= x <= 1."""

    @staticmethod
    def forward(ctx, x, bits):
        ctx.save_for_backward((x >= 0) & (x <= 1))
        return _activation(x, bits)

    @staticmethod
    def backward(ctx, grad):
        (passes,) = ctx.saved_tensors
        return torch.where(passes, grad, 0.0), None


def _check_bits(bits):
    return validate.integer("bits", bits, lo=1, hi=16)


def _tanh32(w):
    """float64 tanh rounded once to float32: the float32 nearest tanh(w) (see the reference)."""
    return torch.tanh(w.to(torch.float64)).to(torch.float32)


def _weight(w, bits):
    """The forward of `dorefa_weight` (`w` finite)."""
    if w.numel() == 0:
        return w.clone()
    if bits == 1:
        s = exact_sum(torch.abs(w))
        e = (s / _arrays.scalar(float(w.numel()), s)).to(torch.float32)
        return torch.where(w >= 0, e, -e)
    return _levels(_tanh32(w), bits)


def _levels(t, bits):
    """(2 rne(n r) - n) / n with r = t / (2m) + 1/2, m = max|t| (r = 1/2 everywhere when m = 0), in float32.

    m = max(-min t, max t) is read on the host (one reduction), so the divisor 2m (exact: m <= 1) is a
    0-d tensor; the other steps run in place on one buffer, each rounding as the reference's."""
    small, large = torch.aminmax(t)
    m = max(-small.item(), large.item())
    n = _arrays.constant(float(2**bits - 1), t)
    r = (t / _arrays.scalar(2.0 * m if m > 0 else 1.0, t)).add_(_arrays.constant(0.5, t))
    return r.mul_(n).round_().mul_(_arrays.constant(2.0, t)).sub_(n).div_(n)


def _activation(x, bits):
    """rne(n clip(x, 0, 1)) / n in float32, in place on one buffer; + 0.0 makes a clipped -0.0 the reference's
    +0.0 (no other value changes)."""
    n = _arrays.constant(float(2**bits - 1), x)
    return torch.clamp(x, 0.0, 1.0).add_(_arrays.constant(0.0, x)).mul_(n).round_().div_(n)
