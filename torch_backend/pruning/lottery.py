"""Lottery tickets in torch: IMP masks and rewinding; the semantics are those of `reference.pruning.lottery`."""

from __future__ import annotations

import math

import torch

from reference.common import validate
from reference.pruning.lottery import imp_schedule
from torch_backend import _arrays
from torch_backend.codecs._bytes import host_mask
from torch_backend.core import _host
from torch_backend.core.select import keep_largest
from torch_backend.pruning import _weights, schedules
from torch_backend.pruning.magnitude import pruned_count

__all__ = ["imp_mask", "lottery_rewind", "imp_schedule"]


def imp_mask(w, mask, fraction):
    """Prune `fraction` of the surviving weights by magnitude; see `reference.pruning.lottery.imp_mask`."""
    w, mask, values = _weights.weights_and_mask(w, mask, schedules.PYTHON_MAX)
    fraction = validate.fraction("fraction", fraction)
    if values is not None:  # small, on the CPU: the scores and their stable selection on Python floats
        keep = mask.reshape(-1).tolist()
        alive = sum(keep)
        scores = [abs(v) if m else -math.inf for v, m in zip(values, keep, strict=True)]
        return host_mask(_host.keep_largest(scores, alive - pruned_count(fraction, alive)), mask.shape)
    alive = int(torch.count_nonzero(mask))
    k = pruned_count(fraction, alive)
    scores = torch.where(mask, torch.abs(w.detach()), float("-inf"))
    return keep_largest(scores, alive - k)


def lottery_rewind(w_rewind, mask):
    """`where(mask, w_rewind, +0.0)`; see `reference.pruning.lottery.lottery_rewind`."""
    w_rewind = _arrays.finite_array("w_rewind", w_rewind)
    mask = _arrays.shaped("mask", _arrays.array("mask", mask, ("bool",)), w_rewind.shape, "w_rewind")
    _arrays.same_device("mask", mask, "w_rewind", w_rewind)
    return torch.where(mask, w_rewind.detach(), 0.0)
