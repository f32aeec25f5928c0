"""Network slimming in torch; the semantics are those of `reference.pruning.slimming`."""

from __future__ import annotations

import torch

from reference.common import checks, validate
from torch_backend import _arrays
from torch_backend.core.select import keep_largest
from torch_backend.pruning import _elementwise
from torch_backend.pruning.magnitude import pruned_count

__all__ = ["slimming_penalty_grad", "slimming_masks"]


def slimming_penalty_grad(grads, gammas, lam):
    """grad + lam * sign(gamma), sign(0) = 0, per layer; see `reference.pruning.slimming.slimming_penalty_grad`."""
    grads = _arrays.finite_arrays("grads", grads)
    gammas = _arrays.finite_arrays("gammas", gammas)
    checks.paired(grads, gammas)
    for i, (g, gamma) in enumerate(zip(grads, gammas, strict=True)):
        _arrays.shaped(f"grads[{i}]", g, gamma.shape, f"gammas[{i}]")
        _arrays.same_device(f"grads[{i}]", g, f"gammas[{i}]", gamma)
    lam = validate.real("lam", lam, lo=0.0)
    c = _elementwise.float32_value(lam)
    # `l1_subgradient(gamma, lam) + g`, added in place into the fresh subgradient (IEEE addition commutes)
    return [
        _elementwise.signed(gamma.detach(), c, _arrays.constant(c, gamma)).add_(g.detach())
        for g, gamma in zip(grads, gammas, strict=True)
    ]


def slimming_masks(gammas, ratio, min_channels=1):
    """Channel masks from one global |gamma| ranking, at least `min_channels` per layer; see the reference."""
    gammas = _arrays.finite_arrays("gammas", gammas)
    for i, gamma in enumerate(gammas):
        if gamma.ndim != 1:
            raise ValueError(
                f"gammas[{i}] must be 1-D (one scaling factor per channel), got shape {tuple(gamma.shape)}"
            )
    ratio = validate.fraction("ratio", ratio)
    min_channels = validate.integer("min_channels", min_channels, lo=0)
    scores = torch.cat([torch.abs(gamma.detach()) for gamma in gammas])
    keep = keep_largest(scores, scores.numel() - pruned_count(ratio, scores.numel()))
    parts = torch.split(keep, [gamma.numel() for gamma in gammas])
    masks = []
    for gamma, part in zip(gammas, parts, strict=True):
        floor = keep_largest(torch.abs(gamma.detach()), min(min_channels, gamma.numel()))
        masks.append(part | floor)
    return masks
