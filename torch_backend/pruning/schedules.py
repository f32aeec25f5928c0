"""Sparsity schedules and iterative pruning in torch; the semantics are those of `reference.pruning.schedules`.

The schedules are the reference's float64 scalar code, operation for operation (they take and return Python
numbers, so there is nothing to put on a device); the masks run on the weights' device.
"""

from __future__ import annotations

import math

import torch

from reference.common import shapes, validate
from torch_backend import _arrays
from torch_backend.core.select import keep_largest
from torch_backend.pruning.magnitude import pruned_count

__all__ = [
    "agp_sparsity",
    "linear_sparsity",
    "cosine_sparsity",
    "exponential_sparsity",
    "iterative_sparsities",
    "prune_remaining_mask",
    "prune_total_mask",
]

MODES = ("remaining", "total")


def agp_sparsity(t, *, s_i, s_f, t0, n, dt=1):
    """Zhu & Gupta's cubic schedule; see `reference.pruning.schedules.agp_sparsity`."""
    k, s_i, s_f, n = _schedule(t, s_i, s_f, t0, n, dt)
    if k <= 0:
        return s_i
    if k >= n:
        return s_f
    r = 1.0 - k / n
    return _between(s_f + (s_i - s_f) * (r * r * r), s_i, s_f)


def linear_sparsity(t, *, s_i, s_f, t0, n, dt=1):
    """A linear ramp from s_i to s_f; see `reference.pruning.schedules.linear_sparsity`."""
    k, s_i, s_f, n = _schedule(t, s_i, s_f, t0, n, dt)
    if k <= 0:
        return s_i
    if k >= n:
        return s_f
    return _between(s_f + (s_i - s_f) * (1.0 - k / n), s_i, s_f)


def cosine_sparsity(t, *, s_i, s_f, t0, n, dt=1):
    """A half cosine from s_i to s_f (the same `math.cos` call); see `reference.pruning.schedules.cosine_sparsity`."""
    k, s_i, s_f, n = _schedule(t, s_i, s_f, t0, n, dt)
    if k <= 0:
        return s_i
    if k >= n:
        return s_f
    return _between(s_f + (s_i - s_f) * (0.5 * (1.0 + math.cos(math.pi * (k / n)))), s_i, s_f)


def exponential_sparsity(t, *, s_i, s_f, t0, n, dt=1):
    """Geometric decay of the density; see `reference.pruning.schedules.exponential_sparsity`."""
    k, s_i, s_f, n = _schedule(t, s_i, s_f, t0, n, dt)
    if s_i == 1.0 or s_f == 1.0:
        raise ValueError(
            f"exponential_sparsity needs s_i < 1 and s_f < 1 (a density 1 - s of 0 has no geometric path), "
            f"got s_i={s_i!r}, s_f={s_f!r}"
        )
    if k <= 0:
        return s_i
    if k >= n:
        return s_f
    density = (1.0 - s_i) * ((1.0 - s_f) / (1.0 - s_i)) ** (k / n)
    return _between(1.0 - density, s_i, s_f)


def iterative_sparsities(fraction, steps, mode="remaining"):
    """Cumulative sparsity after each round; see `reference.pruning.schedules.iterative_sparsities`."""
    fraction = validate.fraction("fraction", fraction)
    steps = shapes.iterations("steps", steps)
    validate.choice("mode", mode, MODES)
    if mode == "total":
        if steps * fraction > 1.0:
            raise ValueError(
                f"mode='total' with steps={steps} and fraction={fraction!r} prunes {steps * fraction!r} of the "
                f"weights, more than all of them"
            )
        return [k * fraction for k in range(1, steps + 1)]
    out, density = [], 1.0
    for _ in range(steps):
        density = density * (1.0 - fraction)
        out.append(1.0 - density)
    return out


def prune_remaining_mask(w, mask, fraction):
    """Prune rne(fraction * kept) more of the kept weights; see `reference.pruning.schedules.prune_remaining_mask`."""
    w, mask = _weights_and_mask(w, mask)
    fraction = validate.fraction("fraction", fraction)
    kept = int(mask.sum())
    return _prune_kept(w, mask, kept - pruned_count(fraction, kept))


def prune_total_mask(w, mask, fraction):
    """Prune rne(fraction * w.numel()) more of the kept weights; see `reference.pruning.schedules.prune_total_mask`."""
    w, mask = _weights_and_mask(w, mask)
    fraction = validate.fraction("fraction", fraction)
    kept = int(mask.sum())
    k = pruned_count(fraction, w.numel())
    if k > kept:
        raise ValueError(
            f"fraction {fraction!r} of {w.numel()} weights prunes {k} more, but only {kept} remain unpruned"
        )
    return _prune_kept(w, mask, kept - k)


def _schedule(t, s_i, s_f, t0, n, dt):
    """Check a schedule's arguments; return the pruning step index k and the checked s_i, s_f, n."""
    t = validate.integer("t", t, lo=0)
    s_i = validate.fraction("s_i", s_i)
    s_f = validate.fraction("s_f", s_f)
    t0 = validate.integer("t0", t0, lo=0)
    n = validate.integer("n", n, lo=1)
    dt = validate.integer("dt", dt, lo=1)
    return (t - t0) // dt, s_i, s_f, n


def _between(s, a, b):
    """`s` clamped to the closed interval between `a` and `b`."""
    return min(max(s, min(a, b)), max(a, b))


def _weights_and_mask(w, mask):
    w = _arrays.finite_array("w", w)
    mask = _arrays.shaped("mask", _arrays.array("mask", mask, ("bool",)), w.shape, "w")
    _arrays.same_device("mask", mask, "w", w)
    return w.detach(), mask


def _prune_kept(w, mask, count):
    """Keep the `count` largest |w| among the kept weights (pruned ones score -1, below every magnitude)."""
    return keep_largest(torch.where(mask, torch.abs(w), -1.0), count)
