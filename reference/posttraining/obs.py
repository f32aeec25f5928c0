r"""GPTQ and SparseGPT (the Optimal Brain Surgeon family) in exact arithmetic: one rounding per column, independent of batch, block size and device.

Both methods quantize (GPTQ) or prune (SparseGPT) a linear layer's weight $W$ (`out_features x in_features`)
column by column, and after each column spread its error over the columns still to come through the inverse
Hessian of the layer's inputs, as the Optimal Brain Surgeon does. pqref pins every step:

1. **Hessian** (`gptq_hessian`): $H = \operatorname{fl}_{64}(2\, G / n)$ with $G$ = `exact_gram(X)` over the $n$
   calibration rows; $G$ is exact and rounded once, so $H$ depends on the rows only, not on how they are batched.
2. **Dead inputs and damping** (`gptq_damp`): where $H_{jj} = 0$, $H_{jj} \leftarrow 1$ (and the weight column
   becomes `+0.0`); then $H_{jj} \leftarrow \operatorname{fl}_{64}(H_{jj} + \lambda)$ with
   $\lambda = \operatorname{fl}_{64}(\text{percdamp} \cdot \bar d)$, $\bar d = \operatorname{fl}_{64}(\operatorname{exact\_sum}(\operatorname{diag} H) / n)$.
3. **Column order** (`gptq_order`, with `act_order`): a stable sort of $\operatorname{diag} H$ descending (on the
   dead-fixed, undamped $H$, as the paper's code does), ties to the lower index.
4. **Inverse factor** (`gptq_factor`): $U$ = the upper Cholesky factor of $H^{-1}$, from pqref's exact
   `cholesky`, `cholesky_inverse` and `cholesky` again (transposed).
5. **The column loop**: the value of column $k$ when it is reached is
   $w_k = \operatorname{fl}_{32}\big(W^0_{:,k} - \sum_{j<k} e_j\, U_{jk}\big)$, the exact real value rounded once,
   where $e_j = \operatorname{fl}_{64}\big(\operatorname{fl}_{64}(w_j - q_j) \oslash U_{jj}\big)$ and $q_j$ is column
   $j$'s quantized (or pruned) value. The paper's lazy block updates are then a pure speed device: the result
   does not depend on the block size.

**How the exact column values are computed** (both backends): a float64 matrix product gives an approximation,
and a rigorous bound on its error (valid for any summation order, with or without fused multiply-add) shows for
almost every entry that the whole interval around it rounds to one float32; that float32 is then the correctly
rounded exact value. The rare entries whose interval straddles a float32 rounding boundary are computed exactly
with `exact_dot`. The result is the exact value rounded once, whatever BLAS computed the approximation.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from reference import _arrays
from reference.common import validate
from reference.core.exact import exact_gram, exact_sum
from reference.core.linalg import cholesky, cholesky_inverse
from reference.core.select import keep_largest
from reference.posttraining import _certified
from reference.pruning.magnitude import pruned_count
from reference.quantization.affine import dequantize, integer_range, minmax_qparams, quantize

__all__ = [
    "GPTQResult", "SparseGPTResult", "gptq_hessian", "gptq_damp", "gptq_order", "gptq_factor", "gptq", "sparsegpt",
]  # fmt: skip

F32, F64 = np.float32, np.float64
MAX_BLOCK = 2**20
SCALE_DTYPES = ("float32", "float16")


class GPTQResult(NamedTuple):
    """`gptq`'s outputs, in the weight's original column order."""

    weight: np.ndarray  # float32 (out, in): the dequantized weight
    codes: np.ndarray  # int32 (out, in)
    scale: np.ndarray  # float32 (out, n_groups)
    zero_point: np.ndarray  # int32 (out, n_groups)
    g_idx: np.ndarray  # int32 (in,): the group of each input column
    perm: np.ndarray  # int64 (in,): the order the columns were processed in


class SparseGPTResult(NamedTuple):
    """`sparsegpt`'s outputs; the quantization fields are None without `bits`."""

    weight: np.ndarray  # float32 (out, in): pruned weights +0.0, kept ones (quantized with `bits`)
    mask: np.ndarray  # bool (out, in): True where kept
    codes: np.ndarray | None
    scale: np.ndarray | None
    zero_point: np.ndarray | None
    g_idx: np.ndarray | None


def gptq_hessian(x):
    r"""The calibration Hessian of GPTQ and SparseGPT: $H = \operatorname{fl}_{64}(2 X^\top X / n)$, exactly.

    $$ H = \operatorname{fl}_{64}\Big(\frac{2\, G}{n}\Big), \qquad G = \operatorname{exact\_gram}(X) $$

    $G$ is the exact Gram matrix rounded once; $2G$ is exact; the division by the row count is one IEEE float64
    division. $H$ is a function of the set of rows: batch size, batch order, device and how the rows are split
    across processes do not change a bit (accumulate batches with `exact_sum_state`-style states, see the
    training layer).

    **Arguments:**

    - `x`: a float32 array `(n, d)`: the layer's inputs, one row per token, `n >= 1`, finite.

    **Returns:**

    float64 `(d, d)`, exactly symmetric.

    Example: `x = [[1, 2], [3, 4]]`: $G = [[10, 14], [14, 20]]$, $H = G$ ($2G / 2$):

        >>> gptq_hessian(np.float32([[1, 2], [3, 4]]))
        array([[10., 14.],
               [14., 20.]])

    ??? cite "Frantar et al., 2023"
        GPTQ: Accurate Post-Training Quantization for Generative Pre-trained Transformers. ICLR.
        arXiv:2210.17323 (Section 3: $H = 2 X X^\top$; the code averages over the calibration samples).
    """
    x = _arrays.finite_array("x", x)
    if x.ndim != 2:
        raise validate.not_matrix("x", x.shape)
    if x.shape[0] == 0:
        raise ValueError(f"x has shape {tuple(x.shape)}: the Hessian needs at least one calibration row")
    return np.asarray((exact_gram(x) * 2) / F64(x.shape[0]))


def gptq_damp(h, percdamp=0.01):
    r"""Dead inputs and damping: the Hessian GPTQ and SparseGPT factor, and the mask of dead input columns.

    $$ D = \{ j : H_{jj} = 0 \}, \quad H_{jj} \leftarrow 1 \ (j \in D), \quad
       \lambda = \operatorname{fl}_{64}\Big(p \cdot \operatorname{fl}_{64}\big(\operatorname{exact\_sum}(\operatorname{diag} H) / d\big)\Big),
       \quad H_{jj} \leftarrow \operatorname{fl}_{64}(H_{jj} + \lambda) $$

    The mean is over the diagonal after the dead entries became 1, as in the paper's code; the off-diagonal
    entries are unchanged.

    **Arguments:**

    - `h`: a float64 array `(d, d)`, `d >= 1`, finite, exactly symmetric, with a diagonal $\ge 0$.
    - `percdamp`: $p$, a real number in `[0, 1e6]` (default 0.01).

    **Returns:**

    `(h_damped, dead)`: float64 `(d, d)` and bool `(d,)`.

    Example: `h = [[0, 0], [0, 4]]`, `percdamp = 0.5`: dead `[True, False]`, diag `[1, 4]`, mean 2.5,
    $\lambda = 1.25$, result `[[2.25, 0], [0, 5.25]]`:

        >>> gptq_damp(np.float64([[0, 0], [0, 4]]), 0.5)
        (array([[2.25, 0.  ],
               [0.  , 5.25]]), array([ True, False]))
    """
    h = _hessian("h", h)
    p = validate.real("percdamp", percdamp, lo=0.0, hi=1e6)
    return _damp(h, p)


def gptq_order(h):
    r"""GPTQ's "act-order": the columns by decreasing $H_{jj}$, ties to the lower index (a stable sort).

    $$ \pi = \operatorname{argsort}_{\text{stable}}(-\operatorname{diag} H) $$

    **Arguments:**

    - `h`: a float64 array `(d, d)`, `d >= 1`, finite, exactly symmetric, diagonal $\ge 0$.

    **Returns:**

    int64 `(d,)`: `perm[i]` is the column processed `i`-th.

    !!! note
        The public GPTQ code sorts with an unstable `argsort` on the (float32 or float64) diagonal, so tied columns
        may come in any order there; here ties keep their index order on every device. `gptq` applies it to the
        dead-fixed, undamped Hessian. Example: `diag = [1, 3, 3, 2]` gives `[1, 2, 3, 0]`:

            >>> gptq_order(np.diag(np.float64([1, 3, 3, 2])))
            array([1, 2, 3, 0])
    """
    h = _hessian("h", h)
    return _order(h)


def gptq_factor(h):
    r"""The upper Cholesky factor of $H^{-1}$, the only inverse GPTQ and SparseGPT use: $H^{-1} = U^\top U$.

    $$ L = \operatorname{cholesky}(H), \qquad M = \operatorname{cholesky\_inverse}(L) = H^{-1}, \qquad
       U = \operatorname{cholesky}(M)^\top $$

    each step pqref's exact one (every entry one correctly rounded inner product and one IEEE operation).

    **Arguments:**

    - `h`: a float64 array `(d, d)`, finite, exactly symmetric, positive definite (damp it first).

    **Returns:**

    float64 `(d, d)`, upper triangular with a positive diagonal.

    !!! note
        A Hessian that is not positive definite on its own factorization raises `ValueError` naming the column and
        the exact pivot, on every device (the error says whether $H$ or the computed $H^{-1}$ failed). More
        damping (`percdamp`) is the usual cure.
    """
    h = _hessian("h", h)
    return _factor(h)


def gptq(w, h, *, bits, group_size=None, symmetric=False, act_order=False, static_groups=False, percdamp=0.01,
         block_size=128, scale_dtype="float32"):  # fmt: skip
    r"""GPTQ: quantize a weight column by column, correcting the columns still to come, in exact arithmetic.

    With $U$ = `gptq_factor` of the damped Hessian (columns permuted by `gptq_order` with `act_order`), for each
    column $k$ in processing order:

    $$ w_k = \operatorname{fl}_{32}\Big(W^0_{:,k} - \sum_{j<k} e_j\, U_{jk}\Big), \qquad
       q_k = \operatorname{dequantize}(\operatorname{quantize}(w_k)), \qquad
       e_k = \operatorname{fl}_{64}\big(\operatorname{fl}_{64}(w_k - q_k) \oslash U_{kk}\big) $$

    ($W^0$: the weight with dead columns `+0.0`; the sum is exact and rounded once.) Quantization is pqref's
    affine quantization: integer range `integer_range(bits, signed=True, narrow_range=symmetric)`, one scale and
    zero point per output row and group (`minmax_qparams(..., axis=0)`), `quantize` with ties to even.

    **Groups.** With `group_size = g`, the columns are cut into groups of `g` consecutive columns *in processing
    order*; a group's parameters are computed from the current values $w$ of its columns when the loop reaches
    its first column (exact values, one rounding each, as above). With `static_groups=True` they are computed
    before the loop from $W^0$ in the original column order instead (group of column $c$: $c // g$), which makes
    `act_order` keep the original grouping. Without `group_size`, one group spans all columns.

    **Arguments:**

    - `w`: a float32 array `(out_features, in_features)`, finite.
    - `h`: the float64 Hessian `(in_features, in_features)` (`gptq_hessian`), finite, symmetric, diagonal >= 0.
    - `bits`: an int in `[2, 8]`.
    - `group_size`: `None` or an int `>= 1` dividing `in_features`.
    - `symmetric`: zero point 0 and the narrow range (`[-7, 7]` for 4 bits) or asymmetric (`[-8, 7]`).
    - `act_order`: process the columns by decreasing Hessian diagonal (`gptq_order`).
    - `static_groups`: group parameters from the original weight, before the loop.
    - `percdamp`: the damping of `gptq_damp` (default 0.01).
    - `block_size`: the paper's lazy-batch block, an int in `[1, 2**20]`: a speed setting only (no effect on any
      bit of the result).
    - `scale_dtype`: `"float32"` (default) or `"float16"`: each group's scale is rounded to float16 (ties to even)
      before it is used, so that the result is exactly what a GPTQ checkpoint (float16 `scales`) decodes to
      (`gptq_pack`, `gptq_decode`); a scale that rounds to 0 in float16 becomes its smallest subnormal
      $2^{-24}$, a scale beyond its range raises `ValueError`.

    **Returns:**

    A `GPTQResult`: `weight` (float32, dequantized), `codes` (int32), `scale` (float32 `(out, n_groups)`),
    `zero_point` (int32 `(out, n_groups)`), `g_idx` (int32: each column's group), `perm` (int64: the processing
    order; the identity without `act_order`), all in the original column order.

    !!! note
        Deviations from the paper's code, each because its result would depend on something else than the inputs:
        sums are exact (its float32 updates depend on the block size and the BLAS), the order's ties go to the
        lower index (its `argsort` is unstable), a group's parameters use the fully updated weights (its code
        reads columns of the current block before that block's own updates when the group is smaller than the
        block), and $e_k$ rounds the difference $w_k - q_k$ to float64 before dividing (exact unless the two
        differ by more than $2^{29}$ in magnitude ratio). A column whose value leaves the float32 range raises
        `ValueError`.

    ??? cite "Frantar et al., 2023"
        GPTQ: Accurate Post-Training Quantization for Generative Pre-trained Transformers. ICLR.
        arXiv:2210.17323 (Algorithm 1).
    """
    w, h = _layer(w, h)
    bits = validate.integer("bits", bits, lo=2, hi=8)
    group_size = _group_size(group_size, w.shape[1])
    symmetric = validate.boolean("symmetric", symmetric)
    act_order = validate.boolean("act_order", act_order)
    static_groups = validate.boolean("static_groups", static_groups)
    percdamp = validate.real("percdamp", percdamp, lo=0.0, hi=1e6)
    validate.integer("block_size", block_size, lo=1, hi=MAX_BLOCK)
    scale_dtype = validate.choice("scale_dtype", scale_dtype, SCALE_DTYPES)
    qmin, qmax = integer_range(bits, True, symmetric)
    d = w.shape[1]
    g = group_size or d
    damped, dead = _damp(h, percdamp)
    w0 = np.where(dead[None, :], F32(0), w)
    perm = _order(np.where(np.diag(dead), F64(1), h)) if act_order else np.arange(d, dtype=np.int64)
    u = _factor(damped[perm][:, perm])
    static = None
    if static_groups:
        static = [_qparams(w0[:, c : c + g], qmin, qmax, symmetric, scale_dtype) for c in range(0, d, g)]
    w0p = w0[:, perm]
    err = np.zeros(w0.shape, dtype=F64)
    codes = np.zeros(w0.shape, dtype=np.int32)
    out = np.zeros(w0.shape, dtype=F32)
    scales, zeros = [], []
    params = None
    for k in range(d):
        if static is not None:
            params = static[int(perm[k]) // g]
        elif k % g == 0:
            params = _qparams(_current(w0p, err, u, k, slice(k, k + g)), qmin, qmax, symmetric, scale_dtype)
            scales.append(params[0])
            zeros.append(params[1])
        wk = _current(w0p, err, u, k, slice(k, k + 1))
        ck = quantize(wk, *params, qmin=qmin, qmax=qmax, axis=0)
        qk = dequantize(ck, *params, axis=0)
        codes[:, k], out[:, k] = ck[:, 0], qk[:, 0]
        err[:, k] = (wk[:, 0].astype(F64) - qk[:, 0].astype(F64)) / u[k, k]
    if static is not None:
        scales, zeros = [s for s, _ in static], [z for _, z in static]
        g_idx = (np.arange(d) // g).astype(np.int32)
    else:
        g_idx = np.zeros(d, dtype=np.int32)
        g_idx[perm] = (np.arange(d) // g).astype(np.int32)
    inverse = np.argsort(perm, kind="stable")
    return GPTQResult(out[:, inverse], codes[:, inverse], np.stack(scales, axis=1), np.stack(zeros, axis=1), g_idx,
                      perm)  # fmt: skip


def sparsegpt(w, h, *, sparsity=None, n=None, m=None, blocksize=128, percdamp=0.01, bits=None, group_size=None,
              symmetric=False, scale_dtype="float32"):  # fmt: skip
    r"""SparseGPT: prune a weight (and optionally quantize the kept entries) column by column, in exact arithmetic.

    The same Hessian, damping, factor $U$ and column loop as `gptq` (no reordering), with $q_k$ the pruned (and
    quantized) column. The mask is chosen on scores $\sigma_{rj} = \operatorname{fl}_{64}\big(w_{rj}^2 \oslash
    \operatorname{fl}_{64}(U_{jj}^2)\big)$ ($w^2$ is exact in float64) of the *current* values $w$:

    - **unstructured** (`sparsity`): at the start of every block of `blocksize` columns, over the whole block
      (`out x blocksize` scores in C order), keep the `n - pruned_count(n, sparsity)` largest, ties to the lower
      flat index (`keep_largest`); `blocksize` is part of the semantics here;
    - **N:M** (`n`, `m`): at the start of every group of `m` columns, in each row, prune the `n` smallest scores of
      the group, ties to the lower index (`keep_largest` of the `m - n` largest).

    A pruned entry becomes `+0.0`. With `bits`, a kept entry is quantized as in `gptq` (groups of `group_size`
    columns, parameters from the current values of the group's columns, pruned or not, when the loop reaches the
    group); a pruned entry gets code `zero_point`, whose value is `+0.0`.

    **Arguments:**

    - `w`: a float32 array `(out_features, in_features)`, finite.
    - `h`: the float64 Hessian `(in_features, in_features)`.
    - `sparsity`: a fraction in `[0, 1]`; or `n` and `m` (ints, `0 <= n <= m`, `m >= 1` dividing `in_features`)
      for N:M sparsity. Exactly one of the two.
    - `blocksize`: an int in `[1, 2**20]` (unstructured: the mask block; N:M: no effect).
    - `percdamp`: as `gptq_damp`.
    - `bits`, `group_size`, `symmetric`, `scale_dtype`: joint quantization of the kept weights (`bits` in
      `[2, 8]` or None), as for `gptq`.

    **Returns:**

    A `SparseGPTResult`: `weight` (float32), `mask` (bool, True where kept), and with `bits` the `codes`, `scale`,
    `zero_point`, `g_idx` as `gptq`'s (else None).

    !!! note
        The paper's code prunes every score at or below a threshold (ties at the threshold all pruned, so it may
        prune more than asked); here the count is exact and ties go to the lower index.

    ??? cite "Frantar and Alistarh, 2023"
        SparseGPT: Massive Language Models Can Be Accurately Pruned in One-Shot. ICML. arXiv:2301.00774
        (Algorithm 1).
    """
    w, h = _layer(w, h)
    d = w.shape[1]
    if (sparsity is None) == (n is None and m is None):
        raise ValueError("give either sparsity (unstructured) or n and m (N:M sparsity), not both and not neither")
    if sparsity is not None:
        sparsity = validate.fraction("sparsity", sparsity)
    else:
        n = validate.integer("n", n, lo=0)
        m = validate.integer("m", m, lo=1)
        if n > m:
            raise ValueError(f"n must be <= m, got n={n}, m={m}")
        if d % m:
            raise ValueError(f"m={m} must divide in_features={d}")
    blocksize = validate.integer("blocksize", blocksize, lo=1, hi=MAX_BLOCK)
    percdamp = validate.real("percdamp", percdamp, lo=0.0, hi=1e6)
    quantized = bits is not None
    if quantized:
        bits = validate.integer("bits", bits, lo=2, hi=8)
        group_size = _group_size(group_size, d)
        symmetric = validate.boolean("symmetric", symmetric)
        scale_dtype = validate.choice("scale_dtype", scale_dtype, SCALE_DTYPES)
        qmin, qmax = integer_range(bits, True, symmetric)
    elif group_size is not None:
        raise ValueError("group_size is only used with bits")
    damped, dead = _damp(h, percdamp)
    w0 = np.where(dead[None, :], F32(0), w)
    u = _factor(damped)
    diag2 = np.diag(u) * np.diag(u)
    err = np.zeros(w0.shape, dtype=F64)
    out = np.zeros(w0.shape, dtype=F32)
    keep = np.ones(w0.shape, dtype=bool)
    codes = np.zeros(w0.shape, dtype=np.int32) if quantized else None
    g = (group_size or d) if quantized else None
    scales, zeros, params = [], [], None
    for k in range(d):
        if sparsity is not None and k % blocksize == 0:
            cols = slice(k, min(k + blocksize, d))
            scores = _scores(_current(w0, err, u, k, cols), diag2[cols])
            count = scores.size - pruned_count(sparsity, scores.size)
            keep[:, cols] = keep_largest(scores.reshape(-1), count).reshape(scores.shape)
        if n is not None and k % m == 0:
            scores = _scores(_current(w0, err, u, k, slice(k, k + m)), diag2[k : k + m])
            keep[:, k : k + m] = np.stack([keep_largest(row, m - n) for row in scores])
        if quantized and k % g == 0:
            params = _qparams(_current(w0, err, u, k, slice(k, k + g)), qmin, qmax, symmetric, scale_dtype)
            scales.append(params[0])
            zeros.append(params[1])
        wk = _current(w0, err, u, k, slice(k, k + 1))
        kept = keep[:, k : k + 1]
        if quantized:
            ck = np.where(kept, quantize(wk, *params, qmin=qmin, qmax=qmax, axis=0), params[1][:, None])
            codes[:, k] = ck[:, 0]
            qk = np.where(kept, dequantize(ck, *params, axis=0), F32(0))
        else:
            qk = np.where(kept, wk, F32(0))
        out[:, k] = qk[:, 0]
        err[:, k] = (wk[:, 0].astype(F64) - qk[:, 0].astype(F64)) / u[k, k]
    if not quantized:
        return SparseGPTResult(out, keep, None, None, None, None)
    g_idx = (np.arange(d) // g).astype(np.int32)
    return SparseGPTResult(out, keep, codes, np.stack(scales, axis=1), np.stack(zeros, axis=1), g_idx)


# ---- the exact column values --------------------------------------------------------------------------------


def _current(w0, err, u, k, cols):
    """The current values of columns `cols` after the updates of columns 0..k-1, each the exact real value
    `w0[:, c] - sum_{j<k} err[:, j] * u[j, c]` rounded once to float32 (ties to even).

    A float64 product approximates the sum; `_certified.certify` proves for each entry that the float32 rounding of
    every value within the error bound is one and the same (then it is the exact value's), and `_certified.exact32`
    computes the few others exactly, and every zero (the approximation's sign depends on the order of the
    additions and on fused multiply-adds; the exact value's, `+0.0` for an exact zero, does not).
    """
    a, b, c = err[:, :k], u[:k, cols], w0[:, cols].astype(F64)
    approx = c - a @ b
    magnitude = np.abs(c) + np.abs(a) @ np.abs(b)
    with np.errstate(over="ignore", invalid="ignore"):
        value, ok = _certified.certify(approx, magnitude, k)
    ok &= value != 0  # a zero's sign is the exact value's (an exact zero is +0.0), not the approximation's
    for r, j in zip(*np.nonzero(~ok), strict=True):
        terms, factors = np.concatenate([[c[r, j]], -a[r]]), np.concatenate([[1.0], b[:, j]])
        value[r, j] = _certified.exact32(terms, factors, "a column value")
    return value


def _qparams(cols, qmin, qmax, symmetric, scale_dtype):
    """Min-max parameters per output row of a group's columns; the scale rounded to float16 with `"float16"`."""
    scale, zero_point = minmax_qparams(cols, qmin=qmin, qmax=qmax, symmetric=symmetric, axis=0)
    if scale_dtype == "float16":
        with np.errstate(over="ignore"):
            half = scale.astype(np.float16).astype(F32)
        bad = ~np.isfinite(half)
        if bad.any():
            r = int(np.flatnonzero(bad)[0])
            raise ValueError(f"scale {float(scale[r])!r} of output row {r} is beyond the float16 range "
                             f"(scale_dtype='float16')")  # fmt: skip
        scale = np.where(half > 0, half, F32(2.0**-24))  # a scale below float16's range: its smallest subnormal
    return scale, zero_point


def _scores(current, diag2):
    """SparseGPT's scores fl64(w**2 / fl64(U_jj**2)), float64 (w**2 is exact)."""
    v = current.astype(F64)
    return (v * v) / diag2[None, :]


# ---- checks and steps ---------------------------------------------------------------------------------------


def _hessian(name, h):
    h = _arrays.finite_array(name, h, ("float64",))
    if h.ndim != 2 or h.shape[0] != h.shape[1] or h.shape[0] == 0:
        raise validate.not_square(name, h.shape)
    mismatch = np.argwhere(h != h.T)
    if mismatch.size:
        i, j = (int(v) for v in mismatch[0])
        raise validate.not_symmetric(name, i, j, float(h[i, j]), float(h[j, i]))
    diag = np.diag(h)
    if (diag < 0).any():
        j = int(np.flatnonzero(diag < 0)[0])
        raise ValueError(f"{name} has a negative diagonal entry {float(diag[j])!r} at column {j}: not a Hessian")
    return h


def _layer(w, h):
    w = _arrays.finite_array("w", w)
    if w.ndim != 2 or w.shape[1] == 0:
        raise ValueError(f"w must be 2-D (out_features, in_features) with in_features >= 1, got shape {tuple(w.shape)}")
    h = _hessian("h", h)
    if h.shape[0] != w.shape[1]:
        raise validate.shape_mismatch("h", h.shape, (w.shape[1], w.shape[1]), "w with in_features " + str(w.shape[1]))
    return w, h


def _group_size(group_size, d):
    if group_size is None:
        return None
    g = validate.integer("group_size", group_size, lo=1)
    if d % g:
        raise ValueError(f"group_size={g} must divide in_features={d}")
    return g


def _damp(h, percdamp):
    dead = np.diag(h) == 0
    fixed = np.where(np.diag(dead), F64(1), h)
    mean = exact_sum(np.diag(fixed)) / F64(h.shape[0])
    damp = F64(percdamp) * mean
    out = fixed.copy()
    i = np.arange(h.shape[0])
    out[i, i] = out[i, i] + damp
    return out, dead


def _order(h):
    return np.argsort(-np.diag(h), kind="stable").astype(np.int64)


def _factor(h):
    try:
        lower = cholesky(h)
    except ValueError as exc:
        raise ValueError(f"the damped Hessian is not positive definite: {exc}") from None
    try:
        return np.asarray(cholesky(cholesky_inverse(lower)).T)
    except ValueError as exc:
        raise ValueError(f"the computed inverse Hessian is not positive definite: {exc}") from None
