"""LSQ and LSQ+ in torch; the semantics are those of `reference.quantization.lsq`.

Divisions are tensor / tensor on one device; the gradient scale is computed on the host with exact rational
arithmetic (no `sqrt` decides its last bit); parameter gradients are exact sums, rounded once to float64, times the
gradient scale, rounded once to float32.
"""

from __future__ import annotations

import math
import struct

import torch

from reference.common import checks, scalars, shapes, validate
from reference.quantization.lsq import lsq_grad_scale
from torch_backend import _arrays
from torch_backend.core._exact import sum_unchecked
from torch_backend.core.exact import exact_sum
from torch_backend.quantization import _fast

__all__ = [
    "lsq_grad_scale",
    "lsq_init_scale",
    "lsq_quantize",
    "lsq_quantize_vjp",
    "lsq_plus_quantize",
    "lsq_plus_quantize_vjp",
]


def lsq_init_scale(w, *, bits, signed, axis=None):
    """LSQ's initial step `fl32(fl64(2 mean|w|) / sqrt_rn(Qp))`; see `reference.quantization.lsq.lsq_init_scale`."""
    _, qp = checks.lsq_bounds(bits, signed)
    w = _arrays.finite_array("w", w)
    k = None if axis is None else validate.axis("axis", axis, w.ndim)
    if w.numel() == 0:
        raise ValueError(f"w has shape {tuple(w.shape)}: the LSQ initial step needs at least one element")
    a = torch.abs(w.detach())
    if k is None:
        m = exact_sum(a)
        m = m / _arrays.scalar(float(a.numel()), m)
    else:
        rows = torch.movedim(a, k, 0)
        m = exact_sum(rows.reshape(rows.shape[0], math.prod(rows.shape[1:])), axis=1)
        m = m / _arrays.scalar(float(a.numel() // a.shape[k]), m)
    s = ((m * 2) / _arrays.scalar(math.sqrt(qp), m)).to(torch.float32)
    _check_init(s)
    return torch.where(s > 0, s, torch.ones_like(s))


def lsq_quantize(x, scale, *, bits, signed, axis=None):
    """LSQ: rne(clip(x / s, -Qn, Qp)) * s, per tensor or per channel; see the reference."""
    x, scale, _, qn, qp, k = _check(x, scale, None, bits, signed, axis, plus=False)
    if torch.is_grad_enabled() and (x.requires_grad or scale.requires_grad):
        return _Lsq.apply(x, scale, None, qn, qp, k)
    return _quantize(x.detach(), scale.detach(), None, qn, qp, k)  # nothing to record: no `Function.apply`


def lsq_quantize_vjp(grad, x, scale, *, bits, signed, axis=None):
    """The gradients of `lsq_quantize` to `x` and `scale`: its autograd
    function's backward applied to `grad`, without the forward (`torch_backend._arrays.vjp`)."""
    x, scale, _, qn, qp, k = _check(x, scale, None, bits, signed, axis, plus=False)
    grad = _arrays.shaped("grad", _arrays.finite_array("grad", grad), x.shape, "x")
    _arrays.same_device("grad", grad, "x", x)

    def direct(g):
        saved = (x.detach(), scale.detach(), None)
        return tuple(_arrays.backward_of(_Lsq, g, saved, qn=qn, qp=qp, k=k)[:2])

    fn = lambda *a: lsq_quantize(*a, bits=bits, signed=signed, axis=axis)  # noqa: E731
    return _arrays.vjp(fn, (x, scale), grad, wrt=(0, 1), direct=direct)


def lsq_plus_quantize(x, scale, offset, *, bits, signed, axis=None):
    """LSQ+: rne(clip((x - beta) / s, -Qn, Qp)) * s + beta, per tensor or per channel; see the reference."""
    x, scale, offset, qn, qp, k = _check(x, scale, offset, bits, signed, axis, plus=True)
    if torch.is_grad_enabled() and (x.requires_grad or scale.requires_grad or offset.requires_grad):
        return _Lsq.apply(x, scale, offset, qn, qp, k)
    return _quantize(x.detach(), scale.detach(), offset.detach(), qn, qp, k)  # no `Function.apply`


def lsq_plus_quantize_vjp(grad, x, scale, offset, *, bits, signed, axis=None):
    """The gradients of `lsq_plus_quantize` to `x`, `scale` and `offset`, by the backward of its autograd
    function applied to `grad`, without the forward (`torch_backend._arrays.vjp`)."""
    x, scale, offset, qn, qp, k = _check(x, scale, offset, bits, signed, axis, plus=True)
    grad = _arrays.shaped("grad", _arrays.finite_array("grad", grad), x.shape, "x")
    _arrays.same_device("grad", grad, "x", x)
    options = {"bits": bits, "signed": signed, "axis": axis}

    def direct(g):
        saved = (x.detach(), scale.detach(), offset.detach())
        return tuple(_arrays.backward_of(_Lsq, g, saved, qn=qn, qp=qp, k=k)[:3])

    fn = lambda *a: lsq_plus_quantize(*a, **options)  # noqa: E731
    return _arrays.vjp(fn, (x, scale, offset), grad, wrt=(0, 1, 2), direct=direct)


class _Lsq(torch.autograd.Function):
    """Forward: rne(clip(v, -Qn, Qp)) * s (+ beta), v = (x (- beta)) / s. Backward: one pass region for x, the
    step and the offset; parameter gradients summed exactly (rounded to float64), times the gradient scale, rounded
    once."""

    @staticmethod
    def forward(ctx, x, scale, offset, qn, qp, k):
        ctx.save_for_backward(x, scale, offset)
        ctx.qn, ctx.qp, ctx.k = qn, qp, k
        return _quantize(x, scale, offset, qn, qp, k)

    @staticmethod
    def backward(ctx, grad):
        x, scale, offset = ctx.saved_tensors
        qn, qp, k = ctx.qn, ctx.qp, ctx.k
        if k is None and x.numel() >= BLOCKED_MIN and x.device.type == "cpu" and type(grad) in _arrays.PLAIN:
            return (*_backward_blocked(grad, x, scale, offset, qn, qp), None, None, None)
        xv, s, b = _layout(x, scale, offset, k)
        g = grad.reshape(xv.shape)
        v = _scaled_input(xv, s, b)
        # c = clip(v, -Qn, Qp) is v itself exactly when -Qn <= v <= Qp (v is never NaN: x, beta finite, s > 0
        # finite; an overflow to +-inf clips to -Qn or Qp), so one comparison gives the pass region.
        c = v.clamp(-qn, qp)
        inside = c == v
        grad_x = _arrays.where_kept(inside, g).reshape(x.shape)
        gs = scalars.inverse_sqrt_float32(shapes.count_per_slice(tuple(x.shape), k) * qp)
        # The reference's step factor, in float32: inside, rne(v) - v is exact in float32 (|v| < 1/2 gives -v, or
        # +0 from x - x; else both are multiples of ulp(v) >= 2**-24 and the difference is at most 1/2), so it is
        # the reference's float64 difference, signed zeros included; outside, the clipped code c is -Qn or Qp.
        # Each float64 product g d is the reference's (both factors are the same values).
        d = _fast.select(inside, torch.round(c).sub_(c), c)
        grad_scale = _scaled_sum(g.to(torch.float64).mul_(d.to(torch.float64)).reshape(x.shape), gs, k)
        grad_offset = None
        if offset is not None:  # the float32 terms g outside the region have the reference's float64 values
            grad_offset = _scaled_sum(_arrays.where_kept(~inside, g).reshape(x.shape), gs, k)
        return grad_x, grad_scale, grad_offset, None, None, None


BLOCKED_MIN = 1 << 14  # from this many CPU elements a per-tensor backward runs in cache-sized blocks


def _backward_blocked(grad, x, scale, offset, qn, qp):
    """`_Lsq.backward` per tensor (0-d step and offset), block by block (`_fast.blocks`), with the same bits: each
    element gets the same operations in the same order (v, its clip, the pass region, the step factor d and the
    float64 product g d), only while a block's temporaries are in cache; the masks are ANDed into the gradient's
    bit patterns as `where_kept` does (`_arrays.where_kept`'s docstring): g's bits where kept, +0.0 elsewhere.
    The products and the terms outside the region are written to whole buffers, then summed exactly as before."""
    xs, gs32 = x.reshape(-1), grad.reshape(-1)
    bits = gs32.view(torch.int32)
    n = xs.numel()
    grad_x = torch.empty(n, dtype=torch.float32, device=x.device)
    terms = torch.empty(n, dtype=torch.float64, device=x.device)
    outside = None if offset is None else torch.empty(n, dtype=torch.float32, device=x.device)
    for part in _fast.blocks(n, _fast.BLOCK // 2):
        v = _scaled_input(xs[part], scale, offset)
        c = v.clamp(-qn, qp)
        ci, keep = c.view(torch.int32), v.view(torch.int32)
        # `inside` (c == v, neither NaN) as a mask of all ones or zeros, in v's buffer. c == v exactly when their
        # bits agree but for the sign bit: equal values have equal bits, or are +0.0 and -0.0; and c = -v != 0 is
        # impossible (clipping to [-Qn, Qp], which holds 0, keeps v's sign or gives a zero: with Qn = 0 a
        # negative v clips to +-0.0). So e = (c ^ v) & 0x7FFFFFFF is in [0, 2**31), zero exactly inside, and
        # (e - 1) >> 31 (arithmetic) is -1 inside and 0 outside.
        keep.bitwise_xor_(ci).bitwise_and_(0x7FFFFFFF).sub_(1).bitwise_right_shift_(31)
        torch.bitwise_and(keep, bits[part], out=grad_x[part].view(torch.int32))
        # d = where(inside, rne(c) - c, c) by bits, as `_fast.select`: c ^ ((r ^ c) & keep)
        d = torch.round(c).sub_(c)
        d.view(torch.int32).bitwise_xor_(ci).bitwise_and_(keep).bitwise_xor_(ci)
        torch.mul(gs32[part].to(torch.float64), d.to(torch.float64), out=terms[part])
        if outside is not None:
            torch.bitwise_and(keep.bitwise_not_(), bits[part], out=outside[part].view(torch.int32))
    gs = scalars.inverse_sqrt_float32(n * qp)
    grad_scale = _scaled_sum(terms.reshape(x.shape), gs, None)
    grad_offset = None if outside is None else _scaled_sum(outside.reshape(x.shape), gs, None)
    return grad_x.reshape(x.shape), grad_scale, grad_offset


def _check(x, scale, offset, bits, signed, axis, *, plus):
    """The reference's checks, in its order; returns x, scale, offset (as given), Qn, Qp, the normalized axis."""
    qn, qp = checks.lsq_bounds(bits, signed)
    x = _arrays.finite_array("x", x)
    if axis is None:
        k, shape, why = None, (), "axis=None"
    else:
        if x.ndim == 0:
            raise ValueError(f"axis={axis!r} needs an array with at least one dimension, got shape {tuple(x.shape)}")
        k = validate.axis("axis", axis, x.ndim)
        shape, why = (x.shape[k],), f"axis={axis}"
    s = _arrays.shaped("scale", _finite_positive("scale", scale), shape, why)
    _arrays.same_device("scale", s, "x", x)
    b = None
    if plus:
        b = _arrays.shaped("offset", _arrays.finite_array("offset", offset), shape, why)
        _arrays.same_device("offset", b, "x", x)
    _check_levels(s.detach(), None if b is None else b.detach(), qn, qp)
    return x, s, b, qn, qp, k


def _finite_positive(name, p):
    """`_arrays.positive(name, _arrays.finite_array(name, p))` with one host read when all is well (the value of
    a 0-d `p`; else `aminmax`: a minimum above 0 and a finite maximum prove both, a NaN fails both)."""
    p = _arrays.array(name, p)
    if p.numel():
        small, large = (p.detach(), p.detach()) if p.ndim == 0 else torch.aminmax(p.detach())
        if small.item() > 0 and math.isfinite(large.item()):
            return p
    return _arrays.positive(name, _arrays.finite(name, p))


def _float32(v):
    """The Python float `v` rounded to the nearest float32 (a C cast), or None where that overflows."""
    try:
        return struct.unpack("<f", struct.pack("<f", v))[0]
    except OverflowError:
        return None


def _check_levels(s, b, qn, qp):
    """The extreme levels -Qn * s (+ beta) and Qp * s (+ beta) must be finite float32 values.

    Per tensor on the host: Qn * s is exact as a Python float (at most 17 + 24 bits), and float32 sums rounded
    through float64 are the float32 sums (53 >= 2 * 24 + 2: double rounding is innocuous for + - * /)."""
    if s.ndim == 0:
        sv, bv = s.item(), None if b is None else b.item()
        levels = [_float32(float(-qn) * sv), _float32(float(qp) * sv)]
        if bv is not None:
            levels = [None if v is None else _float32(v + bv) for v in levels]
        if None not in levels:
            return
    lo, hi = float(-qn) * s, float(qp) * s
    if b is not None:
        lo, hi = lo + b, hi + b
    bad = ~(torch.isfinite(lo) & torch.isfinite(hi))
    if bool(bad.any()):
        i = int(bad.reshape(-1).nonzero()[0])
        raise ValueError(
            f"the extreme levels -Qn * scale and Qp * scale (plus offset) must be finite float32 values; "
            f"Qn={qn}, Qp={qp}, scale={float(s.reshape(-1)[i])!r} overflows at flat index {i}"
        )


def _layout(x, scale, offset, k):
    """x, the step and the offset (or None) laid out to broadcast fast (`_fast.channels`)."""
    if offset is None:
        return (*_fast.channels(x, k, scale), None)
    return _fast.channels(x, k, scale, offset)


def _scaled_input(x, s, b):
    return (x if b is None else x - b) / s


def _quantize(x, scale, offset, qn, qp, k):
    """rne(clip(v, -Qn, Qp)) * s (+ beta), v = (x (- beta)) / s, in place on the buffer of v; each step rounds
    as the reference's. The clipped, rounded code gets + 0.0: a -0.0 code becomes the reference's +0.0, no
    other value changes."""
    xv, s, b = _layout(x, scale, offset, k)
    y = _scaled_input(xv, s, b).clamp_(-qn, qp).round_().add_(_arrays.constant(0.0, x)).mul_(s)
    return (y if b is None else y.add_(b)).reshape(x.shape)


def _scaled_sum(terms, gs, k):
    """fl32(exact_sum(terms) * gs), terms float64: over everything, or over each channel's elements."""
    if k is None:
        total = sum_unchecked(terms)
    else:
        rows = torch.movedim(terms, k, 0)
        total = sum_unchecked(rows.reshape(rows.shape[0], math.prod(rows.shape[1:])), axis=1)
    return (total * gs).to(torch.float32)


def _check_init(s):
    bad = ~torch.isfinite(s)
    if bool(bad.any()):
        i = int(bad.reshape(-1).nonzero()[0])
        raise ValueError(f"the initial step overflows float32 at flat index {i}: 2 * mean|w| / sqrt(Qp) > 3.4e38")
