"""Radix select: the `count` largest of many scores by histograms of digits of their bit patterns, no sort.

The scores become order-preserving integer keys (the IEEE bit pattern, with the negative half mirrored and `-0.0`
merged into `+0.0`); the key of rank `count` is found by histograms of digits (one pass over all keys, then passes
over the few keys left in the chosen bucket), and the mask is `key > T`, plus the lowest-index keys equal to `T`
up to `count`. Everything is integer work in torch ops (no `topk`, no sort), so the mask is the same on every
device and equal, bit for bit, to the stable-sort mask of `reference.core.select.keep_largest`.

Used by `torch_backend.core.select.keep_largest` for large inputs (a stable sort of 1M float32 scores takes about
150 ms on one CPU thread, this about 15 ms) and by `torch_backend.kernels.select` (on `|w|` without materialising
it, over several tensors at once). Package-private.
"""

from __future__ import annotations

import numpy as np
import torch

from reference.common import validate
from reference.core.select import SCORE_DTYPES
from torch_backend import _arrays

# digit widths: the first pass over all keys uses 12 bits (a 4096-bin histogram fits in GPU shared memory); the
# passes over the few keys left in the chosen bucket use 10 bits
DIGIT_BITS = (12, 10)
_CHUNK = 1 << 16


class _Part:
    """One flat tensor of scores as sortable integer keys (signed order of the keys = order of the scores).

    kind "int": `raw` holds the keys. kind "abs": `raw` is the float32 bit pattern of `w` and the key of |w| is
    `raw` with the sign bit cleared (non-negative patterns order like the values), computed on the fly.
    """

    def __init__(self, raw, kind):
        self.raw, self.kind = raw, kind

    def key(self, raw=None):
        """The keys of `raw` (default: the whole part); do not modify the result in place."""
        b = self.raw if raw is None else raw
        return b & _max_int(b) if self.kind == "abs" else b

    def shifted(self, shift):
        """A new tensor: the keys arithmetically shifted right by `shift`."""
        if self.kind == "abs":
            d = self.raw >> shift
            d &= _max_int(self.raw) >> shift
            return d
        return self.raw >> shift if shift else self.raw.clone()


def _float_keys(b):
    """Sortable keys of float bit patterns `b` (int32 or int64): the magnitude bits, negated where the sign bit is
    set (`-0.0` and `+0.0` both give 0). Negation by two's complement, `(m ^ s) - s` with `s = b >> (width - 1)`
    (0 or -1): four integer passes, no bool tensor."""
    s = b >> (_width(b) - 1)
    k = b & _max_int(b)
    k ^= s
    k -= s
    return k


def _width(t) -> int:
    return 32 if t.dtype == torch.int32 else 64


def _max_int(t) -> int:
    return (1 << (_width(t) - 1)) - 1


# bit patterns where the non-finite values start (+Inf) and the key of -Inf (NaNs lie beyond them)
_POS_INF = {32: 0x7F800000, 64: 0x7FF0000000000000}
_NEG_INF_KEY = {32: -(2**31) + 2**23, 64: -(2**63) + 2**52}


def keep_largest(scores, count, bits=None):
    """A mask of the `count` largest scores (ties to the lower flat index) by radix select, with the checks and
    errors of `torch_backend.core.select.keep_largest`; `bits`: the digit widths (default `DIGIT_BITS`)."""
    bits = bits or DIGIT_BITS
    scores = _arrays.array("scores", scores, SCORE_DTYPES)
    try:
        count = validate.integer("count", count, lo=0, hi=scores.numel())
    except (TypeError, ValueError):
        _arrays.not_nan("scores", scores)
        raise
    flat = scores.detach().reshape(-1)
    is_float = flat.dtype != torch.int64
    if is_float:
        if count in (0, flat.numel()):
            _arrays.not_nan("scores", scores)
        flat = _float_keys(flat.view(torch.int32 if flat.dtype == torch.float32 else torch.int64))

    def suspicious(hist, width):
        """NaN keys can only be in the outermost top-digit buckets (with +-Inf): check exactly if those are used."""
        if not is_float:
            return False
        shift, half = width - bits[0], 1 << (bits[0] - 1)
        return bool(
            hist[half + (_POS_INF[width] >> shift) :].any() or hist[: half + (_NEG_INF_KEY[width] >> shift) + 1].any()
        )

    def check():
        _arrays.not_nan("scores", scores)

    (keep,) = _select_parts([_Part(flat, "int")], count, bits, suspicious, check)
    return keep.reshape(scores.shape)


def keep_largest_keys(keys, count, bits=None):
    """The mask of the `count` largest of a flat int32 or int64 tensor of sortable keys (ties to the lower
    index), `0 <= count <= keys.numel()` already checked: for callers that build keys of their own."""
    bits = bits or DIGIT_BITS
    (keep,) = _select_parts([_Part(keys, "int")], count, bits, lambda hist, width: False, lambda: None)
    return keep


def kth_largest_key(keys, rank, bits=None):
    """`(key, above, equal)`: the key of rank `rank` (1 = largest, `1 <= rank <= keys.numel()`) of a flat int32 or
    int64 tensor of sortable keys, how many keys are above it and how many equal it."""
    bits = bits or DIGIT_BITS
    return _kth_key([_Part(keys, "int")], rank, _width(keys), bits, lambda hist, width: False, lambda: None)


def magnitude_masks(named, count, bits=None):
    """Masks keeping the `count` largest |w| over the concatenation of the float32 tensors `named` (a list of
    `(name, tensor)`, in list order); a non-finite weight raises `_arrays.finite`'s error naming its tensor."""
    bits = bits or DIGIT_BITS
    parts = [_Part(w.detach().reshape(-1).view(torch.int32), "abs") for _, w in named]

    def suspicious(hist, width):
        """|w| >= Inf lands in the top-digit buckets from +Inf's on."""
        return bool(hist[(1 << (bits[0] - 1)) + (_POS_INF[32] >> (32 - bits[0])) :].any())

    def check():
        for name, w in named:
            _arrays.finite(name, w)

    if count in (0, sum(p.raw.numel() for p in parts)):
        check()
    masks = _select_parts(parts, count, bits, suspicious, check)
    return [m.reshape(w.shape) for m, (_, w) in zip(masks, named, strict=True)]


def _select_parts(parts, count, bits, suspicious, check):
    """Flat bool masks, one per part, keeping the `count` largest keys over all parts (ties: earlier first)."""
    device = parts[0].raw.device
    total = sum(p.raw.numel() for p in parts)
    if count == 0 or count == total:
        return [torch.full((p.raw.numel(),), count > 0, dtype=torch.bool, device=device) for p in parts]
    width = _width(parts[0].raw)
    threshold, n_above, n_equal = _kth_key(parts, count, width, bits, suspicious, check)
    ties = count - n_above  # how many keys equal to the threshold are kept: the first `ties` in flat order
    masks = []
    for p in parts:
        if n_equal == total:  # all keys equal: the first `count` in flat order
            keep = torch.zeros(p.raw.numel(), dtype=torch.bool, device=device)
            keep[:ties] = True
            ties -= min(ties, p.raw.numel())
            masks.append(keep)
            continue
        k = p.key()
        if ties == n_equal:
            masks.append(k >= threshold)
            continue
        keep = k > threshold
        eq = k == threshold
        del k
        here = int(eq.sum()) if ties > 0 else 0
        if here > ties:
            eq[_nth_true(eq, ties) + 1 :] = False
        if ties > 0:
            keep |= eq
        ties -= min(here, ties)
        masks.append(keep)
    return masks


def _kth_key(parts, count, width, bits, suspicious, check):
    """The key of rank `count` (1 = largest) over all parts, how many keys are above it, how many equal it.

    First digit: the top `bits[0]` bits of every key (signed, offset by half the range so bincount sees >= 0),
    counted over all parts. Then only the keys in the chosen bucket are kept (compacted) and refined `bits[1]`
    bits at a time. Counts are integers, so every step is exact.
    """
    first, rest = bits
    shift = width - first
    half = 1 << (first - 1)
    hist = None
    for p in parts:
        d = p.shifted(shift)
        d += half
        h = torch.bincount(d, minlength=1 << first)
        hist = h if hist is None else hist + h
        del d
    hist = hist.cpu().numpy()
    if suspicious(hist, width):
        check()
    v, above = _bucket(hist, count)
    prefix = v - half
    if hist[v] == sum(p.raw.numel() for p in parts):  # every key is in the bucket: no selection to make
        cand = parts[0].key() if len(parts) == 1 else torch.cat([p.key() for p in parts])
    else:
        cand = torch.cat([p.key(torch.masked_select(p.raw, p.shifted(shift) == prefix)) for p in parts])
    n_above, rank = above, count - above
    # the digits above the highest bit in which the candidates differ are known: skip their passes (no pass at
    # all when the candidates are equal, as in a tensor of zeros)
    lo, hi = (int(x) for x in torch.aminmax(cand))
    if (lo ^ hi).bit_length() < shift:
        shift = (lo ^ hi).bit_length()
        prefix = lo >> shift
    while shift > 0:
        step = min(rest, shift)
        shift -= step
        d = (cand >> shift) & ((1 << step) - 1)
        hist = torch.bincount(d, minlength=1 << step).cpu().numpy()
        v, above = _bucket(hist, rank)
        n_above, rank = n_above + above, rank - above
        cand = torch.masked_select(cand, d == v)
        prefix = (prefix << step) | v
    return prefix, n_above, cand.numel()


def _bucket(hist, rank):
    """The bucket holding the element of rank `rank` (1 = largest) and how many elements lie above it."""
    ge = np.cumsum(hist[::-1])[::-1]  # ge[v] = count of digits >= v
    v = int(np.count_nonzero(ge >= rank)) - 1
    return v, int(ge[v] - hist[v])


def _nth_true(eq, r):
    """Flat index of the r-th True (1-based) of a flat bool tensor, by chunk counts (no index list of all)."""
    n = eq.numel()
    if n <= _CHUNK:
        return int(eq.nonzero()[r - 1, 0])
    full = n // _CHUNK
    counts = eq[: full * _CHUNK].view(full, _CHUNK).sum(1)
    if n > full * _CHUNK:
        counts = torch.cat([counts, eq[full * _CHUNK :].sum().reshape(1)])
    cum = counts.cumsum(0).cpu().numpy()
    j = int(np.searchsorted(cum, r))  # first chunk whose running count reaches r
    before = int(cum[j - 1]) if j else 0
    chunk = eq[j * _CHUNK : (j + 1) * _CHUNK]
    return j * _CHUNK + int(chunk.nonzero()[r - before - 1, 0])
