"""L1 and group-lasso penalties, gradients and proximal steps in torch; semantics of `reference.pruning.regularization`.

The penalties carry their gradient through private `torch.autograd.Function`s whose backward computes the
reference VJP's formula; every division is tensor / tensor on one device.
"""

from __future__ import annotations

import math

import torch

from reference.common import shapes, validate
from torch_backend import _arrays
from torch_backend.core.exact import exact_sum
from torch_backend.core.reduce import lp_norm
from torch_backend.pruning import _elementwise

__all__ = [
    "l1_penalty",
    "l1_penalty_vjp",
    "l1_subgradient",
    "l1_proximal",
    "group_lasso_penalty",
    "group_lasso_penalty_vjp",
    "group_lasso_proximal",
]


def l1_penalty(w, lam):
    """The L1 penalty lam * sum |w| over one tensor or a list; see `reference.pruning.regularization.l1_penalty`."""
    ws, _ = _one_or_many("w", w)
    lam = validate.real("lam", lam, lo=0.0)
    return _L1Penalty.apply(lam, *ws)


def l1_penalty_vjp(grad, w, lam):
    """The gradient of `l1_penalty`: its autograd
    function's backward applied to `grad`, without the forward (`torch_backend._arrays.vjp`)."""
    ws, single = _one_or_many("w", w)
    lam = validate.real("lam", lam, lo=0.0)
    grad = _arrays.shaped("grad", _arrays.finite_array("grad", grad), (), "the scalar penalty")
    _arrays.same_device("grad", grad, "w", ws[0])
    direct = lambda g: tuple(_arrays.backward_of(_L1Penalty, g, [x.detach() for x in ws], lam=lam)[1:])  # noqa: E731
    fn = lambda *v: l1_penalty(v[0] if single else list(v), lam)  # noqa: E731
    grads = _arrays.vjp(fn, ws, grad, wrt=tuple(range(len(ws))), direct=direct)
    return grads[0] if single else list(grads)


def l1_subgradient(w, lam):
    """lam * sign(w) in float32 with sign(0) = 0; see `reference.pruning.regularization.l1_subgradient`."""
    w = _arrays.finite_array("w", w)
    lam = validate.real("lam", lam, lo=0.0)
    c = _elementwise.float32_value(lam)
    return _elementwise.signed(w.detach(), c, _arrays.constant(c, w))


def l1_proximal(w, lr, lam):
    """Soft thresholding by fl32(lr * lam); see `reference.pruning.regularization.l1_proximal`."""
    w = _arrays.finite_array("w", w)
    lr = validate.real("lr", lr, lo=0.0)
    lam = validate.real("lam", lam, lo=0.0)
    return _elementwise.soft_threshold(w.detach(), _elementwise.float32_value(lr * lam))


def group_lasso_penalty(w, lam, axis=0):
    """lam * the sum of the L2 norms of the slices along `axis`; see the reference for the semantics."""
    w = _arrays.finite_array("w", w)
    lam = validate.real("lam", lam, lo=0.0)
    return _GroupLassoPenalty.apply(w, lam, _group_axis(w, axis))


def group_lasso_penalty_vjp(grad, w, lam, axis=0):
    """The gradient of `group_lasso_penalty`: its autograd
    function's backward applied to `grad`, without the forward (`torch_backend._arrays.vjp`)."""
    w = _arrays.finite_array("w", w)
    lam = validate.real("lam", lam, lo=0.0)
    axis = _group_axis(w, axis)
    grad = _arrays.shaped("grad", _arrays.finite_array("grad", grad), (), "the scalar penalty")
    _arrays.same_device("grad", grad, "w", w)

    def direct(g):
        norms, view = _group_norms(w.detach(), axis)
        return _arrays.backward_of(_GroupLassoPenalty, g, (w.detach(), norms), lam=lam, view=view)[0]

    return _arrays.vjp(lambda v: group_lasso_penalty(v, lam, axis), (w,), grad, direct=direct)


def group_lasso_proximal(w, lr, lam, axis=0):
    """Block soft thresholding of each slice along `axis`; see the reference for the exact float32 order."""
    w = _arrays.finite_array("w", w)
    lr = validate.real("lr", lr, lo=0.0)
    lam = validate.real("lam", lam, lo=0.0)
    w = w.detach()
    norms, view = _group_norms(w, axis)
    tau = _to_float32(lr * lam, w)
    n = norms.reshape(view)
    keep = n > tau
    factor = 1.0 - tau / torch.where(keep, n, 1.0)
    out = torch.where(keep, w * factor, 0.0)
    return torch.where(out == 0, 0.0, out)


class _L1Penalty(torch.autograd.Function):
    """Forward: fl32(lam * exact_sum(|w|)) over all tensors. Backward: +-fl32(g * lam) by the sign, +0.0 at zeros."""

    @staticmethod
    def forward(ctx, lam, *ws):
        ctx.lam = lam
        ctx.save_for_backward(*ws)
        total = exact_sum(torch.cat([torch.abs(x).reshape(-1) for x in ws]))
        return (total * lam).to(torch.float32)

    @staticmethod
    def backward(ctx, grad):
        c = (grad.to(torch.float64) * ctx.lam).to(torch.float32)
        value = c.item()
        return (None, *(_elementwise.signed(x, value, c) for x in ctx.saved_tensors))


class _GroupLassoPenalty(torch.autograd.Function):
    """Forward: fl32(lam * exact_sum of the group norms). Backward: (w / norm) * fl32(g * lam), +0.0 at zeros."""

    @staticmethod
    def forward(ctx, w, lam, axis):
        norms, view = _group_norms(w, axis)
        ctx.lam = lam
        ctx.view = view
        ctx.save_for_backward(w, norms)
        if lam == 0:
            return torch.zeros((), dtype=torch.float32, device=w.device)
        if bool(torch.isinf(norms).any()):
            total = torch.tensor(math.inf, dtype=torch.float64, device=w.device)
        else:
            total = exact_sum(norms)
        return (total * lam).to(torch.float32)

    @staticmethod
    def backward(ctx, grad):
        w, norms = ctx.saved_tensors
        c = (grad.to(torch.float64) * ctx.lam).to(torch.float32)
        n = norms.reshape(ctx.view)
        unit = torch.where(n > 0, w / torch.where(n > 0, n, 1.0), 0.0)
        out = unit * c
        return torch.where((unit == 0) | (out == 0), 0.0, out), None, None


def _one_or_many(name, w):
    """`w` as a list of checked float32 tensors on one device, and whether it was a single tensor."""
    if isinstance(w, torch.Tensor):
        return [_arrays.finite_array(name, w)], True
    if isinstance(w, list | tuple):
        if len(w) == 0:
            raise ValueError(f"{name} must hold at least one array, got an empty {type(w).__name__}")
        ws = [_arrays.finite_array(f"{name}[{i}]", x) for i, x in enumerate(w)]
        for i, x in enumerate(ws[1:], start=1):
            _arrays.same_device(f"{name}[{i}]", x, f"{name}[0]", ws[0])
        return ws, False
    raise TypeError(f"{name} must be {validate.ARRAY_KIND} or a list of them, got {type(w).__name__}")


def _group_axis(w, axis):
    """The checks of the reference's `_group_norms`, in its order; returns the axis normalized."""
    if w.ndim == 0:
        raise ValueError("w must have at least one dimension to be split into groups, got a 0-d array")
    return validate.axis("axis", axis, w.ndim)


def _group_norms(w, axis):
    """The float32 L2 norm of each slice of `w` along `axis`, and the view shape that broadcasts them over `w`."""
    axis = _group_axis(w, axis)
    groups = w.shape[axis]
    rows = torch.movedim(w, axis, 0).reshape(groups, math.prod(w.shape) // max(groups, 1))
    view = shapes.per_axis(w.ndim, axis)
    if rows.shape[1] == 1:  # one element per group: its norm is |x| (exact_sum of the exact x * x, whose root is |x|)
        return torch.abs(rows).reshape(groups), view
    return lp_norm(rows, 2, axis=1), view


def _to_float32(value, like):
    """A Python float (float64) rounded once to float32, as a 0-d tensor on `like`'s device; overflow gives inf."""
    return torch.tensor(value, dtype=torch.float64, device=like.device).to(torch.float32)
