"""Codebook weight sharing in torch; the semantics are those of `reference.quantization.codebook`.

`codebook_decode` carries the shared-weight gradient (per-entry exact sums) through a private
`torch.autograd.Function`.
"""

from __future__ import annotations

import torch

from reference.common import shapes, validate
from reference.quantization.codebook import MAX_ENTRIES
from torch_backend import _arrays
from torch_backend.core._exact import sum_unchecked
from torch_backend.core.exact import exact_sum

__all__ = ["kmeans_codebook", "codebook_assign", "codebook_decode", "codebook_decode_vjp"]


def kmeans_codebook(w, k, *, iterations=20):
    """Deterministic 1-D k-means weight sharing; see `reference.quantization.codebook.kmeans_codebook`."""
    w = _arrays.finite_array("w", w)
    k = validate.integer("k", k, lo=2, hi=MAX_ENTRIES)
    iterations = shapes.iterations("iterations", iterations)
    if w.numel() == 0:
        raise ValueError(f"w has shape {tuple(w.shape)}: k-means needs at least one weight")
    flat = w.detach().reshape(-1)
    # + 0.0 turns a -0.0 extreme into +0.0 (minimum and maximum do not order the two zeros)
    lo, hi = flat.min().to(torch.float64) + 0.0, flat.max().to(torch.float64) + 0.0
    j = torch.arange(k, dtype=torch.float64, device=flat.device)
    codebook = ((lo * (float(k - 1) - j) + hi * j) / _arrays.scalar(float(k - 1), j)).to(torch.float32)
    for _ in range(iterations):
        indices = _assign(flat, codebook)
        codebook = codebook.clone()
        for i in range(k):
            members = flat[indices == i]
            if members.numel():
                s = exact_sum(members)
                codebook[i] = (s / _arrays.scalar(float(members.numel()), s)).to(torch.float32)
    return _assign(flat, codebook).reshape(w.shape), codebook


def codebook_assign(w, codebook):
    """Nearest codebook entry, decided exactly, ties to the lower index; see the reference for the method."""
    w = _arrays.finite_array("w", w)
    codebook = _check_codebook(codebook, sorted_=True)
    _arrays.same_device("codebook", codebook, "w", w)
    return _assign(w.detach().reshape(-1), codebook.detach()).reshape(w.shape)


def codebook_decode(indices, codebook):
    """Shared weights back to values, differentiable in the codebook; see `reference.quantization.codebook`."""
    indices, codebook = _check_decode(indices, codebook)
    return _Decode.apply(codebook, indices)


def codebook_decode_vjp(grad, indices, codebook):
    """The gradient of `codebook_decode` with respect to the codebook, by the backward of its autograd
    function applied to `grad`, without the forward (`torch_backend._arrays.vjp`)."""
    indices, codebook = _check_decode(indices, codebook)
    grad = _arrays.shaped("grad", _arrays.finite_array("grad", grad), indices.shape, "indices")
    _arrays.same_device("grad", grad, "indices", indices)
    saved = (indices.detach().to(torch.int64),)
    direct = lambda g: _arrays.backward_of(_Decode, g, saved, entries=codebook.shape[0])[0]  # noqa: E731
    return _arrays.vjp(codebook_decode, (indices, codebook), grad, wrt=1, direct=direct)


class _Decode(torch.autograd.Function):
    """Forward: codebook[indices]. Backward: per entry, the exact sum of its weights' gradients."""

    @staticmethod
    def forward(ctx, codebook, indices):
        a = indices.to(torch.int64)
        ctx.save_for_backward(a)
        ctx.entries = codebook.shape[0]
        return codebook[a]

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        g, a = grad.reshape(-1), a.reshape(-1)
        sums = [sum_unchecked(g[a == j]) for j in range(ctx.entries)]
        return torch.stack(sums).to(torch.float32), None


def _check_codebook(codebook, sorted_):
    c = _arrays.finite_array("codebook", codebook)
    if c.ndim != 1 or not 1 <= c.shape[0] <= MAX_ENTRIES:
        raise ValueError(
            f"codebook must be 1-D with 1 to {MAX_ENTRIES} entries (uint8 indices), got shape {tuple(c.shape)}"
        )
    if sorted_:
        bad = c[1:] < c[:-1]
        if bool(bad.any()):
            i = int(bad.nonzero()[0])
            raise ValueError(
                f"codebook must be sorted ascending, got codebook[{i}] = {float(c[i])!r} > "
                f"codebook[{i + 1}] = {float(c[i + 1])!r}"
            )
    return c


def _check_decode(indices, codebook):
    indices = _arrays.array("indices", indices, ("uint8",))
    codebook = _check_codebook(codebook, sorted_=False)
    _arrays.within("indices", indices, 0, codebook.shape[0] - 1)
    _arrays.same_device("codebook", codebook, "indices", indices)
    return indices, codebook


def _assign(flat, codebook):
    """Nearest entry of a sorted codebook for each value of the 1-D `flat`, exactly, ties to the lower index."""
    x2 = flat.to(torch.float64) * 2.0
    s, e = _two_sum(codebook[:-1].to(torch.float64), codebook[1:].to(torch.float64))
    count = torch.zeros(flat.shape, dtype=torch.int64, device=flat.device)
    for j in range(codebook.shape[0] - 1):
        count += ((x2 > s[j]) | ((x2 == s[j]) & (e[j] < 0))).to(torch.int64)
    first = torch.searchsorted(codebook, codebook)  # the lowest index holding each value
    return first[count].to(torch.uint8)


def _two_sum(a, b):
    """`(s, e)` with `s = fl(a + b)` and `a + b = s + e` exactly (Knuth), elementwise in float64."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)
