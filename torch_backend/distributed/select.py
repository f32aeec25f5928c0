"""Exact selection over tensors sharded across ranks: radix select with histograms added by `all_reduce`.

The scores become order-preserving integer keys (the IEEE bit pattern with the negative half mirrored and `-0.0`
merged into `+0.0`, as `torch_backend.kernels.select` does). The key of rank `count` is found digit by digit,
from the top: each rank counts the digits of its own candidates (`bincount`), one `all_reduce(SUM)` of the
histogram gives the counts over all ranks, every rank picks the same bucket and keeps only its candidates in it.
Integer counts add exactly in any order, so every rank ends with the same threshold key `T`, the number of keys
above it and the number equal to it. Ties are settled the same way, on the global flat indices of the keys equal
to `T` (a second radix select, ascending): the lowest global indices win, as a stable sort of the unsharded
tensor gives. Each rank then writes its own mask (`key > T`, or `key == T` and index at most the cut), so the
result equals the single-process result bit for bit whatever the world size and the layout.

Bytes per rank: one histogram per digit (`2**12` int64 counts, then `2**10`), three digits for float32 keys,
48 KiB in all, whatever the size of the tensors (plus as many index digits when ties must be cut); all-gathering
the weights instead costs their size. A selection over several rows at once (`slimming_masks`' per-layer floors,
per-channel `percentile_amax`) uses `rows * 2**b` counts per digit with smaller digits.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from reference.common import validate
from reference.core.select import SCORE_DTYPES
from reference.pruning.magnitude import pruned_count
from torch_backend import _arrays
from torch_backend.distributed import checks, comm, layout

__all__ = ["keep_largest", "magnitude_mask", "magnitude_mask_by_count", "global_magnitude_masks", "slimming_masks",
           "percentile_amax"]  # fmt: skip

# digit widths for one row: a 4096-count histogram first, then 1024 (as torch_backend.kernels.select)
DIGIT_BITS = (12, 10)
# several rows: at most this many counts per histogram
_MAX_BINS = 1 << 16


def keep_largest(scores, count, *, group=None):
    """A mask of the `count` largest scores of the whole tensor, ties to the lower global flat index.

    See `reference.core.select.keep_largest` for the semantics. `scores` is this rank's part: a DTensor (the
    mask is a DTensor of the same layout) or a plain tensor (the whole tensor is the ranks' tensors concatenated
    along dimension 0, in rank order, over `group`; the mask is this rank's part).
    """
    (b,) = checks.values(_entries("scores", [scores], group, SCORE_DTYPES), "nan", group)
    count = validate.integer("count", count, lo=0, hi=b.numel)
    (mask,) = _keep([_Keys(b, _keys(b.local))], np.array([b.numel]), np.array([count]), b.group)
    return b.like(mask.reshape(b.local.shape))


def magnitude_mask(w, sparsity, *, group=None):
    """Keep the largest |w| of the whole tensor; see `reference.pruning.magnitude.magnitude_mask`.

    `w`: this rank's part (a DTensor, or a plain per-rank tensor, as for `keep_largest`)."""
    (b,) = checks.values(_entries("w", [w], group), "finite", group)
    k = pruned_count(sparsity, b.numel)
    return _magnitude([b], b.numel - k)[0]


def magnitude_mask_by_count(w, count, *, group=None):
    """Prune exactly `count` smallest |w| of the whole tensor; see the reference for the semantics."""
    (b,) = checks.values(_entries("w", [w], group), "finite", group)
    count = validate.integer("count", count, lo=0, hi=b.numel)
    return _magnitude([b], b.numel - count)[0]


def global_magnitude_masks(ws, sparsity, *, group=None):
    """Magnitude pruning over several sharded tensors ranked together (flat order: `ws[0]`, then `ws[1]`, ...);
    see `reference.pruning.magnitude.global_magnitude_masks`. Each `ws[i]` is this rank's part of tensor `i`."""
    ws = checks.tensor_list("ws", ws)
    bs = checks.values(_entries("ws", ws, group), "finite", group)
    n = sum(b.numel for b in bs)
    k = pruned_count(sparsity, n)
    return _magnitude(bs, n - k)


def slimming_masks(gammas, ratio, min_channels=1, *, group=None):
    """Network slimming's channel masks from one global threshold on |gamma| over all sharded layers, at least
    `min_channels` per layer; see `reference.pruning.slimming.slimming_masks`. Each `gammas[i]` is this rank's
    part of layer `i`'s 1-D scaling factors."""
    gammas = checks.tensor_list("gammas", gammas)
    bs = checks.values(_entries("gammas", gammas, group), "finite", group)
    for i, b in enumerate(bs):
        if len(b.shape) != 1:
            raise ValueError(f"gammas[{i}] must be 1-D (one scaling factor per channel), got shape {b.shape}")
    ratio = validate.fraction("ratio", ratio)
    min_channels = validate.integer("min_channels", min_channels, lo=0)
    n = sum(b.numel for b in bs)
    keep = _magnitude_local(bs, n - pruned_count(ratio, n))
    bases = np.cumsum([0] + [b.numel for b in bs])
    parts = [
        _Keys(b, _abs_keys(b.local), row=i, base=int(base)) for i, (b, base) in enumerate(zip(bs, bases, strict=False))
    ]
    floors = _keep(parts, np.array([b.numel for b in bs]), np.array([min(min_channels, b.numel) for b in bs]),
                   bs[0].group)  # fmt: skip
    return [b.like((k | f).reshape(b.local.shape)) for b, k, f in zip(bs, keep, floors, strict=True)]


def percentile_amax(x, percentile=99.99, *, axis=None, group=None):
    """The `percentile`-th percentile of |x| over the whole tensor (per tensor, or per index along `axis`),
    interpolated as `reference.quantization.observers.percentile_amax` does.

    The two order statistics it interpolates come from one radix select of rank $n - i$ (and, when the next
    value differs, the least key above it: one `all_reduce(MIN)`). The result is the whole statistic, the same
    on every rank: a float32 tensor of shape `()` or `(x.shape[axis],)` of the whole `x`."""
    p = validate.real("percentile", percentile, lo=0.0, hi=100.0)
    (b,) = checks.values(_entries("x", [x], group), "finite", group)
    if axis is None:
        if b.numel == 0:
            raise ValueError(f"x has shape {b.shape}: the statistics need at least one element")
        rows, row = 1, None
    else:
        k = validate.axis("axis", axis, len(b.shape))
        if b.numel == 0:
            raise ValueError(f"x has shape {b.shape}: per-channel statistics need at least one element per channel")
        rows = b.shape[k]
        view = [1] * b.local.dim()
        view[k] = -1
        row = b.coordinates(k).view(view).expand(b.local.shape).reshape(-1)
    n = b.numel // rows
    h = p / 100.0 * float(n - 1)  # Python floats are IEEE float64: the reference's two operations
    i = math.floor(h)
    g = h - float(i)
    keys = _abs_keys(b.local)
    parts = [(keys, row)] if b.owner else []
    ranks = np.full(rows, n - i, dtype=np.int64)  # v_i, ascending, is the key of rank n - i, descending
    t, above, equal = _kth(parts, rows, ranks, 32, True, b.group)
    t = np.array(t, dtype=np.int64)
    nxt = t.copy()
    # v_{i+1} is T while i + 1 is below the count of keys <= T; else the least key above T
    beyond = (i + 1 <= n - 1) & (i + 1 > n - above - 1)
    if beyond.any():
        big = torch.full((rows,), torch.iinfo(torch.int64).max, dtype=torch.int64, device=keys.device)
        if b.owner:
            tk = torch.as_tensor(t, device=keys.device)
            over = keys.long() > (tk[0] if row is None else tk[row])
            if row is None:
                if bool(over.any()):
                    big[0] = keys.long()[over].min()
            else:
                big.scatter_reduce_(0, row[over], keys.long()[over], "amin")
        least = comm.all_reduce(big.to(comm.device(b.group)), "min", b.group).cpu().numpy()
        nxt = np.where(beyond, least, t)
    a = _from_abs_keys(t, keys.device)
    bb = _from_abs_keys(nxt, keys.device)
    d = bb - a
    r = a + d * _arrays.scalar(g, d) if g < 0.5 else bb - d * _arrays.scalar(1.0 - g, d)
    r = r.to(torch.float32)
    return r.reshape(()) if axis is None else r


# ---- keys -----------------------------------------------------------------------------------------------------


class _Keys:
    """One block's keys for a selection: `k` the flat order-preserving keys, `row` the row of every key (None: all
    in row `row`), `base` the global flat index of the block's tensor in the concatenation of the inputs."""

    def __init__(self, block, k, row=0, base=0):
        self.block, self.k, self.base = block, k, base
        self.row = row if isinstance(row, torch.Tensor) else None
        self.row_id = row if not isinstance(row, torch.Tensor) else None

    def rows(self):
        """The row of every key as an int64 tensor, or None for row 0 everywhere."""
        if self.row is not None:
            return self.row
        if self.row_id:
            return torch.full(self.k.shape, self.row_id, dtype=torch.int64, device=self.k.device)
        return None

    def index(self):
        return self.block.flat_index().reshape(-1) + self.base


def _entries(name, xs, group, dtypes=("float32",)):
    names = [f"{name}[{i}]" for i in range(len(xs))] if name in ("ws", "gammas") else [name] * len(xs)
    bs = layout.blocks(names, xs, group)
    return [(n, x, b, dtypes) for n, x, b in zip(names, xs, bs, strict=True)]


def _float_keys(bits):
    """Order-preserving keys of float bit patterns (int32 or int64): negatives have their magnitude bits flipped,
    and -0.0 (key -1 after the flip) is folded into +0.0 (key 0)."""
    width = 32 if bits.dtype == torch.int32 else 64
    k = bits >> (width - 1)
    k &= (1 << (width - 1)) - 1
    k ^= bits
    k += k < 0
    return k


def _keys(x):
    """Flat order-preserving keys of float32 (int32 keys), float64 or int64 scores (int64 keys)."""
    flat = x.reshape(-1)
    if flat.dtype == torch.int64:
        return flat.clone()
    return _float_keys(flat.view(torch.int32 if flat.dtype == torch.float32 else torch.int64).clone())


def _abs_keys(x):
    """Keys of |x| for float32 `x`: the bit pattern with the sign cleared (so -0.0 and +0.0 tie)."""
    return x.reshape(-1).view(torch.int32) & 0x7FFFFFFF


def _from_abs_keys(keys, device):
    """float64 values of float32 magnitudes given by their keys (NumPy int64)."""
    return torch.as_tensor(keys.astype(np.int32), device=device).view(torch.float32).to(torch.float64)


# ---- selection ------------------------------------------------------------------------------------------------


def _magnitude(bs, count):
    """Masks keeping the `count` largest |w| over the concatenation of the blocks, each in its block's layout."""
    return [b.like(m.reshape(b.local.shape)) for b, m in zip(bs, _magnitude_local(bs, count), strict=True)]


def _magnitude_local(bs, count):
    bases = np.cumsum([0] + [b.numel for b in bs])
    parts = [_Keys(b, _abs_keys(b.local), base=int(base)) for b, base in zip(bs, bases, strict=False)]
    return _keep(parts, np.array([sum(b.numel for b in bs)]), np.array([count]), bs[0].group)


def _keep(parts, totals, counts, group):
    """Flat bool masks (one per part) keeping `counts[r]` of the `totals[r]` keys of each row `r` over all ranks:
    the largest, ties to the lowest global flat index."""
    rows = len(counts)
    width = 32 if parts[0].k.dtype == torch.int32 else 64
    active = (counts > 0) & (counts < totals)
    owned = [(p.k, p.rows()) for p in parts if p.block.owner]
    t, above, equal = _kth(owned, rows, np.where(active, counts, 0), width, True, group)
    # rows that keep everything or nothing: every key is above -2**63 or equal to it; none above 2**63 - 1
    t = [v if a else (-(2**63) if c > 0 else 2**63 - 1) for v, a, c in zip(t, active, counts, strict=True)]
    ties = counts - above  # keys equal to T to keep: the first `ties` in global flat order
    cut = np.where(counts == 0, -1, 2**62)  # keys equal to T are kept up to this global flat index
    short = active & (ties < equal)
    if short.any():
        top = sum(p.block.numel for p in parts)  # indices lie in [0, top); the key of index j is top - 1 - j
        candidates = []
        for p in parts:
            if p.block.owner:
                eq = p.k.long() == _per_key(t, p)
                r = p.rows()
                candidates.append(((top - 1) - p.index()[eq], None if r is None else r[eq]))
        c, _, _ = _kth(candidates, rows, np.where(short, ties, 0), max(1, (top - 1).bit_length()), False, group)
        cut = np.where(short, (top - 1) - np.array(c, dtype=np.int64), cut)
    masks = []
    for p in parts:
        th = _per_key(t, p)
        keep = p.k.long() > th
        eq = p.k.long() == th
        if (cut < 2**62).any():
            eq &= p.index() <= _per_key(cut, p)
        masks.append(keep | eq)
    return masks


def _per_key(values, p):
    """A per-row value (a list or array of ints) for every key of part `p` (0-d for a single row)."""
    v = torch.as_tensor(np.asarray(values, dtype=np.int64), device=p.k.device)
    r = p.rows()
    return v[0] if r is None else v[r]


def _kth(parts, rows, ranks, width, flip, group):
    """Per row `r`: the key of rank `ranks[r]` (1 = largest) over all ranks' keys, how many keys are above it and
    how many equal it; rows with rank 0 are skipped.

    `parts`: `(keys, row of each key or None)` of this rank. Keys are int32 or int64: with `flip`, signed keys of
    `width` bits (compared as bit patterns with the sign bit flipped); without, non-negative keys below
    `2**width`. Digits are taken from the top; each digit's histogram over `(row, digit)` is summed over the ranks
    by one `all_reduce`."""
    ranks = np.asarray(ranks, dtype=np.int64).copy()
    active = ranks > 0
    if rows == 1:
        first, rest = DIGIT_BITS
    else:
        first = rest = max(4, min(DIGIT_BITS[0], (_MAX_BINS // rows).bit_length() - 1))
    device = comm.device(group)
    prefix = [0] * rows
    above = np.zeros(rows, dtype=np.int64)
    equal = np.zeros(rows, dtype=np.int64)
    cands = []
    for k, r in parts:
        u = k ^ (-(1 << (width - 1))) if flip else k
        cands.append((u, r))
    shift, bits = width, first
    while shift > 0:
        b = min(bits, shift)
        shift -= b
        bins = 1 << b
        hist = torch.zeros(rows * bins, dtype=torch.int64, device=device)
        digits = []
        for u, r in cands:
            d = (u >> shift) & (bins - 1)
            digits.append(d)
            index = d.long() if r is None else d.long() + r * bins
            hist += torch.bincount(index, minlength=rows * bins).to(device)
        hist = comm.all_reduce(hist, "sum", group).cpu().numpy().reshape(rows, bins)
        ge = np.cumsum(hist[:, ::-1], axis=1)[:, ::-1]  # ge[r, v]: keys of row r with digit >= v
        v = np.where(active, (ge >= ranks[:, None]).sum(1) - 1, -1)
        safe = np.maximum(v, 0)
        over = ge[np.arange(rows), safe] - hist[np.arange(rows), safe]
        over = np.where(active, over, 0)
        above += over
        ranks -= over
        equal = np.where(active, hist[np.arange(rows), safe], 0)
        prefix = [(p << b) | int(max(x, 0)) for p, x in zip(prefix, v, strict=True)]
        chosen = torch.as_tensor(v, dtype=torch.int64)
        new = []
        for (u, r), d in zip(cands, digits, strict=True):
            want = chosen.to(d.device)[0] if r is None else chosen.to(d.device)[r]
            keep = d == want
            new.append((u[keep], None if r is None else r[keep]))
        cands = new
        bits = rest
    if flip:
        prefix = [p - (1 << (width - 1)) for p in prefix]
    return prefix, above, equal
