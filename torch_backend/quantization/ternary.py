"""Ternary weights (TWN, TTQ) in torch; the semantics are those of `reference.quantization.ternary`.

Thresholds are float64 products rounded once to float32; every sum is the exact sum, rounded once to float64;
gradients are private `torch.autograd.Function`s.
"""

from __future__ import annotations

import torch

from reference.common import validate
from reference.quantization.ternary import TWN_FACTOR
from torch_backend import _arrays
from torch_backend.core._exact import sum_unchecked
from torch_backend.core.exact import exact_sum
from torch_backend.quantization import _slices

__all__ = ["twn_params", "twn_ternarize", "twn_ternarize_vjp", "ttq_quantize", "ttq_quantize_vjp"]


def twn_params(w, *, axis=None):
    """TWN's threshold 0.7 * mean|w| and scale; see `reference.quantization.ternary.twn_params`."""
    w, k = _slices.check_slices(w, axis, "the TWN threshold")
    delta, alpha, _ = _twn(w.detach(), k)
    return _slices.per_slice(delta, k), _slices.per_slice(alpha, k)


def twn_ternarize(w, *, axis=None):
    """Ternary Weight Networks; see `reference.quantization.ternary.twn_ternarize`."""
    w, k = _slices.check_slices(w, axis, "the TWN threshold")
    return _Twn.apply(w, k)


def twn_ternarize_vjp(grad, w, *, axis=None):
    """The straight-through gradient of `twn_ternarize`: its autograd
    function's backward applied to `grad`, without the forward (`torch_backend._arrays.vjp`)."""
    w, _ = _slices.check_slices(w, axis, "the TWN threshold")
    grad = _arrays.shaped("grad", _arrays.finite_array("grad", grad), w.shape, "w")
    _arrays.same_device("grad", grad, "w", w)
    direct = lambda g: _arrays.backward_of(_Twn, g)[0]  # noqa: E731  (straight through: a copy of grad)
    return _arrays.vjp(lambda v: twn_ternarize(v, axis=axis), (w,), grad, direct=direct)


def ttq_quantize(w, wp, wn, *, t=0.05):
    """Trained Ternary Quantization; see `reference.quantization.ternary.ttq_quantize`."""
    w, wp, wn, delta = _check_ttq(w, wp, wn, t)
    return _Ttq.apply(w, wp, wn, delta)


def ttq_quantize_vjp(grad, w, wp, wn, *, t=0.05):
    """The gradients of `ttq_quantize` to (w, wp, wn): its autograd
    function's backward applied to `grad`, without the forward (`torch_backend._arrays.vjp`)."""
    w, wp, wn, delta = _check_ttq(w, wp, wn, t)
    grad = _arrays.shaped("grad", _arrays.finite_array("grad", grad), w.shape, "w")
    _arrays.same_device("grad", grad, "w", w)

    def direct(g):
        wd = w.detach()
        saved = (wd > delta, wd < -delta, wp.detach(), wn.detach())
        return tuple(_arrays.backward_of(_Ttq, g, saved)[:3])

    return _arrays.vjp(lambda *a: ttq_quantize(*a, t=t), (w, wp, wn), grad, wrt=(0, 1, 2), direct=direct)


class _Twn(torch.autograd.Function):
    """Forward: where(|w| > delta, +-alpha, +0). Backward: the gradient unchanged."""

    @staticmethod
    def forward(ctx, w, k):
        _, alpha, kept = _twn(w, k)
        a = _slices.expand(_slices.per_slice(alpha, k), w.ndim, k)
        zero = torch.zeros((), dtype=torch.float32, device=w.device)
        return torch.where(kept, torch.where(w > 0, a, -a), zero)

    @staticmethod
    def backward(ctx, grad):
        return grad.clone(), None


class _Ttq(torch.autograd.Function):
    """Forward: wp above delta, -wn below -delta, +0 between. Backward: the paper's Eq. 8 and the scale sums.

    The backward does not reject non-finite cotangents (they propagate, as autograd's own functions do); the
    public `ttq_quantize_vjp` rejects them up front, as the reference does.
    """

    @staticmethod
    def forward(ctx, w, wp, wn, delta):
        pos, neg = w > delta, w < -delta
        ctx.save_for_backward(pos, neg, wp, wn)
        zero = torch.zeros((), dtype=torch.float32, device=w.device)
        return torch.where(pos, wp, torch.where(neg, -wn, zero))

    @staticmethod
    def backward(ctx, grad):
        pos, neg, wp, wn = ctx.saved_tensors
        grad_w = torch.where(pos, wp * grad, torch.where(neg, wn * grad, grad))
        grad_wp = sum_unchecked(torch.where(pos, grad, 0.0)).to(torch.float32)
        grad_wn = sum_unchecked(torch.where(neg, -grad, 0.0)).to(torch.float32)
        return grad_w, grad_wp, grad_wn, None


# ---- private helpers ----------------------------------------------------------------------------------------


def _twn(w, k):
    """Per-slice delta and alpha (float32, shape (C,) with C = 1 for the whole tensor) and the kept mask."""
    a = torch.abs(w)
    rows = _slices.rows(a, k)
    s = exact_sum(rows, axis=1)
    m = s / _arrays.scalar(float(rows.shape[1]), s)
    delta = (_arrays.scalar(TWN_FACTOR, m) * m).to(torch.float32)
    kept = a > _slices.expand(_slices.per_slice(delta, k), w.ndim, k)
    total = exact_sum(_slices.rows(torch.where(kept, a, 0.0), k), axis=1)
    count = _slices.rows(kept, k).sum(dim=1)
    alpha = (total / torch.clamp(count, min=1).to(torch.float64)).to(torch.float32)
    return delta, alpha, kept


def _check_ttq(w, wp, wn, t):
    t = validate.fraction("t", t)
    w = _arrays.finite_array("w", w)
    if w.numel() == 0:
        raise ValueError(f"w has shape {tuple(w.shape)}: the TTQ threshold t * max|w| needs at least one element")
    wp = _check_scale("wp", wp, w)
    wn = _check_scale("wn", wn, w)
    amax = torch.abs(w.detach()).max().to(torch.float64)
    delta = (_arrays.scalar(t, amax) * amax).to(torch.float32)
    return w, wp, wn, delta


def _check_scale(name, s, w):
    s = _arrays.shaped(name, _arrays.finite_array(name, s), (), "a per-tensor scale")
    _arrays.positive(name, s)
    return _arrays.same_device(name, s, "w", w)
