"""Canonical reductions: the float64 pairwise tree that every sum, mean and norm in pqref goes through."""

from __future__ import annotations

import numpy as np

from reference import _arrays
from spec import validate

_FLOATS = ("float32", "float64")


def tree_sum(x, axis=None):
    r"""Sum in float64 along a fixed pairwise tree, the same on every backend and device.

    The values are converted to float64 (exact for float32), zero-padded at the end to the next power of two
    $2^L \ge n$, then halved $L$ times:

    $$ a \leftarrow a_{[0, h)} + a_{[h, 2h)}, \qquad h = \tfrac{|a|}{2}, $$

    so element $i$ is added to element $i + h$. The order of every addition is fixed, which is what makes the
    result reproducible bit for bit; `np.sum` and `torch.sum` choose their own order.

    **Arguments:**

    - `x`: a float32 or float64 array, any shape, finite.
    - `axis`: `None` to sum every element (in C order), or one axis to reduce.

    **Returns:**

    A float64 array: 0-d for `axis=None`, else `x.shape` without `axis`. A caller that needs float32 rounds once.

    !!! note
        An empty reduction is `+0.0`. The padding is `+0.0`, so the sign of a zero result follows IEEE addition:
        `tree_sum([-0.0])` is `-0.0` (no padding), `tree_sum([-0.0, -0.0, -0.0])` is `+0.0` (one pad).
        NaN and Inf are rejected with `ValueError`.

    Example: `tree_sum(np.float32([1, 2, 3]))` pads to `[1, 2, 3, 0]`, then `[1+3, 2+0] = [4, 2]`, then `6.0`.
    """
    x = _arrays.finite_array("x", x, _FLOATS)
    a = x.astype(np.float64)
    if axis is None:
        a = a.reshape(-1)
    else:
        a = np.moveaxis(a, validate.axis("axis", axis, x.ndim), -1)
    n = a.shape[-1]
    size = 1 if n <= 1 else 1 << (n - 1).bit_length()
    padding = np.zeros(a.shape[:-1] + (size - n,), dtype=np.float64)
    a = np.concatenate([a, padding], axis=-1)
    while a.shape[-1] > 1:
        h = a.shape[-1] // 2
        a = a[..., :h] + a[..., h:]
    return a.reshape(a.shape[:-1])


def tree_mean(x, axis=None):
    r"""Arithmetic mean in float64: the canonical tree sum divided by the count.

    $$ \operatorname{mean}(x) = \operatorname{fl}_{64}\!\left(\frac{\operatorname{tree\_sum}(x)}{n}\right) $$

    **Arguments:**

    - `x`: a float32 or float64 array, finite, with at least one element along the reduced axes.
    - `axis`: `None` for all elements, or one axis.

    **Returns:**

    A float64 array shaped like `tree_sum(x, axis)`.

    !!! note
        The mean of nothing is undefined: an empty reduction raises `ValueError`.
    """
    x = _arrays.array("x", x, _FLOATS)
    n = x.size if axis is None else x.shape[validate.axis("axis", axis, x.ndim)]
    if n == 0:
        raise ValueError(f"x has no elements to average along axis={axis!r}")
    return tree_sum(x, axis) / np.float64(n)


def lp_norm(x, p=2, axis=None):
    r"""The $L_p$ norm for $p \in \{1, 2\}$, with the canonical tree sum and one float64 square root.

    $$ \|x\|_1 = \operatorname{tree\_sum}(|x|), \qquad
       \|x\|_2 = \sqrt{\operatorname{tree\_sum}(x \odot x)} $$

    Squares are taken in float64, where the square of a float32 is exact; `sqrt` is IEEE float64, correctly
    rounded on every backend.

    **Arguments:**

    - `x`: a float32 array, finite (float32 only: its squares are exact in float64 and cannot overflow).
    - `p`: `1` or `2`.
    - `axis`: `None` for all elements, or one axis.

    **Returns:**

    A float64 array shaped like `tree_sum(x, axis)`.
    """
    x = _arrays.finite_array("x", x)
    validate.choice("p", p, (1, 2))
    a = x.astype(np.float64)
    if p == 1:
        return tree_sum(np.abs(a), axis)
    return np.sqrt(tree_sum(a * a, axis))
