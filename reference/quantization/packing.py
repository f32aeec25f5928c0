"""Bit packing: codes of 1 to 16 bits into a little-endian stream of bytes, and back."""

from __future__ import annotations

import numpy as np

from reference import _arrays
from reference.common import validate

__all__ = ["pack_bits", "unpack_bits"]

CODE_DTYPES = ("uint8", "uint16")


def pack_bits(codes, bits):
    r"""Pack `bits`-bit codes into bytes, first code in the lowest bits (the ONNX and OCP MX order).

    The codes form one little-endian bit stream: bit $t$ of code $i$ is stream bit $k = i \cdot b + t$, and
    stream bit $k$ is bit $k \bmod 8$ of byte $\lfloor k / 8 \rfloor$:

    $$ \text{byte}_j = \sum_{r=0}^{7} 2^r \cdot \big\lfloor c_{\lfloor (8j + r) / b \rfloor} /
       2^{(8j + r) \bmod b} \big\rfloor \bmod 2 $$

    For $b \in \{1, 2, 4, 8\}$ a code never crosses a byte; for $b = 3$ (and 5, 6, 7) a code may straddle two
    bytes, its low bits in the first; codes of 9 to 16 bits span two or three bytes (16-bit codes are their
    little-endian bytes). The unused high bits of the last byte are 0.

    **Arguments:**

    - `codes`: a uint8 or uint16 array of any shape (read in C order), each code in $[0, 2^b - 1]$.
    - `bits`: the code width $b$, an int in `[1, 16]`.

    **Returns:**

    A 1-D uint8 array of $\lceil n b / 8 \rceil$ bytes for $n$ codes.

    !!! note
        4-bit codes: code 0 in the low nibble, code 1 in the high nibble, as ONNX `INT4`/`UINT4` and OCP MX
        FP4 store them. bitsandbytes and torchao NF4 do the opposite (first code in the high nibble): swap the
        nibbles to convert. A code above $2^b - 1$ raises `ValueError` (nothing is masked); signed codes must
        be converted to their $b$-bit two's complement first, e.g. `(q & 0xF).astype(np.uint8)`.

    Example: 3-bit codes `[5, 3, 7]` give the stream `101 110 111` (low bit first), i.e. bytes
    `[0b11_011_101, 0b1]`: code 2 straddles the byte boundary (its low two bits end byte 0, its high bit starts
    byte 1).

        >>> pack_bits(np.uint8([5, 3, 7]), 3)
        array([221,   1], dtype=uint8)

    ??? cite "Rouhani et al., 2023"
        Microscaling Data Formats for Deep Learning (OCP MX v1.0). arXiv:2310.10537. The ONNX `INT4`, `UINT4`,
        `INT2` and `FLOAT6` tensor layouts store sub-byte elements in the same order.
    """
    bits = validate.integer("bits", bits, lo=1, hi=16)
    codes = _arrays.within("codes", _arrays.array("codes", codes, CODE_DTYPES), 0, 2**bits - 1)
    flat = codes.reshape(-1).astype(np.int64)
    n_bytes = (flat.size * bits + 7) // 8
    stream = ((flat[:, None] >> np.arange(bits)) & 1).reshape(-1)
    stream = np.concatenate([stream, np.zeros(8 * n_bytes - stream.size, dtype=np.int64)])
    # The eight bits of a byte sit in distinct positions: their integer sum is their bitwise or.
    return np.asarray((stream.reshape(n_bytes, 8) << np.arange(8)).sum(axis=1).astype(np.uint8))


def unpack_bits(packed, bits, count):
    r"""Unpack `count` codes of `bits` bits from bytes written by `pack_bits`.

    $$ c_i = \sum_{t=0}^{b-1} 2^t \cdot \text{bit}_{i b + t}, \qquad
       \text{bit}_k = \lfloor \text{byte}_{\lfloor k/8 \rfloor} / 2^{k \bmod 8} \rfloor \bmod 2 $$

    **Arguments:**

    - `packed`: a 1-D uint8 array of exactly $\lceil \text{count} \cdot b / 8 \rceil$ bytes.
    - `bits`: the code width $b$, an int in `[1, 16]`.
    - `count`: the number of codes, an int $\ge 0$.

    **Returns:**

    A 1-D array of `count` codes in $[0, 2^b - 1]$: uint8 for $b \le 8$, uint16 for $b > 8$.

    !!! note
        Strict: a buffer of the wrong length raises `ValueError`, and so does a set padding bit (a bit of the
        last byte after the last code), so `pack_bits` and `unpack_bits` are inverse bijections.

    Example: `pack_bits`'s example, unpacked:

        >>> unpack_bits(np.uint8([221, 1]), 3, 3)
        array([5, 3, 7], dtype=uint8)
    """
    bits = validate.integer("bits", bits, lo=1, hi=16)
    count = validate.integer("count", count, lo=0)
    packed = _arrays.array("packed", packed, ("uint8",))
    n_bytes = (count * bits + 7) // 8
    if packed.ndim != 1 or packed.shape[0] != n_bytes:
        raise ValueError(
            f"packed has shape {tuple(packed.shape)} but {count} codes of {bits} bits need shape ({n_bytes},)"
        )
    stream = ((packed.astype(np.int64)[:, None] >> np.arange(8)) & 1).reshape(-1)
    padding = stream[count * bits :]
    if padding.any():
        k = count * bits + int(np.flatnonzero(padding)[0])
        raise ValueError(f"packed has a set padding bit after the last code: stream bit {k} (byte {k // 8})")
    digits = stream[: count * bits].reshape(count, bits)
    return np.asarray((digits << np.arange(bits)).sum(axis=1).astype(np.uint8 if bits <= 8 else np.uint16))
