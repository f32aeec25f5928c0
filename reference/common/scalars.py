r"""Exact scalar arithmetic both backends share, written once: Python numbers in, Python numbers out.

Some results that an array computation needs are single numbers fixed by exact arithmetic on the host, such as
LSQ's gradient scale $1/\sqrt{N Q_P}$. They are computed here, with the standard library alone (`fractions` and
`struct`), so that no library's `sqrt` decides their last bit and both backends use the very same code.
"""

from __future__ import annotations

import math
import struct
from fractions import Fraction

__all__ = ["inverse_sqrt_float32"]


def inverse_sqrt_float32(m) -> float:
    r"""The float32 nearest $1/\sqrt{m}$ for an int $m \ge 1$ (0.0 for $m = 0$), as a Python float.

    $$ y = \operatorname{fl}_{32}\big(1/\sqrt{m}\big) \text{ exactly: } \quad
       \Big(\tfrac{y + y^-}{2}\Big)^2 \le \tfrac1m \le \Big(\tfrac{y + y^+}{2}\Big)^2 $$

    A float64 candidate is rounded to float32, then moved to its neighbour $y^+$ or $y^-$ while $1/\sqrt{m}$ lies
    beyond the midpoint on that side; the midpoints are compared with $1/m$ in exact rational arithmetic
    (squared: $(y + y^\pm)^2 m$ against 4). A midpoint is a rational with a power-of-two denominator and is never
    exactly $1/\sqrt{m}$, so there are no ties.

    **Arguments:**

    - `m`: a Python int $\ge 0$.

    **Returns:**

    A Python float that is a float32 value: `inverse_sqrt_float32(4)` is `0.5`, `inverse_sqrt_float32(3)` is
    `0.5773502588272095` (the float32 nearest $0.57735026918\ldots$).
    """
    if m == 0:
        return 0.0
    y = _float32(1 / math.sqrt(m))
    while True:
        up, down = _next_float32(y, 1), _next_float32(y, -1)
        if (Fraction(y) + Fraction(up)) ** 2 * m < 4:  # 1/sqrt(m) is above the upper midpoint
            y = up
        elif (Fraction(y) + Fraction(down)) ** 2 * m > 4:  # below the lower midpoint
            y = down
        else:
            return y


def _float32(v):
    """v rounded to the nearest float32 (ties to even), as a Python float."""
    return struct.unpack("<f", struct.pack("<f", v))[0]


def _next_float32(y, direction):
    """The next float32 after a positive finite float32 y, up (+1) or down (-1)."""
    (bits,) = struct.unpack("<I", struct.pack("<f", y))
    return struct.unpack("<f", struct.pack("<I", bits + direction))[0]
