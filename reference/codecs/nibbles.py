r"""4-bit codes two to a byte, in either nibble order: the choice that packed 4-bit checkpoints make differently.

| `order` | byte $j$ holds | who |
|---|---|---|
| `"low_first"` | $c_{2j} + 16\, c_{2j+1}$ | ONNX `INT4`/`UINT4`/`FLOAT4E2M1`, OCP MX, NVFP4 (ModelOpt, compressed-tensors), `pack_bits(codes, 4)` |
| `"high_first"` | $16\, c_{2j} + c_{2j+1}$ | bitsandbytes and torchao NF4 / FP4 |

Pairs run along the last axis. Unpacking with the wrong order swaps every pair of neighbours.
"""

from __future__ import annotations

import numpy as np

from reference import _arrays
from reference.common import validate

__all__ = ["pack_nibbles", "unpack_nibbles"]

ORDERS = ("low_first", "high_first")


def pack_nibbles(codes, *, order):
    r"""Pack 4-bit codes two to a byte along the last axis.

    $$ \text{low\_first: } b_j = c_{2j} + 16\, c_{2j+1}, \qquad \text{high\_first: } b_j = 16\, c_{2j} + c_{2j+1} $$

    **Arguments:**

    - `codes`: a uint8 array with at least one dimension, codes in $[0, 15]$, its last axis of even length.
    - `order`: `"low_first"` or `"high_first"` (no default: see the module table).

    **Returns:**

    A uint8 array shaped like `codes` with the last axis halved.

    Example: codes `[1, 2, 3, 4]` pack as `[0x21, 0x43]` (`low_first`) or `[0x12, 0x34]` (`high_first`):

        >>> [hex(b) for b in pack_nibbles(np.uint8([1, 2, 3, 4]), order="low_first")]
        ['0x21', '0x43']
        >>> [hex(b) for b in pack_nibbles(np.uint8([1, 2, 3, 4]), order="high_first")]
        ['0x12', '0x34']
    """
    order = validate.choice("order", order, ORDERS)
    codes = _arrays.within("codes", _arrays.array("codes", codes, ("uint8",)), 0, 15)
    if codes.ndim == 0 or codes.shape[-1] % 2:
        raise ValueError(f"codes has shape {tuple(codes.shape)}: nibbles pack in pairs along an even last axis")
    first, second = codes[..., 0::2], codes[..., 1::2]
    low, high = (first, second) if order == "low_first" else (second, first)
    return np.asarray((low | (high << 4)).astype(np.uint8))


def unpack_nibbles(packed, *, order):
    r"""Unpack bytes into two 4-bit codes each, along the last axis: the inverse of `pack_nibbles`.

    **Arguments:**

    - `packed`: a uint8 array with at least one dimension.
    - `order`: `"low_first"` or `"high_first"`.

    **Returns:**

    A uint8 array of codes in $[0, 15]$ shaped like `packed` with the last axis doubled.

    Example: `[0x21, 0x43]` unpacks as `[1, 2, 3, 4]` (`low_first`) or `[2, 1, 4, 3]` (`high_first`):

        >>> unpack_nibbles(np.uint8([0x21, 0x43]), order="low_first")
        array([1, 2, 3, 4], dtype=uint8)
        >>> unpack_nibbles(np.uint8([0x21, 0x43]), order="high_first")
        array([2, 1, 4, 3], dtype=uint8)
    """
    order = validate.choice("order", order, ORDERS)
    packed = _arrays.array("packed", packed, ("uint8",))
    if packed.ndim == 0:
        raise ValueError("packed must have at least one dimension, got a 0-d array")
    low, high = packed & 0xF, packed >> 4
    first, second = (low, high) if order == "low_first" else (high, low)
    return np.asarray(np.stack([first, second], axis=-1).reshape(packed.shape[:-1] + (2 * packed.shape[-1],)))
