r"""PACT: activations clipped to a learned level $\alpha$, then quantized to $k$ bits, with the gradient to $\alpha$."""

from __future__ import annotations

import numpy as np

from reference import _arrays
from reference.common import validate
from reference.core.exact import exact_sum

__all__ = ["pact_quantize", "pact_quantize_vjp"]

F32 = np.float32
TINY = F32(2.0**-126)  # the smallest normal float32: the step s must be at least this


def pact_quantize(x, alpha, bits):
    r"""PACT activation quantization: clip to $[0, \alpha]$, quantize to $k$ bits with step $s = \alpha / n$.

    $$ s = \frac{\alpha}{n}, \quad n = 2^k - 1, \qquad y = \operatorname{clip}(x, 0, \alpha), \qquad
       y_q = \operatorname{rne}\!\Big(\frac{y}{s}\Big) \cdot s $$

    Every rounding, in order: $s$ is one float32 division, computed once; $y$ is exact; $y / s$ is one float32
    division per element (never a multiplication by $1/s$); $\operatorname{rne}$ rounds half to even; the
    product with $s$ is one float32 rounding.

    **Arguments:**

    - `x`: a float32 array, any shape (empty included), finite.
    - `alpha`: a 0-d float32 array, the clipping level, finite and > 0, with a step $s = \alpha / n$ that is a
      normal float32 ($s \ge 2^{-126}$; a subnormal step would lose the precision that makes
      $\operatorname{rne}(\alpha / s) = n$), and a top level $n \cdot s$ that is finite.
    - `bits`: the bit width $k$, an int in `[1, 16]`.

    **Returns:**

    A float32 array shaped like `x`, every element one of the $2^k$ levels $c \cdot s$, $c = 0, \dots, n$.

    !!! note
        Every $x \le 0$ ($-0.0$ included) gives $+0.0$; every $x \ge \alpha$ gives the top level $n \cdot s$,
        which is $\alpha$ only up to the rounding of $s$: for $k = 2$ about 15% of random $\alpha$ give
        $3 \cdot \operatorname{fl}(\alpha / 3) \ne \alpha$, half of them one ulp above $\alpha$.
        Ties round to even: $\alpha = 3$, $k = 2$ ($s = 1$), $x = 1.5 \to 2$. Non-finite `x` or `alpha`,
        `alpha <= 0`, a step below $2^{-126}$ and an $\alpha$ so close to the float32 maximum
        that the top level $n \cdot s$ overflows (e.g. $\alpha = 3.4028235 \cdot 10^{38}$, $k = 5$) raise
        `ValueError`.

    Example: $\alpha = 3$, $k = 2$ ($s = 1$); 1.5 and 2.5 round to even:

        >>> pact_quantize(np.float32([-1.0, 0.4, 1.5, 2.5, 7.0]), np.float32(3), 2)
        array([0., 0., 2., 2., 3.], dtype=float32)

    ??? cite "Choi et al., 2018"
        PACT: Parameterized Clipping Activation for Quantized Neural Networks. arXiv:1805.06085
    """
    x, a, s = _check(x, alpha, bits)
    y = _clip(x, a)
    return np.asarray(np.rint(y / s) * s)


def pact_quantize_vjp(grad, x, alpha, bits):
    r"""The gradients of `pact_quantize` with respect to `x` and `alpha` (the paper's straight-through estimator).

    $$ \frac{\partial L}{\partial x_i} = \begin{cases} g_i & 0 \le x_i \le \alpha \\ +0 & \text{otherwise}
       \end{cases}, \qquad
       \frac{\partial L}{\partial \alpha} = \operatorname{fl}_{32}\Big(\operatorname{exact\_sum}_{x_i \ge \alpha}
       g_i\Big) $$

    The rounding passes the gradient unchanged and $\alpha$ is not differentiated through the step $s$: the
    paper's $\partial y_q / \partial \alpha = [x \ge \alpha]$. The $x$ pass region is inclusive at both ends
    ($x = -0.0$, $0$ and $\alpha$ pass); the $\alpha$ region includes $x = \alpha$, so an element exactly at
    $\alpha$ sends its gradient to both. The sum is the exact sum of those gradients (the others count as $+0$),
    rounded once to float64, then to float32.

    **Arguments:**

    - `grad`: a float32 array shaped like `x`, finite: the cotangent $g$.
    - `x`, `alpha`, `bits`: as for `pact_quantize`.

    **Returns:**

    `(grad_x, grad_alpha)`: a float32 array shaped like `x`, and a 0-d float32 array ($+0.0$ for an empty `x`).

    Example: $\alpha = 3$; `x` passes on $[0, \alpha)$, and `grad_alpha` collects $4 + 8$ from $x \ge \alpha$:

        >>> pact_quantize_vjp(np.float32([1, 2, 4, 8]), np.float32([-1.0, 0.0, 3.0, 7.0]), np.float32(3), 2)
        (array([0., 2., 4., 0.], dtype=float32), array(12., dtype=float32))
    """
    x, a, _ = _check(x, alpha, bits)
    grad = _arrays.shaped("grad", _arrays.finite_array("grad", grad), x.shape, "x")
    grad_x = np.where((x >= 0) & (x <= a), grad, F32(0))
    clipped = np.where(x >= a, grad, F32(0))
    return grad_x, np.asarray(exact_sum(clipped).astype(F32))


def _clip(x, a):
    """clip(x, 0, alpha) with x <= 0 (-0.0 included) giving +0.0."""
    return np.where(x > 0, np.minimum(x, a), F32(0))


def _check(x, alpha, bits):
    bits = validate.integer("bits", bits, lo=1, hi=16)
    x = _arrays.finite_array("x", x)
    a = _arrays.shaped("alpha", _arrays.finite_array("alpha", alpha), (), "PACT's single clipping level")
    a = _arrays.positive("alpha", a)
    n = F32(2**bits - 1)
    s = a / n
    if s < TINY:
        raise ValueError(
            f"alpha / (2**bits - 1) must be a normal float32 (>= 2**-126), got {float(s)!r} for "
            f"alpha={float(a)!r}, bits={bits}"
        )
    with np.errstate(over="ignore"):
        top = n * s
    if not np.isfinite(top):
        raise ValueError(
            f"alpha is too large: the top level (2**bits - 1) * (alpha / (2**bits - 1)) overflows float32 "
            f"for alpha={float(a)!r}, bits={bits}"
        )
    return x, a, s
