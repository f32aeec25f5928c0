"""Exact products and the one correct rounding, shared by `torch_backend.core.exact` and
`torch_backend.core.linalg` (package-private).
"""

from __future__ import annotations

import math

import torch

from reference.core.exact import LIMB_BITS, LIMBS, SAFE, SUM_SAFE, UNIT
from torch_backend import _arrays

MAX_SLICE_K = 1 << 15  # longest contraction per integer matmul: 2**15 * (2**19 - 1)**2 < 2**53

# ---- rounding: carried limbs, then one IEEE addition ----------------------------------------------------------------

# Rows kept above the highest nonzero row, so that carries die into a sign row: ceil(64 / W) + 3.
HEAD = {w: -(-64 // w) + 3 for w in range(16, 27)}


def carry(d, w):
    """Carry limbs `(L, M)` of `w` bits in place: rows below the returned `stop + 1` end in `[0, 2**w)` and row
    `stop + 1` holds the sign (0 or -1); rows above are zero. Only rows holding bits are visited (one host read).

    Exact while every row stays below 2**62 in magnitude: the carry out of the last nonzero row is below 2**(63 - w),
    and `j` rows later below 2**(63 - (j + 1) w) + 2, so after `ceil(64 / w)` more rows it is -1 or 0.
    """
    rows = d.ne(0).any(1).nonzero()
    if rows.numel() == 0:
        return 0
    lo, hi = int(rows[0]), int(rows[-1])
    stop = min(hi + -(-64 // w), d.shape[0] - 2)
    mask = (1 << w) - 1
    rows = d.unbind(0)  # views: in-place methods on them write `d` without indexing (d[k] &= m costs 4 ops)
    for k in range(lo, stop + 1):
        c = rows[k] >> w
        rows[k].bitwise_and_(mask)
        rows[k + 1].add_(c)
    return stop


def round_limbs(d, base, w):
    """The float64 nearest to `sum_k d[k] * 2**(w k + base)` for each column of int64 limbs `d` `(L, M)`.

    `base` is an int or an int64 tensor `(M,)`; `w` is 16 or 19..26. `d` is consumed. The work is row operations
    on `M` values (masks are integer factors: `torch.where` is several times slower than arithmetic on the CPU).
    """
    if d.shape[1] <= WHOLE:
        body, neg = _magnitude(d, w)
    else:
        stop = carry(d, w)
        top = stop + 1
        neg = (d[top] < 0).to(torch.int64)
        if bool(neg.any()):  # |value|: negate the negative columns and carry again
            d[: top + 1].mul_(1 - 2 * neg)
            stop = max(stop, carry(d, w))
            top = stop + 1
        body = d[: top + 1]  # canonical |value|: every limb in [0, 2**w)
    rows = body.shape[0]
    below = body.cumsum(0)  # below[k] > 0 iff a limb <= k is nonzero
    h = (below < below[-1]).sum(0)  # the top nonzero limb (0 for zero: the value is 0 anyway)
    a = 3 if w < 19 else 2  # limbs in `hi` (at most 53 bits); `lo` takes the next 2
    padded = torch.cat([body.new_zeros(a + 1, body.shape[1]), body])  # limb i at row i + a + 1
    window = padded.gather(0, h[None] + torch.arange(a + 1, -1, -1, device=d.device)[:, None])  # h, h-1, ...

    def limb(i):
        """Limb `i` (an int or a tensor of one row index per column), zero outside the rows."""
        if not isinstance(i, torch.Tensor):
            return body[i] if 0 <= i < rows else torch.zeros_like(body[0])
        return body.gather(0, i.clamp(0, rows - 1)[None])[0] * ((i >= 0) & (i < rows)).to(torch.int64)

    def nonzero_below(i):
        """Whether a limb below `i` is nonzero (the sticky bits)."""
        if not isinstance(i, torch.Tensor):
            return below[min(i, rows) - 1] > 0 if i >= 1 else torch.zeros_like(body[0], dtype=torch.bool)
        return (below.gather(0, (i - 1).clamp(0, rows - 1)[None])[0] > 0) & (i >= 1)

    hi = sum(window[i] << (w * (a - 1 - i)) for i in range(a))
    lo = (window[a] << w) | window[a + 1]
    bottom = h - (a + 1)  # the limb of lo's last bit
    f64 = torch.float64
    v = hi.to(f64) * _arrays.scalar(2.0 ** (2 * w), d, f64) + (lo | nonzero_below(bottom).to(torch.int64)).to(f64)
    e = bottom * w + base  # v above is the one rounding: two exact float64 values added
    e1 = e >> 1
    value = (v * pow2(e1)) * pow2(e - e1)  # a zero column has v = 0: +0.0
    p = -UNIT - base  # bit of 2**-1074 in the limbs' frame: > 0 only for sums of products
    if _may_be_positive(p):
        tiny = _subnormal(limb, h, p, w) & (p > 0)
        if bool(tiny.any()):  # only then: the subnormal rounding costs about 25 operations
            value = torch.where(tiny, _subnormal_value(limb, nonzero_below, p, w), value)
    return value * (1 - 2 * neg).to(f64)  # -0.0 for a negative value that rounds to zero, as IEEE


# Up to this many columns, limbs are carried by whole-array operations (`_magnitude`); beyond, row by row. Measured
# (CPU, 1 thread): a 512x512 exact_matmul took 144 ms row by row and 348 ms whole-array, in blocks of 2**14 columns;
# a Cholesky column (at most n columns) the other way round.
WHOLE = 1024


def _magnitude(d, w):
    """|value| as canonical limbs (each in `[0, 2**w)`) and the sign (int64 0 or 1), by operations on the whole
    array `(L, M)`: about 40 of them, no host read, however many rows (`carry` loops over rows, with 3 operations
    each, and reads the host; it is cheaper per element for many columns).

    1. Carry-save rounds: every row but the top takes `& (2**w - 1)` and passes its floor carry up; after
       `ceil(62 / w) + 1` rounds every carry is -1, 0 or 1, so the rows lie in `[-1, 2**w]`.
    2. Add `2**(w (L - 1))` as `2**w - 1` in every lower row and 1 in row 0 (and subtract 1 from the top row):
       the lower rows become non-negative; one more round leaves them in `[0, 2**w]`.
    3. The remaining carries are resolved at once: a carry enters row `k` exactly when the nearest row below it
       that is not `2**w - 1` holds `2**w` (a running maximum of row indices, `torch.cummax`).
    4. The top row is then -1 or 0, the sign; a negative value's magnitude is its two's complement.
    The rows above the highest nonzero one (at least `ceil(64 / w) + 2`, see `HEAD`) absorb every carry.
    """
    mask, full = (1 << w) - 1, 1 << w
    low, top = d[:-1], d[-1]
    for _ in range(-(-62 // w) + 1):
        c = low >> w
        low.bitwise_and_(mask)
        d[1:].add_(c)
    low.add_(mask)
    low[0].add_(1)
    top.sub_(1)
    c = low >> w
    low.bitwise_and_(mask)
    d[1:].add_(c)
    index = torch.arange(1, low.shape[0] + 1, device=d.device)[:, None]
    last = torch.cummax((low != mask) * index, dim=0).values  # 1 + the highest row <= k that is not 2**w - 1
    below = torch.cat([last.new_zeros(1, last.shape[1]), last])  # ... strictly below k (row L-1: the top)
    carry = (low == full).to(torch.int64).gather(0, (below - 1).clamp(min=0)) * (below > 0)
    low.add_(carry[:-1]).bitwise_and_(mask)
    top.add_(carry[-1])
    neg = (top < 0).to(torch.int64)
    first = (low != 0).to(torch.int8).argmax(0)  # the lowest nonzero row (0 if none)
    k = index - 1
    complement = (mask - low + (k == first)) * (k >= first)  # 2**w - low[first] at first, 2**w - 1 - low above
    new_top = -top - (low != 0).any(0).to(torch.int64)  # |value| = -(top 2**(w (L-1)) + low)
    body = torch.cat([low + neg * (complement - low), (top + neg * (new_top - top))[None]])
    return body, neg


def _may_be_positive(p):
    return bool((p > 0).any()) if isinstance(p, torch.Tensor) else p > 0


def _subnormal(limb, h, p, w):
    """Whether |value| < 2**-1022: its top bit lies below bit p + 52 of the frame."""
    threshold = p + 52
    kt, ot = threshold // w, threshold % w
    return (h < kt) | ((h == kt) & (limb(h) < (torch.ones_like(h) << ot)))


def _subnormal_value(limb, nonzero_below, p, w):
    """Round |value| to the subnormal grid 2**-1074 (bit p of the frame), ties to even, as a float64 bit pattern."""
    ks, os = p // w, p % w
    q = limb(ks) >> os
    for i in range(1, 53 // w + 3):  # limbs above ks, each shifted into place (bits past 52 are masked below)
        shift = w * i - os
        shift = shift.clamp(max=62) if isinstance(shift, torch.Tensor) else min(shift, 62)
        q = q | (limb(ks + i) << shift)
    kh, oh = (p - 1) // w, (p - 1) % w
    below = limb(kh)
    half = (below >> oh) & 1
    sticky = ((below & ((torch.ones_like(below) << oh) - 1)) != 0) | nonzero_below(kh)
    q = q & ((1 << 53) - 1)
    m = q + (half & (sticky.to(torch.int64) | (q & 1)))
    return m.view(torch.float64)


def pow2(e):
    """2.0**e for an int64 tensor e (clamped to the normal exponents; callers only keep lanes where it is exact)."""
    return ((e.clamp(-1022, 1023) + 1023) << 52).view(torch.float64)


# ---- exact products: integer slices (Ozaki) ----------------------------------------------------------------------


def width(k):
    """Bits per slice so that k products of two slices sum below 2**53 exactly: k (2**w - 1)**2 < 2**53."""
    return min(26, (53 - max(0, math.ceil(math.log2(max(k, 1))))) // 2)


def decompose(x):
    """The sign of `x` and `|x| = mant * 2**e` exactly (int64, `mant < 2**53`, `e >= -1074`)."""
    if x.dtype == torch.float32:
        bits = x.view(torch.int32).to(torch.int64)
        biased, frac, shift, bias = (bits >> 23) & 0xFF, bits & ((1 << 23) - 1), 23, 150
    else:
        bits = x.view(torch.int64)
        biased, frac, shift, bias = (bits >> 52) & 0x7FF, bits & ((1 << 52) - 1), 52, 1075
    mant = frac | ((biased > 0).to(torch.int64) << shift)
    e = biased.clamp(min=1) - bias
    return bits < 0, mant, e


def slices(x, w, dim):
    """Signed `w`-bit integer slices of `x` `(B, r, c)`, which is contracted along `dim` (-1: scaled per row, the
    slices stacked as `(B, S, r, c)`; -2: scaled per column, stacked as `(B, r, S, c)`), and the scales `top`.

    With `top` the smallest exponent such that every `|x|` of its line is below `2**top`, slice `s` holds the bits of
    `x` from `2**(top - s w)` down to `2**(top - (s + 1) w)` as a signed integer (the sign of `x`), so that
    `x = sum_s slice_s * 2**(top - (s + 1) w)` exactly. `S` is the number of slices that the line with the widest
    span of bits needs (one host read).

    The slices come from float64 steps that are all exact: `y = x * 2**(w - top)` (a power-of-two scaling whose last
    bit stays at or above 2**-1074 when the span is at most 1074 + w bits), then `d = trunc(y)`,
    `y = (y - d) * 2**w` (the fractional part of a float is a float). Wider lines (float64 values from 2**1000 down
    to 2**-1000 in one row) take the same digits from integer shifts of the significands instead.
    """
    xd = x.to(torch.float64)
    _, exponent = torch.frexp(xd)  # |x| < 2**exponent
    exponent = exponent.to(torch.int64)
    zero = (xd == 0).to(torch.int64)
    big = 1 << 20
    top = (exponent - big * zero).amax(dim, keepdim=True)
    top = top * (top > -big // 2).to(torch.int64)  # a line of zeros: scale 2**0
    bits, least = (24, -149) if x.dtype == torch.float32 else (53, -UNIT)
    low = ((exponent - bits).clamp(min=least) + big * zero).amin(dim, keepdim=True)  # a bound on the lowest set bit
    span = (top - low).clamp(min=0)
    widest = int(span.max()) if span.numel() else 0
    count = max(1, -(-widest // w))
    stack = 1 if dim == -1 else 2
    if widest > UNIT + w:
        digits = _integer_slices(x, w, top, count)
    else:
        shift = w - top  # in [w - 1024, w + 1074]: one power of two, or two that both scale up
        first = shift.clamp(max=1023)
        y = (xd * pow2(first)) * pow2(shift - first)
        scale = _arrays.scalar(2.0**w, y)
        digits = []
        for _ in range(count):
            d = torch.trunc(y)
            digits.append(d)
            y = (y - d) * scale
    return torch.stack(digits, stack), top.squeeze(dim)


def _integer_slices(x, w, top, count):
    """The slices of `slices` from integer shifts of the significands (any span of exponents), as a list."""
    neg, mant, e = decompose(x)
    mask = (1 << w) - 1
    sign = 1 - 2 * neg.to(torch.int64)
    out = []
    for s in range(1, count + 1):
        sh = e - top + s * w
        left = (mant & (torch.full_like(sh, mask) >> sh.clamp(0, w))) << sh.clamp(0, w)  # sh >= 0: low bits, up
        right = (mant >> (-sh).clamp(0, 63)) & mask  # sh < 0: the bits above 2**-sh, down
        digit = left + right - (mant & mask)  # each of left and right is `mant & mask` where it does not apply
        out.append((digit * sign).to(torch.float64))
    return out


BLOCK_OUTPUTS = 1 << 22  # outputs whose int64 limbs are in memory at once (about 400 MB), a block of columns


def products(a, b, gram=False):
    """`a @ b` for `(B, m, k)` and `(B, k, n)` floats, every entry exact and rounded once, as float64 `(B, m, n)`.

    The slice products are those of `products_exact`; when each operand needs at most 3 slices (float32 rows
    spanning up to `3 w - 24` bits of exponent, float64 rows up to `3 w - 53`), the int64 sums of the slice groups
    of each output are rounded by `_round_groups`: one carry pass, then a few exact float64 operations, instead of
    the general carry of `round_limbs`. Wider rows, contractions longer than `MAX_SLICE_K` and the rare outputs
    that land below `2**-1022` go through `products_exact`. With `gram`, `a` is `b` transposed and its slices are
    those of `b`. Columns are computed in blocks of at most `BLOCK_OUTPUTS` outputs.
    """
    batch, m, k = a.shape
    n = b.shape[-1]
    if 0 < batch * m * n * k <= SMALL_PRODUCTS:
        out = products_by_sums(a, b)
        if out is not None:
            return out
    elif batch * m * n <= FEW_OUTPUTS and a.dtype == torch.float64 and not (_in_range(a) and _in_range(b)):
        out = integer_products(a, b)  # a few long dot products of factors outside the float route's range
        if out is not None:
            return out
    out = torch.zeros(batch, m, n, dtype=torch.float64, device=a.device)
    if k == 0 or batch * m * n == 0:
        return out
    w = min(width(k), 25)
    sb, top_b = slices(b, w, -2)  # (B, k, S, n)
    nb = sb.shape[2]
    if gram:
        na, top_a = nb, top_b
    else:
        sa, top_a = slices(a, w, -1)  # (B, S, m, k)
        na = sa.shape[1]
    if k > MAX_SLICE_K or max(na, nb) > 3:
        return products_exact(a, b, gram)
    left = sb.reshape(batch, k, nb * n).transpose(1, 2) if gram else sa.reshape(batch, na * m, k)
    normal = torch.ones(batch, m, n, dtype=torch.bool, device=a.device)
    step = max(1, BLOCK_OUTPUTS // (batch * m))
    for c0 in range(0, n, step):
        cols = slice(c0, min(n, c0 + step))
        nc = cols.stop - c0
        right = sb[..., cols].reshape(batch, k, nb * nc)
        # exact: integers below 2**w, at most MAX_SLICE_K * (2**w - 1)**2 < 2**53 in every partial sum, any order
        p = torch.matmul(left, right).view(batch, na, m, nb, nc)
        base = top_a[:, :, None] + top_b[:, None, cols] - (na + nb) * w  # (B, m, nc): the weight of the last group
        for rows in _chunks(batch, m, nc):
            pair = [[p[(rows[0], s, rows[1], t)].to(torch.int64) for t in range(nb)] for s in range(na)]
            groups = [sum(pair[s][g - s] for s in range(max(0, g - nb + 1), min(g, na - 1) + 1))
                      for g in range(na + nb - 1)]  # fmt: skip
            value, ok = _round_groups(groups, w, base[rows])
            out[rows + (cols,)] = value
            normal[rows + (cols,)] = ok
    bad = (~normal).nonzero()
    if bad.numel():  # results below 2**-1022: rounded on the subnormal grid by the general path
        i, r, c = bad.unbind(1)
        out[i, r, c] = products_exact(a[i, r][:, None, :], b[i, :, c][:, :, None]).reshape(-1)
    return out


# Up to this many products (batch * m * n * k), `products` writes every product out as exact float64 terms and
# adds each output's terms exactly (`products_by_sums`): on small operands the slices' set-up costs more.
SMALL_PRODUCTS = 1 << 14


def products_by_sums(a, b):
    """`a @ b` for small `(B, m, k)` and `(B, k, n)` floats, every entry exact and rounded once, as float64
    `(B, m, n)`, or None (float64 factors outside `[1 / SAFE, SAFE]`: the caller's slices).

    Each output is the exact sum of its `k` products, each product an exact sum of float64 terms: a product of
    two float32 values is exact in float64 (48 significant bits); a product of two float64 values is `p + e`
    (`two_product`: Dekker's product with Veltkamp's split, as the reference's `dot_rows`). The terms are added by
    `sums` (the exact sum of each row, rounded once), so the result is the exact dot product rounded once.
    """
    batch, m, k = a.shape
    n = b.shape[-1]
    f64 = torch.float64
    left, right = a.to(f64)[:, :, None, :], b.to(f64).transpose(1, 2)[:, None, :, :]  # (B, m, 1, k), (B, 1, n, k)
    if a.dtype == torch.float32:
        terms = left * right
    else:
        if not (_in_range(a) and _in_range(b)):
            return integer_products(a, b)
        p = left * right
        terms = torch.cat([p.expand(batch, m, n, k), _product_error(left, right, p)], dim=-1)
    rows = terms.reshape(batch * m * n, terms.shape[-1])
    return sums(rows, _unchecked_bins).view(batch, m, n)


# CPU float64 factors outside the range take Python integers up to `SMALL_INTEGER` products, or up to
# `FEW_INTEGER` products into at most `FEW_OUTPUTS` outputs (a long dot product: the slices' general path costs
# about 9 us a product there, Python integers about 3 to 5).
SMALL_INTEGER = 1 << 9
FEW_OUTPUTS, FEW_INTEGER = 16, 1 << 17


def integer_products(a, b):
    """`a @ b` for tiny `(B, m, k)` and `(B, k, n)` CPU floats (or few long dot products) with Python integers, or
    None (larger, or not on the CPU). A float is `n / 2**e` with integers `|n| < 2**53` and `0 <= e <= 1074`, so
    every product is an integer multiple of `2**-2148`: `(n1 n2) << (2148 - e1 - e2)` (a small product, then one
    shift). Each output's exact sum is that integer, divided once by `2**2148` (CPython's int / int true division
    is correctly rounded, ties to even, subnormals included, and keeps the sign of a nonzero value that rounds to
    zero; it raises OverflowError exactly when the rounded value is infinite)."""
    batch, m, k = a.shape
    n = b.shape[-1]
    count = batch * m * n * k
    if a.device.type != "cpu" or count > SMALL_INTEGER and (batch * m * n > FEW_OUTPUTS or count > FEW_INTEGER):
        return None
    an, ae = (t.tolist() for t in _ratios(a))
    bn, be = (t.tolist() for t in _ratios(b.transpose(1, 2)))
    top = 2 * UNIT
    out = [[[rounded(sum((x * y) << (top - i - j) for x, i, y, j in zip(xs, es, ys, fs, strict=True)), top)
             for ys, fs in zip(bn_b, be_b, strict=True)] for xs, es in zip(an_b, ae_b, strict=True)]
           for an_b, ae_b, bn_b, be_b in zip(an, ae, bn, be, strict=True)]  # fmt: skip
    return torch.tensor(out, dtype=torch.float64).reshape(batch, m, n)


def _ratios(x):
    """`(n, e)` int64 tensors with `x = n / 2**e` exactly for finite float64 `x`, from its bit pattern: the
    significand `n` (the implicit bit set for a normal number, the sign applied) and `e = 1075 - max(field, 1)`
    for the biased exponent `field` (so `e` in `[-971, 1074]`; for every pair of factors `2 UNIT - e1 - e2 >= 0`).
    Integers throughout, and Python's integers then hold the lists as plain ints: no tuples per element, which
    would be tracked by the garbage collector (its collections over a large heap dominated the time)."""
    bits = x.contiguous().view(torch.int64)
    field = (bits >> 52) & 0x7FF
    frac = bits & ((1 << 52) - 1)
    significand = torch.where(field > 0, frac | (1 << 52), frac)
    return torch.where(bits < 0, -significand, significand), 1075 - field.clamp(min=1)


def units(v: float) -> int:
    """A Python float as an exact integer in units of `2**-1074` (its denominator is a power of two up to that)."""
    numerator, denominator = v.as_integer_ratio()
    return (numerator << UNIT) // denominator


def rounded(n: int, unit: int) -> float:
    """The float64 nearest to `n * 2**-unit` (Python integers), ties to even; an exact zero is `+0.0`, a value past
    float64's range `+-inf`. CPython's int / int true division is correctly rounded (subnormals included, and a
    nonzero value that rounds to zero keeps its sign) and raises OverflowError exactly when the result is
    infinite."""
    if n == 0:
        return 0.0
    try:
        return n / (1 << unit)
    except OverflowError:
        return math.inf if n > 0 else -math.inf


def _in_range(x):
    """Whether every nonzero magnitude of `x` lies in `[1 / SAFE, SAFE]` (one host read)."""
    t = x.abs()
    return not bool(((t > SAFE) | ((t < 1 / SAFE) & (t > 0))).any())


def _product_error(a, b, p):
    """`a b - p` exactly, for `p = fl(a b)` (broadcast): Dekker's product with Veltkamp's split (no fused
    multiply-add; the four partial products of 26-bit halves are exact)."""
    ah, al = _halves(a)
    bh, bl = _halves(b)
    return ((ah * bh - p) + ah * bl + al * bh) + al * bl


def _halves(x):
    c = x * _arrays.scalar(134217729.0, x)  # 2**27 + 1
    hi = c - (c - x)
    return hi, x - hi


CHUNK = 1 << 14  # outputs rounded together: their temporaries stay in cache


def _chunks(batch, m, nc):
    """Index tuples `(batch slice, row slice)` covering `(batch, m)` in pieces of about `CHUNK` outputs."""
    if m * nc >= CHUNK or batch == 1:
        step = max(1, CHUNK // (batch * nc))
        return [(slice(None), slice(r, r + step)) for r in range(0, m, step)]
    step = max(1, CHUNK // (m * nc))
    return [(slice(b, b + step), slice(None)) for b in range(0, batch, step)]


def _round_groups(groups, w, base):
    """The float64 nearest to `sum_g groups[g] * 2**((G - g) w + base)` (`G = len(groups) - 1 <= 4`, `w <= 25`,
    each group an int64 below `2**55` in magnitude), exactly, and whether the result is in the normal range.

    1. One carry pass from the last group up leaves the lower groups `L_g` in `[0, 2**w)` and a signed top `T`.
    2. `T` as a float64 `T_f` (rounded) and its exact remainder `t = T - T_f` (|t| <= 2); the value is
       `T_f 2**(G w) + B_1 + B_2` with `B_1 = (t 2**(2 w) + L_1 2**w + L_2) 2**((G - 2) w)` and `B_2` the last two
       groups: both exact float64 integers (below `2**52` before their power-of-two weight).
    3. `s + g = T_f 2**(G w) + B_1` exactly (`two_sum`); `d` = `g + B_2` rounded to odd (the nearest float64 whose
       last bit is 1 when the sum is not exact); `fl(s + d)` is then the nearest float64 to the whole value: `d`
       keeps 50 or more bits below the half gap of `s`, and a rounded-to-odd `d` never lands on a tie (Boldo and
       Melquiond, 2008). With fewer groups, `fl(T_f 2**(G w) + B_1)` or `T_f` alone is already exact.

    The scaled result is multiplied by `2**base` (exact in the normal range, `+-inf` past it, as IEEE rounds); a
    result below `2**-1022` is flagged, to be rounded on the subnormal grid elsewhere.
    """
    size = len(groups) - 1
    mask = (1 << w) - 1
    low = [None] * (size + 1)
    carry = None
    for g in range(size, 0, -1):
        v = groups[g] if carry is None else groups[g] + carry
        carry, low[g] = v >> w, v & mask
    top = groups[0] if carry is None else groups[0] + carry
    top_f = top.to(torch.float64)
    rem = top - top_f.to(torch.int64)
    lead = top_f * 2.0 ** (size * w)
    if size == 0:
        scaled = lead
    else:
        b1 = rem << (2 * w) if size >= 2 else rem << w
        b1 = b1 + (low[1] << w) + low[2] if size >= 2 else b1 + low[1]
        b1 = b1.to(torch.float64) * 2.0 ** (max(size - 2, 0) * w)
        if size <= 2:
            scaled = lead + b1
        else:
            b2 = ((low[3] << w) + low[4] if size == 4 else low[3]).to(torch.float64)
            s, e = two_sum(lead, b1)
            d, f = two_sum(e, b2)
            scaled = s + _odd(d, f)
    half = base >> 1
    value = (scaled * pow2(half)) * pow2(base - half)  # exact in the normal range; +-inf beyond it, as IEEE rounds
    return value + 0.0, (value.abs() >= 2.0**-1022) | (scaled == 0)


def _odd(d, f):
    """`d + f` rounded to odd, for `d = fl(d + f)` (`f` the exact error): `d` itself when exact or odd, else its
    neighbour towards `f` (one step of the bit pattern, up in magnitude when `f` has `d`'s sign)."""
    bits = d.view(torch.int64)
    move = ((f != 0) & ((bits & 1) == 0)).to(torch.int64)
    toward = 1 - 2 * ((bits ^ f.view(torch.int64)) < 0).to(torch.int64)  # +1: away from zero, -1: towards it
    return (bits + move * toward).view(torch.float64)


def two_sum(a, b):
    """`(s, e)` with `s = fl(a + b)` and `s + e = a + b` exactly: Knuth's TwoSum, six IEEE additions, any order of
    magnitudes (no overflow)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def certify(p, q, bound):
    r"""The float64 nearest to a value `v` known to lie within `bound` of `p + q`, and where that is proven.

    The ends of the interval are pushed outwards by one step of their last bit (`nextafter` of the rounded
    `q -+ bound`), so that $p + q_{lo} \le v \le p + q_{hi}$ exactly; rounding is monotonic, so when
    $\operatorname{fl}(p + q_{lo}) = \operatorname{fl}(p + q_{hi})$, that float64 (a nonzero one: the sign of a
    zero is not settled by an interval) is $\operatorname{fl}(v)$, and so is $\operatorname{fl}(p + q)$. A
    `bound` of zero means `v = p + q` exactly: then $\operatorname{fl}(p + q)$ is the answer (an exact zero is
    `+0.0` when `p` is not `-0.0`). Non-finite lanes are never proven.
    """
    inf = _arrays.constant(math.inf, p)
    lo = p + torch.nextafter(q - bound, -inf)
    hi = p + torch.nextafter(q + bound, inf)
    return p + q, ((lo == hi) & (lo != 0)) | (bound == 0)


def products_exact(a, b, gram=False):
    """`a @ b` for `(B, m, k)` and `(B, k, n)` floats, every entry exact and rounded once, as float64 `(B, m, n)`.

    With `gram`, `a` is `b` transposed and its slices are those of `b`. Columns of the result are computed in
    blocks of at most `BLOCK_OUTPUTS` outputs.
    """
    batch, m, k = a.shape
    n = b.shape[-1]
    out = torch.zeros(batch, m, n, dtype=torch.float64, device=a.device)
    if k == 0 or batch * m * n == 0:
        return out
    w = width(min(k, MAX_SLICE_K))
    sb, top_b = slices(b, w, -2)  # (B, k, S, n)
    nb = sb.shape[2]
    if gram:
        na, top_a, left = nb, top_b, sb.reshape(batch, k, nb * n).transpose(1, 2)
    else:
        sa, top_a = slices(a, w, -1)  # (B, S, m, k)
        na = sa.shape[1]
        left = sa.reshape(batch, na * m, k)
    terms = na + nb - 1
    step = max(1, BLOCK_OUTPUTS // (batch * m))
    for c0 in range(0, n, step):
        cols = slice(c0, min(n, c0 + step))
        nc = cols.stop - c0
        right = sb[..., cols].reshape(batch, k, nb * nc)
        # slice pair (s, t) weighs 2**(top_a + top_b - (s + t + 2) w): limb g = terms - 1 - (s + t) from `base`
        limbs = torch.zeros(terms + HEAD[w] + 2, batch * m * nc, dtype=torch.int64, device=a.device)
        view = limbs[:terms].view(terms, batch, m, nc)
        for start in range(0, k, MAX_SLICE_K):
            part = slice(start, start + MAX_SLICE_K)
            # exact: integers below 2**w, at most 2**15 * (2**w - 1)**2 < 2**53 in every partial sum, in any order
            p = torch.matmul(left[:, :, part], right[:, part, :]).to(torch.int64).view(batch, na, m, nb, nc)
            for s in range(na):
                for t in range(nb):
                    view[terms - 1 - s - t].add_(p[:, s, :, t])
        base = (top_a[:, :, None] + top_b[:, None, cols] - (na + nb) * w).reshape(-1)
        out[..., cols] = round_terms(limbs, base, w).view(batch, m, nc)
    return out


def round_terms(limbs, base, w):
    """`round_limbs` of many columns, a block of columns at a time (each block's rows stay in cache: 1.5 to 2 times
    faster on the CPU than one pass over 262K columns)."""
    block = limbs.shape[1] if limbs.is_cuda else 1 << 14
    if limbs.shape[1] <= block:
        return round_limbs(limbs, base, w)
    out = torch.empty(limbs.shape[1], dtype=torch.float64, device=limbs.device)
    for start in range(0, limbs.shape[1], block):
        part = slice(start, start + block)
        out[part] = round_limbs(limbs[:, part].clone(), base[part] if isinstance(base, torch.Tensor) else base, w)
    return out


# ---- checks ------------------------------------------------------------------------------------------------------


SEGMENT = 1 << 28  # elements of one output accumulated in int64 bins before they are flushed into digits

# ---- exact sums: int64 bins of 8 exponents ------------------------------------------------------------------------

# Bin layouts, reversed (the index comes out of the multiplier's bits as `top - b`): float32 bins b = 0..31 of
# weight 2**(8 b - 150) at index 50 - b; float64 bins b = 0..259 of weight 2**(8 b - 1075) at index 390 - b (the
# high halves go 4 bins up). Digits (16 bits each) then start at 2**-162 and 2**-1090, both = -1074 (mod 16), so
# that the state's 32-bit limbs are pairs of digits.
_F32 = {"index": 51, "bins": 32, "exponent": -150, "base": -162}
_F64 = {"index": 391, "bins": 260, "exponent": -1075, "base": -1090}


def sum_unchecked(a, axis=None):
    """`exact_sum` without checks, for backward passes (as `torch_backend._reduce.tree` is for `tree_sum`).

    `a` is a float32 or float64 tensor and `axis` None or a valid axis. A non-finite value gives what IEEE
    addition would (a NaN, or `+inf` with `-inf`, gives NaN; otherwise `+-inf`), instead of raising inside
    autograd (AMP loss scaling); finite values give `exact_sum`, bit for bit. The special values are looked for only
    when the accumulation saw one (a scaled value at or past the bins' limit): no extra pass otherwise.
    """
    rows, shape = as_rows(a.detach(), axis)
    return sums(rows, _unchecked_bins).reshape(shape)


def _unchecked_bins(rows):
    """The bins route of `sum_unchecked`."""
    outs = []
    for start in range(0, max(rows.shape[0], 1), BLOCK_ROWS):
        block = rows[start : start + BLOCK_ROWS]
        digits, base, largest = accumulate(block)
        if bool(largest < LIMIT[rows.dtype]):
            outs.append(round_limbs(digits, base, 16))
            continue
        finite = torch.isfinite(block)
        digits, base, _ = accumulate(torch.where(finite, block, 0.0))
        out = round_limbs(digits, base, 16)
        up, down = (block == torch.inf).any(1), (block == -torch.inf).any(1)
        nan = torch.isnan(block).any(1) | (up & down)
        out = torch.where(up, torch.inf, torch.where(down, -torch.inf, out))
        outs.append(torch.where(nan, torch.nan, out))
    return torch.cat(outs)


LIMIT = {torch.float32: 2.0**31, torch.float64: 2.0**60}  # scaled finite values stay below (`_add_f32`, `_add_f64`)


BLOCK_ROWS = 1 << 14  # outputs summed together: their bins and digits are in memory at once (at most 25 MB)


SMALL_CPU = 1 << 12  # at most this many CPU elements: `math.fsum` per row (the accumulation's set-up dominates)


def small_sums(rows):
    """The exact sums of the rows of a small float CPU tensor `(M, n)`, rounded once to float64, or None.

    CPython's `math.fsum` keeps exact partials (Shewchuk) and rounds their sum once, to nearest with ties to even;
    `+ 0.0` makes an exact zero `+0.0`. float32 and float64 values convert to Python floats exactly. It is used
    below `SMALL_CPU` elements, where the limb accumulation's fixed cost (tens of small torch operations) is most of
    a call; None (the caller's general route) when a value is not finite or an intermediate sum overflows float64,
    so that the errors and the overflow to infinity stay the general route's.
    """
    if rows.device.type != "cpu" or rows.numel() > SMALL_CPU:
        return None
    try:
        sums = [math.fsum(r) + 0.0 for r in rows.tolist()]
    except (OverflowError, ValueError):  # a partial beyond float64, or inf + -inf
        return None
    if not all(math.isfinite(v) for v in sums):
        return None
    return torch.tensor(sums, dtype=torch.float64)


# Rows up to this length take the proven float64 route (`proven_sums`); its error bound grows with the length
# (about one row in a thousand of random values is left unproven at 2**16 terms), longer rows take the bins.
PROOF_LENGTH = 1 << 16
PROOF_BLOCK = 1 << 22  # elements of a block of rows in `proven_sums` (two float64 temporaries: 64 MB)


def sums(rows, general):
    """The exact sums of the rows of a float tensor `(M, n)`, rounded once to float64, by the cheapest route that
    settles them: `math.fsum` for small CPU tensors (`small_sums`), the proven float64 route for rows up to
    `PROOF_LENGTH` terms (`proven_sums`), and `general(rows)` (the bins; it raises the caller's error for a
    non-finite value) for longer rows and for the rows that the proof leaves open. Every route gives the same bits.
    """
    small = small_sums(rows)
    if small is not None:
        return small
    if not 0 < rows.shape[1] <= PROOF_LENGTH or rows.shape[0] == 0:
        return general(rows)
    value, ok = proven_sums(rows)
    index = (~ok).nonzero().squeeze(1)  # one host read
    if index.numel():
        value[index] = general(rows[index])
    return value


def proven_sums(rows):
    r"""For each row of a float tensor `(M, K)`: its sum rounded once to float64, and whether that is proven.

    The reference's `sum_rows` (`reference.core._exact`), step for step: with $2^M \ge 2 K \max_k |t_k|$,
    adding and subtracting $\sigma = 1.5 \cdot 2^M$ cuts each term into a high part (a multiple of $2^{M-52}$; the
    high parts and every partial sum of them are exact float64 values, so `sum` adds them exactly **in any
    order**) and a low part (exact too), whose float64 sum is off by at most $\gamma_{K-1} \sum |\text{low}|$
    for **any order** of the additions (Higham, Thm. 4.4); `certify` proves the rounding of the whole from that
    bound. So torch's own summation order (vectorized, blocked, threaded, on any device) cannot change a proven
    result. A larger $2^M$ than needed (the exponent is kept in the normal range) only coarsens the cut: still
    exact.

    The rows left open are mostly exact sums on a rounding tie or a float64 (a product of two float32 values has
    48 bits: about one dot product in eight of 32 terms): their low parts are cut once more, and with the exact
    sums $H_1$, $H_2$ of both levels' high parts, `two_sum` twice and the second level's bound, `certify` decides
    again; when the second level's low parts are all zero the value $H_1 + H_2$ is exact and rounds once. What
    still stays open (an exact zero from cancelling low parts; a value not finite or beyond `SUM_SAFE`) is left
    to the caller. Blocks of rows keep the float64 temporaries small; the work is in place (a fresh temporary
    costs more than the operation on the CPU).
    """
    m, k = rows.shape
    value = torch.empty(m, dtype=torch.float64, device=rows.device)
    ok = torch.empty(m, dtype=torch.bool, device=rows.device)
    step = max(1, PROOF_BLOCK // max(k, 1))
    for start in range(0, m, step):
        t = rows[start : start + step]
        top = torch.maximum(t.amax(1), -t.amin(1)).to(torch.float64)  # NaN stays NaN: unproven
        s_high, s_low, bound, sigma = _cut(t, top)
        v, proven = certify(s_high, s_low, bound)
        proven &= top <= SUM_SAFE
        open_ = (~proven).nonzero().squeeze(1)
        if open_.numel():  # one host read per block
            r, sig = t[open_].to(torch.float64), sigma[open_]
            low = r - ((r + sig) - sig)
            high2, low2, bound2, _ = _cut(low, low.abs().amax(1))
            s, e = two_sum(s_high[open_], high2)  # s + e = H1 + H2, exactly
            q, f = two_sum(e, low2)  # s + q + f = H1 + H2 + the computed sum of the last low parts, exactly
            # the factor covers the rounding of the bound itself
            bound = (bound2 + f.abs()) * _arrays.constant(1.0 + 2.0**-50, low)
            v2, proven2 = certify(s, q, bound)
            v[open_] = v2
            proven[open_] = proven2 & (top[open_] <= SUM_SAFE)
        value[start : start + step] = v + 0.0  # an exact zero is +0.0
        ok[start : start + step] = proven
    return value, ok


def _cut(t, top):
    """One level of `proven_sums` for float rows `t` `(M, K)` with magnitudes up to `top` `(M,)`: the exact sum of
    the high parts, the float64 sum of the low parts, its error bound, and the cut `sigma` `(M, 1)`."""
    k = t.shape[1]
    _, e = torch.frexp(top * _arrays.constant(2.0 * k, top))  # 2**e > 2 K max|t|
    sigma = (pow2(e.to(torch.int64)) * _arrays.constant(1.5, top))[:, None]
    part = t + sigma  # float64 (type promotion: t is converted exactly, then one rounding)
    part.sub_(sigma)  # the high parts
    s_high = part.sum(1)  # exact, in any order
    torch.sub(t, part, out=part)  # the low parts, exact
    s_low = part.sum(1)
    bound = part.abs_().sum(1).mul_(_arrays.constant((k + 2) * 2.0**-52, top))  # (K + 2) u sum|low|
    return s_high, s_low, bound, sigma


SMALL_STATES = 1 << 8  # at most this many CPU states are rounded or combined with Python integers


def small_states(rows):
    """The canonical states (int64 `(M, 68)`) of the exact sums of the rows of a small float CPU tensor, with
    Python integers (every float is an integer multiple of `2**-1074`), or None (larger, not on the CPU, or not
    finite: the general route then raises the error)."""
    if rows.device.type != "cpu" or rows.numel() > SMALL_CPU:
        return None
    values = rows.tolist()
    if not all(math.isfinite(v) for row in values for v in row):
        return None
    return limbs_of([sum(units(v) for v in row) for row in values])


def limbs_of(values: list[int]) -> torch.Tensor:
    """Canonical limbs `(M, 68)` of exact values in units of `2**-1074` (`>>` and `&` on Python ints are two's
    complement: the top limb carries the sign)."""
    mask = (1 << LIMB_BITS) - 1
    rows = [[(n >> (LIMB_BITS * k)) & mask for k in range(LIMBS - 1)] + [n >> (LIMB_BITS * (LIMBS - 1))]
            for n in values]  # fmt: skip
    return torch.tensor(rows, dtype=torch.int64).reshape(len(values), LIMBS)


def small_values(state) -> list[int] | None:
    """The exact values (units of `2**-1074`) of a few int64 CPU limbs `(M, 68)`, any limbs (canonical or not), as
    Python integers; None for more than `SMALL_STATES` states or off the CPU (the caller's limb route)."""
    if state.device.type != "cpu" or state.shape[0] > SMALL_STATES:
        return None
    return [sum(v << (LIMB_BITS * k) for k, v in enumerate(row)) for row in state.tolist()]


def by_blocks(rows, x, finish):
    """`finish(digits, base)` of each block of rows, concatenated, after the block's finiteness check (the
    reference's error about `x`, from `_arrays.finite`, when a value is not finite)."""
    outs = []
    for start in range(0, rows.shape[0], BLOCK_ROWS):
        digits, base, largest = accumulate(rows[start : start + BLOCK_ROWS])
        _arrays.check_flag(~(largest < LIMIT[rows.dtype]), lambda: _arrays.finite("x", x))
        outs.append(finish(digits, base))
    return torch.cat(outs) if outs else finish(*accumulate(rows)[:2])


def as_rows(x, k):
    """`x` as a contiguous 2-d tensor with one row per output of a sum along `k` (None: one row), and the shape."""
    if k is None:
        return x.reshape(1, -1), ()
    shape = tuple(s for i, s in enumerate(x.shape) if i != k)
    return torch.movedim(x, k, -1).reshape(math.prod(shape), x.shape[k]).contiguous(), shape


def accumulate(rows):
    """Digits `(L, M)`, their base exponent and the largest scaled value (`>= LIMIT` iff a value is not finite)
    for the exact sums of the rows of a float tensor `(M, n)`; no checks."""
    m, n = rows.shape
    layout = _F32 if rows.dtype == torch.float32 else _F64
    add = _add_f32 if rows.dtype == torch.float32 else _add_f64
    width = layout["index"]
    chunk = 1 << (24 if rows.is_cuda else 14)  # below torch's parallel grain (see the module docstring)
    bins = torch.zeros(m * width, dtype=torch.int64, device=rows.device)
    digits = _zeros_digits(layout, m, rows.device)
    largest = torch.zeros((), dtype=rows.dtype, device=rows.device)
    if n >= chunk or m == 1:
        for r in range(m):
            for start in range(0, n, chunk):
                largest = add(bins, rows[r, start : start + chunk], r * width, largest)
                if (start + chunk) % SEGMENT == 0:  # flush long rows before a bin could overflow
                    digits += _bin_digits(bins.view(m, width), layout)
                    bins.zero_()
    else:
        per = max(1, chunk // max(n, 1))
        for r0 in range(0, m, per):
            block = rows[r0 : r0 + per]
            offsets = torch.arange(r0, r0 + block.shape[0], device=rows.device, dtype=torch.int64)[:, None] * width
            largest = add(bins, block, offsets, largest)
    digits += _bin_digits(bins.view(m, width), layout)
    return digits, layout["base"], largest


def grouped_sums_f32(g, groups, count):
    """The exact sum of a 1-D float32 `g` over each group id (`groups`: integers in `[0, count)`, shaped like `g`),
    each rounded once to float64 (`+0.0` for an empty or zero group), or None when a value is not finite (the
    caller then takes a route that gives IEEE's infinities and NaNs).

    `accumulate`'s own steps with group `j`'s values added into row `j` of the bins (the offset of each value's
    bins is its group's): int64 sums of exact integers (`_add_f32`), flushed into digits every `SEGMENT`
    elements, so every row holds its group's exact sum whatever the order of the elements; one `round_limbs`
    rounds each row once, as `sum_unchecked` does. No sort and no gather of the members.
    """
    layout = _F32
    width = layout["index"]
    chunk = 1 << (24 if g.is_cuda else 14)  # `accumulate`'s chunk: below torch's parallel grain
    bins = torch.zeros(count * width, dtype=torch.int64, device=g.device)
    digits = _zeros_digits(layout, count, g.device)
    largest = torch.zeros((), dtype=g.dtype, device=g.device)
    offsets = groups.to(torch.int64).mul_(width)
    for start in range(0, g.numel(), chunk):
        largest = _add_f32(bins, g[start : start + chunk], offsets[start : start + chunk], largest)
        if (start + chunk) % SEGMENT == 0:  # flush before a bin could overflow
            digits += _bin_digits(bins.view(count, width), layout)
            bins.zero_()
    if not bool(largest < LIMIT[torch.float32]):
        return None
    digits += _bin_digits(bins.view(count, width), layout)
    return round_limbs(digits, layout["base"], 16)


def _add_f32(bins, x, offset, largest):
    """Add float32 values into their bins: `x * 2**(150 - 8 b)` is an integer in (-2**31, 2**31), exactly."""
    bits = x.view(torch.int32)
    scale_bits = 0x65000000 - ((bits >> 1) & 0x3E000000)  # 2**(75 - 4 b): exponent field 202 - 4 b
    index = scale_bits >> 25  # 50 - b
    scale = scale_bits.view(torch.float32)
    v = (x * scale) * scale
    bins.index_add_(0, (index + offset).reshape(-1), v.to(torch.int64).reshape(-1))
    return torch.maximum(largest, v.abs().amax()) if v.numel() else largest


def _add_f64(bins, x, offset, largest):
    """Add float64 values into their bins: `x * 2**(1075 - 8 b)`, an integer below 2**60, as two 32-bit halves."""
    bits = x.view(torch.int64)
    scale_bits = (1561 << 52) - ((bits >> 1) & (0xFF << 54))  # 2**(538 - 4 b)
    index = (scale_bits >> 54) + offset  # 390 - b
    f = (x * scale_bits.view(torch.float64)) * (scale_bits - (1 << 52)).view(torch.float64)
    v = f.to(torch.int64)
    bins.index_add_(0, index.reshape(-1), (v & 0xFFFFFFFF).reshape(-1))
    bins.index_add_(0, (index - 4).reshape(-1), (v >> 32).reshape(-1))
    return torch.maximum(largest, f.abs().amax()) if f.numel() else largest


def _zeros_digits(layout, m, device):
    return torch.zeros(layout["bins"] // 2 + 5 + HEAD[16], m, dtype=torch.int64, device=device)


def _bin_digits(bins, layout):
    """Bins of 8 exponents (reversed, `(M, index)`) as 16-bit digits `(L, M)` from `layout["base"]`.

    Bin `b` weighs `2**(8 b + exponent)` = `2**(16 c + r + base)` with `c = b // 2` (+1 for odd `b` when `r`
    wraps); each bin is cut into 16-bit pieces, each shifted by `r < 16`, so every addend stays below `2**31`.
    """
    natural = bins.flip(1)[:, : layout["bins"]]
    out = _zeros_digits(layout, bins.shape[0], bins.device)
    offset = layout["exponent"] - layout["base"]  # 12 or 15
    for parity in (0, 1):
        part = natural[:, parity::2].T
        r = offset + 8 * parity
        first, r = r >> 4, r & 15
        for j in range(4):
            piece = (part >> (16 * j)) & 0xFFFF if j < 3 else part >> 48
            out[first + j : first + j + part.shape[0]].add_(piece * (1 << r))
    return out


# ---- the state ------------------------------------------------------------------------------------------------


def digits_of_state(state):
    """Limbs `(M, 68)` (any int64) as 16-bit digit rows `(L, M)` from 2**-1074: each limb as two 32-bit halves."""
    m = state.shape[0]
    out = torch.zeros(2 * LIMBS + 2 + HEAD[16], m, dtype=torch.int64, device=state.device)
    limbs = state.T
    out[0 : 2 * LIMBS : 2] += limbs & 0xFFFFFFFF
    out[2 : 2 * LIMBS + 2 : 2] += limbs >> 32
    return out, -UNIT


def state_limbs(digits, base):
    """Canonical limbs `(M, 68)` of 16-bit digits from `base` (= -1074 mod 16), and whether each value fits."""
    stop = carry(digits, 16)
    neg = digits[stop + 1] < 0  # the carried top row is -1 or 0
    sign_digit = torch.where(neg, 0xFFFF, 0)
    o = (-UNIT - base) // 16  # the digit row of 2**-1074
    rows = 2 * LIMBS
    ext = sign_digit.expand(rows, -1).clone()  # rows above the carried ones repeat the sign
    ext[: max(0, min(rows, -o))] = 0  # rows below the first digit are zero
    lo, hi = max(0, o), min(stop, o + rows - 1)  # digit rows that land inside the state
    if hi >= lo:
        ext[lo - o : hi - o + 1] = digits[lo : hi + 1]
    limbs = ext[0::2] | (ext[1::2] << 16)
    top = limbs[-1]
    fits = (top >> 31) == neg.to(torch.int64)
    if stop >= o + rows:  # digits above the state's range must be sign digits
        fits &= (digits[o + rows : stop + 1] == sign_digit).all(0)
    limbs[-1] = top - (neg.to(torch.int64) << 32)
    return limbs.T.contiguous(), fits
