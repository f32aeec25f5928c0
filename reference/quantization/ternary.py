r"""Ternary weights: Ternary Weight Networks (a fixed 0.7 mean|w| threshold) and Trained Ternary Quantization.

Both map each weight to one of three values: $\{-\alpha, 0, +\alpha\}$ (TWN) or $\{-W_n, 0, +W_p\}$ (TTQ).
Zeros of the output are always `+0.0`. No surveyed library implements TWN's $0.7 \cdot \operatorname{mean}|w|$
threshold; TTQ follows the authors' paper and code.
"""

from __future__ import annotations

import numpy as np

from reference import _arrays
from reference.common import validate
from reference.core.exact import exact_sum
from reference.quantization import _slices

__all__ = ["twn_params", "twn_ternarize", "twn_ternarize_vjp", "ttq_quantize", "ttq_quantize_vjp"]

F32 = np.float32
TWN_FACTOR = 0.7  # the float64 nearest 0.7 (0.6999999999999999555910790149937...)


def twn_params(w, *, axis=None):
    r"""TWN's threshold $\Delta$ and scale $\alpha$, per tensor or per channel.

    $$ \Delta = \operatorname{fl}_{32}\!\big(0.7 \cdot m\big), \quad
       m = \operatorname{fl}_{64}\!\Big(\frac{\operatorname{exact\_sum}(|w|)}{n}\Big), \qquad
       I_\Delta = \{ i : |w_i| > \Delta \}, \qquad
       \alpha = \operatorname{fl}_{32}\!\left( \frac{\operatorname{exact\_sum}_i\big(|w_i| \cdot [i \in I_\Delta]\big)}
       {|I_\Delta|} \right) $$

    $0.7 \cdot m$ is one float64 product of the float64 nearest 0.7 and the float64 mean $m$ (the exact sum
    rounded once, divided by $n$ in float64), then one rounding to float32. A weight is kept iff $|w_i| > \Delta$,
    strictly, comparing float32 values: the returned $\Delta$ is exactly the threshold used. $\alpha$'s sum is the
    exact sum of the kept magnitudes, rounded once to float64, divided by the kept count in float64, rounded once
    to float32.

    With `axis=k` every index along axis `k` is a slice of its own (the mean over all other axes); `axis=None`
    is one slice.

    **Arguments:**

    - `w`: a float32 array, finite, with at least one element.
    - `axis`: `None` or an axis of `w`.

    **Returns:**

    `(delta, alpha)`: two float32 arrays, shape `()` for `axis=None`, `(w.shape[axis],)` otherwise.

    !!! note
        $\Delta$ is rounded to float32 before the comparison, so a weight within half a float32 ulp above the
        exact $0.7 \operatorname{mean}|w|$ can sit on $\Delta$ and be pruned: `w = [0.1, 2.5, 0.79130435]` prunes
        its last element, which exact arithmetic (and torch's float32 `0.7 * w.abs().mean()`, one ulp lower)
        keeps. The rule is pinned so that the returned $\Delta$ reproduces the mask.

        A slice with nothing above $\Delta$ gets $\alpha = 0$. That is the all-zero slice, and slices of tiny
        subnormals where $\Delta$ rounds up onto them: `w = [1e-45]` has mean $1.4 \cdot 10^{-45}$, and
        $0.7$ of it rounds to the same subnormal, so nothing is strictly above it.

    Example: mean 0.5625, $\Delta = \operatorname{fl}_{32}(0.7 \cdot 0.5625)$, kept `[T, T, F, F]`, so
    $\alpha = 1$; `(delta, alpha)`:

        >>> twn_params(np.float32([1, -1, 0.25, 0]))
        (array(0.39375, dtype=float32), array(1., dtype=float32))

    ??? cite "Li et al., 2016"
        Ternary Weight Networks. arXiv:1605.04711 (Eq. 9 and 10: $\Delta^* \approx 0.7 \cdot E(|W|)$,
        $\alpha^* = \frac{1}{|I_\Delta|} \sum_{i \in I_\Delta} |W_i|$)
    """
    w, k = _slices.check_slices(w, axis, "the TWN threshold")
    delta, alpha, _ = _twn(w, k)
    return _slices.per_slice(delta, k), _slices.per_slice(alpha, k)


def twn_ternarize(w, *, axis=None):
    r"""Ternary Weight Networks: $w$ to $\{-\alpha, 0, +\alpha\}$ with TWN's threshold and scale.

    $$ w^t_i = \begin{cases} +\alpha & w_i > \Delta \\ 0 & |w_i| \le \Delta \\ -\alpha & w_i < -\Delta \end{cases} $$

    with $(\Delta, \alpha)$ = `twn_params(w, axis)` (broadcast along `axis`). The gradient is `twn_ternarize_vjp`.

    **Arguments:**

    - `w`: a float32 array, finite, with at least one element.
    - `axis`: `None` (one $\Delta, \alpha$) or an axis of `w` (one per index along it).

    **Returns:**

    A float32 array shaped like `w`; the zeros are `+0.0`.

    !!! note
        A weight exactly at $\pm\Delta$ is zeroed (the inequality is strict). Ternarizing twice is the identity
        on the result (every nonzero is $\pm\alpha$, and $0.7\alpha$ rounds below $\alpha$), except when
        $\alpha$ is the smallest subnormal $2^{-149}$.

    Example: `twn_params`' example; then mean 1.25, $\Delta = 0.875$, kept `[T, T, T, F]`, $\alpha = 5/3$:

        >>> twn_ternarize(np.float32([1, -1, 0.25, 0]))
        array([ 1., -1.,  0.,  0.], dtype=float32)
        >>> twn_ternarize(np.float32([3, 1, -1, 0]))
        array([ 1.6666666,  1.6666666, -1.6666666,  0.       ], dtype=float32)

    ??? cite "Li et al., 2016"
        Ternary Weight Networks. arXiv:1605.04711
    """
    w, k = _slices.check_slices(w, axis, "the TWN threshold")
    _, alpha, kept = _twn(w, k)
    a = _slices.expand(_slices.per_slice(alpha, k), w.ndim, k)
    return np.asarray(np.where(kept, np.where(w > 0, a, -a), F32(0)))


def twn_ternarize_vjp(grad, w, *, axis=None):
    r"""The gradient of `twn_ternarize` with respect to `w`: straight through, unchanged.

    $$ \frac{\partial L}{\partial w} = \frac{\partial L}{\partial w^t} $$

    TWN's Algorithm 1 computes the gradient with respect to the ternary weights and applies it to the
    full-precision weights (BinaryConnect's straight-through estimator); $\Delta$ and $\alpha$ are treated as
    constants.

    **Arguments:**

    - `grad`: a float32 array shaped like `w`, finite.
    - `w`, `axis`: as for `twn_ternarize`.

    **Returns:**

    A float32 array equal to `grad`, bit for bit (signed zeros included).

    ??? cite "Li et al., 2016"
        Ternary Weight Networks. arXiv:1605.04711, Algorithm 1.
    """
    w, _ = _slices.check_slices(w, axis, "the TWN threshold")
    grad = _arrays.shaped("grad", _arrays.finite_array("grad", grad), w.shape, "w")
    return np.array(grad, copy=True)


def ttq_quantize(w, wp, wn, *, t=0.05):
    r"""Trained Ternary Quantization: $w$ to $\{-W_n, 0, +W_p\}$ with learned scales and a threshold $t \max|w|$.

    $$ \Delta = \operatorname{fl}_{32}\!\big(t \cdot \max_i |w_i|\big), \qquad
       w^t_i = \begin{cases} +W_p & w_i > \Delta \\ 0 & |w_i| \le \Delta \\ -W_n & w_i < -\Delta \end{cases} $$

    $t \cdot \max|w|$ is one float64 product (of the Python float `t` and the float32 maximum) rounded once to
    float32; the comparisons are in float32. One $\Delta$, $W_p$ and $W_n$ per tensor (per layer, as the paper).
    The gradients are `ttq_quantize_vjp`.

    **Arguments:**

    - `w`: a float32 array, finite, with at least one element. (The paper first divides $w$ by $\max|w|$; that
      is the caller's choice and changes $w^t$ only through rounding, since $\Delta$ scales with $\max|w|$.)
    - `wp`, `wn`: float32 arrays of shape `()`, finite, $> 0$: the positive and negative scales (both magnitudes).
    - `t`: the threshold factor, a real in $[0, 1]$; the paper uses 0.05.

    **Returns:**

    A float32 array shaped like `w`; the zeros are `+0.0`.

    !!! note
        $|w_i| = \Delta$ exactly gives 0 (the paper's $|w| \le \Delta$; the authors' TensorFlow code leaves such a
        weight at $\pm 1$, a boundary slip). `t = 0` zeroes only the zeros; `t = 1` zeroes everything.

    Example: $W_p = 2$, $W_n = 3$, `t = 0.05`: $\Delta = 0.05$, and $0.05$ itself is not above it:

        >>> ttq_quantize(np.float32([1, -0.5, 0.05, -0.04]), np.float32(2), np.float32(3), t=0.05)
        array([ 2., -3.,  0.,  0.], dtype=float32)

    ??? cite "Zhu et al., 2017"
        Trained Ternary Quantization. ICLR. arXiv:1612.01064 (Eq. 6 and the threshold $\Delta_l = t \times
        \max(|\tilde{w}|)$)
    """
    w, wp, wn, delta = _check_ttq(w, wp, wn, t)
    return np.asarray(np.where(w > delta, wp, np.where(w < -delta, -wn, F32(0))))


def ttq_quantize_vjp(grad, w, wp, wn, *, t=0.05):
    r"""The gradients of `ttq_quantize` with respect to $w$, $W_p$ and $W_n$.

    With $I_p = \{i : w_i > \Delta\}$, $I_n = \{i : w_i < -\Delta\}$ and the cotangent $g$:

    $$ \frac{\partial L}{\partial W_p} = \sum_{i \in I_p} g_i, \qquad
       \frac{\partial L}{\partial W_n} = -\sum_{i \in I_n} g_i, \qquad
       \frac{\partial L}{\partial w_i} = \begin{cases} W_p \, g_i & i \in I_p \\ g_i & |w_i| \le \Delta \\
       W_n \, g_i & i \in I_n \end{cases} $$

    The gradient to $w$ is the paper's Eq. 8: the straight-through gradient scaled by the magnitude of the value
    the weight was assigned. The scale gradients are the chain rule of the forward pass ($w^t_i = -W_n$ on
    $I_n$), which is what the authors' TensorFlow code computes; the paper's Eq. 7 prints
    $\partial L / \partial W_n = \sum_{i \in I_n} g_i$ without the minus sign.

    Rounding: $W_p g_i$ and $W_n g_i$ are float32 products; each scale gradient is the exact sum over the whole
    tensor (`where(w > Δ, g, +0.0)` and `where(w < -Δ, -g, +0.0)`), rounded once to float64, then to float32.

    **Arguments:**

    - `grad`: a float32 array shaped like `w`, finite.
    - `w`, `wp`, `wn`, `t`: as for `ttq_quantize`.

    **Returns:**

    `(grad_w, grad_wp, grad_wn)`: a float32 array shaped like `w` and two float32 arrays of shape `()`. An empty
    region gives a scale gradient of `+0.0`; a product or sum beyond the float32 range becomes $\pm\infty$.

    Example: $W_p = 2$, $W_n = 3$; `(grad_w, grad_wp, grad_wn)`:

        >>> ttq_quantize_vjp(np.float32([1, 1, 1, 1]), np.float32([1, -0.5, 0.05, -0.04]), np.float32(2), np.float32(3))
        (array([2., 3., 1., 1.], dtype=float32), array(1., dtype=float32), array(-1., dtype=float32))

    ??? cite "Zhu et al., 2017"
        Trained Ternary Quantization. ICLR. arXiv:1612.01064 (Eq. 7 and 8)
    """
    w, wp, wn, delta = _check_ttq(w, wp, wn, t)
    grad = _arrays.shaped("grad", _arrays.finite_array("grad", grad), w.shape, "w")
    pos, neg = w > delta, w < -delta
    with np.errstate(over="ignore"):  # a gradient beyond the float32 range becomes +-inf
        grad_w = np.where(pos, wp * grad, np.where(neg, wn * grad, grad))
        grad_wp = exact_sum(np.where(pos, grad, F32(0))).astype(np.float32)
        grad_wn = exact_sum(np.where(neg, -grad, F32(0))).astype(np.float32)
    return np.asarray(grad_w), np.asarray(grad_wp), np.asarray(grad_wn)


# ---- private helpers ----------------------------------------------------------------------------------------


def _twn(w, k):
    """Per-slice delta and alpha (float32, shape (C,) with C = 1 for the whole tensor) and the kept mask."""
    a = np.abs(w)
    rows = _slices.rows(a, k)
    delta = (np.float64(TWN_FACTOR) * (exact_sum(rows, axis=1) / np.float64(rows.shape[1]))).astype(np.float32)
    kept = a > _slices.expand(_slices.per_slice(delta, k), w.ndim, k)
    total = exact_sum(_slices.rows(np.where(kept, a, F32(0)), k), axis=1)
    count = _slices.rows(kept, k).sum(axis=1)
    alpha = (total / np.maximum(count, 1).astype(np.float64)).astype(np.float32)
    return delta, alpha, kept


def _check_ttq(w, wp, wn, t):
    t = validate.fraction("t", t)
    w = _arrays.finite_array("w", w)
    if w.size == 0:
        raise ValueError(f"w has shape {w.shape}: the TTQ threshold t * max|w| needs at least one element")
    wp = _check_scale("wp", wp)
    wn = _check_scale("wn", wn)
    delta = (np.float64(t) * np.abs(w).max().astype(np.float64)).astype(np.float32)
    return w, wp, wn, delta


def _check_scale(name, s):
    s = _arrays.shaped(name, _arrays.finite_array(name, s), (), "a per-tensor scale")
    return _arrays.positive(name, s)
