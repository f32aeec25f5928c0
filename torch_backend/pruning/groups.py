"""Channel-group importance and global group masks in torch; the semantics are those of
`reference.pruning.groups`. Scores are detached from autograd: they decide masks, they are not trained through."""

from __future__ import annotations

import math

import torch

from reference.common import shapes, validate
from reference.pruning.groups import CRITERIA, REDUCTIONS
from torch_backend import _arrays
from torch_backend._reduce import sqrt_to_float32
from torch_backend.codecs._bytes import host_tensor, on_host
from torch_backend.core import _host
from torch_backend.core.exact import exact_sum
from torch_backend.core.select import keep_largest
from torch_backend.pruning.magnitude import pruned_count

__all__ = ["group_scores", "group_masks"]


def group_scores(values, units, count, criterion="l2", reduction="mean", grads=None):
    """The l1 / l2 norm or Taylor score of the entries each unit owns in its member slices, summed exactly, as a
    sum or a mean over the slices; see `reference.pruning.groups.group_scores`."""
    values = _slices("values", values, ("float32",))
    units = _slices("units", units, ("int64",), like=values)
    count = shapes.size("count", count, lo=0)
    validate.choice("criterion", criterion, CRITERIA)
    validate.choice("reduction", reduction, REDUCTIONS)
    if criterion == "taylor":
        if grads is None:
            raise TypeError("criterion 'taylor' needs grads, the gradient of every entry")
        grads = _slices("grads", grads, ("float32",), like=values)
    elif grads is not None:
        raise TypeError(f"grads is used with criterion 'taylor' only, got criterion {criterion!r}")
    host = _host_scores(values, units, grads, count, criterion, reduction)
    if host is not None:
        return host
    for m, u in enumerate(units):
        _arrays.within(f"units[{m}]", u, 0, count - 1)
    device = values[0].device if values else torch.device("cpu")
    v = _joined(values, torch.float64, device)
    u = _joined(units, torch.int64, device)
    if criterion == "l1":
        terms = torch.abs(v)
    elif criterion == "l2":
        terms = v * v
    else:
        terms = v * _joined(grads, torch.float64, device)
    s = _unit_sums(terms, u, count)
    if reduction == "mean":
        k = torch.zeros(count, dtype=torch.int64, device=device)
        for slice_units in units:
            k += torch.zeros(count, dtype=torch.bool, device=device).index_fill_(0, slice_units.detach(), True)
        s = torch.where(k > 0, s / torch.clamp(k, min=1).to(torch.float64), s)
    if criterion == "l1":
        return s.to(torch.float32)
    if criterion == "l2":
        return sqrt_to_float32(s)
    return (s * s).to(torch.float32)


HOST_MAX = 256  # up to this many CPU entries in all, `group_scores` runs on Python numbers


def _host_scores(values, units, grads, count, criterion, reduction):
    """`group_scores` on Python numbers for checked plain CPU slices of at most `HOST_MAX` entries in all, or None
    (more, on a device, or a unit out of `[0, count)`: the tensor route and its checks).

    The same values, step by step: each term in float64 (`|v|`, `v * v` or `v * g` of float32 values: exact); each
    unit's exact sum rounded once (`math.fsum`, correctly rounded; `+ 0.0` makes a zero sum `+0.0`, as
    `exact_sum`'s); for the mean, the float64 division by the number of slices that hold the unit, where it is
    not 0; then float32 rounding (`_host.float32`), the float32 square root (`_host.sqrt_float32`) or the float64
    square rounded to float32."""
    slices = list(values) + list(units) + list(grads or ())
    if sum(a.numel() for a in slices) > HOST_MAX or not on_host(*slices):
        return None
    unit_lists = [u.tolist() for u in units]
    if any(min(us, default=0) < 0 or max(us, default=0) >= count for us in unit_lists):
        return None
    terms = [[] for _ in range(count)]
    held = [0] * count
    for m, us in enumerate(unit_lists):
        vs = values[m].tolist()
        gs = grads[m].tolist() if criterion == "taylor" else vs
        for u, v, g in zip(us, vs, gs, strict=True):
            terms[u].append(abs(v) if criterion == "l1" else v * g)
        for u in set(us):
            held[u] += 1
    sums = [math.fsum(t) + 0.0 for t in terms]
    if reduction == "mean":
        sums = [x / k if k else x for x, k in zip(sums, held, strict=True)]
    if criterion == "l1":
        out = [_host.float32(x) for x in sums]
    elif criterion == "l2":
        out = [_host.sqrt_float32(x) for x in sums]
    else:
        out = [_host.float32(x * x) for x in sums]
    return host_tensor("f", out, torch.float32, (count,))


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
    """`exact_sum` of each unit's float64 values, laid out as rows padded with `+0.0`; see the reference.

    The layout does not change the sums (they are exact, and the padding adds nothing), only their speed. From
    `SLICES_MIN` entries the units, which lie in `[0, count)` (checked), are sorted in the narrowest integer dtype
    that holds them (the same values, so the same stable order, several times faster than int64's sort); then up
    to `SLICES_MAX` units each unit's run of the sorted values goes into its row as one slice, and more units
    take one scatter to `i + (u * width - start of unit u)`, the place of sorted entry `i` of unit `u`."""
    large = units.numel() >= SLICES_MIN
    sorted_units, order = torch.sort(units.detach().to(_narrowest(count)) if large else units.detach(), stable=True)
    sorted_units = sorted_units.to(torch.int64)
    bounds = torch.searchsorted(sorted_units, torch.arange(count + 1, device=v.device), side="left")
    width = int((bounds[1:] - bounds[:-1]).max()) if count else 0
    rows = torch.zeros((count, width), dtype=torch.float64, device=v.device)
    if not large:
        rows[sorted_units, torch.arange(units.numel(), device=v.device) - bounds[sorted_units]] = v[order]
    elif count <= SLICES_MAX:
        values, b = v.index_select(0, order), bounds.tolist()
        for u in range(count):
            rows[u, : b[u + 1] - b[u]] = values[b[u] : b[u + 1]]
    else:
        offsets = torch.arange(count, device=v.device) * width - bounds[:-1]
        place = torch.arange(units.numel(), device=v.device) + offsets.index_select(0, sorted_units)
        rows.view(-1).index_copy_(0, place, v.index_select(0, order))
    return exact_sum(rows, axis=1)


SLICES_MIN = 1 << 14  # from this many entries: the narrow sort, and slices up to SLICES_MAX units, else a scatter
SLICES_MAX = 64


def _joined(arrays, dtype, device):
    """The 1-D tensors concatenated in `dtype` (detached): one tensor as it is converted, without a copy by `cat`."""
    if len(arrays) == 1:
        return arrays[0].detach().to(dtype)
    return torch.cat([torch.zeros(0, dtype=dtype, device=device)] + [x.detach().to(dtype) for x in arrays])


def _narrowest(count):
    """The narrowest of uint8, int16, int32 and int64 that holds every integer in `[0, count)`."""
    for dtype in (torch.uint8, torch.int16, torch.int32):
        if count - 1 <= torch.iinfo(dtype).max:
            return dtype
    return torch.int64


def _slices(name, arrays, dtypes, like=None):
    """A list of 1-D tensors of `dtypes` (finite if float), one per member slice; see the reference's `_slices`."""
    if isinstance(arrays, torch.Tensor) or not isinstance(arrays, list | tuple):
        kind = "a single array" if isinstance(arrays, torch.Tensor) else type(arrays).__name__
        raise TypeError(f"{name} must be a list of arrays (one per member slice), got {kind}")
    if like is not None and len(arrays) != len(like):
        raise ValueError(f"{name} has {len(arrays)} arrays but values has {len(like)}; they pair up one to one")
    out = []
    for m, a in enumerate(arrays):
        a = _arrays.array(f"{name}[{m}]", a, dtypes)
        if a.dtype.is_floating_point:
            a = _arrays.finite(f"{name}[{m}]", a)
        if like is not None:
            a = _arrays.shaped(f"{name}[{m}]", a, like[m].shape, f"values[{m}]")
            _arrays.same_device(f"{name}[{m}]", a, "values[0]", like[0])
        elif a.ndim != 1:
            raise ValueError(f"{name}[{m}] must be 1-D (the entries of one member slice), got shape {tuple(a.shape)}")
        elif out:
            _arrays.same_device(f"{name}[{m}]", a, f"{name}[0]", out[0])
        out.append(a)
    return out


def _score_list(scores):
    _arrays.nonempty_list("scores", scores)
    out = [_arrays.not_nan(f"scores[{i}]", _arrays.array(f"scores[{i}]", s)) for i, s in enumerate(scores)]
    for i, s in enumerate(out):
        if s.ndim != 1:
            raise ValueError(f"scores[{i}] must be 1-D (one score per unit), got shape {tuple(s.shape)}")
    for i, s in enumerate(out[1:], start=1):
        _arrays.same_device(f"scores[{i}]", s, "scores[0]", out[0])
    return out
