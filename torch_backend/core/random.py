"""Threefry-2x32-20 in torch int32 arithmetic; the semantics are those of `reference.core.random`.

torch has no uint32 addition or shifts, so each 32-bit word lives in an int32 tensor as the same 32 bits
(two's complement): addition wraps mod 2**32 and `<<` drops the high bits on every device, which is uint32
arithmetic bit for bit; the one signed operation, `>>`, copies the sign bit in, so the rotation masks the bits
it brings down. Half the memory traffic of int64 words. Up to `PYTHON_MAX` words on the CPU, the rounds run on
Python integers instead (the same arithmetic mod 2**32, far fewer calls).
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
    y0, y1 = _rounds(ks, _as_int32(x0), _as_int32(x1))
    return _as_words(y0), _as_words(y1)


def _as_int32(x):
    """int64 words in [0, 2**32) as int32 tensors of the same 32 bits (the conversion keeps the low 32 bits)."""
    return x.to(torch.int32)


def _as_words(x):
    """int32 tensors back to int64 words in [0, 2**32)."""
    return x.to(torch.int64).bitwise_and_(_MASK)


def _signed(word):
    """A Python int in [0, 2**32) as the int32 value of the same bits."""
    word &= _MASK
    return word - (1 << 32) if word >> 31 else word


def _rounds(ks, a, b):
    """The 20 rounds on int32 tensors (uint32 bits), in place on fresh copies; returns `(y0, y1)` as int32."""
    a = a + _signed(ks[0])
    b = b + _signed(ks[1])
    t = torch.empty_like(b)  # two buffers for b, in turns: no allocation in the rounds
    for block in range(1, 6):
        for rot in _BLOCK_ROTATIONS[block]:
            a += b
            torch.bitwise_left_shift(b, rot, out=t)
            t |= b.bitwise_right_shift_(32 - rot).bitwise_and_((1 << rot) - 1)  # the logical shift: sign bits masked
            b, t = t.bitwise_xor_(a), b  # rotl(b, rot) ^ a
        a += _signed(ks[block % 3])
        b += _signed(ks[(block + 1) % 3] + block)
    return a, b


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
    return _as_words(_bits32(key, n, device)).reshape(shape)


def _bits32(key, n, device):
    """The first `n` words of the stream of `key`, as int32 tensors of their bits (flat)."""
    m = (n + 1) // 2
    if m <= PYTHON_MAX and (device is None or torch.device(device).type == "cpu"):
        c = torch.arange(m, dtype=torch.int64)
        y0, y1 = threefry2x32(key, c >> 32, c & _MASK)
        return _as_int32(torch.stack([y0, y1], dim=-1).reshape(-1)[:n])
    k0, k1 = key
    c = torch.arange(m, dtype=torch.int64, device=device)
    y0, y1 = _rounds((k0, k1, PARITY ^ k0 ^ k1), _as_int32(c >> 32), _as_int32(c & _MASK))
    return torch.stack([y0, y1], dim=-1).reshape(-1)[:n]


def uniform(key, shape, device=None):
    """Uniform float32 in [0, 1) on the 2**-24 grid; see `reference.core.random.uniform`."""
    key = validate.key("key", key)
    shape = shapes.shape("shape", shape)
    n = 1
    for s in shape:
        n *= s
    bits = _bits32(key, n, device) >> 8  # the sign bits brought down are masked off
    return bits.bitwise_and_(0xFFFFFF).to(torch.float32).mul_(2.0**-24).reshape(shape)
