"""The Triton kernels behind `torch_backend.kernels`; imported only when `import triton` works.

Exactness rules every kernel here follows (see `/docs/exactness.md`):

- launched with `enable_fp_fusion=False` (`EXACT`), so no multiply-add is contracted into an FMA;
- division is `tl.div_rn` (IEEE, correctly rounded); there is no square root;
- no libdevice call (`__nv_rintf`, `__nv_floorf`, ...): Triton links libdevice with flush-to-zero on, which
  would change results on subnormal inputs, and the interpreter cannot run it. Rounding is built from IEEE
  additions and comparisons instead (`_rint`, `_floor`, `_ceil`), which are exact for subnormals;
- sums use only IEEE `+` in float64 along the canonical tree; integer work (codes, ranks) is exact by nature.

With `TRITON_INTERPRET=1` set before this module is imported, every kernel runs in Triton's NumPy interpreter
on CPU tensors; the conformance tests use that to check the same kernel source without a GPU.
"""

from __future__ import annotations

import triton
import triton.language as tl

# compile options that keep the kernels bit-exact (passed at every launch)
EXACT = {"enable_fp_fusion": False}

# 1.5 * 2**23: for |y| <= 2**22, y + MAGIC lies in [2**23, 2**24] where the float32 spacing is 1, so the
# addition rounds y to an integer, half to even, and the subtraction is exact.
_MAGIC = tl.constexpr(12582912.0)
_CLAMP = tl.constexpr(4194304.0)  # 2**22: beyond it every code is clipped anyway (|qmin|, |qmax|, |z| <= 2**16)


@triton.jit
def _rint(y):
    """Round to nearest, ties to even, for |y| <= 2**22 (IEEE additions only)."""
    return (y + _MAGIC) - _MAGIC


@triton.jit
def _floor(y):
    t = _rint(y)
    return tl.where(t > y, t - 1.0, t)


@triton.jit
def _ceil(y):
    t = _rint(y)
    return tl.where(t < y, t + 1.0, t)


@triton.jit(do_not_specialize=["n", "D", "T", "G", "DG", "qmin", "qmax"])
def fake_quant_kernel(
    x_ptr,
    s_ptr,
    z_ptr,
    u_ptr,
    y_ptr,
    m_ptr,
    bad_ptr,
    n,
    D,
    T,
    G,
    DG,
    qmin,
    qmax,
    GRAN: tl.constexpr,
    MODE: tl.constexpr,
    WRITE_MASK: tl.constexpr,
    BIG: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """y = (clip(round(x / s) + z, qmin, qmax) - z) * s over a contiguous x viewed as (O, D, T).

    GRAN: 0 per tensor, 1 per channel (scale index c), 2 per group of G along D (scale index (o*D/G + c//G)*T + t).
    MODE: 0 half_even, 1 half_away, 2 floor, 3 ceil, 4 stochastic (u holds the uniform draws).
    WRITE_MASK: also store qmin <= round(x / s) + z <= qmax (the straight-through gradient's mask).
    Per program, bad_ptr[pid] = 1 if a loaded x is not finite (the caller then raises the reference's error).
    """
    pid = tl.program_id(0)
    if BIG:
        start = pid.to(tl.int64) * BLOCK
    else:
        start = pid * BLOCK
    offs = start + tl.arange(0, BLOCK)
    inb = offs < n
    x = tl.load(x_ptr + offs, mask=inb, other=0.0)
    bits = x.to(tl.int32, bitcast=True)
    bad = ((bits & 0x7F800000) == 0x7F800000) & inb
    tl.store(bad_ptr + pid, tl.max(bad.to(tl.int32), axis=0))
    if GRAN == 0:
        s = tl.broadcast_to(tl.load(s_ptr), [BLOCK])
        z = tl.broadcast_to(tl.load(z_ptr), [BLOCK])
    elif GRAN == 1:
        c = (offs // T) % D
        s = tl.load(s_ptr + c, mask=inb, other=1.0)
        z = tl.load(z_ptr + c, mask=inb, other=0)
    else:
        t = offs % T
        r = offs // T
        si = ((r // D) * DG + (r % D) // G) * T + t
        s = tl.load(s_ptr + si, mask=inb, other=1.0)
        z = tl.load(z_ptr + si, mask=inb, other=0)
    y = tl.div_rn(x, s)
    y = tl.where(y > _CLAMP, _CLAMP, y)
    y = tl.where(y < -_CLAMP, -_CLAMP, y)
    if MODE == 0:
        rq = _rint(y)
    elif MODE == 1:
        a = tl.where(y < 0.0, -y, y)
        w = _floor(a)
        rq = tl.where(a - w >= 0.5, w + 1.0, w)
        rq = tl.where(y < 0.0, -rq, rq)
    elif MODE == 2:
        rq = _floor(y)
    elif MODE == 3:
        rq = _ceil(y)
    else:
        u = tl.load(u_ptr + offs, mask=inb, other=0.0)
        down = _floor(y)
        rq = tl.where(u < y - down, down + 1.0, down)
    v = rq.to(tl.int32) + z
    q = tl.where(v < qmin, qmin, v)
    q = tl.where(q > qmax, qmax, q)
    out = (q - z).to(tl.float32) * s
    tl.store(y_ptr + offs, out, mask=inb)
    if WRITE_MASK:
        tl.store(m_ptr + offs, (v >= qmin) & (v <= qmax), mask=inb)


@triton.jit
def _row(base, p, Q, q, live, n_valid):
    """Row p of the (16, Q) view of the zero-padded input, as float64 (masked lanes are the +0.0 padding)."""
    i = p * Q.to(tl.int64) + q
    return tl.load(base + i, mask=live & (i < n_valid), other=0.0).to(tl.float64)


@triton.jit(do_not_specialize=["n_valid", "Q", "src_stride", "nqb"])
def tree16_kernel(src_ptr, dst_ptr, n_valid, Q, src_stride, nqb, BQ: tl.constexpr):
    """The top four levels of the canonical tree: dst[row, q] = tree over p of src[row, p * Q + q], p < 16.

    The canonical tree halves `a = a[:h] + a[h:]`, so its first four levels pair p with p + 8, then p + 4,
    p + 2, p + 1 in the (16, Q) view; those sums are written out below in exactly that order. Entries at or
    beyond n_valid are the +0.0 padding. dst is float64 with row length Q.
    """
    pid = tl.program_id(0).to(tl.int64)
    row = pid // nqb
    q = (pid % nqb) * BQ + tl.arange(0, BQ)
    live = q < Q
    base = src_ptr + row * src_stride
    a0 = _row(base, 0, Q, q, live, n_valid) + _row(base, 8, Q, q, live, n_valid)
    a1 = _row(base, 1, Q, q, live, n_valid) + _row(base, 9, Q, q, live, n_valid)
    a2 = _row(base, 2, Q, q, live, n_valid) + _row(base, 10, Q, q, live, n_valid)
    a3 = _row(base, 3, Q, q, live, n_valid) + _row(base, 11, Q, q, live, n_valid)
    a4 = _row(base, 4, Q, q, live, n_valid) + _row(base, 12, Q, q, live, n_valid)
    a5 = _row(base, 5, Q, q, live, n_valid) + _row(base, 13, Q, q, live, n_valid)
    a6 = _row(base, 6, Q, q, live, n_valid) + _row(base, 14, Q, q, live, n_valid)
    a7 = _row(base, 7, Q, q, live, n_valid) + _row(base, 15, Q, q, live, n_valid)
    b0 = a0 + a4
    b1 = a1 + a5
    b2 = a2 + a6
    b3 = a3 + a7
    c0 = b0 + b2
    c1 = b1 + b3
    tl.store(dst_ptr + row * Q + q, c0 + c1, mask=live)


@triton.jit(do_not_specialize=["groups", "m", "keep"])
def nm_kernel(w_ptr, out_ptr, bad_ptr, groups, m, keep, MP: tl.constexpr, BG: tl.constexpr):
    """N:M masks of contiguous groups of m (m <= MP, a power of two): keep the `keep` largest |w| of each group.

    rank_i = #{j : |w_j| > |w_i|} + #{j < i : |w_j| == |w_i|}; kept iff rank_i < keep. Integer comparisons and
    counts only, so the tie rule (lower index wins) holds exactly. bad_ptr[pid] = 1 if a weight is not finite.
    """
    pid = tl.program_id(0).to(tl.int64)
    g = pid * BG + tl.arange(0, BG)
    j = tl.arange(0, MP)
    live = (g[:, None] < groups) & (j[None, :] < m)
    offs = g[:, None] * m + j[None, :]
    w = tl.load(w_ptr + offs, mask=live, other=0.0)
    bits = w.to(tl.int32, bitcast=True) & 0x7FFFFFFF
    tl.store(bad_ptr + pid, tl.max(tl.max(((bits >= 0x7F800000) & live).to(tl.int32), axis=1), axis=0))
    # |w| is w with the sign bit cleared; for non-negative floats the bit patterns, as integers, order exactly
    # like the values (and +0.0 is the only zero left), so the ranking is pure integer work.
    ai = bits[:, :, None]
    aj = bits[:, None, :]
    ii = j[None, :, None]
    jj = j[None, None, :]
    beats = ((aj > ai) | ((aj == ai) & (jj < ii))) & (jj < m)
    rank = tl.sum(beats.to(tl.int32), axis=2)
    tl.store(out_ptr + offs, rank < keep, mask=live)


# True when TRITON_INTERPRET=1 was set at import: the kernels then run on CPU tensors in Triton's interpreter.
INTERPRET = type(fake_quant_kernel).__name__ == "InterpretedFunction"
