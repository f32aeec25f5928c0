"""Saliency pruning in torch; the semantics are those of `reference.pruning.saliency`.

Scores are detached from autograd: they decide masks, they are not trained through.
"""

from __future__ import annotations

import math

import torch

from reference.common import shapes, validate
from torch_backend import _arrays
from torch_backend._reduce import sqrt_to_float32
from torch_backend.codecs._bytes import host_mask
from torch_backend.core import _host, select
from torch_backend.core.exact import exact_sum
from torch_backend.core.reduce import lp_norm
from torch_backend.core.select import keep_largest
from torch_backend.pruning.magnitude import pruned_count

__all__ = [
    "score_mask",
    "movement_scores",
    "snip_scores",
    "taylor_scores",
    "taylor_mask",
    "wanda_scores",
    "wanda_mask",
    "fpgm_scores",
    "fpgm_mask",
    "block_scores",
    "block_mask",
]


def score_mask(scores, sparsity):
    """Keep the largest scores, ties to the lower flat index; see `reference.pruning.saliency.score_mask`."""
    scores = _arrays.array("scores", scores)
    if scores.numel() <= select.PYTHON_MAX and type(scores) in _arrays.PLAIN and scores.device.type == "cpu":
        values = scores.detach().reshape(-1).tolist()
        if all(v == v for v in values):  # no NaN (else `not_nan` below raises the reference's error)
            k = pruned_count(sparsity, len(values))
            return host_mask(_host.keep_largest(values, len(values) - k), scores.shape)
    scores = _arrays.not_nan("scores", scores)
    k = pruned_count(sparsity, scores.numel())
    return keep_largest(scores.detach(), scores.numel() - k)


def movement_scores(scores, w, grad):
    """One movement-pruning step, `scores - w * grad` in float32; see `reference.pruning.saliency.movement_scores`."""
    scores = _arrays.finite_array("scores", scores)
    w = _arrays.finite_array("w", w)
    _arrays.shaped("scores", scores, w.shape, "w")
    grad = _arrays.shaped("grad", _arrays.finite_array("grad", grad), w.shape, "w")
    _arrays.same_device("scores", scores, "w", w)
    _arrays.same_device("grad", grad, "w", w)
    product = w.detach() * grad.detach()
    return torch.sub(scores.detach(), product, out=product)  # into the fresh product: no third tensor


def snip_scores(w, grad):
    """SNIP's sensitivity `|w * grad|`; see `reference.pruning.saliency.snip_scores`."""
    w = _arrays.finite_array("w", w)
    grad = _arrays.shaped("grad", _arrays.finite_array("grad", grad), w.shape, "w")
    _arrays.same_device("grad", grad, "w", w)
    return torch.mul(w.detach(), grad.detach()).abs_()  # in place on the fresh product


def taylor_scores(w, grad, axis=0):
    """Squared per-slice exact sum of `w * grad` in float64; see `reference.pruning.saliency.taylor_scores`."""
    w = _arrays.finite_array("w", w)
    grad = _arrays.shaped("grad", _arrays.finite_array("grad", grad), w.shape, "w")
    _arrays.same_device("grad", grad, "w", w)
    if w.ndim == 0:
        raise ValueError("w must have at least one dimension for per-slice scores, got a 0-d array")
    axis = validate.axis("axis", axis, w.ndim)
    products = _slices(w.detach(), axis).to(torch.float64) * _slices(grad.detach(), axis).to(torch.float64)
    s = exact_sum(products, axis=1)
    return (s * s).to(torch.float32)


def taylor_mask(w, grad, sparsity, axis=0):
    """Prune the slices with the smallest Taylor importance; see `reference.pruning.saliency.taylor_mask`."""
    scores = taylor_scores(w, grad, axis)
    axis = axis % w.ndim
    keep = keep_largest(scores, scores.numel() - pruned_count(sparsity, scores.numel()))
    return _broadcast_slices(keep, w.shape, axis)


def wanda_scores(w, x):
    """Wanda's `|W_ij| * ||X_j||_2`; see `reference.pruning.saliency.wanda_scores`."""
    w, x = _check_wanda(w, x)
    a = torch.abs(w.detach())
    product = a * lp_norm(x, 2, axis=0).reshape(1, -1)
    return torch.where(a == 0, 0.0, product)


def wanda_mask(w, x, sparsity):
    """Wanda pruning per output row, by a stable sort of each row; see `reference.pruning.saliency.wanda_mask`."""
    scores = wanda_scores(w, x)
    n_in = scores.shape[1]
    k = pruned_count(sparsity, n_in)
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices
    keep = torch.zeros(scores.shape, dtype=torch.bool, device=scores.device)
    keep.scatter_(1, order[:, : n_in - k], True)
    return keep


def fpgm_scores(w, axis=0):
    """Sum of Euclidean distances to all filters, pinned step by step; see `reference.pruning.saliency.fpgm_scores`."""
    w = _arrays.finite_array("w", w)
    if w.ndim == 0:
        raise ValueError("w must have at least one dimension for per-slice scores, got a 0-d array")
    axis = validate.axis("axis", axis, w.ndim)
    f = _slices(w.detach(), axis).to(torch.float64)
    d = _distances(f)
    inf = torch.isinf(d)
    total = exact_sum(torch.where(inf, 0.0, d), axis=1).to(torch.float32)
    return torch.where(inf.any(dim=1), float("inf"), total)


def _distances(f):
    """The float32 distances `d_ij` of the reference between the rows of the float64 `(C, D)` filters `f`.

    Each pair once (`_symmetric`): `d_ij` for `i < j` only, mirrored, and `+0.0` on the diagonal."""
    c = f.shape[0]
    if c <= 1 or f.numel() <= _PAIRS_MIN:  # all pairs at once: cheaper than the index arithmetic when small
        diff = f[:, None, :] - f[None, :, :]
        if f.shape[1] == 1:  # one element per filter: the distance is |diff| rounded once to float32 (`_distance`)
            return torch.abs(diff.reshape(diff.shape[:2])).to(torch.float32)
        diff.mul_(diff)  # in place: the square of each difference, as `diff * diff`
        return sqrt_to_float32(exact_sum(diff, axis=2))
    i, j = torch.triu_indices(c, c, 1, device=f.device).unbind(0)
    diff = torch.index_select(f, 0, i).sub_(torch.index_select(f, 0, j))
    if f.shape[1] == 1:  # as above (`_distance`)
        upper = torch.abs(diff.reshape(-1)).to(torch.float32)
    else:
        upper = sqrt_to_float32(exact_sum(diff.mul_(diff), axis=1))
    d = torch.zeros((c, c), dtype=torch.float32, device=f.device)
    d[i, j] = upper
    d[j, i] = upper
    return d


_PAIRS_MIN = 1 << 12  # filters of more elements in all compute each pair once (`_distances`)

# `_symmetric`: `d_ij = d_ji` bit for bit, and `d_ii = +0.0`, for finite filters. Round to nearest (ties to even)
# is symmetric about zero, so `fl64(f_j - f_i) = fl64(-(f_i - f_j)) = -fl64(f_i - f_j)` for every element whose
# difference is nonzero; an exact zero difference is `+0.0` both ways (`x - x = +0.0` for finite `x`, and
# `a - b = 0` only when `a = b`). Squares of opposite values are the same bits (`(-x) * (-x)` rounds `x * x`),
# so both rows of squares are equal and so are their exact sums and square roots. On the diagonal every
# difference is `+0.0` (finite `f`), every square `+0.0`, the exact sum of zeros `+0.0` and its root `+0.0`
# (with one element per filter, `|+0.0|` rounded: `+0.0`). The reference also writes `diff * diff`; `diff.mul_`
# is the same IEEE product into `diff`'s own memory.

# `_distance`: for filters of one element, `sqrt_to_float32(exact_sum([x * x]))` with `x = |fl64(a - b)|` is
# `fl32(x)`. The sum of one term is the term, `s = fl64(x * x) = x**2 (1 + e)` with `|e| <= 2**-53` (x is 0 or at
# least 2**-149 and below 2**130, so `x * x` is a normal float64), and `sqrt(s)` lies within `x * 2**-54 (1 + 2**-53)`
# of `x`, which is less than the distance from `x` to any other float64 (at least `2**(E - 53)` for `x` in
# `[2**E, 2**(E + 1))`). So no float32 rounding boundary (a midpoint of two float32 values, or the overflow
# threshold `2**128 - 2**103`; all float64 values) lies strictly between `x` and `sqrt(s)` or on `sqrt(s)`; if `x`
# is itself one, it has at most 25 significant bits, `x * x` is exact, `sqrt(s) = x`, and both roundings break
# the tie to even. The nearest float32 to `sqrt(s)` (ties to even, overflow to inf: `sqrt_to_float32`) is thus
# the nearest to `x`, the conversion `x.to(float32)`.


def fpgm_mask(w, sparsity, axis=0):
    """Prune the filters nearest the geometric median; see `reference.pruning.saliency.fpgm_mask`."""
    scores = fpgm_scores(w, axis)
    axis = axis % w.ndim
    keep = keep_largest(scores, scores.numel() - pruned_count(sparsity, scores.numel()))
    return _broadcast_slices(keep, w.shape, axis)


def block_scores(w, block):
    """The L2 norm of every tile of a 2-D weight; see `reference.pruning.saliency.block_scores`."""
    w = _arrays.finite_array("w", w)
    b0, b1 = shapes.block_grid(tuple(w.shape), block)
    return lp_norm(_tiles(w.detach(), b0, b1), 2, axis=2)


def block_mask(w, sparsity, block):
    """Block sparsity: prune whole tiles with the smallest L2 norm; see `reference.pruning.saliency.block_mask`."""
    scores = block_scores(w, block)
    b0, b1 = block
    keep = keep_largest(scores, scores.numel() - pruned_count(sparsity, scores.numel()))
    return torch.repeat_interleave(torch.repeat_interleave(keep, b0, dim=0), b1, dim=1)


def _slices(w, axis):
    channels = w.shape[axis]
    return torch.movedim(w, axis, 0).reshape(channels, math.prod(w.shape) // max(channels, 1))


def _broadcast_slices(keep, shape, axis):
    view = shapes.per_axis(len(shape), axis)
    return keep.reshape(view).expand(shape).clone()


def _check_wanda(w, x):
    w = _arrays.finite_array("w", w)
    x = _arrays.finite_array("x", x)
    if w.ndim != 2:
        raise ValueError(f"w must be 2-D (out, in), got shape {tuple(w.shape)}")
    if x.ndim != 2:
        raise ValueError(f"x must be 2-D (tokens, in), got shape {tuple(x.shape)}")
    _arrays.shaped("x", x, (x.shape[0], w.shape[1]), f"w with {w.shape[1]} input features")
    if x.shape[0] == 0:
        raise ValueError("x must hold at least one calibration token (row), got 0")
    _arrays.same_device("x", x, "w", w)
    return w, x


def _tiles(w, b0, b1):
    r, c = w.shape[0] // b0, w.shape[1] // b1
    return w.reshape(r, b0, c, b1).permute(0, 2, 1, 3).reshape(r, c, b0 * b1)
