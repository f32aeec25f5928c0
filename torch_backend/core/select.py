"""Selection with the pinned tie rule of `reference.core.select`, by a stable sort (never topk)."""

from __future__ import annotations

import torch

from reference.common import validate
from reference.core.select import SCORE_DTYPES
from torch_backend import _arrays

__all__ = ["keep_largest"]


def keep_largest(scores, count):
    """A mask of the `count` largest scores, ties to the lower flat index; see `reference.core.select.keep_largest`."""
    scores = _arrays.not_nan("scores", _arrays.array("scores", scores, SCORE_DTYPES))
    count = validate.integer("count", count, lo=0, hi=scores.numel())
    flat = scores.detach().reshape(-1)
    order = torch.sort(flat, descending=True, stable=True).indices
    keep = torch.zeros(flat.shape, dtype=torch.bool, device=flat.device)
    keep[order[:count]] = True
    return keep.reshape(scores.shape)
