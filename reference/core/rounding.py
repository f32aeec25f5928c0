"""Rounding float32 values to integers, one function per rule, each exact for every float32 input."""

from __future__ import annotations

import numpy as np

from reference import _arrays, _rounding
from reference.common import checks, validate

__all__ = ["round_half_even", "round_half_away", "round_floor", "round_ceil", "round_stochastic", "round_with"]

MODES = ("half_even", "half_away", "floor", "ceil", "stochastic")


def round_half_even(x):
    r"""Round to the nearest integer, ties to the even neighbour (IEEE 754 `roundTiesToEven`).

    $$ \operatorname{rne}(x) = \text{the integer nearest } x\text{;} \quad
       \operatorname{rne}(k + \tfrac12) = \text{the even one of } k, k+1 $$

    **Arguments:**

    - `x`: a float32 array, finite.

    **Returns:**

    A float32 array of integer values, shaped like `x`.

    !!! note
        `0.5 -> 0`, `1.5 -> 2`, `2.5 -> 2`, `-2.5 -> -2`; the sign of zero is kept (`-0.3 -> -0.0`).
        This is `np.rint` and `torch.round`, which agree bit for bit.
    """
    return _rounding.half_even(_arrays.finite_array("x", x))


def round_half_away(x):
    r"""Round to the nearest integer, ties away from zero (C's `round`).

    $$ \operatorname{rna}(x) = \operatorname{sign}(x)\,
       \big(\lfloor |x| \rfloor + [\,|x| - \lfloor |x| \rfloor \ge \tfrac12\,]\big) $$

    Every step is exact in float32: $|x| - \lfloor |x| \rfloor$ is representable, and so is the sum for
    $|x| < 2^{24}$ (from $2^{23}$ on every float32 is an integer and the fraction is 0).

    **Arguments:**

    - `x`: a float32 array, finite.

    **Returns:**

    A float32 array of integer values, shaped like `x`.

    !!! note
        `0.49999997 -> 0` (the common `floor(x + 0.5)` gives 1), `2.5 -> 3`, `-2.5 -> -3`, odd integers above
        $2^{23}$ unchanged (`x + 0.5` would round them up). The sign of zero is kept: `-0.3 -> -0.0`.
    """
    return _rounding.half_away(_arrays.finite_array("x", x))


def round_floor(x):
    r"""Round toward $-\infty$: $\lfloor x \rfloor$.

    **Arguments:**

    - `x`: a float32 array, finite.

    **Returns:**

    A float32 array shaped like `x`.
    """
    return np.asarray(np.floor(_arrays.finite_array("x", x)))


def round_ceil(x):
    r"""Round toward $+\infty$: $\lceil x \rceil$.

    **Arguments:**

    - `x`: a float32 array, finite.

    **Returns:**

    A float32 array shaped like `x`; `ceil(-0.5)` is `-0.0`.
    """
    return np.asarray(np.ceil(_arrays.finite_array("x", x)))


def round_stochastic(x, key):
    r"""Round down or up at random, up with probability equal to the fractional part.

    $$ \operatorname{sr}(x)_i = \lfloor x_i \rfloor + [\,u_i < x_i - \lfloor x_i \rfloor\,], \qquad
       u = \operatorname{uniform}(\text{key}, \text{shape}(x)) $$

    $u_i$ is the float32 multiple of $2^{-24}$ drawn for flat index $i$ (see `uniform`), so a fractional part
    $f$ rounds up with probability $\lceil 2^{24} f \rceil / 2^{24}$: unbiased to within $2^{-24}$.

    **Arguments:**

    - `x`: a float32 array, finite.
    - `key`: a random key from `make_key`; the same key gives the same rounding on every backend and device.

    **Returns:**

    A float32 array of integer values shaped like `x`. Integers (fraction 0) never move.

    ??? cite "Gupta et al., 2015"
        Deep Learning with Limited Numerical Precision. ICML. arXiv:1502.02551
    """
    x = _arrays.finite_array("x", x)
    return _rounding.stochastic(x, validate.key("key", key))


def round_with(x, mode="half_even", key=None):
    """Round `x` by the rule named `mode`; `key` is required for, and only for, `"stochastic"`.

    **Arguments:**

    - `x`: a float32 array, finite.
    - `mode`: `"half_even"`, `"half_away"`, `"floor"`, `"ceil"` or `"stochastic"`.
    - `key`: a random key for `"stochastic"`, else `None`.

    **Returns:**

    `round_<mode>(x)`: a float32 array shaped like `x`.
    """
    x = _arrays.finite_array("x", x)
    return _rounding.round_by(x, *checks.rounding(mode, key, MODES))
