r"""HQQ: half-quadratic quantization, a calibration-free solver for the zero points, as pure functions.

HQQ quantizes a weight without data: it minimizes $\lVert W - Q^{-1}(Q(W)) \rVert_p^p$ with $p < 1$ (a sparsity-
promoting norm that tolerates a few large errors) by half-quadratic splitting. An auxiliary error $W_e$ is
found by the generalized soft-thresholding (shrinkage) operator of the $\ell_p$ norm, then the zero point is updated
in closed form, for a fixed number of iterations. pqref pins the paper's code (`optimize_weights_proximal`) step by
step in float32, with exact means and a correctly rounded power, so every backend gives the same bits.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from reference import _arrays
from reference.common import validate
from reference.core.exact import exact_sum
from reference.core.transcendental import cr_pow

__all__ = ["HQQResult", "hqq_shrink", "hqq"]

F32, F64 = np.float32, np.float64
SCALE_CAP = F32(2e4)  # the paper's clamp of the (inverse) scale
FIRST_BEST = 1e4  # the paper's initial best error
MAX_ITERS = 10000


class HQQResult(NamedTuple):
    """`hqq`'s outputs; the scale is HQQ's stored one (the inverse of the multiplier used to quantize)."""

    weight: np.ndarray  # float32 (out, in): fl32(fl32(codes - zero) * scale)
    codes: np.ndarray  # int32 (out, in), in [0, 2**bits - 1]
    scale: np.ndarray  # float32 (out, n_groups): fl32(1 / multiplier)
    zero: np.ndarray  # float32 (out, n_groups): the optimized (not rounded) zero point
    iterations: int  # the iterations run (the early stop counts the one that did not improve)


def hqq_shrink(x, *, beta, p):
    r"""The shrinkage operator of the $\ell_p$ norm ($p \le 1$), HQQ's proximal step.

    $$ \operatorname{shrink}_p(x; \beta) = \operatorname{sign}(x)\, \max\Big(|x| - \operatorname{fl}_{32}\big(
       \operatorname{fl}_{32}(1/\beta) \cdot \operatorname{cr\_pow}(|x|, \operatorname{fl}_{32}(p - 1))\big),\ 0\Big) $$

    every operation one float32 rounding in this order ($1/\beta$ and $p - 1$ in float64, then rounded).

    **Arguments:**

    - `x`: a float32 array, any shape, finite.
    - `beta`: $\beta$, a real number `> 0` (finite).
    - `p`: the norm, a real number in `(0, 1]`.

    **Returns:**

    A float32 array shaped like `x`.

    !!! note
        $x = 0$ gives `+0.0` ($|0|^{p-1} = \infty$ for $p < 1$, $= 1$ for $p = 1$: either way nothing is left); a
        negative $x$ shrunk to nothing gives `-0.0` ($\operatorname{sign}(x) \cdot 0$, as the paper's code).
        $p = 1$ is soft thresholding at $1/\beta$. Example: $\beta = 1$, $p = 0.5$: $|x|^{-1/2} =
        [0.5, 1, \infty]$:

            >>> hqq_shrink(np.float32([4, -1, 0]), beta=1.0, p=0.5)
            array([ 3.5, -0. ,  0. ], dtype=float32)

    ??? cite "Badri and Shaji, 2023"
        Half-Quadratic Quantization of Large Machine Learning Models. Mobius Labs blog,
        https://mobiusml.github.io/hqq_blog/ (Eq. 4, the generalized soft-thresholding operator; code:
        `hqq/core/optimize.py`, `shrink_op`).
    """
    x = _arrays.finite_array("x", x)
    beta = validate.real("beta", beta, lo=0.0, lo_open=True)
    p = validate.real("p", p, lo=0.0, hi=1.0, lo_open=True)
    return np.asarray(_shrink(x, beta, p))


def hqq(w, *, bits=4, group_size=64, lp_norm=0.7, beta=10.0, kappa=1.01, iters=20, optimize=True):
    r"""HQQ on one weight: min-max initialization, then the half-quadratic zero-point solver, then the codes.

    Groups are `group_size` consecutive input columns of each output row (HQQ's `axis=1` layout). Per group, with
    $q_{max} = 2^b - 1$: the multiplier $\sigma = \min(\operatorname{fl}_{32}(q_{max} \oslash \operatorname{fl}_{32}(
    \max w - \min w)),\ 2 \cdot 10^4)$ and $z = \operatorname{fl}_{32}(-\min w \cdot \sigma)$. Then, for
    $i = 0, \ldots$, `iters` $- 1$, with $\beta_0 = \beta$, $\beta_{i+1} = \beta_i \kappa$ (Python floats):

    $$ W_q = \operatorname{clip}(\operatorname{rne}(W \sigma + z), 0, q_{max}), \quad W_r = (W_q - z) \oslash \sigma,
       \quad W_e = \operatorname{shrink}_p(W - W_r; \beta_i), \quad
       z \leftarrow \operatorname{mean}\big(W_q - (W - W_e)\, \sigma\big) $$

    (each operation one float32 rounding, left to right; the mean is the exact sum over the group rounded once to
    float64, divided by the group size in float64, rounded to float32). The error
    $e_i = \operatorname{fl}_{64}(\operatorname{exact\_sum} |W - W_r| / \text{numel})$ stops the loop (after its
    update) the first time it is not below the best so far (initially $10^4$). Finally
    $c = \operatorname{clip}(\operatorname{rne}(W \sigma + z), 0, q_{max})$ and, as HQQ stores and decodes it,
    `scale` $= \operatorname{fl}_{32}(1 \oslash \sigma)$, `weight` $= \operatorname{fl}_{32}(c - z) \cdot$ `scale`.

    **Arguments:**

    - `w`: a float32 array `(out_features, in_features)`, finite.
    - `bits`: an int in `[1, 8]` (default 4).
    - `group_size`: an int dividing `in_features` (default 64).
    - `lp_norm`: $p$, in `(0, 1]` (default 0.7); `beta`: $\beta > 0$ (default 10); `kappa`: $\kappa \ge 1$
      (default 1.01); `iters`: an int in `[0, 10000]` (default 20).
    - `optimize`: run the solver (default `True`); `False` gives HQQ's plain min-max quantization.

    **Returns:**

    An `HQQResult`: `weight`, `codes` (int32), `scale` and `zero` (float32 `(out, n_groups)`), `iterations`.

    !!! note
        As the paper's code: the zero point is a float, not rounded (4-bit default); the loop's last update is kept
        even when it made the error worse (the code breaks after updating); a group whose values are all equal
        gets the capped multiplier $2 \cdot 10^4$. Deviations: float32 throughout (the code runs in float16 on
        CUDA), exact means (its `mean` depends on the order), and a correctly rounded power in the shrinkage.

    ??? cite "Badri and Shaji, 2023"
        Half-Quadratic Quantization of Large Machine Learning Models. https://mobiusml.github.io/hqq_blog/
        (code: `hqq/core/optimize.py`, `optimize_weights_proximal`; `hqq/core/quantize.py`, `Quantizer.quantize`).
    """
    w = _arrays.finite_array("w", w)
    if w.ndim != 2 or w.shape[1] == 0:
        raise ValueError(f"w must be 2-D (out_features, in_features) with in_features >= 1, got shape {tuple(w.shape)}")
    bits = validate.integer("bits", bits, lo=1, hi=8)
    g = validate.integer("group_size", group_size, lo=1)
    if w.shape[1] % g:
        raise ValueError(f"group_size={g} must divide in_features={w.shape[1]}")
    p = validate.real("lp_norm", lp_norm, lo=0.0, hi=1.0, lo_open=True)
    beta = validate.real("beta", beta, lo=0.0, lo_open=True)
    kappa = validate.real("kappa", kappa, lo=1.0)
    iters = validate.integer("iters", iters, lo=0, hi=MAX_ITERS)
    optimize = validate.boolean("optimize", optimize)
    out_f, d = w.shape
    qmax = F32(2**bits - 1)
    groups = w.reshape(-1, g)
    # + 0.0: min and max do not specify the sign of a zero extreme (of -0.0 and +0.0); a zero extreme is +0.0
    lo, hi = groups.min(axis=1)[:, None] + F32(0), groups.max(axis=1)[:, None] + F32(0)
    with np.errstate(over="ignore"):
        width = hi - lo
    _finite_ranges(width)
    with np.errstate(divide="ignore"):
        sigma = np.minimum(qmax / width, SCALE_CAP)
    zero = -lo * sigma
    done = 0
    if optimize:
        best = FIRST_BEST
        for _ in range(iters):
            done += 1
            wq = _codes(groups * sigma + zero, qmax)
            wr = (wq - zero) / sigma
            we = _shrink(groups - wr, beta, p)
            zero = _mean(wq - (groups - we) * sigma)
            beta *= kappa
            error = float(exact_sum(np.abs(groups - wr)) / F64(groups.size))
            if error < best:
                best = error
            else:
                break
    codes = _codes(groups * sigma + zero, qmax)
    scale = F32(1) / sigma
    weight = (codes - zero) * scale
    n_groups = d // g
    return HQQResult(weight.reshape(out_f, d), codes.astype(np.int32).reshape(out_f, d),
                     scale.reshape(out_f, n_groups), zero.reshape(out_f, n_groups), done)  # fmt: skip


def _codes(q, qmax):
    """`clip(rint(q), 0, qmax) + 0.0`: the codes as float32 integers, a zero always `+0.0` (a code has no sign;
    `rint(-0.3)` is `-0.0`, and whether `clip` keeps it or returns the bound `+0.0` differs between NumPy
    releases, so it is made `+0.0` here, and the steps that read the codes do not depend on it)."""
    return np.clip(np.rint(q), F32(0), qmax) + F32(0)


def _shrink(x, beta, p):
    inv = F32(1.0 / beta)
    if inv == 0:  # beta past 2**150 (kappa**i can get there): no shrinkage left, and no 0 * inf
        return np.sign(x) * np.abs(x)
    with np.errstate(over="ignore"):
        t = inv * cr_pow(np.abs(x), np.asarray(F32(p - 1.0)))
    return np.sign(x) * np.maximum(np.abs(x) - t, F32(0))


def _finite_ranges(width):
    bad = ~np.isfinite(width.reshape(-1))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"group {i} of w spans more than the float32 range (max - min overflows)")


def _mean(v):
    """Per row: fl32(fl64(exact_sum(row)) / width)."""
    return (exact_sum(v, axis=1) / F64(v.shape[1])).astype(F32)[:, None]
