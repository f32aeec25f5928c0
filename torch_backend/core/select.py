"""Selection with the pinned tie rule of `reference.core.select`: Python's stable sort of the values for tiny CPU
inputs (`-v` orders them descending, `-0.0` and `+0.0` equal, as in the reference), torch's stable sort for small
ones, radix select (`torch_backend.core._radix`, integer histograms of the bit patterns) from `RADIX_MIN` scores;
never topk."""

from __future__ import annotations

import torch

from reference.common import validate
from reference.core.select import SCORE_DTYPES
from torch_backend import _arrays
from torch_backend.codecs._bytes import host_mask
from torch_backend.core import _host, _radix

__all__ = ["keep_largest"]


RADIX_MIN = 1 << 14  # from this many scores, radix select (a stable sort of 1M float32 on one CPU thread: ~150 ms)
PYTHON_MAX = 64  # up to this many CPU scores, Python's stable sort of the values (exact: floats and ints as they are)


def keep_largest(scores, count):
    """A mask of the `count` largest scores, ties to the lower flat index; see `reference.core.select.keep_largest`."""
    if isinstance(scores, torch.Tensor) and scores.numel() >= RADIX_MIN:
        return _radix.keep_largest(scores, count)  # the same checks, errors and mask
    scores = _arrays.array("scores", scores, SCORE_DTYPES)
    if scores.device.type == "cpu" and scores.numel() <= PYTHON_MAX:
        values = scores.detach().reshape(-1).tolist()
        if all(v == v for v in values):  # no NaN (else the check below raises its error)
            count = validate.integer("count", count, lo=0, hi=len(values))
            return host_mask(_host.keep_largest(values, count), scores.shape)
    scores = _arrays.not_nan("scores", scores)
    count = validate.integer("count", count, lo=0, hi=scores.numel())
    flat = scores.detach().reshape(-1)
    order = torch.sort(flat, descending=True, stable=True).indices
    keep = torch.zeros(flat.shape, dtype=torch.bool, device=flat.device)
    keep[order[:count]] = True
    return keep.reshape(scores.shape)
