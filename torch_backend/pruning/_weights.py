"""The checks of weights to be ranked: a list ranked together (`global_magnitude_masks` in
`torch_backend.pruning.magnitude` and `torch_backend.kernels.select`), and one tensor with its mask (the schedule
and lottery masks); package-private."""

from __future__ import annotations

from reference.pruning.magnitude import pruned_count
from torch_backend import _arrays
from torch_backend.codecs._bytes import host_finite, on_host


def named_weights(ws, sparsity):
    """`([(f"ws[{i}]", w), ...], count to keep)` after the reference's checks of the list, each tensor's dtype and
    device and the sparsity; the finiteness of the weights is left to the caller, except when a check fails (then
    it comes first where the reference checks it first: each tensor's right after its dtype)."""
    _arrays.nonempty_list("ws", ws)
    named = []
    try:
        for i, w in enumerate(ws):
            named.append((f"ws[{i}]", _arrays.array(f"ws[{i}]", w)))
        for i, w in enumerate(ws[1:], start=1):
            _arrays.same_device(f"ws[{i}]", w, "ws[0]", ws[0])
        n = sum(w.numel() for w in ws)
        k = pruned_count(sparsity, n)
    except (TypeError, ValueError):
        for name, w in named:
            _arrays.finite(name, w)
        raise
    return named, n - k


def weights_and_mask(w, mask, host_max):
    """The checked `w` (detached) and `mask`, and `w`'s values as Python floats when both are plain CPU tensors
    of at most `host_max` elements (read once: the finiteness check and the host route's scores), else None."""
    w = _arrays.array("w", w)
    values = host_finite(w) if w.numel() <= host_max and on_host(w) else None
    if values is None:
        _arrays.finite("w", w)
    mask = _arrays.shaped("mask", _arrays.array("mask", mask, ("bool",)), w.shape, "w")
    _arrays.same_device("mask", mask, "w", w)
    return w.detach(), mask, values if on_host(mask) else None
