"""Binary weights and activations in torch; the semantics are those of `reference.quantization.binary`.

sign(0) = +1 (torch.sign gives 0, so it is not used). Straight-through and XNOR gradients are private
`torch.autograd.Function`s; every sum is the exact sum, rounded once to float64.
"""

from __future__ import annotations

import torch

from reference.common import checks, validate
from reference.quantization.binary import STES
from torch_backend import _arrays
from torch_backend.core._exact import sum_unchecked
from torch_backend.core.exact import exact_sum
from torch_backend.core.random import uniform
from torch_backend.quantization import _fast, _slices

__all__ = [
    "binarize",
    "binarize_vjp",
    "binary_connect",
    "binary_connect_vjp",
    "xnor_scale",
    "xnor_binarize",
    "xnor_binarize_vjp",
]


def binarize(x, *, ste="clipped"):
    """Sign binarization with sign(0) = +1; see `reference.quantization.binary.binarize`."""
    validate.choice("ste", ste, STES)
    x = _arrays.finite_array("x", x)
    if torch.is_grad_enabled() and x.requires_grad:
        return _Straight.apply(x, False, None, ste)
    return _sign(x)  # nothing to record: no `Function.apply` (it costs a few microseconds)


def binarize_vjp(grad, x, *, ste="clipped"):
    """The straight-through gradient of `binarize`: its autograd
    function's backward applied to `grad`, without the forward (`torch_backend._arrays.vjp`)."""
    validate.choice("ste", ste, STES)
    x = _arrays.finite_array("x", x)
    grad = _check_grad(grad, x, "x")
    direct = lambda g: _arrays.backward_of(_Straight, g, (x.detach(),), ste=ste)[0]  # noqa: E731
    return _arrays.vjp(lambda v: binarize(v, ste=ste), (x,), grad, direct=direct)


def binary_connect(w, *, stochastic=False, key=None, ste="identity"):
    """BinaryConnect binarization, deterministic or stochastic; see `reference.quantization.binary.binary_connect`."""
    stochastic, key, ste = checks.binary_connect(stochastic, key, ste, STES)
    w = _arrays.finite_array("w", w)
    if torch.is_grad_enabled() and w.requires_grad:
        return _Straight.apply(w, stochastic, key, ste)
    return _connect(w, stochastic, key)  # nothing to record: no `Function.apply`


def binary_connect_vjp(grad, w, *, stochastic=False, key=None, ste="identity"):
    """The straight-through gradient of `binary_connect`: its autograd
    function's backward applied to `grad`, without the forward (`torch_backend._arrays.vjp`)."""
    stochastic, key, ste = checks.binary_connect(stochastic, key, ste, STES)
    w = _arrays.finite_array("w", w)
    grad = _check_grad(grad, w, "w")
    direct = lambda g: _arrays.backward_of(_Straight, g, (w.detach(),), ste=ste)[0]  # noqa: E731
    return _arrays.vjp(lambda v: binary_connect(v, stochastic=stochastic, key=key, ste=ste), (w,), grad, direct=direct)


def xnor_scale(w, *, axis=None):
    """The XNOR-Net / BWN scale fl32(fl64(exact_sum(|w|) / n)); see `reference.quantization.binary.xnor_scale`."""
    w, k = _slices.check_slices(w, axis, "the XNOR scale")
    return _scale(w.detach(), k)


def xnor_binarize(w, *, axis=None, ste="clipped"):
    """alpha * sign(w) with the gradient of `xnor_binarize_vjp`; see `reference.quantization.binary.xnor_binarize`."""
    w, k = _slices.check_slices(w, axis, "the XNOR scale")
    validate.choice("ste", ste, STES)
    return _Xnor.apply(w, k, ste)


def xnor_binarize_vjp(grad, w, *, axis=None, ste="clipped"):
    """The gradient of `xnor_binarize`: its autograd
    function's backward applied to `grad`, without the forward (`torch_backend._arrays.vjp`)."""
    w, k = _slices.check_slices(w, axis, "the XNOR scale")
    validate.choice("ste", ste, STES)
    grad = _check_grad(grad, w, "w")
    direct = lambda g: _arrays.backward_of(_Xnor, g, (w.detach(),), k=k, ste=ste)[0]  # noqa: E731
    return _arrays.vjp(lambda v: xnor_binarize(v, axis=axis, ste=ste), (w,), grad, direct=direct)


class _Straight(torch.autograd.Function):
    """Forward: b(x), or BinaryConnect's stochastic draw. Backward: the straight-through gradient."""

    @staticmethod
    def forward(ctx, x, stochastic, key, ste):
        ctx.save_for_backward(x)
        ctx.ste = ste
        return _connect(x, stochastic, key)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return _straight(x, grad, ctx.ste), None, None, None


class _Xnor(torch.autograd.Function):
    """Forward: alpha * b(w). Backward: alpha * g * pass + b * mean(b * g) (exact sum / n), in float64, rounded once.

    The backward does not reject non-finite cotangents (they propagate, as autograd's own functions do); the
    public `xnor_binarize_vjp` rejects them up front, as the reference does.
    """

    @staticmethod
    def forward(ctx, w, k, ste):
        ctx.save_for_backward(w)
        ctx.k, ctx.ste = k, ste
        # alpha * sign(w) is +-alpha: alpha (>= +0.0) with the sign of w + 0.0 (both zeros give +), written over
        # the fresh w + 0.0 in one pass (`copysign` of the expanded alpha), not sign(w) and then a product
        y = w.detach() + _arrays.constant(0.0, w)
        return torch.copysign(_slices.expand(_scale(w, k), w.ndim, k), y, out=y)

    @staticmethod
    def backward(ctx, grad):
        (w,) = ctx.saved_tensors
        k = ctx.k
        alpha = _slices.expand(_scale(w, k), w.ndim, k).to(torch.float64)
        b = _sign(w).to(torch.float64)
        rows = _slices.rows(b * grad.to(torch.float64), k)
        m = sum_unchecked(rows, 1) / _arrays.scalar(float(rows.shape[1]), rows)
        m = _slices.expand(_slices.per_slice(m, k), w.ndim, k)
        direct = torch.where(_passes(w, ctx.ste), alpha * grad.to(torch.float64), 0.0)
        return (direct + b * m).to(torch.float32), None, None


# ---- private helpers ----------------------------------------------------------------------------------------


def _sign(x):
    """+1 where x >= 0 (both zeros included), -1 where x < 0, as float32 on x's device.

    The sign bit of x + 0.0 (-0.0 + 0.0 is +0.0) copied onto 1, in place: two streaming operations and one
    allocation, several times faster than `where` on a boolean mask on the CPU."""
    y = x.detach() + _arrays.constant(0.0, x)
    return torch.copysign(_arrays.constant(1.0, y), y, out=y)


def _passes(x, ste):
    if ste == "identity":
        return torch.ones(x.shape, dtype=torch.bool, device=x.device)
    return torch.abs(x) <= _arrays.constant(1.0, x)


def _straight(x, grad, ste):
    """`where(_passes(x, ste), grad, +0.0)`, the straight-through gradient, with the same bits.

    identity: a copy of `grad`. clipped, on large float32 tensors (`_fast.SELECT_MIN` elements or more): `|x| <= 1`
    is `bits(|x|) <= bits(1.0) = 0x3F800000` (non-negative float patterns order as their values; x is finite), so
    `(bits(|x|) - 0x3F800001) >> 31` (no overflow: both in `[0, 2**31)`) is -1 (all bits set) where it holds and 0
    elsewhere, and ANDing `grad`'s bits with it keeps them or gives +0.0, as `where` does (no comparison, no bool).
    """
    if ste == "identity":
        return grad.clone()
    if (
        grad.numel() < _fast.SELECT_MIN
        or grad.dtype != torch.float32
        or type(grad) not in (torch.Tensor, torch.nn.Parameter)
    ):
        return torch.where(_passes(x, ste), grad, 0.0)
    keep = torch.bitwise_and(x.detach().view(torch.int32), 0x7FFFFFFF).sub_(0x3F800001).bitwise_right_shift_(31)
    return torch.bitwise_and(grad.detach().view(torch.int32), keep).view(torch.float32)


def _check_grad(grad, x, name):
    grad = _arrays.finite_array("grad", grad)
    _arrays.shaped("grad", grad, x.shape, name)
    return _arrays.same_device("grad", grad, name, x)


def _connect(w, stochastic, key):
    if not stochastic:
        return _sign(w)
    u = uniform(key, tuple(w.shape), device=w.device)
    return torch.where(w > u * 2.0 - 1.0, _arrays.constant(1.0, w), _arrays.constant(-1.0, w))


def _scale(w, k):
    """alpha = fl32(fl64(exact_sum(|w|) / n)) per slice: shape () or (C,)."""
    rows = _slices.rows(torch.abs(w), k)
    s = exact_sum(rows, axis=1)
    return _slices.per_slice((s / _arrays.scalar(float(rows.shape[1]), s)).to(torch.float32), k)
