"""Ternary weights (TWN, TTQ) in torch; the semantics are those of `reference.quantization.ternary`.

Thresholds are float64 products rounded once to float32; every sum is the exact sum, rounded once to float64;
gradients are private `torch.autograd.Function`s.
"""

from __future__ import annotations

import math

import torch

from reference.common import validate
from reference.quantization.ternary import TWN_FACTOR
from torch_backend import _arrays
from torch_backend.core import _host
from torch_backend.core._exact import sum_unchecked
from torch_backend.core.exact import exact_sum
from torch_backend.quantization import _fast, _slices

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
    """Trained Ternary Quantization; see `reference.quantization.ternary.ttq_quantize`.

    Up to `HOST_MAX` elements of a CPU `w`, with nothing to record, on Python floats (`_host_ttq`)."""
    w, wp, wn, delta = _check_ttq(w, wp, wn, t)
    recording = torch.is_grad_enabled() and (w.requires_grad or wp.requires_grad or wn.requires_grad)
    if isinstance(delta, _Host):
        if not recording:
            return _host_ttq(delta, wp.item(), wn.item(), w.shape)
        delta = torch.tensor(delta.delta, dtype=torch.float32)  # the same float32 value, as a tensor
    if recording:
        return _Ttq.apply(w, wp, wn, delta)
    return _ttq_forward(w.detach(), wp.detach(), wn.detach(), delta)  # nothing to record: no `Function.apply`


def ttq_quantize_vjp(grad, w, wp, wn, *, t=0.05):
    """The gradients of `ttq_quantize` to (w, wp, wn): its autograd
    function's backward applied to `grad`, without the forward (`torch_backend._arrays.vjp`)."""
    w, wp, wn, delta = _check_ttq(w, wp, wn, t)
    grad = _arrays.shaped("grad", _arrays.finite_array("grad", grad), w.shape, "w")
    _arrays.same_device("grad", grad, "w", w)
    if isinstance(delta, _Host):
        if not getattr(_arrays.VJP, "autograd", False) and type(grad) in _arrays.PLAIN:  # the direct route
            return _host_ttq_vjp(delta, grad.detach().reshape(-1).tolist(), wp.item(), wn.item(), w.shape)
        delta = torch.tensor(delta.delta, dtype=torch.float32)

    def direct(g):
        saved = (_ttq_regions(w.detach(), delta), wp.detach(), wn.detach())
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

    Both read the region code of each weight (`_ttq_regions`) and look its values up in 4-entry tables
    (`index_select` copies the entries' bits, as `where` would choose them).
    The backward does not reject non-finite cotangents (they propagate, as autograd's own functions do); the
    public `ttq_quantize_vjp` rejects them up front, as the reference does.
    """

    @staticmethod
    def forward(ctx, w, wp, wn, delta):
        region = _ttq_regions(w, delta)
        ctx.save_for_backward(region, wp, wn)
        return _ttq_forward(w, wp, wn, delta, region)

    @staticmethod
    def backward(ctx, grad):
        region, wp, wn = ctx.saved_tensors
        # where(pos, wp g, where(neg, wn g, g)) as f g, f in (1, 1, wp, wn): the same products, and 1 g = g exactly
        one = torch.ones((), dtype=grad.dtype, device=grad.device)
        grad_w = _lookup(torch.stack([one, one, wp, wn]), region).mul_(grad)
        grad_wp = sum_unchecked(_fast.select(region == 2, grad, 0.0)).to(torch.float32)
        grad_wn = sum_unchecked(_fast.select(region == 3, -grad, 0.0)).to(torch.float32)
        return grad_w, grad_wp, grad_wn, None


def _ttq_forward(w, wp, wn, delta, region=None):
    """wp above delta, -wn below -delta, +0.0 between, by `_ttq_regions` and a table lookup."""
    region = _ttq_regions(w, delta) if region is None else region
    zero = torch.zeros((), dtype=torch.float32, device=w.device)
    return _lookup(torch.stack([zero, zero, wp, -wn]), region)


def _ttq_regions(w, delta):
    """int32 codes: 0 or 1 where |w| <= delta, 2 where w > delta, 3 where w < -delta (w finite, delta a 0-d
    float32 >= 0: `t = -0.0` gives -0.0, read as its `abs`, the same value), from the bit patterns only (no
    float arithmetic: none on subnormals).

    The bit patterns of non-negative floats order as their values, so `|w| > delta` is `t = clip(bits(|w|) -
    bits(delta), 0, 1) = 1` (both patterns in `[0, 2**31)`: no overflow); the code is `2 t - (bits(w) >> 31)`, the
    arithmetic shift giving -1 for a set sign bit: 2 for a kept positive w, 3 for a kept negative one.
    """
    bits = w.view(torch.int32)
    kept = torch.bitwise_and(bits, 0x7FFFFFFF).sub_(torch.abs(delta).view(torch.int32)).clamp_(0, 1)
    return kept.mul_(2).sub_(bits >> 31)


def _lookup(table, region):
    """`table[region]` shaped like `region` (a copy of the entries' bits)."""
    return torch.index_select(table, 0, region.reshape(-1)).reshape(region.shape)


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
    """The reference's checks, in its order; `delta` a 0-d float32 tensor, or a `_Host` for a CPU `w` of
    `1..HOST_MAX` elements outside a deferred block (its values read once, which also proves them finite)."""
    t = validate.fraction("t", t)
    w = _arrays.array("w", w)
    if 0 < w.numel() <= HOST_MAX and w.device.type == "cpu" and type(w) in _arrays.PLAIN and not _arrays.deferring():
        values = w.detach().reshape(-1).tolist()
        if not all(map(math.isfinite, values)):
            _arrays.finite("w", w)  # raises the reference's error
        wp = _check_scale("wp", wp, w)
        wn = _check_scale("wn", wn, w)
        # float64 `t * max|w|` (a float32 value is a float64 exactly; `abs` is exact), rounded once to float32
        return w, wp, wn, _Host(values, _host.float32(t * max(map(abs, values))))
    if w.numel() == 0:
        raise ValueError(f"w has shape {tuple(w.shape)}: the TTQ threshold t * max|w| needs at least one element")
    # max|w| = max(|min w|, |max w|) (+0.0 for zeros); the extremes are finite exactly when every element is
    # (they carry a NaN or an infinity): one pass for both, `_arrays.finite` (its error) only otherwise
    small, large = torch.aminmax(w.detach())
    if not math.isfinite(((small - small) + (large - large)).item()):
        _arrays.finite("w", w)
    wp = _check_scale("wp", wp, w)
    wn = _check_scale("wn", wn, w)
    amax = torch.maximum(torch.abs(small), torch.abs(large)).to(torch.float64)
    delta = (_arrays.scalar(t, amax) * amax).to(torch.float32)
    return w, wp, wn, delta


HOST_MAX = 64  # up to this many CPU elements TTQ runs on Python floats (a dozen tensor operations cost more)


class _Host:
    """`w`'s values (a flat list of Python floats, float32 values) and the threshold delta (a float32 value)."""

    __slots__ = ("values", "delta")

    def __init__(self, values, delta):
        self.values, self.delta = values, delta


def _host_ttq(host, wp, wn, shape):
    """`ttq_quantize` of `host.values` with the scales `wp`, `wn` (Python floats of float32 values).

    Same bits as the reference's `where(w > delta, wp, where(w < -delta, -wn, +0.0))`: the comparisons of two
    float32 values are exact in float64, `-wn` is exact, and each output is one of `wp`, `-wn`, `+0.0`, float32
    values that `torch.tensor` stores exactly. No element is NaN (checked)."""
    d = host.delta
    out = [wp if v > d else (-wn if v < -d else 0.0) for v in host.values]
    return torch.tensor(out, dtype=torch.float32).reshape(shape)


def _host_ttq_vjp(host, grad, wp, wn, shape):
    """`ttq_quantize_vjp` on Python floats (`grad` a flat list of finite float32 values).

    Same bits as the reference: `wp * g` and `wn * g` of two float32 values are exact in float64 (48 significant
    bits at most, exponents far inside float64's range, subnormals included), so `_host.float32` rounds the
    exact product once, to nearest even, with the float32 overflow to +-inf; `g` itself is kept as it is (signed
    zeros included). A scale gradient is the exact sum of float32 values, each an integer multiple of 2**-149
    (`v * 2**149` is an exact power-of-two scaling to an integer below 2**278), summed as Python ints (exact),
    divided by 2**149 by Python's correctly rounded int division (to nearest even; a zero sum is `+0.0`, as
    `exact_sum` gives), then rounded to float32: the reference's exact sum rounded once to float64, then to
    float32."""
    d = host.delta
    grad_w, pos, neg = [], 0, 0
    for v, g in zip(host.values, grad, strict=True):
        if v > d:
            grad_w.append(_host.float32(wp * g))
            pos += int(g * _TWO_149)
        elif v < -d:
            grad_w.append(_host.float32(wn * g))
            neg -= int(g * _TWO_149)
        else:
            grad_w.append(g)
    return (
        torch.tensor(grad_w, dtype=torch.float32).reshape(shape),
        torch.tensor(_host.float32(pos / _ONE_149), dtype=torch.float32),
        torch.tensor(_host.float32(neg / _ONE_149), dtype=torch.float32),
    )


_TWO_149 = 2.0**149
_ONE_149 = 1 << 149


def _check_scale(name, s, w):
    s = _arrays.shaped(name, _arrays.finite_array(name, s), (), "a per-tensor scale")
    _arrays.positive(name, s)
    return _arrays.same_device(name, s, "w", w)
