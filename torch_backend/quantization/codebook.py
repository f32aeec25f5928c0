"""Codebook weight sharing in torch; the semantics are those of `reference.quantization.codebook`.

`codebook_decode` carries the shared-weight gradient (per-entry exact sums) through a private
`torch.autograd.Function`.
"""

from __future__ import annotations

import itertools
import math

import torch

from reference.common import shapes, validate
from reference.quantization.codebook import MAX_ENTRIES
from torch_backend import _arrays
from torch_backend.core._exact import grouped_sums_f32, sum_unchecked
from torch_backend.quantization._codes import count_below, midpoint_keys

__all__ = ["kmeans_codebook", "codebook_assign", "codebook_decode", "codebook_decode_vjp"]


def kmeans_codebook(w, k, *, iterations=20):
    """Deterministic 1-D k-means weight sharing; see `reference.quantization.codebook.kmeans_codebook`.

    Each centroid is the exact mean of its members: their exact sums (`_entry_sums`) over their counts
    (`bincount`), both for all entries at once."""
    w = _arrays.finite_array("w", w)
    k = validate.integer("k", k, lo=2, hi=MAX_ENTRIES)
    iterations = shapes.iterations("iterations", iterations)
    if w.numel() == 0:
        raise ValueError(f"w has shape {tuple(w.shape)}: k-means needs at least one weight")
    flat = w.detach().reshape(-1)
    # + 0.0 turns a -0.0 extreme into +0.0 (minimum and maximum do not order the two zeros)
    small, large = torch.aminmax(flat)
    lo, hi = small.to(torch.float64) + 0.0, large.to(torch.float64) + 0.0
    j = torch.arange(k, dtype=torch.float64, device=flat.device)
    codebook = ((lo * (float(k - 1) - j) + hi * j) / _arrays.scalar(float(k - 1), j)).to(torch.float32)
    for _ in range(iterations):
        indices = _assign(flat, codebook.tolist())
        counts = torch.bincount(indices, minlength=k)
        means = (_entry_sums(flat, indices, k) / counts.to(torch.float64)).to(torch.float32)
        codebook = torch.where(counts > 0, means, codebook)  # an empty cluster keeps its centroid
    return _assign(flat, codebook.tolist()).reshape(w.shape), codebook


def codebook_assign(w, codebook):
    """Nearest codebook entry, decided exactly, ties to the lower index; see the reference for the method."""
    w = _arrays.finite_array("w", w)
    codebook, values = _check_codebook(codebook, sorted_=True)
    _arrays.same_device("codebook", codebook, "w", w)
    return _assign(w.detach(), values)


def codebook_decode(indices, codebook):
    """Shared weights back to values, differentiable in the codebook; see `reference.quantization.codebook`."""
    indices, codebook = _check_decode(indices, codebook)
    if torch.is_grad_enabled() and codebook.requires_grad:
        return _Decode.apply(codebook, indices)
    return _take(codebook.detach(), indices)  # nothing to record: no `Function.apply`


def codebook_decode_vjp(grad, indices, codebook):
    """The gradient of `codebook_decode` with respect to the codebook, by the backward of its autograd
    function applied to `grad`, without the forward (`torch_backend._arrays.vjp`)."""
    indices, codebook = _check_decode(indices, codebook)
    grad = _arrays.shaped("grad", _arrays.finite_array("grad", grad), indices.shape, "indices")
    _arrays.same_device("grad", grad, "indices", indices)
    saved = (indices.detach(),)
    direct = lambda g: _arrays.backward_of(_Decode, g, saved, entries=codebook.shape[0])[0]  # noqa: E731
    return _arrays.vjp(codebook_decode, (indices, codebook), grad, wrt=1, direct=direct)


class _Decode(torch.autograd.Function):
    """Forward: codebook[indices] (`_take`: a copy, also for 0-d indices). Backward: per entry, the exact sum of
    its weights' gradients."""

    @staticmethod
    def forward(ctx, codebook, indices):
        ctx.save_for_backward(indices)
        ctx.entries = codebook.shape[0]
        return _take(codebook, indices)

    @staticmethod
    def backward(ctx, grad):
        (indices,) = ctx.saved_tensors
        return _entry_sums(grad.reshape(-1), indices.reshape(-1), ctx.entries).to(torch.float32), None


TAKE_MIN = 1 << 12  # from this many indices `_take` uses `index_select`


def _take(codebook, indices):
    """`codebook[indices]` as a new tensor shaped like `indices` (a copy of the entries' bits): `take` for few
    indices, else `index_select` with int32 indices (the same copy, about 3x faster on the CPU for many)."""
    if indices.numel() < TAKE_MIN:
        return torch.take(codebook, indices.to(torch.int64))
    return torch.index_select(codebook, 0, indices.reshape(-1).to(torch.int32)).reshape(indices.shape)


PAD_MAX = 1 << 12  # at most this many (entry, element) pairs: `_entry_sums` sums masked rows, one row per entry


def _entry_sums(g, indices, entries):
    """The exact sum of `g` over each entry's uint8 indices (float64, `+0.0` for an entry without any).

    Small inputs: one exact sum of `entries` rows, row j holding `g` where the index is j and `+0.0` elsewhere (the
    zeros change no exact sum, and a zero sum is `+0.0` either way). Float32 `g` otherwise: the exact sums' own
    integer bins, one set per entry (`grouped_sums_f32`), with no reordering. Else (float64 `g`, or a value not
    finite) one stable sort of the indices (radix: they are uint8) and one gather put every entry's gradients
    next to each other, cheaper than a boolean selection per entry; the sums are exact, so the order of the
    members does not matter.
    """
    if entries * g.numel() <= PAD_MAX:
        j = torch.arange(entries, dtype=torch.uint8, device=g.device)[:, None]
        return sum_unchecked(torch.where(indices == j, g, _arrays.constant(0.0, g)), 1)
    if g.dtype == torch.float32:
        sums = grouped_sums_f32(g, indices, entries)
        if sums is not None:
            return sums
    order = torch.sort(indices, stable=True).indices
    counts = torch.bincount(indices, minlength=entries).tolist()
    return torch.stack([sum_unchecked(part) for part in torch.split(torch.index_select(g, 0, order), counts)])


def _check_codebook(codebook, sorted_):
    """`(codebook, its values as Python floats)`, checked; the values serve the checks and `midpoint_keys`."""
    c = _arrays.array("codebook", codebook)
    if c.ndim != 1 or not 1 <= c.shape[0] <= MAX_ENTRIES:
        _arrays.finite("codebook", c)
        raise ValueError(
            f"codebook must be 1-D with 1 to {MAX_ENTRIES} entries (uint8 indices), got shape {tuple(c.shape)}"
        )
    values = c.detach().tolist()  # at most 256 values: one host read for every check
    if not all(map(math.isfinite, values)):
        _arrays.finite("codebook", c)
    if sorted_:
        for i, (a, b) in enumerate(itertools.pairwise(values)):
            if b < a:
                raise ValueError(
                    f"codebook must be sorted ascending, got codebook[{i}] = {a!r} > codebook[{i + 1}] = {b!r}"
                )
    return c, values


def _check_decode(indices, codebook):
    indices = _arrays.array("indices", indices, ("uint8",))
    codebook = _check_codebook(codebook, sorted_=False)[0]
    if not indices.numel() or indices.max().item() >= codebook.shape[0]:  # one reduction when all is well
        _arrays.within("indices", indices, 0, codebook.shape[0] - 1)
    _arrays.same_device("codebook", codebook, "indices", indices)
    return indices, codebook


def _assign(w, values):
    """Nearest entry of a sorted codebook (`values`: its entries as Python floats) for each element of `w`,
    exactly, ties to the lower index, as uint8 shaped like `w`.

    The reference counts, for each `w`, the midpoints (a_j + a_j+1) / 2 below it (decided exactly with a two-sum
    in float64), then maps the count to the lowest index holding the same value. For a float32 `w`, `w > m` is
    `w > floor32(m)` (no float32 lies in between), so `count_below` compares `w` itself with the float32 keys
    of `midpoint_keys`: no float64 copy of `w`, no two-sum per element.
    """
    return count_below(w, *midpoint_keys(values))
