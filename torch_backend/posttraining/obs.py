"""GPTQ and SparseGPT in torch, exact: the semantics of `reference.posttraining.obs`, bit for bit, on any device.

The column values are the reference's (the exact value rounded once to float32), computed faster: the paper's
lazy blocks. At the start of a block, one float64 matrix product gives every column of the block its approximate
contribution from the earlier blocks (with its error bound from a second product of absolute values); within the
block, the contributions of the block's own earlier columns are added per column. An entry whose error interval
straddles a float32 rounding boundary is recomputed exactly with `exact_dot`. The block size changes the float64
approximations, never a certified result, so it changes no bit of the output.
"""

from __future__ import annotations

import itertools
import math

import torch

from reference.common import validate
from reference.posttraining.obs import MAX_BLOCK, SCALE_DTYPES, GPTQResult, SparseGPTResult
from torch_backend import _arrays
from torch_backend.codecs._bytes import host_mask, host_tensor
from torch_backend.core.exact import exact_gram, exact_sum
from torch_backend.core.linalg import cholesky, cholesky_inverse
from torch_backend.core.select import keep_largest
from torch_backend.posttraining import _certified
from torch_backend.pruning.magnitude import pruned_count
from torch_backend.quantization.affine import dequantize, integer_range, minmax_qparams, quantize

__all__ = [
    "GPTQResult", "SparseGPTResult", "gptq_hessian", "gptq_damp", "gptq_order", "gptq_factor", "gptq", "sparsegpt",
]  # fmt: skip

F32, F64 = torch.float32, torch.float64


def gptq_hessian(x):
    """`fl64(2 exact_gram(x) / n)`; see `reference.posttraining.obs.gptq_hessian`."""
    x = _arrays.finite_array("x", x)
    if x.ndim != 2:
        raise validate.not_matrix("x", tuple(x.shape))
    if x.shape[0] == 0:
        raise ValueError(f"x has shape {tuple(x.shape)}: the Hessian needs at least one calibration row")
    g = exact_gram(x)
    return (g * 2) / _arrays.scalar(float(x.shape[0]), g)


def gptq_damp(h, percdamp=0.01):
    """Dead inputs to 1, then `percdamp` times the exact mean of the diagonal added to it; see the reference."""
    rows = _hessian_host(h)
    if rows is None:
        h = _hessian("h", h)
    p = validate.real("percdamp", percdamp, lo=0.0, hi=1e6)
    if rows is not None:
        damped = _damp_host(rows, p)
        if damped is not None:
            return damped
    return _damp(h, p)


def gptq_order(h):
    """The columns by decreasing Hessian diagonal, ties to the lower index; see the reference."""
    perm = _order_host(h)
    return perm if perm is not None else _order(_hessian("h", h))


HOST_MAX = 256  # up to this many elements of a plain CPU `h`, `gptq_order` runs on the host


def _order_host(h):
    """`gptq_order` of a small valid plain CPU float64 `h` on Python floats (read once, exactly), or None (then the
    tensor route checks `h`, raising the reference's error for an invalid one). Valid: square, `d >= 1`, finite,
    `h[i][j] == h[j][i]` (`==` of floats: `-0.0 == 0.0`, as the tensor route's `!=`), no diagonal entry `< 0`.
    The order is Python's stable `sorted` by `-h[j][j]`: decreasing diagonal, ties (`-0.0` and `+0.0` equal, as
    in the reference's stable argsort of the negated diagonal; no NaN) to the lower index."""
    rows = _hessian_host(h)
    if rows is None:
        return None
    diag = [rows[j][j] for j in range(len(rows))]
    return torch.tensor(sorted(range(len(rows)), key=lambda j: -diag[j]), dtype=torch.int64)


def _hessian_host(h):
    """The rows of a small valid plain CPU float64 Hessian `h` as lists of Python floats (read once, exactly), or
    None (larger, elsewhere, inside `deferred_checks`, or invalid: then `_hessian` checks `h` and raises the
    reference's error). Valid: square, `d >= 1`, `d * d <= HOST_MAX`, finite, `h[i][j] == h[j][i]` (`==` of
    floats: `-0.0 == 0.0`, as the tensor route's `!=`), no diagonal entry `< 0`."""
    if not (type(h) in _arrays.PLAIN and h.dtype == F64 and h.ndim == 2 and h.device.type == "cpu"):
        return None
    d = h.shape[0]
    if not (1 <= d and h.shape[1] == d and d * d <= HOST_MAX) or _arrays.deferring():
        return None
    rows = h.detach().resolve_neg().tolist()
    if not all(map(math.isfinite, itertools.chain.from_iterable(rows))):
        return None
    if any(rows[i][j] != rows[j][i] for i in range(d) for j in range(i)):
        return None
    if any(rows[j][j] < 0 for j in range(d)):
        return None
    return rows


def _damp_host(rows, percdamp):
    """`_damp` on Python floats for `_hessian_host`'s rows: dead columns (a zero diagonal, `-0.0` too) get `1.0`
    there; the mean of the diagonal is its exact sum rounded once (`math.fsum`, correctly rounded, `+ 0.0` for a
    zero sum as `exact_sum`'s) divided by `d` in float64; `percdamp` times it is added to each diagonal entry (IEEE
    float64 operations, as the tensor route's). None when the sum overflows (`fsum` raises where `exact_sum`
    gives an infinity): then the tensor route."""
    d = len(rows)
    dead = [rows[j][j] == 0 for j in range(d)]
    diag = [1.0 if dead[j] else rows[j][j] for j in range(d)]
    try:
        mean = (math.fsum(diag) + 0.0) / float(d)
    except OverflowError:
        return None
    damp = percdamp * mean
    out = [list(row) for row in rows]
    for j in range(d):
        out[j][j] = diag[j] + damp
    flat = list(itertools.chain.from_iterable(out))
    return host_tensor("d", flat, F64, (d, d)), host_mask(dead, (d,))


def gptq_factor(h):
    """The upper Cholesky factor of the inverse Hessian, from pqref's exact factorizations; see the reference."""
    return _factor(_hessian("h", h))


def gptq(w, h, *, bits, group_size=None, symmetric=False, act_order=False, static_groups=False, percdamp=0.01,
         block_size=128, scale_dtype="float32"):  # fmt: skip
    """GPTQ in exact arithmetic; see `reference.posttraining.obs.gptq` for the semantics."""
    w, h = _layer(w, h)
    bits = validate.integer("bits", bits, lo=2, hi=8)
    group_size = _group_size(group_size, w.shape[1])
    symmetric = validate.boolean("symmetric", symmetric)
    act_order = validate.boolean("act_order", act_order)
    static_groups = validate.boolean("static_groups", static_groups)
    percdamp = validate.real("percdamp", percdamp, lo=0.0, hi=1e6)
    block = validate.integer("block_size", block_size, lo=1, hi=MAX_BLOCK)
    scale_dtype = validate.choice("scale_dtype", scale_dtype, SCALE_DTYPES)
    qmin, qmax = integer_range(bits, True, symmetric)
    w, h = w.detach(), h.detach()
    d = w.shape[1]
    g = group_size or d
    damped, dead = _damp(h, percdamp)
    w0 = torch.where(dead[None, :], torch.zeros((), dtype=F32, device=w.device), w)
    if act_order:
        perm = _order(torch.where(torch.diag(dead), torch.ones((), dtype=F64, device=h.device), h))
    else:
        perm = torch.arange(d, dtype=torch.int64, device=w.device)
    u = _factor(damped[perm][:, perm])
    static = None
    if static_groups:
        static = [_qparams(w0[:, c : c + g], qmin, qmax, symmetric, scale_dtype) for c in range(0, d, g)]
    loop = _Columns(w0[:, perm], u, block)
    codes = torch.zeros(w0.shape, dtype=torch.int32, device=w.device)
    out = torch.zeros(w0.shape, dtype=F32, device=w.device)
    scales, zeros = [], []
    params = None
    perm_host = perm.tolist()
    for k in range(d):
        if static is not None:
            params = static[perm_host[k] // g]
        elif k % g == 0:
            params = _qparams(loop.current(k, k + g), qmin, qmax, symmetric, scale_dtype)
            scales.append(params[0])
            zeros.append(params[1])
        wk = loop.current(k, k + 1)
        ck = quantize(wk, *params, qmin=qmin, qmax=qmax, axis=0)
        qk = dequantize(ck, *params, axis=0)
        codes[:, k], out[:, k] = ck[:, 0], qk[:, 0]
        loop.done(k, wk[:, 0], qk[:, 0])
    if static is not None:
        scales, zeros = [s for s, _ in static], [z for _, z in static]
        g_idx = (torch.arange(d, device=w.device) // g).to(torch.int32)
    else:
        g_idx = torch.zeros(d, dtype=torch.int32, device=w.device)
        g_idx[perm] = (torch.arange(d, device=w.device) // g).to(torch.int32)
    inverse = torch.argsort(perm, stable=True)
    return GPTQResult(out[:, inverse], codes[:, inverse], torch.stack(scales, dim=1), torch.stack(zeros, dim=1),
                      g_idx, perm)  # fmt: skip


def sparsegpt(w, h, *, sparsity=None, n=None, m=None, blocksize=128, percdamp=0.01, bits=None, group_size=None,
              symmetric=False, scale_dtype="float32"):  # fmt: skip
    """SparseGPT in exact arithmetic; see `reference.posttraining.obs.sparsegpt` for the semantics."""
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
    w, h = w.detach(), h.detach()
    damped, dead = _damp(h, percdamp)
    zero = torch.zeros((), dtype=F32, device=w.device)
    w0 = torch.where(dead[None, :], zero, w)
    u = _factor(damped)
    diag2 = torch.diag(u) * torch.diag(u)
    loop = _Columns(w0, u, blocksize if sparsity is not None else 128)
    out = torch.zeros(w0.shape, dtype=F32, device=w.device)
    keep = torch.ones(w0.shape, dtype=torch.bool, device=w.device)
    codes = torch.zeros(w0.shape, dtype=torch.int32, device=w.device) if quantized else None
    g = (group_size or d) if quantized else None
    scales, zeros, params = [], [], None
    for k in range(d):
        if sparsity is not None and k % blocksize == 0:
            end = min(k + blocksize, d)
            scores = _scores(loop.current(k, end), diag2[k:end])
            count = scores.numel() - pruned_count(sparsity, scores.numel())
            keep[:, k:end] = keep_largest(scores.reshape(-1), count).reshape(scores.shape)
        if n is not None and k % m == 0:
            scores = _scores(loop.current(k, k + m), diag2[k : k + m])
            keep[:, k : k + m] = torch.stack([keep_largest(row, m - n) for row in scores])
        if quantized and k % g == 0:
            params = _qparams(loop.current(k, k + g), qmin, qmax, symmetric, scale_dtype)
            scales.append(params[0])
            zeros.append(params[1])
        wk = loop.current(k, k + 1)
        kept = keep[:, k : k + 1]
        if quantized:
            ck = torch.where(kept, quantize(wk, *params, qmin=qmin, qmax=qmax, axis=0), params[1][:, None])
            codes[:, k] = ck[:, 0]
            qk = torch.where(kept, dequantize(ck, *params, axis=0), zero)
        else:
            qk = torch.where(kept, wk, zero)
        out[:, k] = qk[:, 0]
        loop.done(k, wk[:, 0], qk[:, 0])
    if not quantized:
        return SparseGPTResult(out, keep, None, None, None, None)
    g_idx = (torch.arange(d, device=w.device) // g).to(torch.int32)
    return SparseGPTResult(out, keep, codes, torch.stack(scales, dim=1), torch.stack(zeros, dim=1), g_idx)


# ---- the exact column values, in lazy blocks ----------------------------------------------------------------


class _Columns:
    """The state of the column loop, as the paper's lazy blocks: the errors `e_j` of the columns done (stored
    transposed, one row per column), and for the block that holds the current column the float64 contributions of
    the earlier blocks (one matrix product at the block's start) and of the block's own earlier columns (a rank-1
    update per column), each with the sum of the absolute terms that bounds its rounding error."""

    def __init__(self, w0, u, block):
        self.u, self.block = u, block
        self.c = w0.to(F64)
        self.c_abs = self.c.abs()
        self.err = torch.zeros((w0.shape[1], w0.shape[0]), dtype=F64, device=w0.device)
        self.err_abs = torch.zeros_like(self.err)
        self.start = self.end = -1
        self.memo = None  # (k, stop, fl32 of columns [k, stop)) until the next `done`

    def _refresh(self, k):
        b = (k // self.block) * self.block
        if b == self.start:
            return
        end = min(b + self.block, self.u.shape[1])
        ub = self.u[:b, b:end]
        self.prefix = self.err[:b].T @ ub
        self.prefix_abs = self.err_abs[:b].T @ ub.abs()
        self.acc = torch.zeros_like(self.prefix)
        self.acc_abs = torch.zeros_like(self.prefix)
        self.start, self.end = b, end

    def current(self, k, stop):
        """fl32 of the exact values of columns [k, stop) after the updates of columns [0, k).

        Every column's value is the correctly rounded exact value (certified, or settled exactly), whatever
        columns it is computed with, and none changes before the next `done`: columns [k, stop) asked for again
        (the scores, the quantization parameters and the column itself read the same columns) are the leading
        columns of the last result for k, returned as a view of it (no caller writes into them)."""
        stop = min(stop, self.u.shape[1])
        if self.memo is not None and self.memo[0] == k and self.memo[1] >= stop:
            return self.memo[2][:, : stop - k]
        self.memo = (k, stop, self._current(k, stop))
        return self.memo[2]

    def _current(self, k, stop):
        self._refresh(k)
        parts = []
        inside = min(stop, self.end)
        if inside > k:
            cols, b = slice(k - self.start, inside - self.start), self.start
            approx = (self.c[:, k:inside] - self.prefix[:, cols]) - self.acc[:, cols]
            magnitude = (self.c_abs[:, k:inside] + self.prefix_abs[:, cols]) + self.acc_abs[:, cols]
            parts.append(self._round(approx, magnitude, k, k))
            del b
        if stop > inside:  # columns past the current block: one product over every column done
            ub = self.u[:k, inside:stop]
            approx = self.c[:, inside:stop] - self.err[:k].T @ ub
            magnitude = self.c_abs[:, inside:stop] + self.err_abs[:k].T @ ub.abs()
            parts.append(self._round(approx, magnitude, k, inside))
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)

    def _round(self, approx, magnitude, k, col):
        out, ok = _certified.certify(approx, magnitude, k + 2)
        bad = (~(ok & (out != 0))).nonzero()  # almost always empty; zeros settled exactly, as the reference's
        if bad.numel():
            rows, cols = bad[:, 0], bad[:, 1]
            c, a, b = self.c[rows, col + cols], self.err[:k, rows].T, self.u[:k, col + cols].T
            ones = torch.ones((c.shape[0], 1), dtype=F64, device=c.device)
            terms, factors = torch.cat([c[:, None], -a], dim=1), torch.cat([ones, b], dim=1)
            out[rows, cols] = _certified.exact32(terms, factors, "a column value")
        return out

    def done(self, k, wk, qk):
        """Column k is final: e_k = fl64(fl64(w_k - q_k) / U_kk), added to the block's later columns."""
        self.memo = None
        e = (wk.to(F64) - qk.to(F64)) / self.u[k, k]
        self.err[k] = e
        self.err_abs[k] = e.abs()
        rest = slice(k + 1 - self.start, self.end - self.start)
        row = self.u[k, k + 1 : self.end]
        # float64 approximations (a fused multiply-add only makes them closer): the bound covers either way
        self.acc[:, rest].addr_(e, row)
        self.acc_abs[:, rest].addr_(self.err_abs[k], row.abs())


def _qparams(cols, qmin, qmax, symmetric, scale_dtype):
    """Min-max parameters per output row; the scale rounded to float16 with `"float16"`; see the reference."""
    scale, zero_point = minmax_qparams(cols, qmin=qmin, qmax=qmax, symmetric=symmetric, axis=0)
    if scale_dtype == "float16":
        half = scale.to(torch.float16).to(F32)
        bad = ~torch.isfinite(half)
        if bool(bad.any()):
            r = int(bad.nonzero()[0])
            raise ValueError(f"scale {float(scale[r])!r} of output row {r} is beyond the float16 range "
                             f"(scale_dtype='float16')")  # fmt: skip
        scale = torch.where(half > 0, half, torch.full_like(half, 2.0**-24))
    return scale, zero_point


def _scores(current, diag2):
    v = current.to(F64)
    return (v * v) / diag2[None, :]


# ---- checks and steps ---------------------------------------------------------------------------------------


def _hessian(name, h):
    h = _arrays.finite_array(name, h, ("float64",))
    if h.ndim != 2 or h.shape[0] != h.shape[1] or h.shape[0] == 0:
        raise validate.not_square(name, tuple(h.shape))
    mismatch = (h != h.T).nonzero()
    if mismatch.numel():
        i, j = (int(v) for v in mismatch[0])
        raise validate.not_symmetric(name, i, j, float(h[i, j]), float(h[j, i]))
    diag = torch.diag(h)
    if bool((diag < 0).any()):
        j = int((diag < 0).nonzero()[0])
        raise ValueError(f"{name} has a negative diagonal entry {float(diag[j])!r} at column {j}: not a Hessian")
    return h


def _layer(w, h):
    w = _arrays.finite_array("w", w)
    if w.ndim != 2 or w.shape[1] == 0:
        raise ValueError(f"w must be 2-D (out_features, in_features) with in_features >= 1, got shape {tuple(w.shape)}")
    h = _hessian("h", h)
    if h.shape[0] != w.shape[1]:
        raise validate.shape_mismatch("h", h.shape, (w.shape[1], w.shape[1]), "w with in_features " + str(w.shape[1]))
    _arrays.same_device("h", h, "w", w)
    return w, h


def _group_size(group_size, d):
    if group_size is None:
        return None
    g = validate.integer("group_size", group_size, lo=1)
    if d % g:
        raise ValueError(f"group_size={g} must divide in_features={d}")
    return g


def _damp(h, percdamp):
    diag = torch.diag(h)
    dead = diag == 0
    fixed = torch.where(torch.diag(dead), torch.ones((), dtype=F64, device=h.device), h)
    mean = exact_sum(torch.diag(fixed)) / _arrays.scalar(float(h.shape[0]), h)
    damp = _arrays.scalar(percdamp, h) * mean
    out = fixed.clone()
    i = torch.arange(h.shape[0], device=h.device)
    out[i, i] = out[i, i] + damp
    return out, dead


def _order(h):
    return torch.sort(-torch.diag(h), stable=True).indices.to(torch.int64)


def _factor(h):
    try:
        lower = cholesky(h)
    except ValueError as exc:
        raise ValueError(f"the damped Hessian is not positive definite: {exc}") from None
    try:
        return cholesky(cholesky_inverse(lower)).T.contiguous()
    except ValueError as exc:
        raise ValueError(f"the computed inverse Hessian is not positive definite: {exc}") from None
