"""Exact nearest-level codes of float32 values against a sorted set of levels: the float32 midpoint keys of
`codebook_assign` (shared by `torch_backend.quantization.codebook` and `.nf4`; package-private)."""

from __future__ import annotations

import itertools

import torch

from torch_backend.core import _host

LOOP_MIN = 1 << 14  # from this many values `count_below` makes one pass per key,
LOOP_KEYS = 16  # for at most this many keys with a nonzero jump; otherwise one binary search (`searchsorted`)


def count_below(u, keys, jumps):
    """`first[#{j : keys[j] < u}]` for each element of the float32 tensor `u`, as uint8 shaped like `u`, where
    `first` is the running sum of `jumps` from 0 (see `midpoint_keys`; the identity when every jump is 1).

    Small inputs, and codebooks with many distinct keys, take one `searchsorted` and a table look-up. Large
    inputs with few keys take one comparison per key added to a uint8 count (`first[count]` is the sum of the
    jumps of the keys below `u`; a key with jump 0 is skipped): no int64 index per element.
    """
    keys_t, first_t = _key_tensors(tuple(keys), tuple(jumps), u.device)
    if u.numel() >= LOOP_MIN and sum(d > 0 for d in jumps) <= LOOP_KEYS:
        count = torch.zeros(u.shape, dtype=torch.uint8, device=u.device)
        for j, d in enumerate(jumps):
            if d:
                count.add_(u > keys_t[j], alpha=d)
        return count
    count = torch.searchsorted(keys_t, u)
    return count.to(torch.uint8) if first_t is None else torch.take(first_t, count)


_KEY_TENSORS = {}


def _key_tensors(keys, jumps, device):
    """The keys as a float32 tensor and `first` as a uint8 tensor (None when it is the identity), on `device`;
    cached (creating a tensor costs more than a small operation)."""
    key = (keys, jumps, device)
    if key not in _KEY_TENSORS:
        if len(_KEY_TENSORS) > 256:
            _KEY_TENSORS.clear()
        first = list(itertools.accumulate(jumps, initial=0))
        identity = all(d == 1 for d in jumps)
        _KEY_TENSORS[key] = (
            torch.tensor(keys, dtype=torch.float32, device=device),
            None if identity else torch.tensor(first, dtype=torch.uint8, device=device),
        )
    return _KEY_TENSORS[key]


def midpoint_keys(values):
    """`(keys, jumps)` of a sorted codebook: `keys[j]` is the largest float32 at most the exact midpoint
    (a_j + a_j+1) / 2, and `jumps[j] = first[j + 1] - first[j]`, where `first[i]` is the lowest index holding the
    value of entry i (0 after a repeated value, so `first[count]` is the sum of the jumps of the keys below).

    Exact in Python floats: a two-sum gives a + b = s + e, so the midpoint is s/2 + e/2 (both exact: every value
    is a multiple of 2**-149). Its float32 rounding `c` is the floor unless it lies above the midpoint (it does
    when c > s/2, or c = s/2 and e < 0); then the floor is the float32 just below c.
    """
    keys, jumps, start = [], [], 0
    for i, (a, b) in enumerate(itertools.pairwise(values)):
        s = a + b
        t = s - a
        e = (a - (s - t)) + (b - t)
        h = s / 2
        c = _host.float32(h)  # round to nearest float32
        if c > h or (c == h and e < 0):
            c = _float32_below(c)
        keys.append(c)
        jumps.append(0 if b == a else i + 1 - start)
        start = start if b == a else i + 1
    return keys, jumps


def _float32_below(c):
    """The largest float32 below the float32 `c` (`c` is above the smallest finite float32)."""
    if c > 0:
        return _host.next32(c, -1)
    return -_host.next32(abs(c), 1)  # c <= 0, either zero: away from zero (to -2**-149 from a zero)
