r"""DoReFa-Net quantizers: $k$-bit weights through $\tanh$, $k$-bit activations clipped to $[0, 1]$.

Both are built on the paper's uniform quantizer of $r \in [0, 1]$ onto $n + 1$ levels, $n = 2^k - 1$:

$$ \operatorname{quantize}_k(r) = \frac{\operatorname{rne}(n r)}{n} $$

with straight-through gradients. $\tanh$ is evaluated in float64 and rounded once to float32; for a float32
input that single rounding is the float32 nearest the exact $\tanh$, on every backend (see `dorefa_weight`).
"""

from __future__ import annotations

import numpy as np

from reference import _arrays
from reference.common import validate
from reference.core.exact import exact_sum

__all__ = ["dorefa_weight", "dorefa_weight_vjp", "dorefa_activation", "dorefa_activation_vjp"]

F32 = np.float32


def dorefa_weight(w, bits):
    r"""DoReFa weight quantization: $\tanh$, normalise to $[0, 1]$, quantize to $k$ bits, map back to $[-1, 1]$.

    For $k \ge 2$, with $n = 2^k - 1$, $t = \operatorname{fl}_{32}(\tanh w)$ and $m = \max_j |t_j|$:

    $$ r = \frac{t}{2m} + \frac12, \qquad c = \operatorname{rne}(n r), \qquad
       w_q = \frac{2c - n}{n} \;\Big(= 2 \operatorname{quantize}_k(r) - 1\Big) $$

    Every rounding, in order: $t$ is float64 $\tanh$ rounded once to float32; $2m$ is exact; $t / (2m)$ is one
    float32 division; $+\frac12$ one float32 addition; $n r$ one float32 product; $\operatorname{rne}$ rounds
    half to even; $2c - n$ is an exact integer; the final division by $n$ is the only rounding of the level, so
    $w_q$ is the float32 nearest to the real level $2c/n - 1$, and the levels are symmetric about 0. The
    composition $2 \cdot \operatorname{fl}(c/n) - 1$ that tensorpack and Distiller evaluate rounds twice and
    is not: for $k = 2$ it gives $-0.3333333$ and $0.33333337$ where this gives $\mp 0.33333334$.

    For $k = 1$ the paper's binary case: $w_q = E \cdot \operatorname{sign}(w)$ with
    $E = \operatorname{fl}_{32}(\operatorname{fl}_{64}(\operatorname{exact\_sum}(|w|) / n))$ and $\operatorname{sign}(w) = +1$
    for $w \ge 0$.

    **Arguments:**

    - `w`: a float32 array, any shape (empty included), finite.
    - `bits`: the bit width $k$, an int in `[1, 16]`.

    **Returns:**

    A float32 array shaped like `w`; for $k \ge 2$ every element is one of the $2^k$ levels $(2c - n)/n$,
    $c = 0, \dots, n$.

    !!! note "tanh, exactly"
        $t$ is the float32 nearest the exact $\tanh w$ (ties cannot occur). It is computed as float64 $\tanh$
        rounded to float32, which is that value whenever the float64 $\tanh$ errs by less than 5 float64 ulps:
        over all $2^{32}$ float32 inputs, the exact $\tanh w$ comes no closer to a float32 rounding midpoint than
        5.04 float64 ulps (at $w = \pm 0.0014914835$; next 9.14 ulps at $\pm 0.46488494$). NumPy's and torch's
        CPU float64 $\tanh$ differ in the last bit for 2.4% of all float32 inputs (about 20% of normal(0, 1)
        samples); after the rounding they agree on every input.

    !!! note "Zeros, ties, degenerate input"
        $n$ is odd, so there is no zero level: $w = \pm 0$ gives $r = \frac12$, $n r$ a .5 tie that rounds to
        the even $c = (n + 1)/2$, and $w_q = +1/n$. If every $w$ is $\pm 0$ ($m = 0$) the normalised $r$ is
        defined as $\frac12$ everywhere, so $w_q = +1/n$ (tensorpack's code gives NaN). For $k = 1$, $-0.0$ maps
        to $+E$; an $E$ that rounds to $0$ gives $+0.0$ and $-0.0$. Non-finite `w` raises `ValueError`.

    Example: $k = 2$: $t = [0, 0.46211717, -0.7615942, 0.9950548]$, $r = [0.5, 0.7322069, 0.11731043, 1]$,
    $3r$ rounds to $c = [2, 2, 0, 3]$, $w_q = [1/3, 1/3, -1, 1]$:

        >>> dorefa_weight(np.float32([0.0, 0.5, -1.0, 3.0]), 2)
        array([ 0.33333334,  0.33333334, -1.        ,  1.        ], dtype=float32)

    ??? cite "Zhou et al., 2016"
        DoReFa-Net: Training Low Bitwidth Convolutional Neural Networks with Low Bitwidth Gradients.
        arXiv:1606.06160
    """
    bits = _check_bits(bits)
    w = _arrays.finite_array("w", w)
    if w.size == 0:
        return w.copy()
    if bits == 1:
        e = _mean_abs(w)
        return np.where(w >= 0, e, -e)
    n = F32(2**bits - 1)
    t = _tanh32(w)
    m = np.max(np.abs(t))
    r = _normalise(t, m)
    c = np.rint(n * r)
    return np.asarray((F32(2) * c - n) / n)


def dorefa_weight_vjp(grad, w, bits):
    r"""The gradient of `dorefa_weight` with respect to `w`: straight through the rounding, exact elsewhere.

    For $k \ge 2$ the rounding passes the gradient unchanged and everything else is differentiated as autograd
    differentiates the paper's formula, including the normalisation by $m = \max_j |t_j|$ (tensorpack and
    Distiller do not stop its gradient). With $g$ the cotangent:

    $$ \frac{\partial L}{\partial t_i} = \frac{g_i}{m}
       + [\,|t_i| = m\,]\, \frac{\operatorname{sign}(t_i)}{K} \cdot
       \Big(-\frac{\sum_j g_j t_j}{m^2}\Big), \qquad
       \frac{\partial L}{\partial w_i} = \frac{\partial L}{\partial t_i}\,(1 - t_i^2) $$

    where $K$ is the number of elements with $|t_j| = m$: the gradient of the max is split evenly among ties,
    as torch and TensorFlow split it. All of it is evaluated in float64 from the float32 $g$, $t$, $m$, in this
    order: $\sum_j g_j t_j$ by `exact_sum` of the exact products; $m \cdot m$ (exact);
    $d = -\text{sum} / (m m)$; $d / K$; $\pm$ by the sign of $t_i$; $g_i / m$; their sum; $t_i t_i$ (exact);
    $1 - t_i t_i$; the product; then one rounding to float32. No intermediate overflows in float64.

    For $k = 1$ the gradient is the identity (the paper's straight-through estimator, $E$ held constant):
    $\partial L / \partial w = g$.

    **Arguments:**

    - `grad`: a float32 array shaped like `w`, finite: the cotangent $g$ of the output.
    - `w`, `bits`: as for `dorefa_weight`.

    **Returns:**

    A float32 array shaped like `w`.

    !!! note
        $1 - t^2$ is computed from the float32 $t$, as autograd's $\tanh$ backward does from the output:
        where $|w|$ is large enough that $t = \pm 1$ the gradient is exactly $+0.0$ or $-0.0$. If every $w$ is
        $\pm 0$ ($m = 0$, see `dorefa_weight`) the gradient is $+0.0$ everywhere. A result beyond the float32
        range is $\pm\infty$.

    Example: $k = 2$: $t = [0, 0.9950548]$, $m = t_1$, $K = 1$; $\partial L/\partial t = [1/m, 1/m - m/m^2]$:

        >>> dorefa_weight_vjp(np.float32([1.0, 1.0]), np.float32([0.0, 3.0]), 2)
        array([1.0049698, 0.       ], dtype=float32)
    """
    bits = _check_bits(bits)
    w = _arrays.finite_array("w", w)
    grad = _arrays.shaped("grad", _arrays.finite_array("grad", grad), w.shape, "w")
    if bits == 1:
        return grad.copy()
    t = _tanh32(w)
    m = np.max(np.abs(t)) if t.size else F32(0)
    if m == 0:
        return np.zeros(w.shape, dtype=F32)
    g64, t64, m64 = grad.astype(np.float64), t.astype(np.float64), np.float64(m)
    d = -exact_sum(g64 * t64) / (m64 * m64)
    at_max = np.abs(t) == m
    share = d / np.float64(np.count_nonzero(at_max))
    direct = g64 / m64
    dt = np.where(at_max, direct + np.where(t64 > 0, share, -share), direct)
    with np.errstate(over="ignore"):  # beyond the float32 range: +-inf, as stated
        return np.asarray((dt * (1 - t64 * t64)).astype(F32))


def dorefa_activation(x, bits):
    r"""DoReFa activation quantization: clip to $[0, 1]$, then $k$ bits.

    $$ y = \operatorname{clip}(x, 0, 1), \qquad a_q = \frac{\operatorname{rne}(n y)}{n}, \qquad n = 2^k - 1 $$

    $n y$ is one float32 product, $\operatorname{rne}$ rounds half to even, and the division by $n$ is one
    float32 division: $a_q$ is the float32 nearest the level $c / n$.

    **Arguments:**

    - `x`: a float32 array, any shape (empty included), finite.
    - `bits`: the bit width $k$, an int in `[1, 16]`.

    **Returns:**

    A float32 array shaped like `x`, every element one of the $2^k$ levels $c / n$ in $[0, 1]$.

    !!! note
        Every $x \le 0$, $-0.0$ included, gives $+0.0$; every $x \ge 1$ gives $1$. Ties go to the even code:
        $k = 2$, $x = 0.5$: $3 \cdot 0.5 = 1.5 \to 2$, so $a_q = 2/3$. Non-finite `x` raises `ValueError`.

    Example: $k = 2$: $3y = [0, 0.6, 1.5, 2.7, 3]$ rounds to $[0, 1, 2, 3, 3]$, so $a_q = [0, 1/3, 2/3, 1, 1]$:

        >>> dorefa_activation(np.float32([-1.0, 0.2, 0.5, 0.9, 2.0]), 2)
        array([0.        , 0.33333334, 0.6666667 , 1.        , 1.        ], dtype=float32)

    ??? cite "Zhou et al., 2016"
        DoReFa-Net: Training Low Bitwidth Convolutional Neural Networks with Low Bitwidth Gradients.
        arXiv:1606.06160
    """
    bits = _check_bits(bits)
    x = _arrays.finite_array("x", x)
    n = F32(2**bits - 1)
    return np.asarray(np.rint(n * _clip01(x)) / n)


def dorefa_activation_vjp(grad, x, bits):
    r"""The straight-through gradient of `dorefa_activation`: the gradient of the clip, inclusive at both ends.

    $$ \frac{\partial L}{\partial x} = \begin{cases} g & 0 \le x \le 1 \\ +0 & \text{otherwise} \end{cases} $$

    **Arguments:**

    - `grad`: a float32 array shaped like `x`, finite: the cotangent $g$.
    - `x`, `bits`: as for `dorefa_activation`.

    **Returns:**

    A float32 array shaped like `x`: `where(0 <= x <= 1, grad, +0.0)`. $x = 0$, $x = -0.0$ and $x = 1$ pass
    their gradient (as `torch.clamp` and TensorFlow's `clip_by_value` do); $x = 1.0000001$ does not.
    """
    bits = _check_bits(bits)
    x = _arrays.finite_array("x", x)
    grad = _arrays.shaped("grad", _arrays.finite_array("grad", grad), x.shape, "x")
    return np.where((x >= 0) & (x <= 1), grad, F32(0))


def _check_bits(bits):
    return validate.integer("bits", bits, lo=1, hi=16)


def _tanh32(w):
    """The float32 nearest tanh(w): float64 tanh rounded once (exact for float32 w; see `dorefa_weight`)."""
    return np.tanh(w.astype(np.float64)).astype(F32)


def _normalise(t, m):
    """r = t / (2m) + 1/2 in float32; r = 1/2 everywhere when m = 0 (every t is +-0)."""
    den = F32(2) * m if m > 0 else F32(1)
    return t / den + F32(0.5)


def _mean_abs(w):
    return F32(exact_sum(np.abs(w)) / np.float64(w.size))


def _clip01(x):
    """clip(x, 0, 1) with x <= 0 (-0.0 included) giving +0.0."""
    return np.where(x > 0, np.minimum(x, F32(1)), F32(0))
