"""Uniform affine quantization in torch; the semantics are those of `reference.quantization.affine`.

Every division is tensor / tensor on one device (IEEE on CPU and CUDA); `fake_quantize` carries a
straight-through gradient through a private `torch.autograd.Function`.
"""

from __future__ import annotations

import math

import torch

from reference.common import shapes, validate
from reference.quantization.affine import integer_range
from torch_backend import _arrays
from torch_backend.core import _host
from torch_backend.quantization import _affine

__all__ = [
    "integer_range",
    "qparams_from_range",
    "minmax_qparams",
    "quantize",
    "dequantize",
    "fake_quantize",
    "fake_quantize_vjp",
]

TINY = 2.0**-126  # the smallest normal float32


def qparams_from_range(min_val, max_val, *, qmin, qmax, symmetric=False):
    """Scale and zero point for a real range; see `reference.quantization.affine.qparams_from_range`."""
    qmin, qmax = validate.qrange(qmin, qmax)
    symmetric = validate.boolean("symmetric", symmetric)
    min_val = _arrays.finite_array("min_val", min_val)
    max_val = _arrays.shaped("max_val", _arrays.finite_array("max_val", max_val), min_val.shape, "min_val")
    _arrays.same_device("max_val", max_val, "min_val", min_val)
    min_val, max_val = min_val.detach(), max_val.detach()
    bad = min_val > max_val
    if bool(bad.any()):
        i = int(bad.reshape(-1).nonzero()[0])
        raise ValueError(
            f"min_val must be <= max_val, got {float(min_val.reshape(-1)[i])!r} > "
            f"{float(max_val.reshape(-1)[i])!r} at flat index {i}"
        )
    _check_codes(qmin, qmax, symmetric)
    return _qparams(min_val, max_val, qmin, qmax, symmetric)


# per tensor on the CPU, outside a deferred block (which reads nothing before its end), qparams are computed on
# Python floats; tests switch it off to check the tensor route on the CPU
SCALAR_ROUTE = True


def _scalar_qparams(min_val, max_val, qmin, qmax, symmetric):
    """`(scale, zero_point)` as Python numbers for one range, or None if the range is not finite (inside a
    deferred block the check that raises comes later; the tensor route then computes what it computes).

    The same arithmetic as the tensor route: Python floats are IEEE float64 with correctly rounded division,
    `_host.float32` rounds to nearest even, `round` rounds half to even. The sign of a zero `lo` or `hi` cannot
    reach a result (a zero range gives the scale 1.0 and a zero point `qmin` or the midpoint either way), and
    the zero point is clipped from an exact integer where the tensor route clips a float64 that may have
    rounded: beyond 2**53, far outside `[qmin, qmax]`, the clip gives the same bound.
    """
    if not (math.isfinite(min_val) and math.isfinite(max_val)):
        return None
    lo, hi = min(min_val, 0.0), max(max_val, 0.0)
    if symmetric:
        zero = qmin + (qmax - qmin + 1) // 2
        scale = _host.float32(max(-lo, hi) / float(qmax - zero))
        return (1.0 if scale < TINY else scale), zero
    scale = _host.float32((hi - lo) / float(qmax - qmin))
    scale = 1.0 if scale < TINY else scale
    return scale, min(max(qmin - round(lo / scale), qmin), qmax)


def _scalar_tensors(found):
    """`(scale, zero_point)` as 0-d float32 and int32 tensors."""
    return torch.tensor(found[0], dtype=torch.float32), torch.tensor(found[1], dtype=torch.int32)


def minmax_qparams(x, *, qmin, qmax, symmetric=False, axis=None, group_size=None):
    """Min-max calibration at a granularity; see `reference.quantization.affine.minmax_qparams`.

    One host read of a device value per call (on CUDA each one waits for the GPU): `x` is not scanned for NaN or
    Inf up front, because its minima and maxima carry any NaN or Inf it holds; only if they are not finite is `x`
    scanned, to raise the reference's error.
    """
    x = _arrays.array("x", x)
    try:
        shape = shapes.qparam_shape(tuple(x.shape), axis, group_size)
        if x.numel() == 0:
            raise ValueError(f"x has shape {tuple(x.shape)}: min-max calibration needs at least one element")
        axis = None if axis is None else validate.axis("axis", axis, x.ndim)
        qmin, qmax = validate.qrange(qmin, qmax)
        symmetric = validate.boolean("symmetric", symmetric)
        _check_codes(qmin, qmax, symmetric)
    except (TypeError, ValueError):
        _arrays.finite("x", x)  # the reference checks x first: its error wins
        raise
    x = x.detach()
    if axis is None:
        lo, hi = torch.aminmax(x)
        if x.device.type == "cpu" and SCALAR_ROUTE and not _arrays.deferring():  # one read, also of finiteness
            found = _scalar_qparams(*torch.stack((lo, hi)).tolist(), qmin, qmax, symmetric)
            if found is not None:
                return _scalar_tensors(found)
    elif group_size is None:  # amin and amax: torch's CPU aminmax along a dimension is several times slower
        rows = torch.movedim(x, axis, 0).reshape(x.shape[axis], -1)
        lo, hi = rows.amin(dim=1), rows.amax(dim=1)
    else:
        groups = torch.movedim(x, axis, -1)
        groups = groups.reshape(groups.shape[:-1] + (groups.shape[-1] // group_size, group_size))
        lo = torch.movedim(groups.amin(dim=-1), -1, axis)
        hi = torch.movedim(groups.amax(dim=-1), -1, axis)
    # min and max propagate NaN and Inf: x is scanned (for the reference's error) only if they are not finite
    # lo * 0 + hi * 0 is +-0.0 when both are finite, NaN otherwise (no overflow to mistake for a bad value)
    bad = torch.add(lo * 0.0, hi * 0.0).ne_(0.0).any()
    _arrays.check_flag(bad, lambda: _arrays.finite("x", x))
    return _qparams(lo.reshape(shape), hi.reshape(shape), qmin, qmax, symmetric)


def quantize(x, scale, zero_point, *, qmin, qmax, axis=None, group_size=None, rounding="half_even", key=None):
    """Affine quantization to int32 codes; see `reference.quantization.affine.quantize`."""
    args = (x, scale, zero_point, qmin, qmax, axis, group_size, rounding, key)
    x, s, z, qmin, qmax, mode, key = _affine.check(*args, broadcast=False)
    xv, s, z = _affine.grouped(x.detach(), s, z, axis, group_size)
    return _affine.codes(xv, s, z, qmin, qmax, mode, key).reshape(x.shape)


def dequantize(q, scale, zero_point, *, axis=None, group_size=None):
    """Integer codes back to float32; see `reference.quantization.affine.dequantize`."""
    q = _arrays.within("q", _arrays.array("q", q, ("int32",)), -(2**15), 2**16 - 1)
    s, z = _affine.qparams(q, scale, zero_point, axis, group_size)
    _arrays.within("zero_point", zero_point, -(2**15), 2**16 - 1)
    qv, s, z = _affine.grouped(q, s, z, axis, group_size)
    return ((qv - z).to(torch.float32) * s).reshape(q.shape)


def fake_quantize(x, scale, zero_point, *, qmin, qmax, axis=None, group_size=None, rounding="half_even", key=None):
    """Quantize then dequantize, with a straight-through gradient to `x`; see the reference for the semantics."""
    args = (x, scale, zero_point, qmin, qmax, axis, group_size, rounding, key)
    x, s, z, qmin, qmax, mode, key = _affine.check(*args, broadcast=False)
    gran = (axis, group_size)
    if torch.is_grad_enabled() and x.requires_grad:
        return _FakeQuantize.apply(x, s.detach(), z, qmin, qmax, mode, key, gran)
    y, _ = _fake_quantize(x.detach(), s.detach(), z, qmin, qmax, mode, key, gran, want_mask=False)
    return y


def fake_quantize_vjp(
    grad, x, scale, zero_point, *, qmin, qmax, axis=None, group_size=None, rounding="half_even", key=None
):
    """The gradient of `fake_quantize` with respect to `x`: the pass mask of its autograd function applied to
    `grad`, without the forward's output (`torch_backend._arrays.vjp`)."""

    def mask(xd, s, z, qmin_, qmax_, mode, key_):
        """The mask `_FakeQuantize` saves (its backward is `where_kept(mask, grad)`)."""
        xv, sv, zv = _affine.grouped(xd, s, z, axis, group_size)
        _, passes = _affine.rounded_codes(xv, sv, zv, qmin_, qmax_, mode, key_, want_mask=True)
        return passes.reshape(xd.shape)

    args = (grad, x, scale, zero_point, qmin, qmax, axis, group_size, rounding, key)
    return _affine.vjp_through(fake_quantize, *args, mask=mask)


class _FakeQuantize(torch.autograd.Function):
    """Forward: clip(round(x / s) + z) dequantized. Backward: pass the gradient where the unclipped code is in range."""

    @staticmethod
    def forward(ctx, x, s, z, qmin, qmax, mode, key, gran):
        y, passes = _fake_quantize(x, s, z, qmin, qmax, mode, key, gran, want_mask=True)
        ctx.save_for_backward(passes)
        return y

    @staticmethod
    def backward(ctx, grad):
        (passes,) = ctx.saved_tensors
        return _arrays.where_kept(passes, grad), None, None, None, None, None, None, None


def _fake_quantize(x, s, z, qmin, qmax, mode, key, gran, want_mask):
    """`(y, passes)` after the checks: `y = (q - z) * s` with `q - z = clip(round(x / s), qmin - z, qmax - z)`
    (`_affine.rounded_codes`, +0.0 for a zero code), multiplied by `s` in place: five passes over one float32
    temporary (with the mask, a copy and a comparison more)."""
    xv, sv, zv = _affine.grouped(x, s, z, *gran)
    c, passes = _affine.rounded_codes(xv, sv, zv, qmin, qmax, mode, key, want_mask=want_mask)
    y = c.mul_(sv).reshape(x.shape)
    return y, None if passes is None else passes.reshape(x.shape)


def _check_codes(qmin, qmax, symmetric):
    """Enough codes for the scheme: 3 for symmetric (a zero and one level each side), else 2."""
    if symmetric and qmax - (qmin + (qmax - qmin + 1) // 2) < 1:
        raise ValueError(f"symmetric quantization needs at least 3 codes, got qmin={qmin}, qmax={qmax}")
    if not symmetric and qmax == qmin:
        raise ValueError(f"quantization needs at least 2 codes, got qmin={qmin}, qmax={qmax}")


def _qparams(min_val, max_val, qmin, qmax, symmetric):
    """`qparams_from_range` after its checks: finite `min_val <= max_val`, valid codes."""
    if min_val.ndim == 0 and min_val.device.type == "cpu" and SCALAR_ROUTE and not _arrays.deferring():
        found = _scalar_qparams(*torch.stack((min_val, max_val)).tolist(), qmin, qmax, symmetric)
        if found is not None:
            return _scalar_tensors(found)
    if symmetric:
        # max(-lo, hi) of the widened range is max(-min_val, max_val) when min_val <= max_val; divided in float32:
        # fl32(a / d) = fl32(fl64(a / d)) for float32 a and d (rounding twice through float64 is innocuous for a
        # quotient, 53 >= 2 * 24 + 2 bits), and d = qmax - zero is a float32 integer
        zero = qmin + (qmax - qmin + 1) // 2
        amax = torch.maximum(torch.neg(min_val), max_val)
        scale = amax / _arrays.constant(float(qmax - zero), amax)
        scale = scale.masked_fill_(scale < TINY, 1.0)
        return scale, torch.full(scale.shape, zero, dtype=torch.int32, device=scale.device)
    lo = torch.clamp(min_val, max=0.0).to(torch.float64)
    hi = torch.clamp(max_val, min=0.0).to(torch.float64)
    scale = ((hi - lo) / _arrays.constant(float(qmax - qmin), lo)).to(torch.float32)
    scale = scale.masked_fill_(scale < TINY, 1.0)
    zero_point = torch.clamp(float(qmin) - torch.round(lo / scale.to(torch.float64)), qmin, qmax)
    return scale, zero_point.to(torch.int32)
