"""The checks of the affine quantizers' arguments in torch and `fake_quantize`'s autograd VJP, shared by
`torch_backend.quantization.affine` and the fused kernel `torch_backend.kernels.fake_quant`, so both raise exactly the
reference's errors (package-private)."""

from __future__ import annotations

import torch

from reference.common import checks, shapes, validate
from reference.core.rounding import MODES
from torch_backend import _arrays


def expand(x, scale, zero_point, axis, group_size):
    """Check scale and zero point against the granularity; return them broadcastable against `x`."""
    shape = shapes.qparam_shape(tuple(x.shape), axis, group_size)
    why = "axis=None" if axis is None else f"axis={axis}, group_size={group_size}"
    s = _arrays.shaped("scale", _arrays.positive("scale", _arrays.finite_array("scale", scale)), shape, why)
    z = _arrays.shaped("zero_point", _arrays.array("zero_point", zero_point, ("int32",)), shape, why)
    _arrays.same_device("scale", s, "x", x)
    _arrays.same_device("zero_point", z, "x", x)
    if axis is None:
        return s, z
    k = validate.axis("axis", axis, x.ndim)
    if group_size is None:
        view = shapes.per_axis(x.ndim, k)
        return s.reshape(view), z.reshape(view)
    return torch.repeat_interleave(s, group_size, dim=k), torch.repeat_interleave(z, group_size, dim=k)


def check(x, scale, zero_point, qmin, qmax, axis, group_size, rounding_mode, key):
    qmin, qmax = validate.qrange(qmin, qmax)
    mode, key = checks.rounding(rounding_mode, key, MODES)
    x = _arrays.finite_array("x", x)
    s, z = expand(x, scale, zero_point, axis, group_size)
    _arrays.within("zero_point", zero_point, qmin, qmax)
    return x, s, z, qmin, qmax, mode, key


def vjp_through(fake_quantize, grad, x, scale, zero_point, qmin, qmax, axis, group_size, rounding, key):
    """The gradient with respect to `x` of `fake_quantize` (the eager function or the fused kernel), computed by
    torch autograd through it, after the checks of `fake_quantize_vjp` (arguments, then `grad` against `x`)."""
    x, *_ = check(x, scale, zero_point, qmin, qmax, axis, group_size, rounding, key)
    grad = _arrays.shaped("grad", _arrays.array("grad", grad), x.shape, "x")
    _arrays.same_device("grad", grad, "x", x)
    options = {"qmin": qmin, "qmax": qmax, "axis": axis, "group_size": group_size, "rounding": rounding, "key": key}
    return _arrays.vjp(lambda *a: fake_quantize(*a, **options), (x, scale, zero_point), grad)
