"""Exact linear algebra in torch, bit-identical to `reference.core.linalg` on every device.

Every entry of a Cholesky factor or of a triangular solve is one exact inner product, rounded once, then one IEEE
operation, in an order that makes the factorization (or the substitution) sequential: column `j` needs the final
values of the columns before it. Three routes compute the same bits.

**The fast route** (`_cholesky_fast`, `_solve_fast`) works in blocks of `_BLOCK` columns (rows of a solve) and
proves each rounding instead of carrying exact integers:

- Every known value `x` of a row with scale `2**t` (`|x| <= 2**t`, from the diagonal of `h` for a factor, from a
  float64 LAPACK solve for a substitution: a scale only, never a result) is split exactly into three `w`-bit slices on
  the grids `2**(t - w)`, `2**(t - 2 w)`, `2**(t - 3 w)` and a rest (`_split`, Ozaki's extraction:
  `(x + sigma) - sigma`). A product of two rows then falls into exact groups `G0` (slices 0 x 0), `G1` (0 x 1 and
  1 x 0), `G2` (the three pairs of weight 2) and an approximate rest `R`: float64 matmuls of slices are exact
  whatever the BLAS does (every partial sum is an integer below `2**53` on its grid, `3 n 4**w < 2**53`), and `R`
  comes with a rigorous bound from a matmul of absolute values (Higham's `gamma_k`, valid for any order and with
  fused multiply-add).
- At the start of a block, one set of such matmuls gives, for every entry of the block, the value
  `c - sum over earlier blocks` (`c` is `h` or `b`) as an exact float64 on the grid of `G0` plus a small float64,
  with an error bound (`_panel`). Each column of the block then adds its products with the block's own earlier
  columns (one small matmul, `_step`) and `certify` decides the rounding: the value is within the bound of a
  double-double sum, and when the bound stays inside the half gaps of the rounded sum, that float64 is the
  correctly rounded exact value. The rare entries it cannot settle (within about `2**-90` of a rounding boundary
  relative to the row scales) are computed exactly (`_exact_rows`: `products_exact` of the augmented rows).
- The exactness arguments need every value inside a range (row scales within `2**+-400`, nonzero values at least
  `2**-440`, entries within their row scale, the block sums within `2**4` of theirs): outside it (a matrix that
  is far from positive definite, an overflow, extreme scales), the fast route gives up (`_Slow`) before it returns
  or raises anything, and the exact route runs from the start.

**Tiny CPU inputs** (`_small_cholesky`, `_small_solve`: at most about `SMALL` products) follow the reference's
loops with Python integers (every inner product an integer in units of `2**-2148`, rounded once by CPython's
correctly rounded int / int division), where the blocked route's fixed cost dominates.

**The exact route** (`_cholesky_exact`, `_solve_exact`) carries exact integers: each known value is cut once into
absolute windows of `w` bits (window `q` holds its bits from `2**(q w - 1074)` up); a step multiplies the windows
of the known values with one float64 matmul of integers below `2**w`, exact because every partial sum stays below
`2**53`, groups the products by window pair and rounds the int64 limbs with `round_limbs`.

Square roots are correctly rounded; torch's CPU float64 `sqrt` is not (13 861 of 10**6 inputs one ulp off, see the
exactness page). The Cholesky loops read each pivot on the host, as its check needs, and root it there with
`math.isqrt` (`_sqrt_rn_host`). `_sqrt_rn` is the same root for a tensor, on its device: torch's `sqrt` as a first
guess, settled by exact int64 comparisons of squares.

Measured (CPU, one thread, shared machine; benchmarks/README.md, suite `exact`): the fast route factors a 512 x 512
matrix in about a tenth of the exact route's time; the block size `_BLOCK` trades per-column work (a matmul over
the block's columns) against per-block work.
"""

from __future__ import annotations

import math

import torch

from reference.common import validate
from reference.core.exact import UNIT
from torch_backend import _arrays
from torch_backend.core._exact import (
    HEAD,
    MAX_SLICE_K,
    certify,
    decompose,
    pow2,
    products,
    products_exact,
    round_limbs,
    rounded,
    units,
    width,
)

__all__ = ["cholesky", "triangular_solve", "cholesky_inverse"]

_F64 = ("float64",)


def cholesky(h):
    """The lower Cholesky factor, column by column, each entry one exact inner product and one IEEE operation; see
    `reference.core.linalg.cholesky` for the semantics.

    The fast route proves each rounding (module docstring); the exact route runs when it gives up. Each column reads
    its pivot on the host once (the pivot check needs it anyway) and takes its square root there, exactly.
    """
    h = _symmetric("h", h).detach()
    small = _small_cholesky(h)
    if small is not None:
        return small
    try:
        return _cholesky_fast(h)
    except _Slow:
        return _cholesky_exact(h)


def triangular_solve(l, b, *, lower=True, transpose=False):
    """Solve `op(l) x = b` by substitution, each entry one exact inner product and one IEEE division; see
    `reference.core.linalg.triangular_solve`."""
    l, b = _solve_args(l, b, lower, transpose)
    l, b = l.detach(), b.detach()
    small = _small_solve(l, b, lower, transpose, "x")
    if small is not None:
        return small
    try:
        return _solve_op(l, b, lower, transpose, identity=False)
    except _Slow:
        return _solve_exact(l, b, lower, transpose, "x")


def cholesky_inverse(l):
    """`(l l^T)^-1 = Y^T Y` with `Y = l^-1` by forward substitution; see `reference.core.linalg.cholesky_inverse`."""
    l = _square("l", l)
    _nonzero_diagonal("l", l)
    l = l.detach()
    eye = torch.eye(l.shape[0], dtype=torch.float64, device=l.device)
    y = _small_solve(l, eye, True, False, "l^-1")
    if y is None:
        try:
            y = _solve_op(l, eye, True, False, identity=True)
        except _Slow:
            y = _solve_exact(l, eye, True, False, "l^-1")
    return products(y.T[None], y[None], gram=True)[0]


# ---- tiny CPU inputs: Python integers ------------------------------------------------------------------------------

# At most this many exact products (about n**3 / 6 for a factor, n**2 m / 2 for a solve) on the CPU: the reference's
# loops in Python integers (each inner product an integer in units of 2**-2148, rounded once; `math.isqrt` roots;
# Python's IEEE float division), where the fast route's set-up (tens of small torch operations per block) dominates.
SMALL = 1 << 10


def _small_cholesky(h):
    """The factor of a tiny CPU `h` with Python integers, column by column as the reference, or None."""
    n = h.shape[0]
    if h.device.type != "cpu" or n * n * n > 6 * SMALL:
        return None
    rows = h.tolist()
    out = [[0.0] * n for _ in range(n)]
    known = [[0] * n for _ in range(n)]  # units of the factor's entries
    for j in range(n):
        s = [
            rounded((units(rows[i][j]) << UNIT) - sum(known[i][k] * known[j][k] for k in range(j)), 2 * UNIT)
            for i in range(j, n)
        ]
        if not s[0] > 0:
            raise validate.not_positive_definite("h", j, s[0])
        d = _finite("L", j, j, _sqrt_rn_host(s[0]))
        out[j][j], known[j][j] = d, units(d)
        for i in range(j + 1, n):
            v = _finite("L", i, j, s[i - j] / d)
            out[i][j], known[i][j] = v, units(v)
    return torch.tensor(out, dtype=torch.float64)


def _small_solve(l, b, lower, transpose, name):
    """`op(l) x = b` for tiny CPU inputs with Python integers, row by row as the reference, or None."""
    n = l.shape[0]
    b2 = b.reshape(n, -1)
    m = b2.shape[1]
    if l.device.type != "cpu" or n * n * m > 2 * SMALL:
        return None
    a = (l.T if transpose else l).tolist()
    rhs = b2.tolist()
    forward = lower != transpose
    x = [[0.0] * m for _ in range(n)]
    known = [[0] * m for _ in range(n)]
    for i in range(n) if forward else range(n - 1, -1, -1):
        before = range(0, i) if forward else range(i + 1, n)
        factors = [(units(a[i][k]), k) for k in before]
        for c in range(m):
            s = rounded((units(rhs[i][c]) << UNIT) - sum(u * known[k][c] for u, k in factors), 2 * UNIT)
            v = _finite(name, i, c, s / a[i][i])  # IEEE division (the diagonal is nonzero)
            x[i][c], known[i][c] = v, units(v)
    return torch.tensor(x, dtype=torch.float64).reshape(b.shape)


def _finite(name, i, j, value: float) -> float:
    if not math.isfinite(value):
        raise validate.overflows(name, i, j, value)
    return value


# ---- the fast route: slices, blocks, certified roundings ----------------------------------------------------------


class _Slow(Exception):  # noqa: N818 (a signal, not an error: the exact route takes over)
    """The fast route cannot vouch for its state: a value lies outside the range its exactness arguments cover."""


_BLOCK = 32  # columns (rows of a solve) per block
_WI = 15  # bits per slice inside a block: two groups of slice products and the block's sum add exactly
_LOW = -440  # nonzero values of the fast route are at least 2**_LOW in magnitude ...
_SCALE = 400  # ... and the row scales within 2**+-_SCALE: every product of slices and rests is a normal float64


def _fast_width(n):
    """Bits per slice in the panels: up to `3 n` products of two slices (each at most `4**w` units of its grid) sum
    below `2**53`; at most 23, so that a panel's partial sums (below `2**(E + 4)`) stay exact on `2**(E - 2 w)`."""
    w = 23
    while 3 * max(n, 1) * 4**w >= 2**53:
        w -= 1
    return w


def _sigmas(t, w):
    """The splitting constants `1.5 * 2**(t - (s + 1) w + 52)` of rows with scale `2**t`, stacked `(3,) + t.shape`:
    adding and subtracting one rounds a value of magnitude at most `2**(t - s w)` to the grid `2**(t - (s + 1) w)`."""
    return torch.stack([pow2(t - (s + 1) * w + 52) * 1.5 for s in range(3)])


def _split(x, sig):
    """`x = x0 + x1 + x2 + xr` exactly, slice `s` on the grid of `sig[s]` (Ozaki's extraction: each addition and
    subtraction is exact for `|x| <= 2**t`), and the remainders `r2 = x2 + xr`, `r1 = x1 + r2`."""
    x0 = (x + sig[0]) - sig[0]
    r1 = x - x0
    x1 = (r1 + sig[1]) - sig[1]
    r2 = r1 - x1
    x2 = (r2 + sig[2]) - sig[2]
    return x0, x1, x2, r2 - x2, r2, r1


def _two_diff(a, b):
    """`(s, e)` with `s = fl(a - b)` and `s + e = a - b` exactly (Knuth's TwoSum of `a` and `-b`)."""
    s = a - b
    bb = s - a
    return s, (a - (s - bb)) - (b + bb)


def _panel(c, sl, sr, x, mx, tl, tr, w):
    """`c - left @ right.T` for a block, as the hand-off to its columns.

    `c` `(m, q)` float64. `sl` `(4, m, K)`: the `w`-bit slices (`_split`) of the targets' known values; `sr`
    `(4, q, K)` those of the block's steps, `x` `(q, K)` their values; `mx` `(4, m)`: the largest magnitude of each
    slice of each target.
    With `E = tl + tr` (row scales) per entry, returns `(c0, cr, beta, big)`: `c0` exact on the grid `2**(E - 2 _WI)`
    and below `2**(E + 4)`, the value within `beta` of `c0 + cr`, and whether a magnitude left the range the
    exactness arguments need. The groups `G0`, `G1`, `G2` of slice products are exact matmuls; the rest `R` is bounded
    by Higham's `gamma_K` (any summation order), doubled, times `size`, a bound on the sum of the magnitudes of its
    terms (the largest slice of a target times the sum of the partial sums of magnitudes of a step). `beta` also
    covers the one rounding of `cr` by a column.
    """
    e_ = tl[:, None] + tr[None, :]
    lim = pow2(e_ + 4)
    sig = pow2(e_ - 2 * _WI + 52) * 1.5  # rounds to the grid of the block's G0
    big = (c.abs() >= lim).any()
    k = sl.shape[2]
    if k == 0:
        c0 = (c + sig) - sig
        cr = c - c0
        return c0, cr, cr.abs() * 2.0**-50, big
    sig_w = pow2(e_ - 2 * w + 52) * 1.5
    h0 = (c + sig_w) - sig_w
    hr = c - h0
    a0, a1, a2, ar = sl.unbind(0)
    b0, b1, b2, br = sr.unbind(0)
    r2 = b2 + br  # the remainders of the split: exact
    r1 = b1 + r2
    q = c.shape[1]
    # four matmuls, each slice of the targets against all the factors it meets (wider products run faster)
    p0 = a0 @ torch.cat([b0, b1, b2, br]).T
    p1 = a1 @ torch.cat([b0, b1, r2]).T
    p2 = a2 @ torch.cat([b0, r1]).T
    g0 = p0[:, :q]
    g1 = p0[:, q : 2 * q] + p1[:, :q]
    g2 = (p0[:, 2 * q : 3 * q] + p1[:, q : 2 * q]) + p2[:, :q]
    rest = ((p0[:, 3 * q :] + p1[:, 2 * q :]) + p2[:, q:]) + ar @ x.T
    size = mx.T @ sr.abs().flip(0).cumsum(0).sum(2)  # (|br|, |b2| + |br|, ...) summed over k
    d = h0 - g0  # exact when below 2**(E - 2 w + 53): checked
    big = big | (d.abs() >= lim).any()
    d, e1 = _two_diff(d, g1)
    d, e2 = _two_diff(d, g2)
    c0 = (d + sig) - sig
    cr = (d - c0) + (((e1 + e2) + hr) - rest)
    beta = size * ((k + 2) * 2.0**-49) + (e1.abs() + e2.abs() + hr.abs() + rest.abs()) * 2.0**-51
    return c0, cr, beta + cr.abs() * 2.0**-50, big | (c0.abs() >= lim).any()


def _panel_slices(x, sig):
    """The four slices of the panels (`_split` with `_fast_width` bits), stacked first, and their magnitudes' largest
    along the last axis."""
    s = torch.stack(_split(x, sig)[:4])
    return s, s.abs().amax(-1)


# The right-hand operand of a column, gathered from the step row's components (`_components`: x0, x1, x2, xr, r1,
# r2, x, 0): for each slice of the targets (x0, x1, x2, xr), its factor in G0, G1, G2 and the rest R.
_RIGHT = torch.tensor([[0, 1, 2, 3], [7, 0, 1, 5], [7, 7, 0, 4], [7, 7, 7, 6]])


def _stairs(t):
    """`(3,) + t.shape`: the constants that round values of scale `2**t` to the grids `2**(t - 15 s)`, s = 1, 2, 3,
    in one step each (exact for `|x| <= 2**t`: `45 <= 51` bits below the constant's last bit)."""
    return _sigmas(t, _WI)


def _components(x, stairs, zero):
    """`(7,) + x.shape`: the `_WI`-bit slices x0, x1, x2, xr of values `x` (`stairs` from their row scales, shaped
    `(3,) + x.shape` or broadcastable; `zero` of shape `(1,) + x.shape`), the remainders `r1 = x - x0` and
    `r2 = x - x0 - x1`, and `x`. `x` is rounded to the three grids at once; the slices are the differences of
    successive roundings (each exact and on its grid), the rest is what the finest one leaves."""
    r = (x + stairs) - stairs  # x rounded to 2**(t - 15), 2**(t - 30), 2**(t - 45)
    z = torch.cat([zero, r, x[None]])
    return torch.cat([z.diff(dim=0), x[None] - r[0:2], x[None]])


class _Work:
    """A block's buffers, and their per-column views made once (on the CPU an index costs as much as an addition).

    `store` `(8, q, m)` holds the targets' components (`_components`: slices x0, x1, x2, xr, remainders r1, r2, the
    value, and a zero) for the block's columns, zero where not known yet; `left` is its transposed view of the slices,
    the left operand of every column's matmul. `p` and `q` `(q, m)` receive each column's double-float value.
    """

    def __init__(self, c0, cr, stair, right):
        m, nq = c0.shape
        new = {"dtype": c0.dtype, "device": c0.device}
        self.c0, self.cr = c0.T.contiguous().unbind(0), cr.T.contiguous().unbind(0)
        self.store = torch.zeros(8, nq, m, **new)
        self.left = self.store[0:4].reshape(4 * nq, m).T
        self.components = self.store[:7].unbind(1)
        self.p, self.q = torch.zeros(nq, m, **new), torch.zeros(nq, m, **new)
        self.p_col, self.q_col = self.p.unbind(0), self.q.unbind(0)
        self.values = torch.zeros(nq, m, **new)
        self.value_col = self.values.unbind(0)
        self.z = torch.zeros(5, m, **new)  # row 0 stays zero: the differences of rows 0..4 are the slices
        self.z_rounded, self.z_value, self.z_two = self.z[1:4], self.z[4], self.z[1:3]
        self.stair, self.right, self.nq = stair, right, nq

    def column(self, jj, row):
        """`(p, q)`: `p + q` is `c - sum over the block's earlier columns` of column `jj`, but for the rest's rounding
        (bounded in `_proven`); `row` `(8, q)` holds the step row's components. `G0` and `G1 + G2` are exact
        (integers on a common grid, partial sums below `2**53`); `c0 - G0` is exact (both on the grid
        `2**(E - 30)`, below `2**(E + 6)`); the difference with `G1 + G2` is carried exactly (Knuth's TwoSum)."""
        g0, g1, g2, rest = (self.left @ row[self.right].permute(0, 2, 1).reshape(4 * self.nq, 4)).unbind(1)
        a = self.c0[jj] - g0
        b = g1 + g2
        p = torch.sub(a, b, out=self.p_col[jj])
        bb = p - a
        q = torch.sub(((a - (p - bb)) - (b + bb)) + self.cr[jj], rest, out=self.q_col[jj])
        return p, q

    def keep(self, jj, x):
        """Store the components of column `jj`'s values `x` (`_components`, in place)."""
        torch.add(x, self.stair, out=self.z_rounded)
        self.z_rounded.sub_(self.stair)  # x rounded to the grids 2**(t - 15), 2**(t - 30), 2**(t - 45)
        self.z_value.copy_(x)
        dst = self.components[jj]
        torch.diff(self.z, dim=0, out=dst[0:4])  # the slices
        torch.sub(x, self.z_two, out=dst[4:6])  # r1 = x - x0, r2 = x - x0 - x1
        dst[6].copy_(x)


def _proven(p, q, beta, store, rows, upto, lower):
    """Where the block's values `fl(p + q)` are proven (`certify`'s interval test, in bulk), for columns `< upto`;
    `p`, `q`, `beta` are `(m, q)`.

    The bound adds to `beta` the rest's matmul error and the two roundings of `q` (`kappa * size`, `size` from a
    matmul of the targets' slice magnitudes with the steps' partial sums of magnitudes, earlier columns only) and
    `2**-104 |p|` (the error term of `_two_diff`). `store` `(8, q, m)`: the targets' components; `rows` `(q, 8, q)`:
    the steps'; `lower`: targets above a column's diagonal do not count."""
    m, nq = p.shape
    size = store[0:4].abs().reshape(4 * nq, m).T @ _partial_sums(rows)
    bound = (beta + size * ((nq + 1) * 2.0**-49)) + p.abs() * 2.0**-104
    _, ok = certify(p, q, bound)
    cols = torch.arange(nq, device=p.device)
    unused = cols[None, :] >= upto
    if lower:
        unused = unused | (torch.arange(m, device=p.device)[:, None] < cols[None, :])
    return ok | unused


def _partial_sums(rows):
    """`(4 q, q)`: for slice `s` of the targets and column `k`, the step row `j`'s bound factor (|br|, |b2| + |br|,
    |b1| + ..., |b0| + ...) of its value at `k`, for `k < j` only."""
    nq = rows.shape[0]
    w = rows[:, 0:4].abs().flip(1).cumsum(1)  # (j, s, k)
    k = torch.arange(nq, device=rows.device)
    w = w * (k[None, :] < k[:, None])[:, None, :]
    return w.permute(1, 2, 0).reshape(4 * nq, nq)


def _first_unproven(ok):
    """The first block column with an unproven value, or None (one host read)."""
    if bool(ok.all()):
        return None
    return int((~ok).any(0).nonzero()[0])


def _in_range(values, lim):
    """Whether every value is within its row's limit and, when nonzero, at least `2**_LOW` in magnitude."""
    a = values.abs()
    return bool(~((a > lim) | ((a < 2.0**_LOW) & (a > 0))).any())


def _exact_rows(first, known, step_row):
    """`fl(first[i] - sum_k known[i, k] * step_row[k])` for each row `i`, exactly (the general integer route); a
    non-finite input means that the fast route's state is broken."""
    if not bool(torch.isfinite(known).all() & torch.isfinite(step_row).all()):
        raise _Slow
    lhs = torch.cat([first[:, None], known], 1)
    rhs = torch.cat([torch.ones(1, dtype=step_row.dtype, device=step_row.device), -step_row])
    return products_exact(lhs[:, None, :], rhs.expand(lhs.shape[0], -1)[:, :, None]).reshape(-1)


class _Forced:
    """Exact values put in place of unproven ones, per block column."""

    def __init__(self):
        self.columns = {}

    def drop_from(self, jj):
        self.columns = {k: v for k, v in self.columns.items() if k < jj}

    def mask(self, ok):
        """`ok` with the forced entries counted as proven (their bound is zero: they are the exact values)."""
        for jj, (idx, _) in self.columns.items():
            ok[idx, jj] = True
        return ok

    def apply(self, jj, p, q):
        """Replace the forced entries of column `jj` in `p` and `q`, in place (`q = -0.0`: `p + q` is then `p`, its
        zeros kept)."""
        if jj in self.columns:
            idx, val = self.columns[jj]
            p[idx], q[idx] = val, -0.0


def _cholesky_fast(h):
    n = h.shape[0]
    d = h.diagonal()
    _, e = torch.frexp(d)
    t = (e.to(torch.int64) + 1).div(2, rounding_mode="floor") + 1  # 2**t >= 2 sqrt(h_jj): |L_jk| <= 2**t
    if not bool((d > 0).all() & (t.abs() <= _SCALE).all()):
        raise _Slow
    w = _fast_width(n)
    lim, sig_p, stairs = pow2(t), _sigmas(t, w), _stairs(t)
    out = torch.zeros_like(h)
    slices = torch.zeros(4, n, n, dtype=h.dtype, device=h.device)  # the panels' slices of L
    mx = torch.zeros(4, n, dtype=h.dtype, device=h.device)
    root = torch.zeros((), dtype=h.dtype, device=h.device)
    right = _RIGHT.to(h.device)
    for j0 in range(0, n, _BLOCK):
        j1 = min(n, j0 + _BLOCK)
        nq, m = j1 - j0, n - j0
        c0, cr, beta, big = _panel(h[j0:, j0:j1], slices[:, j0:, :j0], slices[:, j0:j1, :j0], out[j0:j1, :j0],
                                   mx[:, j0:], t[j0:], t[j0:j1], w)  # fmt: skip
        if bool(big):
            raise _Slow
        work = _Work(c0, cr, stairs[:, j0:], right)
        store, block = work.store, work.values
        rows = store.unbind(2)  # the step rows' components (the first nq targets)
        below = torch.arange(m, device=h.device)[None, :] > torch.arange(nq, device=h.device)[:, None]
        above = below.to(h.dtype)  # as a factor: the rows above a column are computed, then multiplied by zero
        forced, start = _Forced(), 0
        while True:
            stop = nq
            for jj in range(start, nq):
                p, q = work.column(jj, rows[jj])
                forced.apply(jj, p, q)
                y = p + q
                pivot = y[jj].item()
                if not pivot > 0:
                    stop = jj
                    break
                col = work.value_col[jj]
                root.fill_(_sqrt_rn_host(pivot))
                torch.mul(y, above[jj], out=col)  # zero at and above the diagonal
                col.div_(root)
                col[jj] = root
                work.keep(jj, col)
            ok = _proven(work.p.T, work.q.T, beta, store, store[:, :, :nq].permute(2, 0, 1), min(stop + 1, nq), True)
            first = _first_unproven(forced.mask(ok))
            if first is None:
                if stop < nq:
                    _keep(out, block, below, j0, stop)
                    if not _in_range(out[j0:, j0 : j0 + stop], lim[j0:, None]):
                        raise _Slow
                    raise validate.not_positive_definite("h", j0 + stop, pivot)
                break
            j = j0 + first
            bad = (~ok[:, first]).nonzero()[:, 0]  # rows at or below the diagonal (the others count as proven)
            _keep(out, block, below, j0, first)
            forced.drop_from(first)
            forced.columns[first] = (bad, _exact_rows(h[j0 + bad, j], out[j0 + bad, :j], out[j, :j]))
            store[:, first:] = 0
            start = first
        _keep(out, block, below, j0, nq)
        if not _in_range(out[j0:, j0:j1], lim[j0:, None]):
            raise _Slow
        s, top = _panel_slices(out[j0:, j0:j1], sig_p[:, j0:, None])
        slices[:, j0:, j0:j1] = s
        mx[:, j0:] = torch.maximum(mx[:, j0:], top)
    return out


def _keep(out, block, below, j0, columns):
    """The block's first `columns` columns into the factor: `+0.0` above the diagonal (where the block holds the
    products of zero factors, whose sign follows the values computed there), the diagonal and the values below."""
    out[j0:, j0 : j0 + columns] = torch.where(below[:columns].T, block[:columns].T, 0.0)
    out.diagonal()[j0 : j0 + columns] = block.diagonal()[:columns]


def _solve_op(l, b, lower, transpose, identity):
    """`op(l) x = b` by the fast route: the triangle read, flipped to a lower one for a backward substitution."""
    n = l.shape[0]
    a = l.T if transpose else l
    forward = lower != transpose
    k = torch.arange(n, device=a.device)
    a = a * ((k[:, None] >= k[None, :]) if forward else (k[:, None] <= k[None, :]))  # only the triangle read
    b2 = b.reshape(n, -1)
    if forward:
        return _solve_fast(a, b2, identity).reshape(b.shape)
    return _solve_fast(a.flip(0, 1), b2.flip(0), identity).flip(0).reshape(b.shape)


def _solve_fast(a, b, identity):
    """Forward substitution `a x = b` (`a` lower triangular `(n, n)`, `b` `(n, m)`), by blocks of rows: the targets
    are the columns of `x`, the steps the rows; with `identity` (`b = I`), the targets of a block stop at its last
    row (the entries above the diagonal are `fl(0 - 0) / a_ii`, a zero)."""
    n, m = b.shape
    mag = a.abs()
    _, ta = torch.frexp(mag.amax(1))
    ta = ta.to(torch.int64)  # |a_ik| < 2**ta_i
    approx = torch.linalg.solve_triangular(a, b, upper=False)  # float64 LAPACK: a scale for each column of x, no more
    _, tx = torch.frexp(approx.abs().amax(0))
    tx = tx.to(torch.int64) + 2
    ok = torch.isfinite(approx).all() & (ta.abs() <= _SCALE).all() & (tx.abs() <= _SCALE).all()
    if not bool(ok & ~((mag < 2.0**_LOW) & (mag > 0)).any()):
        raise _Slow
    w = _fast_width(n)
    lim, sig_x, stairs_x = pow2(tx), _sigmas(tx, w), _stairs(tx)
    slices_a, _ = _panel_slices(a, _sigmas(ta, w)[:, :, None])
    stairs_a = _stairs(ta)
    slices_x = torch.zeros(4, m, n, dtype=b.dtype, device=b.device)  # the panels' slices of x, per target
    mx = torch.zeros(4, m, dtype=b.dtype, device=b.device)
    x = torch.zeros(n, m, dtype=b.dtype, device=b.device)
    right = _RIGHT.to(b.device)
    for i0 in range(0, n, _BLOCK):
        i1 = min(n, i0 + _BLOCK)
        nq = i1 - i0
        mm = min(m, i1) if identity else m
        c0, cr, beta, big = _panel(b[i0:i1, :mm].T, slices_x[:, :mm, :i0], slices_a[:, i0:i1, :i0], a[i0:i1, :i0],
                                   mx[:, :mm], tx[:mm], ta[i0:i1], w)  # fmt: skip
        if bool(big):
            raise _Slow
        rows = torch.zeros(nq, 8, nq, dtype=b.dtype, device=b.device)
        diag = a[i0:i1, i0:i1]
        rows[:, :7] = _components(diag, stairs_a[:, i0:i1, None], torch.zeros_like(diag)[None]).permute(1, 0, 2)
        work = _Work(c0, cr, stairs_x[:, :mm], right)
        store, block = work.store, work.values
        pivots = a.diagonal()[i0:i1].unbind(0)
        forced, start = _Forced(), 0
        while True:
            for ii in range(start, nq):
                p, q = work.column(ii, rows[ii])
                forced.apply(ii, p, q)
                row = work.value_col[ii]
                torch.div(p + q, pivots[ii], out=row)
                work.keep(ii, row)
            ok = _proven(work.p.T, work.q.T, beta, store, rows, nq, False)
            first = _first_unproven(forced.mask(ok))
            if first is None:
                break
            i = i0 + first
            bad = (~ok[:, first]).nonzero()[:, 0]
            x[i0:i, :mm] = block[:first]
            forced.drop_from(first)
            forced.columns[first] = (bad, _exact_rows(b[i, bad], x[:i, bad].T, a[i, :i]))
            store[:, first:] = 0
            start = first
        x[i0:i1, :mm] = block
        if mm < m:  # x_ic = fl(0 - 0) / a_ii for c > i: +0.0, or -0.0 below a negative diagonal entry
            x[i0:i1, mm:] = torch.zeros_like(x[i0:i1, mm:]) / a.diagonal()[i0:i1, None]
        if not _in_range(block, lim[None, :mm]):
            raise _Slow
        s, top = _panel_slices(block.T, sig_x[:, :mm, None])
        slices_x[:, :mm, i0:i1] = s
        mx[:, :mm] = torch.maximum(mx[:, :mm], top)
    return x


# ---- the exact route: absolute windows, int64 limbs ----------------------------------------------------------------


def _cholesky_exact(h):
    """The factor by the exact route (see the module docstring)."""
    n = h.shape[0]
    w = width(min(max(n - 1, 1), MAX_SLICE_K))
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
    limbs = torch.zeros(hi - lo + 1 + HEAD[w] + 2, m, dtype=torch.int64, device=pieces[0][1].device)
    for start, rows, sign in pieces:
        limbs[start - lo : start - lo + rows.shape[0]].add_(rows * sign)
    return round_limbs(limbs, lo * w - 2 * UNIT, w)


def _solve_exact(l, b, lower, transpose, name):
    """Substitution for `op(l) x = b` on checked inputs; `name` labels an overflowing entry."""
    n = l.shape[0]
    a = l.T if transpose else l
    forward = lower != transpose
    k = torch.arange(n, device=a.device)
    a = a * ((k[:, None] >= k[None, :]) if forward else (k[:, None] <= k[None, :]))  # only the triangle read
    # (a mask, not torch.tril: on 2 CPU threads tril wakes the thread pool even for a 3x3, 16 ms on a busy machine)
    b2 = b.reshape(n, -1)
    m = b2.shape[1]
    w = width(min(max(n - 1, 1), MAX_SLICE_K))
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
    neg, mant, e = decompose(x)
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
    """`n * 2**exponent` rounded to float64 for an `n` of at least 55 bits whose last bit is sticky (as
    `_sqrt_rn_host` builds it): `float(n)` rounds once, correctly (CPython's int to float conversion is to nearest,
    ties to even), and the scaling is exact (a square root of a float64 is a normal float64)."""
    return math.ldexp(float(n), exponent)


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
    out = guess.to(torch.float64) * pow2(half - 26)
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
