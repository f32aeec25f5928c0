r"""Binary weights and activations: sign binarization, BinaryConnect, XNOR-Net / BWN scaling, straight-through gradients.

One sign rule everywhere: $\operatorname{sign}(0) = +1$, so the output is always exactly $\pm 1$ (or $\pm\alpha$).
`-0.0` is a zero, so it maps to $+1$ too. `torch.sign` and `np.sign` map 0 to 0; BNN, Distiller, Brevitas and
QKeras map it to $+1$, as here.
"""

from __future__ import annotations

import numpy as np

from reference import _arrays
from reference.common import checks, validate
from reference.core.exact import exact_sum
from reference.core.random import uniform
from reference.quantization import _slices

__all__ = [
    "binarize",
    "binarize_vjp",
    "binary_connect",
    "binary_connect_vjp",
    "xnor_scale",
    "xnor_binarize",
    "xnor_binarize_vjp",
]

STES = ("identity", "clipped")
F32 = np.float32


def binarize(x, *, ste="clipped"):
    r"""Sign binarization with $\operatorname{sign}(0) = +1$.

    $$ b(x) = \begin{cases} +1 & x \ge 0 \\ -1 & x < 0 \end{cases} $$

    **Arguments:**

    - `x`: a float32 array, any shape (empty included), finite.
    - `ste`: the straight-through gradient, `"clipped"` (default, BNN) or `"identity"`; see `binarize_vjp`.
      It does not change the forward value.

    **Returns:**

    A float32 array shaped like `x`, every element exactly `+1.0` or `-1.0`.

    !!! note
        `0.0 -> +1`, `-0.0 -> +1` (it is a zero, not a negative number), `-1.4e-45 -> -1`. Non-finite `x` raises
        `ValueError`: $\pm\infty$ would have an obvious sign, but its clipped gradient is meaningless and NaN has
        no sign at all. `torch.sign(0)` is `0`, so `torch.sign` differs from this on exactly the zeros.

    Example: both zeros give $+1$:

        >>> binarize(np.float32([-2.5, -0.0, 0.0, 0.3]))
        array([-1.,  1.,  1.,  1.], dtype=float32)

    ??? cite "Hubara et al., 2016"
        Binarized Neural Networks: Training Deep Neural Networks with Weights and Activations Constrained to +1
        or -1. arXiv:1602.02830
    """
    validate.choice("ste", ste, STES)
    x = _arrays.finite_array("x", x)
    return _sign(x)


def binarize_vjp(grad, x, *, ste="clipped"):
    r"""The straight-through gradient of `binarize` with respect to `x`.

    $$ \text{clipped: } \frac{\partial L}{\partial x} = g \cdot \mathbb{1}_{|x| \le 1}, \qquad
       \text{identity: } \frac{\partial L}{\partial x} = g $$

    The clipped estimator is the gradient of $\operatorname{hardtanh}(x) = \operatorname{clip}(x, -1, 1)$, BNN's
    choice; the pass region is inclusive: $x = \pm 1$ passes its gradient, $x = 1.0000001$ does not.

    **Arguments:**

    - `grad`: a float32 array shaped like `x`, finite: the cotangent $g$ of the output.
    - `x`, `ste`: as for `binarize`.

    **Returns:**

    A float32 array shaped like `x`: `where(pass, grad, +0.0)` (`grad` unchanged, signed zeros included, where it
    passes).

    ??? cite "Hubara et al., 2016; Bengio et al., 2013"
        Binarized Neural Networks (arXiv:1602.02830), Section 1.1 (the "straight-through estimator" with
        $1_{|r| \le 1}$); Estimating or Propagating Gradients Through Stochastic Neurons (arXiv:1308.3432).
    """
    validate.choice("ste", ste, STES)
    x = _arrays.finite_array("x", x)
    grad = _check_grad(grad, x, "x")
    return np.where(_passes(x, ste), grad, F32(0))


def binary_connect(w, *, stochastic=False, key=None, ste="identity"):
    r"""BinaryConnect weight binarization, deterministic or stochastic.

    $$ \text{deterministic: } w_b = b(w), \qquad
       \text{stochastic: } w_b = \begin{cases} +1 & u < \sigma(w) \\ -1 & \text{otherwise} \end{cases}, \quad
       \sigma(w) = \operatorname{clip}\!\left(\tfrac{w + 1}{2}, 0, 1\right) $$

    $b$ is `binarize` ($b(0) = +1$); $u$ is `uniform(key, w.shape)`, the float32 multiple of $2^{-24}$ in
    $[0, 1)$ drawn for each flat index. The comparison $u < (w + 1)/2$ is evaluated exactly as $w > 2u - 1$:
    $2u - 1$ is exact in float32 (a multiple of $2^{-23}$ in $[-1, 1)$), so no rounding of the hard sigmoid can
    move a decision. $P(w_b = +1) = \lceil 2^{24} \sigma(w) \rceil / 2^{24}$, within $2^{-24}$ of $\sigma(w)$.

    **Arguments:**

    - `w`: a float32 array, any shape (empty included), finite.
    - `stochastic`: a bool.
    - `key`: a random key (`make_key(seed)`) when `stochastic`, else `None`.
    - `ste`: the straight-through gradient, `"identity"` (default, the paper's) or `"clipped"`; see
      `binary_connect_vjp`. It does not change the forward value.

    **Returns:**

    A float32 array shaped like `w` of `+1.0` and `-1.0`.

    !!! note
        Stochastic: $w \ge 1$ always gives $+1$, $w \le -1$ always $-1$, $w = 0$ gives $+1$ exactly when $u < 0.5$.
        `stochastic=True` without a key, or a key with `stochastic=False`, raises `ValueError`.

    Example: deterministic, the sign with $\operatorname{sign}(0) = +1$:

        >>> binary_connect(np.float32([-0.5, 0.0, 2.0]))
        array([-1.,  1.,  1.], dtype=float32)

    Stochastic with $u = [0.2, 0.6, 0.99]$, $w = [-0.5, 0.0, 0.99]$ is compared with $2u - 1 = [-0.6, 0.2, 0.98]$
    and gives `[1, -1, 1]`.

    ??? cite "Courbariaux et al., 2015"
        BinaryConnect: Training Deep Neural Networks with binary weights during propagations. NeurIPS.
        arXiv:1511.00363
    """
    stochastic, key, ste = checks.binary_connect(stochastic, key, ste, STES)
    w = _arrays.finite_array("w", w)
    return _connect(w, stochastic, key)


def binary_connect_vjp(grad, w, *, stochastic=False, key=None, ste="identity"):
    r"""The straight-through gradient of `binary_connect` with respect to `w`.

    $$ \text{identity: } \frac{\partial L}{\partial w} = g, \qquad
       \text{clipped: } \frac{\partial L}{\partial w} = g \cdot \mathbb{1}_{|w| \le 1} $$

    BinaryConnect applies the gradient computed for $w_b$ to the real-valued $w$ unchanged (and clips $w$ to
    $[-1, 1]$ in the optimizer step, which is not part of the gradient). The stochastic draw does not change the
    gradient.

    **Arguments:**

    - `grad`: a float32 array shaped like `w`, finite.
    - the rest: as for `binary_connect`.

    **Returns:**

    A float32 array shaped like `w`: `where(pass, grad, +0.0)`.

    ??? cite "Courbariaux et al., 2015"
        BinaryConnect (arXiv:1511.00363), Algorithm 1.
    """
    stochastic, key, ste = checks.binary_connect(stochastic, key, ste, STES)
    w = _arrays.finite_array("w", w)
    grad = _check_grad(grad, w, "w")
    return np.where(_passes(w, ste), grad, F32(0))


def xnor_scale(w, *, axis=None):
    r"""The XNOR-Net / BWN scale: the mean absolute value, per tensor or per output channel.

    $$ \alpha = \operatorname{fl}_{32}\!\left(\operatorname{fl}_{64}\!\left(\frac{\operatorname{exact\_sum}(|w|)}{n}
       \right)\right) $$

    With `axis=k`, one $\alpha_c$ per index $c$ along axis `k`, the mean over every other axis (for a conv
    weight `(out, in, kh, kw)`, `axis=0` gives XNOR-Net's one scale per filter). The sum is the exact sum over the
    slice, rounded once to float64, divided by $n$ in float64 and rounded once to float32.

    **Arguments:**

    - `w`: a float32 array, finite, with at least one element.
    - `axis`: `None` (per tensor) or an axis of `w` (per channel; negative counts from the end).

    **Returns:**

    A float32 array: shape `()` for `axis=None`, `(w.shape[axis],)` otherwise. $\alpha \ge 0$, and $\alpha = 0$
    only for an all-zero slice (or one whose mean underflows below half the smallest subnormal).

    !!! note
        An empty `w` raises `ValueError` (the mean of nothing is undefined; with `axis=k` every channel must have
        an element).

    !!! note "The default is one scale per tensor; XNOR-Net's is one per filter"
        XNOR-Net (and its BWN) estimates one $\alpha$ per output filter: `axis=0` for a `(out, in, kh, kw)` conv
        or `(out, in)` linear weight. The default `axis=None` is one $\alpha$ for the whole tensor, because it
        needs no assumption about which axis holds the filters (a 1-D weight has none, and layouts put them on
        different axes); pass the filter axis for the paper's scale. pqref's training layer (the XNOR recipe in
        `torch_backend.nn`) does, with `axis=0`.

    Example: one $\alpha$ per row (`axis=0`), or one for the whole tensor:

        >>> w = np.float32([[1, -2], [0.5, 0.5]])
        >>> xnor_scale(w, axis=0), xnor_scale(w)
        (array([1.5, 0.5], dtype=float32), array(1., dtype=float32))

    ??? cite "Rastegari et al., 2016"
        XNOR-Net: ImageNet Classification Using Binary Convolutional Neural Networks. ECCV.
        arXiv:1603.05279 (Eq. 4: $\alpha^* = \frac{1}{n}\|W\|_{\ell 1}$)
    """
    w, k = _slices.check_slices(w, axis, "the XNOR scale")
    return _scale(w, k)


def xnor_binarize(w, *, axis=None, ste="clipped"):
    r"""XNOR-Net / BWN binary weights: the sign scaled by the mean absolute value.

    $$ \tilde{w} = \alpha \, b(w), \qquad \alpha = \texttt{xnor\_scale}(w, \text{axis}) $$

    $b$ is `binarize` ($b(0) = +1$); $\alpha b$ is an exact float32 product (a sign change). The gradient is
    `xnor_binarize_vjp`.

    **Arguments:**

    - `w`: a float32 array, finite, with at least one element.
    - `axis`: `None` (one $\alpha$) or an axis of `w` (one $\alpha$ per index along it).
    - `ste`: the estimator for $\partial b / \partial w$ in the gradient, `"clipped"` (default, XNOR-Net's) or
      `"identity"`. It does not change the forward value.

    **Returns:**

    A float32 array shaped like `w`, every element $+\alpha_c$ or $-\alpha_c$.

    !!! note
        An all-zero slice has $\alpha = 0$ and gives `+0.0` (its zeros binarize to $+1$). A slice whose mean
        underflows to $\alpha = 0$ while holding a negative subnormal gives `-0.0` there (IEEE $0 \cdot -1$).

    Example: $\alpha = 1$, so $\alpha \tilde{w} = \tilde{w}$:

        >>> xnor_binarize(np.float32([0.5, -1.0, 0.0, 2.5]))
        array([ 1., -1.,  1.,  1.], dtype=float32)

    ??? cite "Rastegari et al., 2016"
        XNOR-Net (arXiv:1603.05279), Section 3.1, Binary-Weight-Networks.
    """
    w, k = _slices.check_slices(w, axis, "the XNOR scale")
    validate.choice("ste", ste, STES)
    return np.asarray(_slices.expand(_scale(w, k), w.ndim, k) * _sign(w))


def xnor_binarize_vjp(grad, w, *, axis=None, ste="clipped"):
    r"""The gradient of `xnor_binarize` with respect to `w`: the chain rule through both $\alpha$ and the sign.

    Over each slice of $n$ elements (the whole tensor, or one channel) with $b_i = b(w_i)$:

    $$ \frac{\partial L}{\partial w_i} = \alpha \, g_i \, \mathbb{1}_{\text{pass}}(w_i)
       + b_i \cdot \frac{1}{n} \sum_j b_j \, g_j $$

    The first term is the straight-through gradient of the sign (pass $|w_i| \le 1$ for `"clipped"`, always for
    `"identity"`), scaled by $\alpha$; the second is exactly $\sum_j g_j b_j \, \partial\alpha/\partial w_i$ with
    $\partial |w_i| / \partial w_i = b_i$ (so $+1$ at zero, consistent with $b(0) = +1$).

    Rounding: $\alpha g_i$ and $b_i \cdot m$ are exact in float64, where
    $m = \operatorname{fl}_{64}(\operatorname{exact\_sum}(b \odot g) / n)$ over the slice; their sum is one float64
    addition, then one rounding to float32.

    **Arguments:**

    - `grad`: a float32 array shaped like `w`, finite: the cotangent $g$.
    - `w`, `axis`, `ste`: as for `xnor_binarize`.

    **Returns:**

    A float32 array shaped like `w`; a true gradient beyond the float32 range becomes $\pm\infty$.

    !!! note "Whose formula this is"
        This is the chain rule of pqref's forward pass, not the authors' gradient. The paper prints
        $\frac{\partial C}{\partial W_i} = \frac{\partial C}{\partial \widetilde{W}_i}
        (\frac{1}{n} + \frac{\partial \operatorname{sign}}{\partial W_i}\alpha)$, which is not the derivative of
        its forward pass, and the authors' Torch7 code computes exactly that: `updateBinaryGradWeight` in
        `allenai/XNOR-Net` (`util.lua`) multiplies the gradient by $\alpha \, \mathbb{1}_{|W_i| < 1} + 1/n$ (then
        by $(1 - 1/C_{in})$, and by $n$ for SGD: learning-rate factors). The term
        $b_i \cdot \frac{1}{n} \sum_j b_j g_j$ appears only in a PyTorch port (`jiecaoyu/XNOR-Net-PyTorch`,
        `BinOp.updateBinaryGradWeight`, which keeps the Lua line as a comment), with the pass region
        $|W_i| \le 1$ and `torch.sign(0) = 0`, and the same $n (1 - 1/C_{in})$ factor, left out here.

    Example: $\alpha = 1.25$, $m = (1 - 1)/2 = 0$, clipped pass `[T, F]`:

        >>> xnor_binarize_vjp(np.float32([1, 1]), np.float32([0.5, -2.0]))
        array([1.25, 0.  ], dtype=float32)

    ??? cite "Rastegari et al., 2016"
        XNOR-Net (arXiv:1603.05279), Section 3.1, "Training Binary-Weights-Networks" (the printed gradient);
        the authors' code: github.com/allenai/XNOR-Net, `util.lua`.
    """
    w, k = _slices.check_slices(w, axis, "the XNOR scale")
    validate.choice("ste", ste, STES)
    grad = _check_grad(grad, w, "w")
    alpha = _slices.expand(_scale(w, k), w.ndim, k).astype(np.float64)
    b = _sign(w).astype(np.float64)
    rows = _slices.rows(b * grad.astype(np.float64), k)
    m = _slices.expand(_slices.per_slice(exact_sum(rows, axis=1) / np.float64(rows.shape[1]), k), w.ndim, k)
    direct = np.where(_passes(w, ste), alpha * grad.astype(np.float64), 0.0)
    with np.errstate(over="ignore"):  # a gradient beyond the float32 range becomes +-inf
        return np.asarray((direct + b * m).astype(np.float32))


# ---- private helpers ----------------------------------------------------------------------------------------


def _sign(x):
    """+1 where x >= 0 (both zeros included), -1 where x < 0, as float32."""
    return np.where(x >= 0, F32(1), F32(-1))


def _passes(x, ste):
    if ste == "identity":
        return np.ones(x.shape, dtype=bool)
    return np.abs(x) <= 1


def _check_grad(grad, x, name):
    grad = _arrays.finite_array("grad", grad)
    return _arrays.shaped("grad", grad, x.shape, name)


def _connect(w, stochastic, key):
    if not stochastic:
        return _sign(w)
    u = uniform(key, w.shape)
    return np.where(w > u * F32(2) - F32(1), F32(1), F32(-1))


def _scale(w, k):
    """alpha = fl32(fl64(exact_sum(|w|) / n)) per slice: shape () or (C,)."""
    rows = _slices.rows(np.abs(w), k)
    return _slices.per_slice((exact_sum(rows, axis=1) / np.float64(rows.shape[1])).astype(np.float32), k)
