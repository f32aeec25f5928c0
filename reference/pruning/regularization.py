"""Sparsity-inducing regularization: the L1 (lasso) and group-lasso penalties, their gradients and proximal steps.

The penalty functions are loss terms: they return a float32 scalar and have a VJP. The proximal steps are optimizer
steps taken after a gradient step on the rest of the loss; they are not part of a forward pass and have no VJP.
Every zero these functions produce is `+0.0`.
"""

from __future__ import annotations

import math

import numpy as np

from reference import _arrays
from reference.common import shapes, validate
from reference.core.exact import exact_sum
from reference.core.reduce import lp_norm

__all__ = [
    "l1_penalty",
    "l1_penalty_vjp",
    "l1_subgradient",
    "l1_proximal",
    "group_lasso_penalty",
    "group_lasso_penalty_vjp",
    "group_lasso_proximal",
]


def l1_penalty(w, lam):
    r"""The L1 penalty $\lambda \sum_i |w_i|$: the exact sum, rounded once to float64, and once more to float32.

    $$ P = \operatorname{fl}_{32}\big(\lambda \otimes_{64} \operatorname{exact\_sum}(|w|)\big) $$

    $\otimes_{64}$ is one float64 multiplication. For a list of arrays the magnitudes are concatenated in list
    order (each array in C order) and summed exactly, so the penalty of a whole network is one number,
    independent of how its layers are grouped into calls (or sharded).

    **Arguments:**

    - `w`: a float32 array, any shape, finite; or a non-empty list (or tuple) of such arrays.
    - `lam`: the strength $\lambda$, a real number >= 0.

    **Returns:**

    A 0-d float32 array, >= 0. Its gradient is `l1_penalty_vjp`.

    !!! note
        An empty array gives `+0.0`; a penalty beyond the float32 range is `inf`. Negative `lam` is rejected.
        Example: $\operatorname{fl}_{32}(0.1 \cdot 3.5)$:

            >>> l1_penalty(np.float32([1, -2, 0.5]), 0.1)
            array(0.35, dtype=float32)

    ??? cite "Tibshirani, 1996"
        Regression Shrinkage and Selection via the Lasso. Journal of the Royal Statistical Society B 58(1).
        doi:10.1111/j.2517-6161.1996.tb02080.x
    """
    ws, _ = _one_or_many("w", w)
    lam = validate.real("lam", lam, lo=0.0)
    total = exact_sum(np.concatenate([np.abs(x).reshape(-1) for x in ws]))
    return _to_float32(lam * total)


def l1_penalty_vjp(grad, w, lam):
    r"""The gradient of `l1_penalty` with respect to `w`: $c \operatorname{sign}(w)$ with $\operatorname{sign}(0) = 0$.

    $$ c = \operatorname{fl}_{32}(g \otimes_{64} \lambda), \qquad
       \frac{\partial L}{\partial w_i} = \begin{cases} c & w_i > 0 \\ -c & w_i < 0 \\ +0 & w_i = 0 \end{cases} $$

    $|w|$ has no derivative at 0; the subgradient chosen there is 0, as `torch.sign` and `np.sign` give.

    **Arguments:**

    - `grad`: a 0-d float32 array, finite: the cotangent $g$ of the penalty.
    - `w`, `lam`: as for `l1_penalty`.

    **Returns:**

    A float32 array shaped like `w`, or a list of them when `w` is a list. `l1_penalty_vjp(1, w, lam)` is
    `l1_subgradient(w, lam)`.

    !!! note
        Every zero of the result is `+0.0` (at $w_i = \pm 0$, and everywhere when $c = 0$). A $c$ beyond the
        float32 range is $\pm\infty$.
    """
    ws, single = _one_or_many("w", w)
    lam = validate.real("lam", lam, lo=0.0)
    grad = _arrays.shaped("grad", _arrays.finite_array("grad", grad), (), "the scalar penalty")
    c = _to_float32(grad.astype(np.float64) * lam)
    out = [_signed(x, c) for x in ws]
    return out[0] if single else out


def l1_subgradient(w, lam):
    r"""The subgradient $\lambda \operatorname{sign}(w)$ of the L1 penalty, with $\operatorname{sign}(0) = 0$.

    $$ \partial_i = \begin{cases} \operatorname{fl}_{32}(\lambda) & w_i > 0 \\
       -\operatorname{fl}_{32}(\lambda) & w_i < 0 \\ +0 & w_i = 0 \end{cases} $$

    Added to a weight's gradient, it is the "subgradient descent on the sparsity penalty" of network slimming.

    **Arguments:**

    - `w`: a float32 array, any shape, finite.
    - `lam`: the strength $\lambda$, a real number >= 0, rounded once to float32 (to nearest).

    **Returns:**

    A float32 array shaped like `w`, with values in
    $\{\operatorname{fl}_{32}(\lambda), -\operatorname{fl}_{32}(\lambda), +0\}$.

    !!! note
        `lam = 0.1` gives `0.1` rounded to float32 (`0.100000001490116...`), exactly what
        `0.1 * torch.sign(w)` gives on a float32 tensor. `-0.0` weights get `+0.0`; with `lam = 0` every entry
        is `+0.0`. A `lam` beyond the float32 range gives $\pm\infty$.
    """
    w = _arrays.finite_array("w", w)
    lam = validate.real("lam", lam, lo=0.0)
    return _signed(w, _to_float32(lam))


def l1_proximal(w, lr, lam):
    r"""One proximal step of the L1 penalty: soft thresholding by $\tau = \operatorname{fl}_{32}(\text{lr}\,\lambda)$.

    $$ \operatorname{prox}(w)_i = \operatorname{sign}(w_i)\max(|w_i| - \tau, 0) =
       \begin{cases} w_i - \tau & w_i > \tau \\ w_i + \tau & w_i < -\tau \\ +0 & |w_i| \le \tau \end{cases} $$

    The product $\text{lr} \cdot \lambda$ is taken in float64 and rounded once to float32; each kept weight is
    one float32 subtraction. Up to those two roundings it is the minimizer of
    $\tfrac12 \|v - w\|^2 + \text{lr}\,\lambda \|v\|_1$ (ISTA's shrinkage step).

    **Arguments:**

    - `w`: a float32 array, any shape, finite: the weights after the gradient step on the rest of the loss.
    - `lr`: the learning rate, a real number >= 0.
    - `lam`: the strength $\lambda$, a real number >= 0.

    **Returns:**

    A float32 array shaped like `w`.

    !!! note
        Defined everywhere, never NaN: at $w_i = 0$ and for $\tau = 0$ (then the step is the identity, except
        that `-0.0` becomes `+0.0`). A weight exactly at $\pm\tau$ becomes `+0.0`. A kept weight keeps its sign
        and never reaches 0 (the difference of two distinct floats is never 0), so $|\operatorname{prox}(w)_i|
        \le |w_i|$ always. A $\tau$ beyond the float32 range zeroes everything. Example: $\tau = 0.5$, and every
        zero is `+0.0`:

            >>> l1_proximal(np.float32([1.0, -0.75, 0.5, -0.25, -0.0]), 0.5, 1.0)
            array([ 0.5 , -0.25,  0.  ,  0.  ,  0.  ], dtype=float32)

    ??? cite "Parikh & Boyd, 2014"
        Proximal Algorithms. Foundations and Trends in Optimization 1(3). doi:10.1561/2400000003
    """
    w = _arrays.finite_array("w", w)
    lr = validate.real("lr", lr, lo=0.0)
    lam = validate.real("lam", lam, lo=0.0)
    tau = _to_float32(lr * lam)
    with np.errstate(over="ignore"):  # the branch not taken may overflow; it is discarded
        shrunk = np.where(w > tau, w - tau, np.where(w < -tau, w + tau, np.float32(0)))
    return np.asarray(shrunk, dtype=np.float32)


def group_lasso_penalty(w, lam, axis=0):
    r"""The group-lasso penalty $\lambda \sum_g \|w_g\|_2$ over the slices $w_g$ of `w` along `axis`.

    Group $g$ is `w` indexed by $g$ along `axis` (a filter, for `axis=0` of a convolution weight: SSL's
    filter-wise sparsity). Its norm $\|w_g\|_2$ is `lp_norm` (float32, exactly rounded), then

    $$ P = \operatorname{fl}_{32}\Big(\lambda \otimes_{64} \operatorname{exact\_sum}_g \|w_g\|_2\Big) $$

    **Arguments:**

    - `w`: a float32 array with at least one dimension, finite.
    - `lam`: the strength $\lambda$, a real number >= 0.
    - `axis`: the axis whose slices are the groups.

    **Returns:**

    A 0-d float32 array, >= 0. Its gradient is `group_lasso_penalty_vjp`.

    !!! note
        The norms are summed as the float32 values `lp_norm` returns (converted exactly to float64). A group
        norm beyond the float32 range is `inf` and makes the penalty `inf`, except for `lam = 0`, which always
        gives `+0.0`. Zero groups (along `axis`) give `+0.0`. Example: rows `[3, 4]` and `[0, 0.5]` with
        `lam = 2`, `axis=0`: norms 5 and 0.5, penalty $2 \cdot 5.5$:

            >>> group_lasso_penalty(np.float32([[3, 4], [0, 0.5]]), 2, axis=0)
            array(11., dtype=float32)

    ??? cite "Yuan & Lin, 2006; Wen et al., 2016"
        Model Selection and Estimation in Regression with Grouped Variables. Journal of the Royal Statistical
        Society B 68(1). doi:10.1111/j.1467-9868.2005.00532.x
        Learning Structured Sparsity in Deep Neural Networks. NeurIPS. arXiv:1608.03665
    """
    w = _arrays.finite_array("w", w)
    lam = validate.real("lam", lam, lo=0.0)
    norms, _ = _group_norms(w, axis)
    if lam == 0:
        return np.asarray(np.float32(0))
    total = np.float64(np.inf) if np.isinf(norms).any() else exact_sum(norms)
    return _to_float32(lam * total)


def group_lasso_penalty_vjp(grad, w, lam, axis=0):
    r"""The gradient of `group_lasso_penalty` with respect to `w`: each group's unit vector, times $c$.

    $$ c = \operatorname{fl}_{32}(g \otimes_{64} \lambda), \qquad
       \frac{\partial L}{\partial w_i} = \begin{cases} \big(w_i \oslash \|w_g\|_2\big) \otimes c & \|w_g\|_2 > 0 \\
       +0 & \|w_g\|_2 = 0 \end{cases} $$

    for $i$ in group $g$, with $\oslash, \otimes$ float32 division and multiplication in that order and
    $\|w_g\|_2$ the float32 norm of `lp_norm`. At a zero group the norm has no derivative; the subgradient
    chosen there is 0.

    **Arguments:**

    - `grad`: a 0-d float32 array, finite: the cotangent $g$ of the penalty.
    - `w`, `lam`, `axis`: as for `group_lasso_penalty`.

    **Returns:**

    A float32 array shaped like `w`, with $|\partial L / \partial w_i| \le |c|$ (the quotient is in $[-1, 1]$:
    a float32 norm is never below the magnitude of one of its elements).

    !!! note
        Every zero of the result is `+0.0`: at $w_i = \pm 0$ (also when $c = \pm\infty$, where the product
        would be NaN), wherever the quotient underflows, and when $c = 0$. A group whose norm is `inf` has
        quotients $\pm 0$ and so gets `+0.0`.
    """
    w = _arrays.finite_array("w", w)
    lam = validate.real("lam", lam, lo=0.0)
    norms, view = _group_norms(w, axis)
    grad = _arrays.shaped("grad", _arrays.finite_array("grad", grad), (), "the scalar penalty")
    c = _to_float32(grad.astype(np.float64) * lam)
    n = norms.reshape(view)
    unit = np.where(n > 0, w / np.where(n > 0, n, np.float32(1)), np.float32(0))
    with np.errstate(over="ignore", invalid="ignore"):  # 0 * inf is discarded below
        out = unit * c
    return np.where((unit == 0) | (out == 0), np.float32(0), out)


def group_lasso_proximal(w, lr, lam, axis=0):
    r"""One proximal step of the group-lasso penalty: block soft thresholding of each group along `axis`.

    With $\tau = \operatorname{fl}_{32}(\text{lr} \otimes_{64} \lambda)$ and $\|w_g\|_2$ the float32 norm of
    `lp_norm`:

    $$ \operatorname{prox}(w)_g = \begin{cases} w_g \otimes \big(1 \ominus \tau \oslash \|w_g\|_2\big) &
       \|w_g\|_2 > \tau \\ +0 & \|w_g\|_2 \le \tau \end{cases} $$

    ($\oslash, \ominus, \otimes$: float32 division, subtraction and multiplication, in that order.) It is
    $w_g \max(0, 1 - \tau / \|w_g\|_2)$: the whole group shrinks toward 0 by $\tau$ in norm, or vanishes.

    **Arguments:**

    - `w`: a float32 array with at least one dimension, finite.
    - `lr`: the learning rate, a real number >= 0.
    - `lam`: the strength $\lambda$, a real number >= 0.
    - `axis`: the axis whose slices are the groups.

    **Returns:**

    A float32 array shaped like `w`.

    !!! note
        The factor $1 \ominus \tau \oslash \|w_g\|_2$ is in $[0, 1]$, so no magnitude grows. Zero groups stay
        zero and every zero of the result is `+0.0` (including a product that underflows and `-0.0` inputs).
        A group norm of `inf` (beyond the float32 range) gives the factor 1: such a group is left unchanged,
        which is the formula evaluated on `lp_norm`'s value. $\tau = 0$ is the identity up to signed zeros.
        Example: $\tau = 2$, rows `[3, 4]` and `[1, 1]`: norms 5 and $\sqrt 2$; the first row is scaled by
        $1 \ominus 2 \oslash 5 = 0.6000000238$ (float32), the second vanishes:

            >>> group_lasso_proximal(np.float32([[3, 4], [1, 1]]), 1.0, 2.0, axis=0)
            array([[1.8000001, 2.4      ],
                   [0.       , 0.       ]], dtype=float32)

    ??? cite "Parikh & Boyd, 2014; Yuan & Lin, 2006"
        Proximal Algorithms. Foundations and Trends in Optimization 1(3). doi:10.1561/2400000003
    """
    w = _arrays.finite_array("w", w)
    lr = validate.real("lr", lr, lo=0.0)
    lam = validate.real("lam", lam, lo=0.0)
    norms, view = _group_norms(w, axis)
    tau = _to_float32(lr * lam)
    n = norms.reshape(view)
    keep = n > tau
    with np.errstate(over="ignore", invalid="ignore"):  # only for groups that are not kept (tau = inf)
        factor = np.float32(1) - tau / np.where(keep, n, np.float32(1))
        out = np.where(keep, w * factor, np.float32(0))
    return np.where(out == 0, np.float32(0), out)


def _one_or_many(name, w):
    """`w` as a list of checked float32 arrays, and whether it was a single array."""
    if isinstance(w, np.ndarray | np.generic):
        return [_arrays.finite_array(name, w)], True
    if isinstance(w, list | tuple):
        if len(w) == 0:
            raise ValueError(f"{name} must hold at least one array, got an empty {type(w).__name__}")
        return [_arrays.finite_array(f"{name}[{i}]", x) for i, x in enumerate(w)], False
    raise TypeError(f"{name} must be {validate.ARRAY_KIND} or a list of them, got {type(w).__name__}")


def _group_norms(w, axis):
    """The float32 L2 norm of each slice of `w` along `axis`, and the view shape that broadcasts them over `w`."""
    if w.ndim == 0:
        raise ValueError("w must have at least one dimension to be split into groups, got a 0-d array")
    axis = validate.axis("axis", axis, w.ndim)
    groups = w.shape[axis]
    rows = np.moveaxis(w, axis, 0).reshape(groups, math.prod(w.shape) // max(groups, 1))
    view = shapes.per_axis(w.ndim, axis)
    with np.errstate(over="ignore"):  # a norm beyond the float32 range is inf, by design
        return lp_norm(rows, 2, axis=1), view


def _signed(w, c):
    """`c` where `w > 0`, `-c` where `w < 0`, `+0.0` where `w` is zero or the value would be a zero."""
    out = np.where(w > 0, c, -c)
    return np.where((w == 0) | (out == 0), np.float32(0), out)


def _to_float32(x):
    """A float64 value (Python float or 0-d array) rounded once to float32, as a 0-d array; overflow gives inf."""
    with np.errstate(over="ignore"):
        return np.asarray(np.asarray(x, dtype=np.float64).astype(np.float32))
