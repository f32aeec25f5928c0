r"""Per-input-channel scaling before quantization: AWQ and SmoothQuant, with every decision made by exact arithmetic.

Both methods multiply input channel $j$ of a linear layer's weight by a scale $s_j$ and divide the layer's input by
it, which leaves the function unchanged and moves quantization difficulty between weights and activations.

**SmoothQuant** (`smoothquant_scales`, `smoothquant`) migrates activation outliers into the weights so that both
quantize to 8 bits: $s_j = \max|X_j|^\alpha / \max|W_j|^{1-\alpha}$, then the weight $W \odot s$ is quantized per
output channel and the smoothed input $X \oslash s$ per token at run time (`per_token_fake_quantize`).

**AWQ** protects the weights that meet large activations: it multiplies input channel $j$ of a linear layer's weight by
a scale $s_j$ before quantizing and divides the input by $s_j$, so that the salient channels lose less to rounding.
The scale is $s_x^\alpha$, a power of the mean activation magnitude, with $\alpha$ found by a grid search on the
layer's output error; then each group's clipping threshold is searched the same way. pqref pins every step:

1. **Activation statistic** (`awq_act_scale`): $s_{x,j} = \operatorname{fl}_{32}\big(\operatorname{fl}_{64}(
   \operatorname{exact\_sum}_t |x_{tj}| / n)\big)$ over the $n$ calibration rows.
2. **Scales** (`awq_scales`): $s = \max(\operatorname{cr\_pow}(s_x, \alpha), 10^{-4})$, normalized as the paper's
   code does, $s \oslash \operatorname{cr\_sqrt}(\max s \cdot \min s)$.
3. **Candidate** for a scale $s$: $\hat W = \operatorname{fl}_{32}(Q(W \odot s) \oslash s)$, the weight the layer
   computes with when $1/s$ is applied to its input ($Q$: pqref's affine fake quantization per output row and
   group of `group_size` input columns). Its loss is the exact $L = \sum_o D_o^\top H D_o$, $D = \operatorname{fl}_{64}
   (W - \hat W)$, $H$ the layer's calibration Hessian (`gptq_hessian`): $\tfrac{n}{2} L$ is the squared output
   error $\lVert X W^\top - X \hat W^\top \rVert_F^2$ of the paper's Eq. 4.
4. **Grid search**: $\alpha_k = \operatorname{fl}_{32}(k / \text{grid})$, $k = 0, \ldots, \text{grid} - 1$; the
   $\alpha$ of the smallest exact loss, ties to the lower $\alpha$ (the paper's code keeps the first minimum).
5. **Clipping search**, per output row and group, on $W \odot s$: thresholds $m_i = \operatorname{fl}_{32}(
   \max|w| \cdot \operatorname{fl}_{32}(1 - i / \text{clip\_grid}))$, $i = 0, \ldots, \lfloor \text{max\_shrink}
   \cdot \text{clip\_grid} \rfloor - 1$; the candidate clips to $[-m_i, m_i]$ before $Q$; the loss is the exact
   $D_{og}^\top H_{gg} D_{og}$ of the group; ties to the lower $i$ (less clipping).

**Where the scale goes.** pqref folds $1/s$ into the weight: the result's `weight` is $\hat W$, exactly what the
layer computes with $1/s$ applied to its input; the stored codes are those of $Q(W \odot s)$ with `smooth` $= s$, so
a deployment can instead divide the previous operation (a norm's weight, a linear layer's output rows) by $s$.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from reference import _arrays
from reference.common import validate
from reference.core.exact import exact_sum
from reference.core.transcendental import cr_pow, cr_sqrt
from reference.posttraining._certified import argmin_quadratic
from reference.quantization.affine import dequantize, fake_quantize, integer_range, minmax_qparams, quantize

__all__ = ["AWQResult", "SmoothQuantResult", "awq_act_scale", "awq_scales", "awq", "smoothquant_scales", "smoothquant"]

F32, F64 = np.float32, np.float64
FLOOR = F32(1e-4)  # AWQ's clamp of s_x ** alpha
SQ_FLOOR = F32(1e-5)  # SmoothQuant's clamp of the weight maxima and of the scales
MAX_GRID = 1000


class AWQResult(NamedTuple):
    """`awq`'s outputs."""

    weight: np.ndarray  # float32 (out, in): fl32(dequantize(codes) / smooth), what the layer computes with
    codes: np.ndarray  # int32 (out, in): the codes of the scaled, clipped weight
    scale: np.ndarray  # float32 (out, n_groups)
    zero_point: np.ndarray  # int32 (out, n_groups)
    smooth: np.ndarray  # float32 (in,): s; the input is divided by it
    alpha: np.ndarray  # float32 0-d: the chosen exponent
    clip: np.ndarray  # float32 (out, n_groups): the chosen clipping threshold of each group


class SmoothQuantResult(NamedTuple):
    """`smoothquant`'s outputs."""

    weight: np.ndarray  # float32 (out, in): dequantize(codes), the smoothed weight W * s quantized
    codes: np.ndarray  # int32 (out, in), in [-(2**(bits-1) - 1), 2**(bits-1) - 1]
    scale: np.ndarray  # float32 (out,): one scale per output channel
    smooth: np.ndarray  # float32 (in,): s; the input is divided by it


def awq_act_scale(x):
    r"""AWQ's activation statistic: the mean magnitude of each input channel over the calibration rows.

    $$ s_{x,j} = \operatorname{fl}_{32}\Big(\operatorname{fl}_{64}\Big(\frac{\operatorname{exact\_sum}_t |x_{tj}|}{n}
       \Big)\Big) $$

    **Arguments:**

    - `x`: a float32 array `(n, in_features)`, `n >= 1`, finite: the layer's inputs, one row per token.

    **Returns:**

    float32 `(in_features,)`, `>= 0`.

    !!! note
        The sum is exact and rounded once (so the statistic does not depend on how the rows are batched), then one
        float64 division and one rounding to float32. Example:

            >>> awq_act_scale(np.float32([[1, -2], [3, 0]]))
            array([2., 1.], dtype=float32)

    ??? cite "Lin et al., 2024"
        AWQ: Activation-aware Weight Quantization for LLM Compression and Acceleration. MLSys. arXiv:2306.00978
        (code: `get_act_scale`, `x.abs().view(-1, x.shape[-1]).mean(0)`).
    """
    x = _arrays.finite_array("x", x)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"x must have shape (n, in_features) with n >= 1, got {tuple(x.shape)}")
    return np.asarray((exact_sum(np.abs(x), axis=0) / F64(x.shape[0])).astype(F32))


def awq_scales(act_scale, alpha):
    r"""AWQ's per-input-channel scales for one exponent $\alpha$, normalized as the paper's code does.

    $$ t_j = \max\big(\operatorname{cr\_pow}(s_{x,j}, \alpha),\ \operatorname{fl}_{32}(10^{-4})\big), \qquad
       s_j = t_j \oslash \operatorname{cr\_sqrt}\big(\max_j t_j \cdot \min_j t_j\big) $$

    (the product of the two float32 values is exact in float64; `cr_sqrt` rounds its root once to float32; $\oslash$
    is IEEE float32 division). The geometric mean of the largest and smallest scale becomes about 1.

    **Arguments:**

    - `act_scale`: $s_x$, a float32 array `(in_features,)`, `in_features >= 1`, finite, `>= 0` (`awq_act_scale`).
    - `alpha`: $\alpha$, a real number in `[0, 1]`, used as $\operatorname{fl}_{32}(\alpha)$.

    **Returns:**

    float32 `(in_features,)`, `> 0`.

    !!! note
        $\alpha = 0$ gives all ones ($x^0 = 1$, also $0^0$). A dead channel ($s_x = 0$) gets the floor $10^{-4}$
        before normalization. Example: $s_x = [4, 1]$, $\alpha = 0.5$: $t = [2, 1]$, divided by $\sqrt 2$:

            >>> awq_scales(np.float32([4, 1]), 0.5)
            array([1.4142135 , 0.70710677], dtype=float32)

    ??? cite "Lin et al., 2024"
        AWQ, arXiv:2306.00978 (code: `auto_scale.py`, `scales = x_max.pow(ratio).clamp(min=1e-4)`, `scales /
        (scales.max() * scales.min()).sqrt()`).
    """
    s_x = _act_scale(act_scale)
    alpha = validate.real("alpha", alpha, lo=0.0, hi=1.0)
    return _scales(s_x, F32(alpha))


def awq(w, h, act_scale, *, bits=4, group_size=None, symmetric=False, grid=20, clip=True, max_shrink=0.5,
        clip_grid=20):  # fmt: skip
    r"""AWQ on one linear layer: the grid search of the scale exponent, the clipping search, and the quantized weight.

    With the definitions of the module (steps 3 to 5): $\alpha^* = \operatorname{argmin}_k L(\alpha_k)$ (exact,
    ties to the lower $\alpha$), $s = $ `awq_scales(act_scale, alpha*)`, thresholds $m^*_{og}$ per output row and
    group (exact, ties to less clipping), then

    $$ c = \operatorname{quantize}\big(\operatorname{clip}(W \odot s, -m^*, m^*)\big), \qquad
       \hat W = \operatorname{fl}_{32}\big(\operatorname{dequantize}(c) \oslash s\big) $$

    with min-max parameters of the clipped groups (`minmax_qparams(..., axis=1, group_size)`), codes in
    `integer_range(bits, signed=True, narrow_range=symmetric)`.

    **Arguments:**

    - `w`: a float32 array `(out_features, in_features)`, finite.
    - `h`: the float64 calibration Hessian `(in_features, in_features)` (`gptq_hessian` of the layer's inputs),
      finite, symmetric.
    - `act_scale`: float32 `(in_features,)`, `>= 0` (`awq_act_scale` of the same inputs).
    - `bits`: an int in `[2, 8]`.
    - `group_size`: `None` (one group per output row) or an int dividing `in_features`: groups of consecutive
      input columns (GPTQ's and AWQ's layout, scale shape `(out_features, in_features // group_size)`).
    - `symmetric`: a bool (AWQ's default is asymmetric, `False`).
    - `grid`: the number of exponents $\alpha_k = k / \text{grid}$, an int in `[1, 1000]` (default 20).
    - `clip`: run the clipping search (default `True`; AWQ skips it for query and key projections).
    - `max_shrink`: the largest relative shrink of a threshold, a real in `[0, 1)` (default 0.5).
    - `clip_grid`: thresholds $1 - i / \text{clip\_grid}$, an int in `[1, 1000]` (default 20).

    **Returns:**

    An `AWQResult`: `weight` $\hat W$, `codes` (int32), `scale`, `zero_point` (`(out, n_groups)`), `smooth` $s$,
    `alpha` (float32 0-d), `clip` (the thresholds $m^*$, float32 `(out, n_groups)`).

    !!! note
        Deviations from the paper's code, each because its result would depend on something else than the inputs:
        the loss is the layer's output error through the exact calibration Hessian (its code runs the block in
        float16 on a batch), every loss comparison is exact (its float32 `mean` depends on the order), and the
        quantizer is pqref's affine one (its range is not widened to contain 0, and it clamps the scale at
        `1e-5`). $s$ is searched per linear layer (the paper's Eq. 4); AutoAWQ shares one $s$ among the layers that
        read the same input, because it folds $1/s$ into their common producer. $\hat W$ folds $1/s$ into the
        weight instead (the function the layer computes is the same up to that rounding).

    ??? cite "Lin et al., 2024"
        AWQ: Activation-aware Weight Quantization for LLM Compression and Acceleration. MLSys. arXiv:2306.00978
        (Section 3.2, Eq. 4 and 5; code: `auto_scale.py`, `auto_clip.py`).
    """
    w, h = _layer(w, h)
    s_x = _act_scale(act_scale, w.shape[1])
    bits = validate.integer("bits", bits, lo=2, hi=8)
    g = _group_size(group_size, w.shape[1])
    symmetric = validate.boolean("symmetric", symmetric)
    grid = validate.integer("grid", grid, lo=1, hi=MAX_GRID)
    clip = validate.boolean("clip", clip)
    max_shrink = validate.real("max_shrink", max_shrink, lo=0.0, hi=1.0, hi_open=True)
    clip_grid = validate.integer("clip_grid", clip_grid, lo=1, hi=MAX_GRID)
    qmin, qmax = integer_range(bits, True, symmetric)
    out_f, d = w.shape
    n_groups = d // g
    w64 = w.astype(F64)

    # the exponent: one candidate weight per alpha, the exact loss of each through H
    scales = [_scales(s_x, F32(k / grid)) for k in range(grid)]
    diffs = np.stack([w64 - _candidate(w, s, None, g, qmin, qmax, symmetric).astype(F64) for s in scales])
    k = int(argmin_quadratic(diffs[:, None], h[None], np.zeros(1, dtype=np.int64))[0])
    s = scales[k]
    ws = w * s[None, :]

    # the clipping thresholds: per output row and group, on the scaled weight
    amax = np.abs(ws).reshape(out_f, n_groups, g).max(axis=2)
    shrinks = int(max_shrink * clip_grid) if clip else 0
    ratios = [F32(1 - i / clip_grid) for i in range(max(shrinks, 1))]
    thresholds = np.stack([amax * r for r in ratios])  # (I, out, n_groups)
    if shrinks > 1:
        blocks = np.stack([h[j * g : (j + 1) * g, j * g : (j + 1) * g] for j in range(n_groups)])
        diffs = np.stack([w64 - _candidate(w, s, m, g, qmin, qmax, symmetric).astype(F64) for m in thresholds])
        diffs = diffs.reshape(len(ratios), out_f * n_groups, 1, g)
        hidx = np.tile(np.arange(n_groups), out_f)
        best = argmin_quadratic(diffs, blocks, hidx).reshape(out_f, n_groups)
        chosen = np.take_along_axis(thresholds, best[None], axis=0)[0]
    else:
        chosen = thresholds[0]

    clipped = _clip(ws, chosen, g)
    scale, zero_point = minmax_qparams(clipped, qmin=qmin, qmax=qmax, symmetric=symmetric, axis=1, group_size=g)
    codes = quantize(clipped, scale, zero_point, qmin=qmin, qmax=qmax, axis=1, group_size=g)
    weight = dequantize(codes, scale, zero_point, axis=1, group_size=g) / s[None, :]
    return AWQResult(np.asarray(weight), codes, scale, zero_point, s, np.asarray(F32(k / grid)), np.asarray(chosen))


def smoothquant_scales(act_max, w, alpha=0.5):
    r"""SmoothQuant's smoothing factors: $s_j = \max|X_j|^\alpha / \max|W_j|^{1 - \alpha}$, with the paper's floors.

    $$ m_j = \max\big(\max_o |w_{oj}|,\ \operatorname{fl}_{32}(10^{-5})\big), \qquad
       s_j = \max\Big(\operatorname{cr\_pow}(a_j, \alpha') \oslash \operatorname{cr\_pow}(m_j, \beta'),\
       \operatorname{fl}_{32}(10^{-5})\Big) $$

    with $\alpha' = \operatorname{fl}_{32}(\alpha)$, $\beta' = \operatorname{fl}_{32}(1 - \alpha)$ ($1 - \alpha$ in float64)
    and $\oslash$ IEEE float32 division.

    **Arguments:**

    - `act_max`: $a$, a float32 array `(in_features,)`, finite, `>= 0`: the largest $|x_{tj}|$ over the calibration
      rows of each input channel (a maximum: exact, whatever the batching).
    - `w`: a float32 array `(out_features, in_features)`, finite: the weight, or the weights of every layer that
      reads the same input stacked along the output axis (SmoothQuant shares one $s$ among q, k, v).
    - `alpha`: the migration strength, a real number in `[0, 1]` (default 0.5).

    **Returns:**

    float32 `(in_features,)`, `>= 1e-5`.

    !!! note
        Zero maxima, as the paper's code handles them: a weight column of zeros counts as $10^{-5}$; a dead input
        channel ($a_j = 0$, $\alpha > 0$) gives $0 / \ldots = 0$, floored to $10^{-5}$; $0^0 = 1$.
        Example: $a = [16, 1]$, $W = [[1, 0.25]]$, $\alpha = 0.5$: $s = [4 / 1, 1 / 0.5]$:

            >>> smoothquant_scales(np.float32([16, 1]), np.float32([[1, 0.25]]))
            array([4., 2.], dtype=float32)

    ??? cite "Xiao et al., 2023"
        SmoothQuant: Accurate and Efficient Post-Training Quantization for Large Language Models. ICML.
        arXiv:2211.10438 (Eq. 4; code: `smooth.py`, `smooth_ln_fcs`).
    """
    a = _vector("act_max", act_max)
    w = _weight(w, a.shape[0])
    alpha = validate.real("alpha", alpha, lo=0.0, hi=1.0)
    return _smooth(a, w, alpha)


def smoothquant(w, act_max, *, alpha=0.5, bits=8):
    r"""SmoothQuant's weight side: the smoothed weight $W \odot s$ quantized per output channel, symmetric.

    $$ s = \operatorname{smoothquant\_scales}(a, W, \alpha), \qquad c = \operatorname{quantize}(W \odot s), \qquad
       \hat W = \operatorname{dequantize}(c) $$

    with `minmax_qparams(W * s, symmetric=True, axis=0)` on `integer_range(bits, signed=True, narrow_range=True)`
    (8 bits: $[-127, 127]$, scale $\max_j |w_{oj} s_j| / 127$: SmoothQuant's
    `quantize_weight_per_channel_absmax`). The layer then computes $\operatorname{per\_token\_fake\_quantize}(
    X \oslash s)\, \hat W^\top$: W8A8.

    **Arguments:**

    - `w`: a float32 array `(out_features, in_features)`, finite.
    - `act_max`: float32 `(in_features,)`, `>= 0` (see `smoothquant_scales`).
    - `alpha`: a real number in `[0, 1]` (default 0.5).
    - `bits`: an int in `[2, 16]` (default 8).

    **Returns:**

    A `SmoothQuantResult`: `weight` $\hat W$, `codes`, `scale` (float32 `(out,)`), `smooth` $s$.

    !!! note
        pqref keeps $1/s$ on the input: the training layer divides the layer's input by $s$ before its per-token
        quantization (IEEE float32 division), where a deployment folds it into the preceding normalization's weight
        and bias. Both are the same function up to that rounding.

    ??? cite "Xiao et al., 2023"
        SmoothQuant, arXiv:2211.10438 (Section 4; W8A8 with per-token dynamic activations, per-channel weights).
    """
    a = _vector("act_max", act_max)
    w = _weight(w, a.shape[0])
    alpha = validate.real("alpha", alpha, lo=0.0, hi=1.0)
    bits = validate.integer("bits", bits, lo=2, hi=16)
    s = _smooth(a, w, alpha)
    qmin, qmax = integer_range(bits, True, True)
    ws = w * s[None, :]
    scale, zero_point = minmax_qparams(ws, qmin=qmin, qmax=qmax, symmetric=True, axis=0)
    codes = quantize(ws, scale, zero_point, qmin=qmin, qmax=qmax, axis=0)
    return SmoothQuantResult(dequantize(codes, scale, zero_point, axis=0), codes, scale, s)


# ---- steps ------------------------------------------------------------------------------------------------------


def _smooth(a, w, alpha):
    m = np.maximum(np.abs(w).max(axis=0, initial=F32(0)), SQ_FLOOR)
    num = cr_pow(a, np.asarray(F32(alpha)))
    den = cr_pow(m, np.asarray(F32(1.0 - alpha)))
    return np.asarray(np.maximum(num / den, SQ_FLOOR))


def _scales(s_x, alpha):
    t = np.maximum(cr_pow(s_x, np.asarray(alpha, dtype=F32)), FLOOR)
    root = cr_sqrt(np.asarray(t.max().astype(F64) * t.min().astype(F64)))
    return np.asarray(t / root)


def _clip(ws, thresholds, g):
    """`clip(ws, -m, m)` with `m` per output row and group (`minimum` / `maximum`: exact)."""
    m = np.repeat(thresholds, g, axis=1)
    return np.minimum(np.maximum(ws, -m), m)


def _candidate(w, s, thresholds, g, qmin, qmax, symmetric):
    """fl32(Q(clip(w * s)) / s): the weight the layer computes with for scales `s` (and thresholds)."""
    ws = w * s[None, :]
    if thresholds is not None:
        ws = _clip(ws, thresholds, g)
    scale, zero_point = minmax_qparams(ws, qmin=qmin, qmax=qmax, symmetric=symmetric, axis=1, group_size=g)
    q = fake_quantize(ws, scale, zero_point, qmin=qmin, qmax=qmax, axis=1, group_size=g)
    return q / s[None, :]


# ---- checks -----------------------------------------------------------------------------------------------------


def _vector(name, v):
    v = _arrays.within(name, _arrays.finite_array(name, v), 0.0, np.inf)
    if v.ndim != 1 or v.shape[0] == 0:
        raise ValueError(f"{name} must have shape (in_features,) with in_features >= 1, got {tuple(v.shape)}")
    return v


def _weight(w, d):
    w = _arrays.finite_array("w", w)
    if w.ndim != 2 or w.shape[1] != d:
        raise ValueError(f"w must have shape (out_features, {d}) to match act_max, got {tuple(w.shape)}")
    return w


def _act_scale(act_scale, d=None):
    s_x = _arrays.within("act_scale", _arrays.finite_array("act_scale", act_scale), 0.0, np.inf)
    if s_x.ndim != 1 or s_x.shape[0] == 0:
        raise ValueError(f"act_scale must have shape (in_features,) with in_features >= 1, got {tuple(s_x.shape)}")
    if d is not None and s_x.shape[0] != d:
        raise validate.shape_mismatch("act_scale", s_x.shape, (d,), f"w with in_features {d}")
    return s_x


def _layer(w, h):
    w = _arrays.finite_array("w", w)
    if w.ndim != 2 or w.shape[1] == 0:
        raise ValueError(f"w must be 2-D (out_features, in_features) with in_features >= 1, got shape {tuple(w.shape)}")
    h = _arrays.finite_array("h", h, ("float64",))
    if h.shape != (w.shape[1], w.shape[1]):
        raise validate.shape_mismatch("h", h.shape, (w.shape[1], w.shape[1]), f"w with in_features {w.shape[1]}")
    bad = np.argwhere(h != h.T)
    if bad.size:
        i, j = (int(v) for v in bad[0])
        raise validate.not_symmetric("h", i, j, float(h[i, j]), float(h[j, i]))
    return w, h


def _group_size(group_size, d):
    if group_size is None:
        return d
    g = validate.integer("group_size", group_size, lo=1)
    if d % g:
        raise ValueError(f"group_size={g} must divide in_features={d}")
    return g
