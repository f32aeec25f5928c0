"""Threefry-2x32-20 in torch int64 arithmetic; the semantics are those of `reference.core.random`.

torch has no general uint32 arithmetic, so each 32-bit word lives in an int64 tensor and every step is masked
back to 32 bits. Additions of two words stay below 2**33, so nothing overflows. Up to `PYTHON_MAX` words on the
CPU, the rounds run on Python integers instead (the same arithmetic mod 2**32, far fewer calls).
"""

from __future__ import annotations

import torch

from reference.common import shapes, validate
from reference.core.random import FOLD_WORD, PARITY, ROTATIONS, SPLIT_WORD, make_key
from torch_backend import _arrays

__all__ = ["threefry2x32", "make_key", "split", "fold_in", "random_bits", "uniform"]

_MASK = 0xFFFFFFFF


def threefry2x32(key, x0, x1):
    """Threefry-2x32 with 20 rounds, elementwise; see `reference.core.random.threefry2x32`."""
    k0, k1 = validate.key("key", key)
    x0 = _arrays.within("x0", _arrays.array("x0", x0, ("int64",)), 0, 2**32 - 1)
    x1 = _arrays.within("x1", _arrays.array("x1", x1, ("int64",)), 0, 2**32 - 1)
    _arrays.shaped("x1", x1, x0.shape, "x0")
    _arrays.same_device("x1", x1, "x0", x0)
    ks = (k0, k1, PARITY ^ k0 ^ k1)
    if x0.numel() <= PYTHON_MAX and x0.device.type == "cpu":
        y0, y1 = _threefry_ints(ks, x0.reshape(-1).tolist(), x1.reshape(-1).tolist())
        return (
            torch.tensor(y0, dtype=torch.int64).reshape(x0.shape),
            torch.tensor(y1, dtype=torch.int64).reshape(x0.shape),
        )
    # In int64, in place. `b` is kept reduced mod 2**32 (the rotation needs its exact 32 bits); `a` is reduced only
    # at the end: it only ever meets `+` and the low 32 bits of `^` (masked after), and stays below 2**38.
    a = x0 + ks[0]
    b = (x1 + ks[1]) & _MASK
    for block in range(1, 6):
        for r in range(4):
            rot = ROTATIONS[(4 * (block - 1) + r) % 8]
            a += b
            t = b << rot
            t |= b.bitwise_right_shift_(32 - rot)
            t ^= a
            b = t.bitwise_and_(_MASK)  # rotl(b, rot) ^ a, mod 2**32
        a += ks[block % 3]
        b += (ks[(block + 1) % 3] + block) & _MASK
        b &= _MASK
    return a.bitwise_and_(_MASK), b


# Up to this many CPU words, Python integers: about 8 us a word against about 350 us for the 130 torch
# operations of the tensor route, whatever the size up to thousands (one CPU thread; the two meet near 45 words).
# fold_in, split and the small draws of stochastic rounding and random masks take it.
PYTHON_MAX = 32


def _threefry_ints(ks, x0, x1):
    """The 20 rounds on lists of Python ints (each below 2**32), word by word, reduced mod 2**32 at each step."""
    y0, y1 = [], []
    for a, b in zip(x0, x1, strict=True):
        a, b = (a + ks[0]) & _MASK, (b + ks[1]) & _MASK
        for block in range(1, 6):
            for rot in _BLOCK_ROTATIONS[block]:
                a = (a + b) & _MASK
                b = (((b << rot) & _MASK) | (b >> (32 - rot))) ^ a
            a = (a + ks[block % 3]) & _MASK
            b = (b + ks[(block + 1) % 3] + block) & _MASK
        y0.append(a)
        y1.append(b)
    return y0, y1


_BLOCK_ROTATIONS = {block: [ROTATIONS[(4 * (block - 1) + r) % 8] for r in range(4)] for block in range(1, 6)}


def split(key, num=2):
    """`num` new keys; see `reference.core.random.split`."""
    key = validate.key("key", key)
    num = shapes.keys("num", num)
    hi = torch.full((num,), SPLIT_WORD, dtype=torch.int64)
    y0, y1 = threefry2x32(key, hi, torch.arange(num, dtype=torch.int64))
    return tuple((int(a), int(b)) for a, b in zip(y0.tolist(), y1.tolist(), strict=True))


def fold_in(key, data):
    """A new key from a key and an int; see `reference.core.random.fold_in`."""
    key = validate.key("key", key)
    data = validate.integer("data", data, lo=0, hi=2**32 - 1)
    y0, y1 = threefry2x32(key, torch.tensor([FOLD_WORD]), torch.tensor([data]))
    return (int(y0[0]), int(y1[0]))


def random_bits(key, shape, device=None):
    """Uniform 32-bit integers as int64, by flat index; see `reference.core.random.random_bits`."""
    key = validate.key("key", key)
    shape = shapes.shape("shape", shape)
    n = 1
    for s in shape:
        n *= s
    c = torch.arange((n + 1) // 2, dtype=torch.int64, device=device)
    y0, y1 = threefry2x32(key, c >> 32, c & _MASK)
    return torch.stack([y0, y1], dim=-1).reshape(-1)[:n].reshape(shape)


def uniform(key, shape, device=None):
    """Uniform float32 in [0, 1) on the 2**-24 grid; see `reference.core.random.uniform`."""
    bits = random_bits(key, shape, device)
    return (bits >> 8).to(torch.float32) * 2.0**-24
