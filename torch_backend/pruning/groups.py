"""Channel-group importance and global group masks in torch; the semantics are those of
`reference.pruning.groups`. Scores are detached from autograd: they decide masks, they are not trained through."""

from __future__ import annotations

import torch

from reference.common import shapes, validate
from reference.pruning.groups import CRITERIA
from torch_backend import _arrays
from torch_backend.core.exact import exact_sum
from torch_backend.core.reduce import _sqrt_to_float32
from torch_backend.core.select import keep_largest
from torch_backend.pruning.magnitude import pruned_count

__all__ = ["group_scores", "group_masks"]


def group_scores(values, units, count, criterion="l2", grads=None):
    """The l1 / l2 norm or Taylor score of every entry each unit owns, exact sums; see
    `reference.pruning.groups.group_scores`."""
    values = _arrays.finite_array("values", values)
    if values.ndim != 1:
        raise ValueError(
            f"values must be 1-D (the entries of every unit, concatenated), got shape {tuple(values.shape)}"
        )
    units = _arrays.shaped("units", _arrays.array("units", units, ("int64",)), values.shape, "values")
    _arrays.same_device("units", units, "values", values)
    count = shapes.size("count", count, lo=0)
    validate.choice("criterion", criterion, CRITERIA)
    if criterion == "taylor":
        if grads is None:
            raise TypeError("criterion 'taylor' needs grads, the gradient of every entry")
        grads = _arrays.shaped("grads", _arrays.finite_array("grads", grads), values.shape, "values")
        _arrays.same_device("grads", grads, "values", values)
    elif grads is not None:
        raise TypeError(f"grads is used with criterion 'taylor' only, got criterion {criterion!r}")
    _arrays.within("units", units, 0, count - 1)
    v = values.detach().to(torch.float64)
    if criterion == "l1":
        return _unit_sums(torch.abs(v), units, count).to(torch.float32)
    if criterion == "l2":
        return _sqrt_to_float32(_unit_sums(v * v, units, count))
    s = _unit_sums(v * grads.detach().to(torch.float64), units, count)
    return (s * s).to(torch.float32)


def group_masks(scores, ratio, min_channels=1):
    """Unit masks from one global threshold over all groups, at least `min_channels` per group; see
    `reference.pruning.groups.group_masks`."""
    scores = _score_list(scores)
    ratio = validate.fraction("ratio", ratio)
    min_channels = validate.integer("min_channels", min_channels, lo=0)
    flat = torch.cat([s.detach() for s in scores])
    keep = keep_largest(flat, flat.numel() - pruned_count(ratio, flat.numel()))
    parts = torch.split(keep, [s.numel() for s in scores])
    return [
        part | keep_largest(s.detach(), min(min_channels, s.numel())) for s, part in zip(scores, parts, strict=True)
    ]


def _unit_sums(v, units, count):
    """`exact_sum` of each unit's float64 values, laid out as rows padded with `+0.0`; see the reference."""
    sorted_units, order = torch.sort(units.detach(), stable=True)
    bounds = torch.searchsorted(sorted_units, torch.arange(count + 1, device=v.device), side="left")
    width = int((bounds[1:] - bounds[:-1]).max()) if count else 0
    rows = torch.zeros((count, width), dtype=torch.float64, device=v.device)
    rows[sorted_units, torch.arange(units.numel(), device=v.device) - bounds[sorted_units]] = v[order]
    return exact_sum(rows, axis=1)


def _score_list(scores):
    if isinstance(scores, torch.Tensor):
        raise TypeError("scores must be a list of arrays, got a single array")
    if not isinstance(scores, list | tuple):
        raise TypeError(f"scores must be a list of arrays, got {type(scores).__name__}")
    if len(scores) == 0:
        raise ValueError(f"scores must hold at least one array, got an empty {type(scores).__name__}")
    out = [_arrays.not_nan(f"scores[{i}]", _arrays.array(f"scores[{i}]", s)) for i, s in enumerate(scores)]
    for i, s in enumerate(out):
        if s.ndim != 1:
            raise ValueError(f"scores[{i}] must be 1-D (one score per unit), got shape {tuple(s.shape)}")
    for i, s in enumerate(out[1:], start=1):
        _arrays.same_device(f"scores[{i}]", s, "scores[0]", out[0])
    return out
