"""A counter-based random number generator (Threefry-2x32-20) with explicit keys.

Random numbers are a pure function of a key and a position, so the same key gives the same stream in NumPy and
in torch, on every device, in any order of evaluation. There is no hidden global state: functions that need
randomness take a `key`, and new keys come from `split` and `fold_in`.
"""

from __future__ import annotations

import numpy as np

from reference import _arrays
from reference.common import shapes, validate

__all__ = ["threefry2x32", "make_key", "split", "fold_in", "random_bits", "uniform"]

ROTATIONS = (13, 15, 26, 6, 17, 29, 16, 24)
PARITY = 0x1BD11BDA
SPLIT_WORD = 0xFFFFFFFF
FOLD_WORD = 0xFFFFFFFE


def threefry2x32(key, x0, x1):
    r"""The Threefry-2x32 block cipher with 20 rounds (Salmon et al., 2011), applied elementwise.

    With key words $k_0, k_1$ and $k_2 = \texttt{0x1BD11BDA} \oplus k_0 \oplus k_1$, all arithmetic mod $2^{32}$:
    start from $(x_0 + k_0, x_1 + k_1)$; run 20 rounds
    $x_0 \mathrel{+}= x_1;\ x_1 \leftarrow \operatorname{rotl}(x_1, R_{r \bmod 8}) \oplus x_0$ with
    $R = (13, 15, 26, 6, 17, 29, 16, 24)$; after every 4th round (block $i = 1..5$) inject the key:
    $x_0 \mathrel{+}= k_{i \bmod 3}$, $x_1 \mathrel{+}= k_{(i+1) \bmod 3} + i$.

    **Arguments:**

    - `key`: a tuple of two ints in $[0, 2^{32})$.
    - `x0`, `x1`: int64 arrays of the same shape with values in $[0, 2^{32})$: the two counter words.

    **Returns:**

    `(y0, y1)`: two int64 arrays shaped like `x0`, values in $[0, 2^{32})$.

    !!! note
        Known answers (Random123): key `(0, 0)`, counter `(0, 0)` gives `(0x6b200159, 0x99ba4efe)`.

    ??? cite "Salmon et al., 2011"
        Parallel Random Numbers: As Easy as 1, 2, 3. SC'11. doi:10.1145/2063384.2063405
    """
    k0, k1 = validate.key("key", key)
    x0 = _arrays.within("x0", _arrays.array("x0", x0, ("int64",)), 0, 2**32 - 1)
    x1 = _arrays.within("x1", _arrays.array("x1", x1, ("int64",)), 0, 2**32 - 1)
    _arrays.shaped("x1", x1, x0.shape, "x0")
    ks = [np.uint32(k0), np.uint32(k1), np.uint32(PARITY ^ k0 ^ k1)]
    with np.errstate(over="ignore"):  # uint32 arithmetic wraps mod 2**32, as the cipher intends
        a = x0.astype(np.uint32) + ks[0]
        b = x1.astype(np.uint32) + ks[1]
        for block in range(1, 6):
            for r in range(4):
                rot = ROTATIONS[(4 * (block - 1) + r) % 8]
                a = a + b
                b = ((b << np.uint32(rot)) | (b >> np.uint32(32 - rot))) ^ a
            a = a + ks[block % 3]
            b = b + ks[(block + 1) % 3] + np.uint32(block)
    return np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)


def make_key(seed):
    """A key from a seed: `(seed >> 32, seed & 0xFFFFFFFF)`.

    **Arguments:**

    - `seed`: an int in $[0, 2^{64})$.

    **Returns:**

    A key: a tuple of two ints in $[0, 2^{32})$.
    """
    seed = validate.integer("seed", seed, lo=0, hi=2**64 - 1)
    return (seed >> 32, seed & 0xFFFFFFFF)


def split(key, num=2):
    r"""`num` new independent keys: key $j$ is $\operatorname{threefry}(\text{key}, (\texttt{0xFFFFFFFF}, j))$.

    The high counter word `0xFFFFFFFF` is never used by `random_bits` (its counters stay below $2^{62}$), so
    split keys never repeat the parent's random stream.

    **Arguments:**

    - `key`: a key.
    - `num`: how many keys, an int in `[1, 2**20]` (the keys come back as a Python tuple).

    **Returns:**

    A tuple of `num` keys.
    """
    key = validate.key("key", key)
    num = shapes.keys("num", num)
    hi = np.full(num, SPLIT_WORD, dtype=np.int64)
    y0, y1 = threefry2x32(key, hi, np.arange(num, dtype=np.int64))
    return tuple((int(a), int(b)) for a, b in zip(y0, y1, strict=True))


def fold_in(key, data):
    r"""A new key that depends on `key` and an int.

    $$ \operatorname{fold\_in}(\text{key}, d) = \operatorname{threefry}(\text{key}, (\texttt{0xFFFFFFFE}, d)) $$

    **Arguments:**

    - `key`: a key.
    - `data`: an int in $[0, 2^{32})$, such as a step or a layer index.

    **Returns:**

    A key.
    """
    key = validate.key("key", key)
    data = validate.integer("data", data, lo=0, hi=2**32 - 1)
    y0, y1 = threefry2x32(key, np.array([FOLD_WORD], dtype=np.int64), np.array([data], dtype=np.int64))
    return (int(y0[0]), int(y1[0]))


def random_bits(key, shape, device=None):
    r"""Uniform random 32-bit integers, a pure function of the key and the flat index.

    Flat index $i$ (C order) takes word $i \bmod 2$ of $\operatorname{threefry}(\text{key}, (c_{hi}, c_{lo}))$
    for the counter $c = \lfloor i/2 \rfloor = 2^{32} c_{hi} + c_{lo}$.

    **Arguments:**

    - `key`: a key.
    - `shape`: a tuple of ints >= 0 with at most `2**40` elements in all and no longer side (`reference.common.shapes`).
    - `device`: where to create the result; the reference computes on the CPU and accepts `None` or `"cpu"`.

    **Returns:**

    An int64 array of shape `shape` with values in $[0, 2^{32})$.
    """
    key = validate.key("key", key)
    shape = shapes.shape("shape", shape)
    if device not in (None, "cpu"):
        raise ValueError(f"device must be None or 'cpu' in the reference, got {device!r}")
    n = int(np.prod(shape, dtype=np.int64))
    c = np.arange((n + 1) // 2, dtype=np.int64)
    y0, y1 = threefry2x32(key, c >> 32, c & 0xFFFFFFFF)
    return np.stack([y0, y1], axis=-1).reshape(-1)[:n].reshape(shape)


def uniform(key, shape, device=None):
    r"""Uniform float32 numbers in $[0, 1)$ on the grid $2^{-24}\mathbb{Z}$.

    $$ u = \lfloor b / 2^8 \rfloor \cdot 2^{-24} $$

    Both steps are exact, so every backend returns the same bits. `b` is `random_bits(key, shape)`.

    **Arguments:**

    - `key`: a key.
    - `shape`: a tuple of ints >= 0 with at most `2**40` elements in all and no longer side (`reference.common.shapes`).
    - `device`: as for `random_bits`.

    **Returns:**

    A float32 array of shape `shape`.
    """
    bits = random_bits(key, shape, device)
    return np.asarray((bits >> 8).astype(np.float32) * np.float32(2.0**-24))
