"""Unstructured magnitude pruning in torch; the semantics are those of `reference.pruning.magnitude`."""

from __future__ import annotations

import itertools
import math

import torch

from reference.common import validate
from reference.pruning.magnitude import pruned_count
from torch_backend import _arrays
from torch_backend.codecs._bytes import host_mask
from torch_backend.core import _host, _radix
from torch_backend.core.select import PYTHON_MAX, RADIX_MIN, keep_largest
from torch_backend.pruning import _elementwise, _weights

__all__ = [
    "pruned_count",
    "magnitude_mask",
    "magnitude_mask_by_count",
    "magnitude_mask_by_threshold",
    "global_magnitude_masks",
    "apply_mask",
    "apply_mask_vjp",
]


def magnitude_mask(w, sparsity):
    """Keep the largest-magnitude weights; see `reference.pruning.magnitude.magnitude_mask`."""
    w = _arrays.array("w", w)
    try:
        k = pruned_count(sparsity, w.numel())
    except (TypeError, ValueError):
        _arrays.finite("w", w)  # the reference checks w first
        raise
    return _largest_magnitudes(w, w.numel() - k)


def magnitude_mask_by_count(w, count):
    """Prune exactly `count` smallest-magnitude weights; see `reference.pruning.magnitude.magnitude_mask_by_count`."""
    w = _arrays.array("w", w)
    try:
        count = validate.integer("count", count, lo=0, hi=w.numel())
    except (TypeError, ValueError):
        _arrays.finite("w", w)  # the reference checks w first
        raise
    return _largest_magnitudes(w, w.numel() - count)


def _largest_magnitudes(w, count):
    """The mask of the `count` largest |w| of a float32 tensor, checking that w is finite. From `RADIX_MIN`
    weights, radix select on the bit patterns with the sign cleared (`torch_backend.core._radix.magnitude_masks`:
    |w| is never materialised, and its first histogram finds a NaN or Inf without a pass of its own)."""
    if w.numel() >= RADIX_MIN:
        return _radix.magnitude_masks([("w", w)], count)[0]
    if w.device.type == "cpu" and w.numel() <= PYTHON_MAX:  # |w| and its selection on the host
        values = w.detach().reshape(-1).tolist()
        if all(map(math.isfinite, values)):
            return host_mask(_host.keep_largest([abs(v) for v in values], count), w.shape)
    return keep_largest(torch.abs(_arrays.finite("w", w).detach()), count)


def magnitude_mask_by_threshold(w, threshold):
    """Keep `|w| > threshold`; see `reference.pruning.magnitude.magnitude_mask_by_threshold`."""
    w = _arrays.finite_array("w", w)
    t = validate.real("threshold", threshold, lo=0.0)
    return torch.abs(w.detach()) > _elementwise.float32_below(t)  # the same as comparing in float64 with t


def global_magnitude_masks(ws, sparsity):
    """Magnitude pruning over several tensors ranked together; see the reference for the semantics."""
    named, count = _weights.named_weights(ws, sparsity)
    ws = [w for _, w in named]
    if sum(w.numel() for w in ws) >= RADIX_MIN:
        return _radix.magnitude_masks(named, count)
    if sum(w.numel() for w in ws) <= PYTHON_MAX and all(
        type(w) in _arrays.PLAIN and w.device.type == "cpu" for w in ws
    ):  # |w| and its selection on the host
        values = []
        for name, w in named:
            part = w.detach().reshape(-1).tolist()
            if not math.isfinite(sum(part)):  # a NaN or Inf (finite float32 values cannot overflow the sum)
                _arrays.finite(name, w)  # raises the reference's error naming it
            values += part
        keep = _host.keep_largest([abs(v) for v in values], count)
        ends = list(itertools.accumulate(w.numel() for w in ws))
        return [host_mask(keep[end - w.numel() : end], w.shape) for w, end in zip(ws, ends, strict=True)]
    for name, w in named:
        _arrays.finite(name, w)
    keep = keep_largest(torch.cat([torch.abs(w.detach()).reshape(-1) for w in ws]), count)
    return [part.reshape(w.shape) for w, part in zip(ws, torch.split(keep, [w.numel() for w in ws]), strict=True)]


def apply_mask(w, mask):
    """Zero the pruned weights with `where` (never `w * mask`); see `reference.pruning.magnitude.apply_mask`."""
    w = _arrays.array("w", w)
    mask = _arrays.shaped("mask", _arrays.array("mask", mask, ("bool",)), w.shape, "w")
    _arrays.same_device("mask", mask, "w", w)
    if w.numel() < _arrays.WHERE_KEPT_MIN:  # torch's own where (and its C++ autograd): cheaper when small
        return torch.where(mask, w, 0.0)
    if torch.is_grad_enabled() and w.requires_grad:
        return _ApplyMask.apply(w, mask)
    return _arrays.where_kept(mask, w)


def apply_mask_vjp(grad, w, mask):
    """The gradient of `apply_mask` with respect to `w`: its autograd
    function's backward applied to `grad`, without the forward (`torch_backend._arrays.vjp`)."""
    w = _arrays.array("w", w)
    mask = _arrays.shaped("mask", _arrays.array("mask", mask, ("bool",)), w.shape, "w")
    grad = _arrays.shaped("grad", _arrays.array("grad", grad), w.shape, "w")
    _arrays.same_device("grad", grad, "w", w)
    direct = lambda g: _arrays.backward_of(_ApplyMask, g, (mask.detach(),))[0]  # noqa: E731
    return _arrays.vjp(apply_mask, (w, mask), grad, direct=direct)


class _ApplyMask(torch.autograd.Function):
    """`where(mask, w, +0.0)` and its gradient `where(mask, grad, +0.0)`, both by `_arrays.where_kept`."""

    @staticmethod
    def forward(ctx, w, mask):
        ctx.save_for_backward(mask)
        return _arrays.where_kept(mask, w)

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved_tensors
        return _arrays.where_kept(mask, grad), None
