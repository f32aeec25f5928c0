"""The checks of the affine quantizers' arguments in torch and `fake_quantize`'s autograd VJP, shared by
`torch_backend.quantization.affine` and the fused kernel `torch_backend.kernels.fake_quant`, so both raise exactly the
reference's errors (package-private)."""

from __future__ import annotations

import torch

from reference.common import checks, shapes, validate
from reference.core.rounding import MODES
from torch_backend import _arrays, _rounding


def qparams(x, scale, zero_point, axis, group_size):
    """Check scale and zero point against the granularity; return them as they are (checked)."""
    shape = shapes.qparam_shape(tuple(x.shape), axis, group_size)
    why = "axis=None" if axis is None else f"axis={axis}, group_size={group_size}"
    s = _arrays.shaped("scale", _arrays.positive("scale", _arrays.finite_array("scale", scale)), shape, why)
    z = _arrays.shaped("zero_point", _arrays.array("zero_point", zero_point, ("int32",)), shape, why)
    _arrays.same_device("scale", s, "x", x)
    _arrays.same_device("zero_point", z, "x", x)
    return s, z


def expand(x, scale, zero_point, axis, group_size):
    """Check scale and zero point against the granularity; return them broadcastable against `x`."""
    s, z = qparams(x, scale, zero_point, axis, group_size)
    if axis is None:
        return s, z
    k = validate.axis("axis", axis, x.ndim)
    if group_size is None:
        view = shapes.per_axis(x.ndim, k)
        return s.reshape(view), z.reshape(view)
    return torch.repeat_interleave(s, group_size, dim=k), torch.repeat_interleave(z, group_size, dim=k)


def grouped(x, s, z, axis, group_size):
    """`(x, s, z)` reshaped so that `s` and `z` broadcast against `x` without copies of their own: per channel
    they lie along `axis`; per group, `axis` of `x` is split into `(d // group_size, group_size)` and theirs into
    `(d // group_size, 1)`. A result computed on this `x` is reshaped back to `x.shape` (`ungrouped`)."""
    if axis is None:
        return x, s, z
    k = validate.axis("axis", axis, x.ndim)
    if group_size is None:
        view = shapes.per_axis(x.ndim, k)
        return x, s.reshape(view), z.reshape(view)
    shape = tuple(x.shape)
    outer, inner = shape[:k], shape[k + 1 :]
    blocks = shape[k] // group_size
    xv = x.reshape(outer + (blocks, group_size) + inner)
    view = outer + (blocks, 1) + inner
    return xv, s.reshape(view), z.reshape(view)


def check(x, scale, zero_point, qmin, qmax, axis, group_size, rounding_mode, key, *, broadcast=True):
    """The checks of the affine quantizers, in the reference's order. Returns `(x, s, z, qmin, qmax, mode, key)`
    with `s` and `z` broadcastable against `x` (`broadcast=True`), or as given, checked (`broadcast=False`)."""
    qmin, qmax = validate.qrange(qmin, qmax)
    mode, key = checks.rounding(rounding_mode, key, MODES)
    x = _arrays.finite_array("x", x)
    if broadcast:
        s, z = expand(x, scale, zero_point, axis, group_size)
    else:
        s, z = qparams(x, scale, zero_point, axis, group_size)
    _arrays.within("zero_point", zero_point, qmin, qmax)
    return x, s, z, qmin, qmax, mode, key


def vjp_through(fake_quantize, grad, x, scale, zero_point, qmin, qmax, axis, group_size, rounding, key, mask=None):
    """The gradient with respect to `x` of `fake_quantize` (the eager function or the fused kernel), after the
    checks of `fake_quantize_vjp` (arguments, then `grad` against `x`): torch autograd through it, or, given
    `mask(x, s, z, qmin, qmax, mode, key)` (the pass mask of the straight-through gradient, from the checked
    arguments), `where(mask, grad, +0.0)` without the forward's output or autograd (`_arrays.vjp`'s direct route)."""
    x, s, z, qmin_, qmax_, mode, key_ = check(
        x, scale, zero_point, qmin, qmax, axis, group_size, rounding, key, broadcast=False
    )
    grad = _arrays.shaped("grad", _arrays.array("grad", grad), x.shape, "x")
    _arrays.same_device("grad", grad, "x", x)
    options = {"qmin": qmin, "qmax": qmax, "axis": axis, "group_size": group_size, "rounding": rounding, "key": key}
    direct = None
    if mask is not None:
        direct = lambda g: _arrays.where_kept(mask(x.detach(), s.detach(), z, qmin_, qmax_, mode, key_), g)  # noqa: E731
    return _arrays.vjp(lambda *a: fake_quantize(*a, **options), (x, scale, zero_point), grad, direct=direct)


def _rounded_quotient(x, s, mode, key):
    """`round(x / s)` by `mode` as a new float32 tensor (the division's, rounded in place where torch can)."""
    t = x / s
    if mode == "half_even":
        return t.round_()
    if mode == "floor":
        return t.floor_()
    if mode == "ceil":
        return t.ceil_()
    return _rounding.round_by(t, mode, key)


def codes(x, s, z, qmin, qmax, mode, key):
    """The int32 codes `clip(round(x / s) + z, qmin, qmax)`; `s` and `z` broadcast against `x`.

    The reference adds `z` in float64; here the float32 rounded value `r` (an integer or `+-Inf`) takes `z` in
    float32, in place, with the same clipped integers. `z` is an integer in `[qmin, qmax]`, so `|z| <= 2**16`.
    When the exact `r + z` has magnitude at most `2**24`, it is a float32 integer and the float32 sum is exact.
    Otherwise the float32 sum (rounded, or `+-Inf`) has the exact sum's sign and a magnitude of at least `2**24`,
    beyond both bounds (`|qmin|, |qmax| <= 2**16`), so it clips to the same bound as the exact sum. The clip
    takes Python bounds and one conversion to int32 makes the code (a float32 integer in `[qmin, qmax]` converts
    exactly; the sign of a zero is lost, as in the reference's integers): three operations after the rounding,
    where clipping against `qmin - z` and `qmax - z` first took eight."""
    return _rounded_quotient(x, s, mode, key).add_(z).clamp_(qmin, qmax).to(torch.int32)


def rounded_codes(x, s, z, qmin, qmax, mode, key, *, want_mask=False):
    """`(c, passes)`: `c = clip(round(x / s), qmin - z, qmax - z)` in float32, a new tensor with no -0.0, and,
    with `want_mask`, `passes = qmin <= round(x / s) + z <= qmax` (else None). `s` and `z` broadcast against `x`.

    This is the reference's `clip(round(x / s) + z, qmin, qmax) - z` without its float64 round trip: the rounded
    value is an integer (or +-Inf), the bounds `qmin - z` and `qmax - z` are integers of magnitude below 2**17, so
    comparing and clipping in float32 gives the same integers, and `c + z` is the code. Adding +0.0 after the
    rounding turns its -0.0 into +0.0 (the reference's integer code has no sign), so `c` is exactly the
    reference's `float32(q - z)`, and a clipped value differs from the rounded one in its bits exactly when their
    values differ (the mask compares bits: cheaper than a float comparison on CPU). Division and rounding work in
    place on the one new tensor, so a call makes one or two input-sized float32 temporaries, not six.
    """
    t = _rounded_quotient(x, s, mode, key)
    t.add_(0.0)
    # With the mask, the clipped codes are a new tensor written by the first clip (no copy of `t` first).
    if z.ndim == 0 and z.device.type == "cpu":  # per tensor on CPU: Python bounds, read without a device sync
        zero = int(z)
        lo, hi = float(qmin - zero), float(qmax - zero)
        c = t.clamp(lo, hi) if want_mask else t.clamp_(lo, hi)
    else:  # clamp_min_ / clamp_max_: torch's CPU clamp with tensor bounds is several times slower
        lo, hi = (qmin - z).to(torch.float32), (qmax - z).to(torch.float32)
        c = (t.clamp_min(lo) if want_mask else t.clamp_min_(lo)).clamp_max_(hi)
    if not want_mask:
        return c, None
    return c, torch.eq(t.view(torch.int32), c.view(torch.int32))  # +-Inf is never kept
