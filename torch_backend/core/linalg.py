"""Exact linear algebra in torch, bit-identical to `reference.core.linalg` on every device.

The factorization and the solves are loops over columns (rows for a solve), each step vectorized over the column:
every entry is one exact inner product, rounded once (`torch_backend.core.exact._round`), then one IEEE operation.
The inner products reuse the integer slices of `torch_backend.core.exact`, with a twist that makes them
incremental: each known value (an entry of `L` or of `x`) is cut once into **absolute** windows of `w` bits (window
`q` holds its bits from `2**(q w - 1074)` up), so the slices of earlier columns never change as new columns come.
A step multiplies the windows of the known values with one float64 matmul of integers below `2**w`, exact because
every partial sum stays below `2**53` (`k (2**w - 1)**2 < 2**53`, as for `exact_matmul`), then groups the products
by window pair: window `q` times window `q'` lands on `2**((q + q') w - 2148)`, which is also where `h` or `b` is cut.

Square roots are correctly rounded; torch's CPU float64 `sqrt` is not (13 861 of 10**6 inputs one ulp off, see the
exactness page). The Cholesky loop reads each pivot on the host, as its check needs, and roots it there with
`math.isqrt` (`_sqrt_rn_host`). `_sqrt_rn` is the same root for a tensor, on its device: torch's `sqrt` as a first
guess, settled by exact int64 comparisons of squares.
"""

from __future__ import annotations

import math
from fractions import Fraction

import torch

from reference.common import validate
from reference.core.exact import UNIT
from torch_backend import _arrays
from torch_backend.core.exact import _HEAD, _MAX_SLICE_K, _decompose, _pow2, _products, _round, _width

__all__ = ["cholesky", "triangular_solve", "cholesky_inverse"]

_F64 = ("float64",)


def cholesky(h):
    """The lower Cholesky factor, column by column, each entry one exact inner product and one IEEE operation; see
    `reference.core.linalg.cholesky` for the semantics.

    Each column reads its pivot on the host once (the pivot check needs it anyway) and takes its square root there,
    exactly (`_sqrt_rn_host`); entries that overflow are flagged on the device and reported, first in column order,
    when the loop ends or before a later pivot error.
    """
    h = _symmetric("h", h).detach()
    n = h.shape[0]
    w = _width(min(max(n - 1, 1), _MAX_SLICE_K))
    out = torch.zeros_like(h)
    overflow = torch.zeros((), dtype=torch.bool, device=h.device)
    cut = _Cut(n, n, w, h.device)  # windows of L: rows, columns
    h_digits, h_lo = _windows(h, w, 2 * UNIT)  # (Q, n, n), from 2**(h_lo w - 2148); the lower triangle is read
    for j in range(n):
        s = _column(cut, h_digits, h_lo, j, w)  # fl(h[i, j] - sum_k L[i, k] L[j, k]) for i >= j
        pivot = float(s[0])
        if not pivot > 0:
            _first_overflow(out, overflow, j)
            raise validate.not_positive_definite("h", j, pivot)
        diagonal = _sqrt_rn_host(pivot)
        if diagonal == math.inf:
            _first_overflow(out, overflow, j)
            raise validate.overflows("L", j, j, diagonal)
        out[j, j] = diagonal
        out[j + 1 :, j] = s[1:] / out[j, j]
        overflow |= ~torch.isfinite(out[j + 1 :, j]).all()
        cut.add(out[j:, j], slice(j, n), j)
    _first_overflow(out, overflow, n)
    return out


def _first_overflow(out, overflow, columns):
    """Raise the reference's error for the first entry of `out[:, :columns]` that overflowed, if any (one read)."""
    if bool(overflow):
        bad = (~torch.isfinite(out[:, :columns])).T.reshape(-1).nonzero()  # column-major: the reference's order
        j, i = divmod(int(bad[0]), out.shape[0])
        raise validate.overflows("L", i, j, float(out[i, j]))


def triangular_solve(l, b, *, lower=True, transpose=False):
    """Solve `op(l) x = b` by substitution, each entry one exact inner product and one IEEE division; see
    `reference.core.linalg.triangular_solve`."""
    l, b = _solve_args(l, b, lower, transpose)
    return _solve(l.detach(), b.detach(), lower, transpose, "x")


def cholesky_inverse(l):
    """`(l l^T)^-1 = Y^T Y` with `Y = l^-1` by forward substitution; see `reference.core.linalg.cholesky_inverse`."""
    l = _square("l", l)
    _nonzero_diagonal("l", l)
    y = _solve(l.detach(), torch.eye(l.shape[0], dtype=torch.float64, device=l.device), True, False, "l^-1")
    return _products(y.T[None], y[None], gram=True)[0]


# ---- the column step -------------------------------------------------------------------------------------------------


class _Cut:
    """Known values cut into absolute windows: `digits[i, q, c]` holds the bits of value `(i, c)` from
    `2**((lo + q) w - 1074)` up to `2**w` times that, signed, as float64 integers below `2**w`. The window range
    grows (rarely) when a new value needs windows beyond it."""

    def __init__(self, rows, columns, w, device):
        self.w, self.lo = w, None
        self.digits = torch.zeros(rows, 0, columns, dtype=torch.float64, device=device)

    def add(self, values, rows, columns):
        """Cut `values` (shaped like `digits[rows, 0, columns]`) and store them."""
        d, lo = _windows(values, self.w, UNIT)
        if d.shape[0] == 0:  # all zero: nothing to store
            return
        hi = lo + d.shape[0] - 1
        if self.lo is None:
            self.lo = lo
            self.digits = self.digits.new_zeros(self.digits.shape[0], d.shape[0], self.digits.shape[2])
        old_lo, old_hi = self.lo, self.lo + self.digits.shape[1] - 1
        if lo < old_lo or hi > old_hi:
            new_lo, new_hi = min(lo, old_lo), max(hi, old_hi)
            grown = self.digits.new_zeros(self.digits.shape[0], new_hi - new_lo + 1, self.digits.shape[2])
            grown[:, old_lo - new_lo : old_hi - new_lo + 1] = self.digits
            self.digits, self.lo = grown, new_lo
        self.digits[rows, lo - self.lo : hi - self.lo + 1, columns] = d.movedim(0, 1).to(torch.float64)


def _column(cut, h_digits, h_lo, j, w):
    """`fl(h[i, j] - sum_{k<j} L[i, k] L[j, k])` for `i >= j`: one exact matmul of windows, one rounding."""
    n = h_digits.shape[1]
    m = n - j
    target = h_digits[:, j:, j]  # (Qh, m): h from 2**(h_lo w - 2148)
    pieces = [(h_lo, target.to(torch.int64), 1)]
    if j > 0 and cut.lo is not None:
        q = cut.digits.shape[1]
        left = cut.digits[j:, :, :j].reshape(m * q, j)
        p = torch.matmul(left, cut.digits[j, :, :j].T)  # exact: integers, partial sums below 2**53
        groups = torch.zeros(m, 2 * q - 1, dtype=torch.int64, device=p.device)
        pairs = (torch.arange(q, device=p.device)[:, None] + torch.arange(q, device=p.device)[None, :]).reshape(-1)
        groups.index_add_(1, pairs, p.to(torch.int64).reshape(m, q * q))
        pieces.append((2 * cut.lo, groups.T, -1))  # window pair (q, q') weighs 2**((2 lo + q + q') w - 2148)
    return _round_pieces(pieces, m, w)


def _round_pieces(pieces, m, w):
    """Round `sum sign * rows[g] * 2**((lo + g) w - 2148)` over `(lo, rows, sign)` pieces, for `m` columns."""
    lo = min(p[0] for p in pieces)
    hi = max(p[0] + p[1].shape[0] - 1 for p in pieces)
    limbs = torch.zeros(hi - lo + 1 + _HEAD[w] + 2, m, dtype=torch.int64, device=pieces[0][1].device)
    for start, rows, sign in pieces:
        limbs[start - lo : start - lo + rows.shape[0]].add_(rows * sign)
    return _round(limbs, lo * w - 2 * UNIT, w)


def _solve(l, b, lower, transpose, name):
    """Substitution for `op(l) x = b` on checked inputs; `name` labels an overflowing entry."""
    n = l.shape[0]
    a = l.T if transpose else l
    forward = lower != transpose
    k = torch.arange(n, device=a.device)
    a = a * ((k[:, None] >= k[None, :]) if forward else (k[:, None] <= k[None, :]))  # only the triangle read
    # (a mask, not torch.tril: on 2 CPU threads tril wakes the thread pool even for a 3x3, 16 ms on a busy machine)
    b2 = b.reshape(n, -1)
    m = b2.shape[1]
    w = _width(min(max(n - 1, 1), _MAX_SLICE_K))
    a_digits, a_lo = _windows(a, w, UNIT)  # (Qa, n, n)
    a_cut = a_digits.permute(1, 0, 2).to(torch.float64)  # (n, Qa, n)
    b_digits, b_lo = _windows(b2, w, 2 * UNIT)  # (Qb, n, m)
    cut = _Cut(n, m, w, l.device)  # windows of x: rows, columns of b
    x = torch.zeros(n, m, dtype=torch.float64, device=l.device)
    order = range(n) if forward else range(n - 1, -1, -1)
    for i in order:
        before = slice(0, i) if forward else slice(i + 1, n)
        pieces = [(b_lo, b_digits[:, i, :].to(torch.int64), 1)]
        count = i if forward else n - 1 - i
        if count and cut.lo is not None:
            qa, qx = a_cut.shape[1], cut.digits.shape[1]
            p = torch.matmul(a_cut[i, :, before], cut.digits[before].reshape(count, qx * m))  # (Qa, Qx m), exact
            groups = torch.zeros(qa + qx - 1, m, dtype=torch.int64, device=p.device)
            pairs = (torch.arange(qa, device=p.device)[:, None] + torch.arange(qx, device=p.device)[None, :]).reshape(
                -1
            )
            groups.index_add_(0, pairs, p.to(torch.int64).reshape(qa * qx, m))
            pieces.append((a_lo + cut.lo, groups, -1))
        s = _round_pieces(pieces, m, w)
        row = s / a[i, i]
        _arrays.check_flag(~torch.isfinite(row).all(), lambda i=i, row=row: _overflow(name, i, row))
        x[i] = row
        cut.add(row[None, :], slice(i, i + 1), slice(None))
    return x.reshape(b.shape)


# ---- windows and the square root -----------------------------------------------------------------------------------


def _windows(x, w, origin):
    """Signed `w`-bit windows of float64 `x`: `x = sum_q digits[q] * 2**((lo + q) w - origin)` exactly, with
    `origin >= 1074` so that every bit of every float64 lies at a position >= 0. Returns `(digits, lo)`, digits int64
    of shape `(Q,) + x.shape` (`Q = 0` when `x` is all zero)."""
    neg, mant, e = _decompose(x)
    nonzero = mant != 0
    if not bool(nonzero.any()):
        return torch.zeros((0,) + tuple(x.shape), dtype=torch.int64, device=x.device), 0
    p = e + origin  # position of the significand's last bit
    big = 1 << 40
    low, high = torch.stack([(p + big * ~nonzero).min(), (p + 52 - big * ~nonzero).max()]).tolist()
    lo, hi = low // w, high // w
    mask = (1 << w) - 1
    q = torch.arange(lo, hi + 1, device=x.device).reshape((-1,) + (1,) * x.ndim)
    sh = p - q * w  # window q holds floor(mant * 2**sh) mod 2**w
    left = (mant & (torch.full_like(sh, mask) >> sh.clamp(0, w))) << sh.clamp(0, w)
    right = (mant >> (-sh).clamp(0, 63)) & mask
    digits = left + right - (mant & mask)  # each of left and right is `mant & mask` where it does not apply
    return digits * (1 - 2 * neg.to(torch.int64)), lo


def _sqrt_rn_host(d: float) -> float:
    """The correctly rounded square root of one positive float64 on the host, from `math.isqrt` (see
    `reference.core.linalg._sqrt_rn`: `isqrt` of the significand scaled to at least 110 bits, plus a sticky bit)."""
    if math.isinf(d):
        return d
    n, den = d.as_integer_ratio()
    k = den.bit_length() - 1
    if k % 2:
        n, k = n << 1, k + 1
    t = max(0, (111 - n.bit_length()) // 2)
    big = n << (2 * t)
    r = math.isqrt(big)
    return _round_host(2 * r + (r * r != big), -(k // 2 + t) - 1)


def _round_host(n: int, exponent: int) -> float:
    """n * 2**exponent rounded to float64 (no overflow here: a square root of a float64 is in range)."""
    return float(Fraction(n) * Fraction(2) ** exponent)


def _sqrt_rn(d):
    """The float64 nearest to the square root of float64 `d > 0` (no ties exist), exactly, on any device.

    `d = M * 2**e` with `M` in `[2**52, 2**54)` and `e` even; the result is `Y * 2**(e/2 - 26)` with `Y` the integer
    nearest to `sqrt(M * 2**52)`, which lies in `[2**52, 2**53]`. A first `Y` comes from torch's `sqrt` (within a
    few units); it is moved until `(2Y - 1)**2 < M * 2**54 < (2Y + 1)**2`, each side decided by the exact sign of a
    108-bit difference of squares computed in 27-bit int64 pieces. `+inf` stays `+inf`.
    """
    bits = d.view(torch.int64)
    biased = bits >> 52
    frac = bits & ((1 << 52) - 1)
    mant = frac | ((biased > 0).to(torch.int64) << 52)
    e = biased.clamp(min=1) - 1075
    _, length = torch.frexp(mant.to(torch.float64))  # bit length of mant (exact: mant < 2**53)
    shift = 53 - length.to(torch.int64)  # subnormals: normalize to 53 bits
    mant, e = mant << shift, e - shift
    odd = e & 1
    mant, e = mant << odd, e - odd  # mant in [2**52, 2**54), e even
    guess = torch.round(torch.sqrt(mant.to(torch.float64)) * _arrays.scalar(2.0**26, d)).to(torch.int64)
    for _ in range(3):
        guess = guess + (_square_sign(2 * guess + 1, mant) < 0).to(torch.int64)
        guess = guess - (_square_sign(2 * guess - 1, mant) > 0).to(torch.int64)
    half = e >> 1
    out = guess.to(torch.float64) * _pow2(half - 26)
    return torch.where(torch.isinf(d), d, out)


def _square_sign(z, mant):
    """The sign of `z**2 - mant * 2**54` for int64 `0 < z < 2**55` and `mant < 2**54`, exactly (-1, 0 or 1).

    With `z = zh 2**27 + zl`: `z**2 - mant 2**54 = (zh**2 - mant) 2**54 + 2 zh zl 2**27 + zl**2`; carrying the two
    lower terms up in base `2**27` leaves `A 2**54 + B 2**27 + C` with `0 <= B, C < 2**27`, whose sign is that of
    `A` unless `A` is zero. Every intermediate fits in int64.
    """
    low = (1 << 27) - 1
    zh, zl = z >> 27, z & low
    c = zl * zl
    b = 2 * zh * zl + (c >> 27)
    a = zh * zh - mant + (b >> 27)
    rest = ((b & low) | (c & low)) != 0
    return torch.sign(a) + (a == 0).to(torch.int64) * rest.to(torch.int64)


# ---- errors and checks ----------------------------------------------------------------------------------------------


def _overflow(name, i, row):
    c = int((~torch.isfinite(row)).nonzero()[0, 0])
    raise validate.overflows(name, i, c, float(row[c]))


def _square(name, m):
    m = _arrays.finite_array(name, m, _F64)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] == 0:
        raise validate.not_square(name, m.shape)
    return m


def _symmetric(name, m):
    m = _square(name, m)
    bad = (m != m.T).reshape(-1)
    if bool(bad.any()):
        i, j = divmod(int(bad.nonzero()[0]), m.shape[0])
        raise validate.not_symmetric(name, i, j, float(m[i, j]), float(m[j, i]))
    return m


def _nonzero_diagonal(name, m):
    d = torch.diagonal(m)
    if bool((d == 0).any()):
        i = int((d == 0).nonzero()[0])
        raise validate.zero_diagonal(name, i, float(d[i]))


def _solve_args(l, b, lower, transpose):
    l = _square("l", l)
    b = _arrays.finite_array("b", b, _F64)
    validate.boolean("lower", lower)
    validate.boolean("transpose", transpose)
    _arrays.same_device("b", b, "l", l)
    if b.ndim not in (1, 2) or b.shape[0] != l.shape[0]:
        expected = (l.shape[0],) if b.ndim != 2 else (l.shape[0], b.shape[1])
        raise validate.shape_mismatch("b", b.shape, expected, f"l of shape {tuple(l.shape)}")
    _nonzero_diagonal("l", l)
    return l, b
