r"""AdaRound: learned rounding (up or down per weight) by layer-wise reconstruction, every step bit for bit.

AdaRound replaces round-to-nearest by a learned choice between $\lfloor w/s \rfloor$ and $\lfloor w/s \rfloor + 1$.
A continuous variable $V$ per weight gives the soft choice $h(V) \in [0, 1]$ (a rectified sigmoid); $V$ is trained
to reconstruct the layer's output while a regularizer, annealed by $\beta$, pushes every $h$ to 0 or 1; at the end
the weight rounds up where $V \ge 0$. pqref pins each piece:

- `rectified_sigmoid` $h(V) = \operatorname{clip}(\sigma(V)(\zeta - \gamma) + \gamma, 0, 1)$ with the correctly
  rounded `cr_sigmoid`, and its VJP `rectified_sigmoid_vjp`;
- `adaround_regularizer` $\sum 1 - |2h - 1|^\beta$ with `cr_pow`, its sum exact, and `adaround_regularizer_vjp`;
- `adaround_beta`, the annealing schedule of the reference code (BRECQ's `LinearTempDecay`);
- `adaround_init`, the initial $V$ that makes $h(V)$ the fractional part of $w/s$ (so training starts at $w$);
- `adaround_step`, one Adam step on the layer-wise loss $\tfrac12 \sum_o D_o^\top H D_o + \lambda R(V)$, $D = \tilde W
  - W$, $H$ the calibration Hessian (`gptq_hessian`): $\tfrac n4 \sum_o D_o^\top H D_o$ is the squared output error
  $\lVert X \tilde W^\top - X W^\top \rVert_F^2$; its gradient $D H$ has every entry the exact value rounded once;
- `adaround_quantize`, the final codes.

Scales and zero points are per output row and group of consecutive input columns: `scale` and `zero_point` have
shape `(out_features, n_groups)` (`minmax_qparams(w, axis=1, group_size=in_features // n_groups)`).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from reference import _arrays
from reference.common import validate
from reference.core.exact import exact_sum
from reference.core.transcendental import cr_log, cr_pow, cr_sigmoid, cr_sqrt
from reference.posttraining._certified import matmul32

__all__ = [
    "AdaRoundState", "rectified_sigmoid", "rectified_sigmoid_vjp", "adaround_regularizer", "adaround_regularizer_vjp",
    "adaround_beta", "adaround_init", "adaround_step", "adaround_quantize",
]  # fmt: skip

F32, F64 = np.float32, np.float64
ZETA, GAMMA = 1.1, -0.1  # the paper's stretch of the sigmoid


class AdaRoundState(NamedTuple):
    """The variables of one layer's AdaRound optimization after a step."""

    v: np.ndarray  # float32 (out, in): the rounding variables V
    m: np.ndarray  # float32 (out, in): Adam's first moment
    s: np.ndarray  # float32 (out, in): Adam's second moment


def rectified_sigmoid(v, *, zeta=ZETA, gamma=GAMMA):
    r"""AdaRound's soft rounding choice: the stretched sigmoid, clipped to $[0, 1]$.

    $$ h(V) = \operatorname{clip}\Big(\operatorname{fl}_{32}\big(\operatorname{fl}_{32}(\operatorname{cr\_sigmoid}(V)
       \cdot c) + \gamma'\big),\ 0,\ 1\Big), \qquad c = \operatorname{fl}_{32}(\zeta - \gamma),\
       \gamma' = \operatorname{fl}_{32}(\gamma) $$

    **Arguments:**

    - `v`: a float32 array, any shape, finite.
    - `zeta`, `gamma`: the stretch, reals with `gamma < 0` and `zeta > 1` (defaults 1.1 and -0.1, the paper's).

    **Returns:**

    A float32 array shaped like `v`, in `[0, 1]`.

    !!! note
        The stretch lets $h$ reach exactly 0 and 1 for finite $V$ (about $|V| \ge 2.4$ with the defaults), where the
        gradient stops. Example: $h(0) = 0.5 \cdot 1.2 - 0.1$:

            >>> rectified_sigmoid(np.float32([0.0, 10.0]))
            array([0.5, 1. ], dtype=float32)

    ??? cite "Nagel et al., 2020"
        Up or Down? Adaptive Rounding for Post-Training Quantization. ICML. arXiv:2004.10568 (Eq. 23).
    """
    v = _arrays.finite_array("v", v)
    c, g = _stretch(zeta, gamma)
    return np.asarray(np.clip(_pre(cr_sigmoid(v), c, g), F32(0), F32(1)))


def rectified_sigmoid_vjp(grad, v, *, zeta=ZETA, gamma=GAMMA):
    r"""The VJP of `rectified_sigmoid`: $g \cdot \sigma(V)(1 - \sigma(V))(\zeta - \gamma)$ where the clip passes.

    $$ \frac{\partial L}{\partial V} = \begin{cases} \operatorname{fl}_{32}\Big(g \cdot \operatorname{fl}_{32}\big(
       \operatorname{fl}_{32}(\sigma \cdot \operatorname{fl}_{32}(1 - \sigma)) \cdot c\big)\Big) &
       0 \le \operatorname{fl}_{32}(\sigma c) + \gamma' \le 1 \\ +0 & \text{otherwise} \end{cases} $$

    with $\sigma = \operatorname{cr\_sigmoid}(V)$; the clip passes its gradient at both ends inclusive (as
    `torch.clamp`).

    **Arguments:**

    - `grad`: a float32 array shaped like `v`, the cotangent of $h$.
    - `v`, `zeta`, `gamma`: as for `rectified_sigmoid`.

    **Returns:**

    A float32 array shaped like `v`.
    """
    v = _arrays.finite_array("v", v)
    grad = _arrays.shaped("grad", _arrays.finite_array("grad", grad), v.shape, "v")
    c, g = _stretch(zeta, gamma)
    return np.asarray(_sigmoid_vjp(grad, cr_sigmoid(v), c, g))


def adaround_regularizer(v, *, beta, zeta=ZETA, gamma=GAMMA):
    r"""AdaRound's rounding regularizer: $\sum_i 1 - |2 h(V_i) - 1|^\beta$, zero when every $h$ is 0 or 1.

    $$ R = \operatorname{fl}_{32}\Big(\operatorname{exact\_sum}_i\ \operatorname{fl}_{32}\big(1 -
       \operatorname{cr\_pow}(|\operatorname{fl}_{32}(2 h_i - 1)|, \beta')\big)\Big), \qquad \beta' =
       \operatorname{fl}_{32}(\beta) $$

    **Arguments:**

    - `v`: a float32 array, any shape, finite.
    - `beta`: the annealing exponent, a real in `[1, 1000]` (`adaround_beta`).
    - `zeta`, `gamma`: as for `rectified_sigmoid`.

    **Returns:**

    A float32 0-d array, `>= 0`.

    !!! note
        The sum is exact and rounded once to float64, then to float32. Example: $V = [0, 10]$, $\beta = 2$:
        $h = [0.5, 1]$, terms $[1 - 0^2, 1 - 1^2] = [1, 0]$:

            >>> adaround_regularizer(np.float32([0, 10]), beta=2.0)
            array(1., dtype=float32)

    ??? cite "Nagel et al., 2020"
        Up or Down? Adaptive Rounding for Post-Training Quantization. ICML. arXiv:2004.10568 (Eq. 24).
    """
    v = _arrays.finite_array("v", v)
    beta = validate.real("beta", beta, lo=1.0, hi=1000.0)
    c, g = _stretch(zeta, gamma)
    h = np.clip(_pre(cr_sigmoid(v), c, g), F32(0), F32(1))
    u = np.abs(F32(2) * h - F32(1))
    terms = F32(1) - cr_pow(u, np.asarray(F32(beta)))
    return np.asarray(exact_sum(terms).astype(F32))


def adaround_regularizer_vjp(grad, v, *, beta, zeta=ZETA, gamma=GAMMA):
    r"""The VJP of `adaround_regularizer` with respect to $V$, for a scalar cotangent $g$.

    $$ \frac{\partial R}{\partial h_i} = \operatorname{fl}_{32}\Big(\operatorname{fl}_{32}\big(\operatorname{fl}_{32}
       (-2\beta) \cdot \operatorname{cr\_pow}(|u_i|, \operatorname{fl}_{32}(\beta - 1))\big) \cdot
       \operatorname{sign}(u_i)\Big), \qquad u_i = \operatorname{fl}_{32}(2 h_i - 1) $$

    then `rectified_sigmoid_vjp` of $\operatorname{fl}_{32}(g \cdot \partial R / \partial h_i)$.

    **Arguments:**

    - `grad`: a float32 0-d array, the cotangent of $R$.
    - `v`, `beta`, `zeta`, `gamma`: as for `adaround_regularizer`.

    **Returns:**

    A float32 array shaped like `v`.

    !!! note
        At $h = 0.5$ the gradient is zero, `-0.0` for $g > 0$ (the product $(-2\beta \cdot 0^{\beta-1}) \cdot
        \operatorname{sign}(0)$; $\beta \ge 1$ keeps $|u|^{\beta - 1}$ finite). Example: $V = [0, 10]$, $g = 1$,
        $\beta = 2$ ($h = 0.5$; $h$ clipped at 1, where the clip stops the gradient):

            >>> adaround_regularizer_vjp(np.float32(1), np.float32([0, 10]), beta=2.0)
            array([-0.,  0.], dtype=float32)
    """
    v = _arrays.finite_array("v", v)
    grad = _arrays.finite_array("grad", grad)
    if grad.ndim != 0:
        raise ValueError(f"grad must be 0-d (the cotangent of a sum), got shape {tuple(grad.shape)}")
    beta = validate.real("beta", beta, lo=1.0, hi=1000.0)
    c, g = _stretch(zeta, gamma)
    return np.asarray(_regularizer_vjp(grad, cr_sigmoid(v), beta, c, g))


def adaround_beta(step, iterations, *, warmup=0.2, start=20.0, end=2.0):
    r"""The annealed exponent $\beta$ of the regularizer at a step: constant during the warm-up, then linear.

    $$ t_0 = \text{warmup} \cdot T, \qquad \beta(t) = \begin{cases} \beta_{start} & t < t_0 \\
       \beta_{end} + (\beta_{start} - \beta_{end}) \max\big(0, 1 - \frac{t - t_0}{T - t_0}\big) & t \ge t_0
       \end{cases} $$

    in Python floats (IEEE float64), in this order, as the reference code's `LinearTempDecay`. During the warm-up
    the regularizer is off (`adaround_step` with `beta=None`).

    **Arguments:**

    - `step`: $t$, an int in `[0, iterations]`.
    - `iterations`: $T$, an int in `[1, 10**6]`.
    - `warmup`: a real in `[0, 1)` (default 0.2); `start`, `end`: reals, `start >= end >= 1` (defaults 20, 2).

    **Returns:**

    A Python float.

    Example: $T = 100$: the warm-up to $t_0 = 20$, then $\beta(60) = 2 + 18 \cdot 0.5$:

        >>> [adaround_beta(t, 100) for t in (10, 20, 60, 100)]
        [20.0, 20.0, 11.0, 2.0]

    ??? cite "Li et al., 2021; Nagel et al., 2020"
        BRECQ: Pushing the Limit of Post-Training Quantization by Block Reconstruction. ICLR. arXiv:2102.05426
        (code: `LinearTempDecay`, the AdaRound reference implementation it ships). AdaRound, arXiv:2004.10568.
    """
    iterations = validate.integer("iterations", iterations, lo=1, hi=10**6)
    step = validate.integer("step", step, lo=0, hi=iterations)
    warmup = validate.real("warmup", warmup, lo=0.0, hi=1.0, hi_open=True)
    start = validate.real("start", start, lo=1.0)
    end = validate.real("end", end, lo=1.0, hi=start)
    start_decay = warmup * iterations
    if step < start_decay:
        return start
    rel = (step - start_decay) / (iterations - start_decay)
    return end + (start - end) * max(0.0, 1 - rel)


def adaround_init(w, scale, *, zeta=ZETA, gamma=GAMMA):
    r"""The initial rounding variables: $h(V) = $ the fractional part of $w/s$, so the soft weight starts at $w$.

    $$ r = \operatorname{fl}_{32}(w \oslash s), \quad \rho = r - \lfloor r \rfloor, \quad
       V = -\operatorname{cr\_log}\Big(\operatorname{fl}_{32}\big(\operatorname{fl}_{32}(c \oslash
       \operatorname{fl}_{32}(\rho - \gamma')) - 1\big)\Big) $$

    (the reference code's `init_alpha`: $-\log((\zeta - \gamma)/(\rho - \gamma) - 1)$).

    **Arguments:**

    - `w`: a float32 array `(out_features, in_features)`, finite.
    - `scale`: a float32 array `(out_features, n_groups)`, finite, `> 0`, `n_groups` dividing `in_features`.
    - `zeta`, `gamma`: as for `rectified_sigmoid`.

    **Returns:**

    float32 `(out_features, in_features)`.

    !!! note
        $\rho \in [0, 1)$ is exact; $\rho = 0$ gives $V = -\ln 11 = -2.3978953$ ($h = 0$).
    """
    w, s = _weight_and_scale(w, scale)
    c, g = _stretch(zeta, gamma)
    r = w / s
    rest = r - np.floor(r)
    return np.asarray(-cr_log(c / (rest - g) - F32(1)))


def adaround_step(w, h, v, m, s, scale, zero_point, *, step, qmin, qmax, beta=None, lam=0.01, lr=1e-3,
                  zeta=ZETA, gamma=GAMMA):  # fmt: skip
    r"""One Adam step on AdaRound's layer-wise loss, as a pure function of the state.

    The soft weight and its error, per output row $o$ and input column $j$ (group scale $s$, zero point $z$):

    $$ \tilde W = \operatorname{fl}_{32}\big(\operatorname{fl}_{32}(\operatorname{clip}(\operatorname{fl}_{32}(
       \operatorname{fl}_{32}(\lfloor w \oslash s \rfloor + h(V)) + z), q_{min}, q_{max}) - z) \cdot s\big),
       \qquad D = \operatorname{fl}_{64}(\tilde W - W) $$

    The loss is $\tfrac12 \sum_o D_o^\top H D_o + \lambda R(V)$ ($R$ with the exponent `beta`; no regularizer
    while `beta` is None, the warm-up). Its gradient: $G_W = \operatorname{fl}_{32}(D H)$, every entry the exact value
    rounded once; $G_h = G_W \cdot s$ where the clip passes (inclusive), else 0; $G = \operatorname{fl}_{32}\big(
    \operatorname{rectified\_sigmoid\_vjp}(G_h) + \operatorname{adaround\_regularizer\_vjp}(\lambda)\big)$. Then
    Adam with $\beta_1 = 0.9$, $\beta_2 = 0.999$, $\epsilon = 10^{-8}$ and $t = $ `step` $+ 1$, as `torch.optim.Adam`
    orders it:

    $$ m' = \beta_1 m + (1 - \beta_1) G, \quad s' = \beta_2 s + (1 - \beta_2) G \cdot G, \quad
       V' = V - \eta_t \cdot \frac{m'}{\operatorname{cr\_sqrt}(s') \oslash \sqrt{1 - \beta_2^t} + \epsilon} $$

    each operation one float32 rounding; $\eta_t = \operatorname{fl}_{32}(\text{lr} / (1 - \beta_1^t))$ and
    $\sqrt{1 - \beta_2^t}$ are Python floats (IEEE float64, CPython's correctly rounded `math.sqrt`) rounded to
    float32.

    **Arguments:**

    - `w`: float32 `(out, in)`, finite; `h`: the float64 Hessian `(in, in)` (`gptq_hessian`), finite, symmetric.
    - `v`, `m`, `s`: float32 `(out, in)`, finite, `s >= 0`: the state (`adaround_init`, zeros, zeros at the start).
    - `scale`, `zero_point`: float32 and int32 `(out, n_groups)`, `scale > 0`, `zero_point` in `[qmin, qmax]`.
    - `step`: the steps already taken, an int in `[0, 10**6]`.
    - `qmin`, `qmax`: the integer range.
    - `beta`: None (warm-up) or the regularizer's exponent in `[1, 1000]` (`adaround_beta`).
    - `lam`: $\lambda \ge 0$ (default 0.01, the reference code's round-loss weight); `lr` $> 0$ (default 1e-3).
    - `zeta`, `gamma`: as for `rectified_sigmoid`.

    **Returns:**

    An `AdaRoundState` `(v, m, s)`, float32.

    !!! note
        The reconstruction loss uses the calibration Hessian instead of batches of layer outputs (the same loss, up
        to the constant $n/4$, and no batch sampling): the step is a function of its inputs only.

    ??? cite "Nagel et al., 2020; Kingma and Ba, 2015"
        Up or Down? Adaptive Rounding for Post-Training Quantization. ICML. arXiv:2004.10568 (Eq. 25).
        Adam: A Method for Stochastic Optimization. ICLR. arXiv:1412.6980.
    """
    w, s_g = _weight_and_scale(w, scale)
    h = _hessian(h, w.shape[1])
    v = _state("v", v, w.shape)
    m = _state("m", m, w.shape)
    s = _arrays.within("s", _state("s", s, w.shape), 0.0, np.inf)
    qmin, qmax = validate.qrange(qmin, qmax)
    z = _zero_point(zero_point, scale, qmin, qmax, w.shape[1])
    step = validate.integer("step", step, lo=0, hi=10**6)
    if beta is not None:
        beta = validate.real("beta", beta, lo=1.0, hi=1000.0)
    lam = validate.real("lam", lam, lo=0.0)
    lr = validate.real("lr", lr, lo=0.0, lo_open=True)
    c, g = _stretch(zeta, gamma)

    floor = np.floor(w / s_g)
    sig = cr_sigmoid(v)  # once per step: every piece below reads it
    pre = (floor + np.clip(_pre(sig, c, g), F32(0), F32(1))) + z
    passes = (pre >= qmin) & (pre <= qmax)
    soft = (np.clip(pre, F32(qmin), F32(qmax)) - z) * s_g
    grad_w = matmul32(soft.astype(F64) - w.astype(F64), h)
    grad_h = np.where(passes, grad_w * s_g, F32(0))
    grad = _sigmoid_vjp(grad_h, sig, c, g)
    if beta is not None:
        grad = grad + _regularizer_vjp(np.asarray(F32(lam)), sig, beta, c, g)

    t = step + 1
    b1, b2, eps = 0.9, 0.999, 1e-8
    m2 = F32(b1) * m + F32(1 - b1) * grad
    s2 = F32(b2) * s + F32(1 - b2) * grad * grad
    eta = F32(lr / (1 - b1**t))
    denom = cr_sqrt(s2) / F32(math.sqrt(1 - b2**t)) + F32(eps)
    v2 = v - eta * (m2 / denom)
    return AdaRoundState(np.asarray(v2), np.asarray(m2), np.asarray(s2))


def adaround_quantize(w, v, scale, zero_point, *, qmin, qmax):
    r"""The final codes: round up where $V \ge 0$ ($h(V) \ge 0.5$), down elsewhere.

    $$ q = \operatorname{clip}\big(\lfloor w \oslash s \rfloor + [V \ge 0] + z,\ q_{min},\ q_{max}\big) $$

    (integers, formed in float64, exact). Decode with `dequantize(q, scale, zero_point, axis=1, group_size)`.

    **Arguments:**

    - `w`, `v`: float32 `(out, in)`, finite; `scale`, `zero_point`: as for `adaround_step`; `qmin`, `qmax`.

    **Returns:**

    int32 `(out, in)`.

    !!! note
        $V \ge 0$ is the reference code's hard rounding (`alpha >= 0`), exact: no sigmoid is evaluated.
    """
    w, s_g = _weight_and_scale(w, scale)
    v = _state("v", v, w.shape)
    qmin, qmax = validate.qrange(qmin, qmax)
    z = _zero_point(zero_point, scale, qmin, qmax, w.shape[1])
    q = np.floor(w / s_g).astype(F64) + (v >= 0) + z.astype(F64)
    return np.asarray(np.clip(q, qmin, qmax).astype(np.int32))


# ---- pieces -------------------------------------------------------------------------------------------------------


def _stretch(zeta, gamma):
    zeta = validate.real("zeta", zeta, lo=1.0, lo_open=True, hi=100.0)
    gamma = validate.real("gamma", gamma, lo=-100.0, hi=0.0, hi_open=True)
    return F32(zeta - gamma), F32(gamma)


def _pre(sig, c, g):
    return sig * c + g


def _sigmoid_vjp(grad, sig, c, g):
    pre = sig * c + g
    d = sig * (F32(1) - sig) * c
    return np.where((pre >= 0) & (pre <= 1), grad * d, F32(0))


def _regularizer_vjp(grad, sig, beta, c, g):
    h = np.clip(_pre(sig, c, g), F32(0), F32(1))
    u = F32(2) * h - F32(1)
    dh = F32(-2 * beta) * cr_pow(np.abs(u), np.asarray(F32(beta - 1))) * np.sign(u)
    return _sigmoid_vjp(grad * dh, sig, c, g)


# ---- checks -------------------------------------------------------------------------------------------------------


def _weight_and_scale(w, scale):
    w = _arrays.finite_array("w", w)
    if w.ndim != 2 or w.shape[1] == 0:
        raise ValueError(f"w must be 2-D (out_features, in_features) with in_features >= 1, got shape {tuple(w.shape)}")
    s = _arrays.positive("scale", _arrays.finite_array("scale", scale))
    if s.ndim != 2 or s.shape[0] != w.shape[0] or s.shape[1] == 0 or w.shape[1] % s.shape[1]:
        raise ValueError(
            f"scale must have shape (out_features, n_groups) = ({w.shape[0]}, n) with n dividing in_features "
            f"{w.shape[1]}, got {tuple(s.shape)}"
        )
    return w, np.repeat(s, w.shape[1] // s.shape[1], axis=1)


def _zero_point(zero_point, scale, qmin, qmax, d):
    z = _arrays.array("zero_point", zero_point, ("int32",))
    _arrays.shaped("zero_point", z, np.shape(scale), "scale")
    _arrays.within("zero_point", z, qmin, qmax)
    return np.repeat(z, d // z.shape[1], axis=1).astype(F32)


def _state(name, x, shape):
    return _arrays.shaped(name, _arrays.finite_array(name, x), shape, "w")


def _hessian(h, d):
    h = _arrays.finite_array("h", h, ("float64",))
    if h.shape != (d, d):
        raise validate.shape_mismatch("h", h.shape, (d, d), f"w with in_features {d}")
    bad = np.argwhere(h != h.T)
    if bad.size:
        i, j = (int(t) for t in bad[0])
        raise validate.not_symmetric("h", i, j, float(h[i, j]), float(h[j, i]))
    return h
