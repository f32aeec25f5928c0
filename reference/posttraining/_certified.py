"""Exact results from float64 approximations, shared by the post-training modules of this package (`obs`, `awq`,
`adaround`).

- `certify(approx, magnitude, terms)`: the float32 rounding of a float64 approximation of a sum of `terms` products,
  and where it is provably the rounding of the exact value.
- `exact32(a, b)`: the exact `a . b` rounded once to float32, for the entries `certify` leaves undecided.
- `matmul32(a, b)`: every entry of `a @ b` the exact value rounded once to float32 (certified from a float64
  product and a rigorous error bound; the rare undecided entries by `exact_dot`), as `obs` computes its columns.
- `argmin_quadratic(d, h, hidx)`: the first index of the exact minimum of quadratic forms
  $\\sum_r d_{k,p,r}^\\top H_p\\, d_{k,p,r}$ over candidates $k$ (certified from float64 values and error bounds;
  candidates with identical $d$ tie exactly; the rare undecided comparisons in exact integers).

The error bounds hold for any summation order, with or without fused multiply-add (Higham, Accuracy and Stability
of Numerical Algorithms, Thm. 3.1), so BLAS and device never change a result.
"""

from __future__ import annotations

import numpy as np

from reference.common.posttraining import quadratic_exact
from reference.core.exact import exact_dot

EPS = 2.0**-53
TINY = 2.0**-1074


def certify(approx, magnitude, terms):
    """`(fl32(approx), ok)`: `ok` where the exact value is provably within the rounding interval of that float32.

    The exact value differs from the float64 computation `approx` by at most `gamma * magnitude + |approx| * u`
    plus `terms` underflows (Higham, Accuracy and Stability of Numerical Algorithms, Thm. 3.1: any order, with or
    without fused multiply-add), where `magnitude` bounds the sum of the absolute terms from its own float64
    computation (a relative error of at most `gamma`). The bound below doubles all of that.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        bound = (2.0 * (terms + 2)) * EPS * (magnitude + np.abs(approx)) + (2.0 * (terms + 2)) * TINY
        lo = np.nextafter(approx - bound, -np.inf)
        hi = np.nextafter(approx + bound, np.inf)
        value = approx.astype(np.float32)
        ok = np.isfinite(value) & (lo.astype(np.float32) == value) & (hi.astype(np.float32) == value)
    return value, ok


def matmul32(a, b):
    """fl32 of the exact `a @ b` for float64 `a (m, k)` and `b (k, n)`.

    A certified zero is settled by `exact32` too: its interval holds values of both signs, and the sign of the
    float64 approximation depends on the order of the additions and on fused multiply-adds (`[d, d] @ [x, -x]`
    is `+0.0` summed in order, the negated rounding error of `d x` with a fused multiply-add); the exact value's
    sign does not (an exact zero is `+0.0`)."""
    value, ok = certify(a @ b, np.abs(a) @ np.abs(b), a.shape[1])
    ok &= value != 0
    for i, j in zip(*np.nonzero(~ok), strict=True):
        value[i, j] = exact32(a[i], b[:, j])
    return value


def exact32(a, b, what="a value"):
    """fl32(sum_j a_j b_j), exactly: `exact_dot` gives the float64 nearest and, with it appended, the sign of the
    residual, which settles the one case where rounding twice differs (a float64 on a float32 midpoint). A result
    beyond float32 raises `ValueError` naming `what`."""
    near = exact_dot(a, b)
    residual = exact_dot(np.concatenate([a, [near]]), np.concatenate([b, [-1.0]]))
    with np.errstate(over="ignore"):
        value = near.astype(np.float32)
    if not np.isfinite(value):
        raise ValueError(f"{what} leaves the float32 range: {float(near)!r}")
    below = np.nextafter(value, np.float32(-np.inf)) if value.astype(np.float64) > near else value
    above = np.nextafter(below, np.float32(np.inf))
    midpoint = near - below.astype(np.float64) == above.astype(np.float64) - near
    if midpoint and residual != 0:
        return above if residual > 0 else below
    return value


def argmin_quadratic(d, h, hidx):
    """The first index `k` of the exact minimum over `k` of `sum_r d[k, p, r] @ h[hidx[p]] @ d[k, p, r]`, per `p`.

    `d`: float64 `(K, P, R, m)`; `h`: float64 `(G, m, m)`, symmetric; `hidx`: int `(P,)`. Returns int64 `(P,)`.
    The float64 values approximate the exact forms within `bound` (a sum of `m` products per entry of `d @ h`,
    then of `R * m` terms); a candidate whose interval lies above the best one's cannot win; candidates with
    bitwise identical `d` have the same exact value (the lower index wins); the rest is compared exactly.
    """
    n_cand, n_pos, rows, m = d.shape
    hp = h[hidx][None]  # (1, P, m, m)
    approx = ((d @ hp) * d).sum(axis=(2, 3))
    magnitude = ((np.abs(d) @ np.abs(hp)) * np.abs(d)).sum(axis=(2, 3))
    bound = (2.0 * (m + rows * m + 4)) * EPS * (magnitude + np.abs(approx)) + 8 * TINY
    best = np.argmin(approx, axis=0)  # the first index of the smallest approximation
    positions = np.arange(n_pos)
    rival = (approx - bound) <= (approx + bound)[best, positions][None, :]
    rival[best, positions] = False
    out = best.astype(np.int64)
    for p in np.flatnonzero(rival.any(axis=0)):
        k0 = int(best[p])
        flagged = [int(k) for k in np.flatnonzero(rival[:, p])]
        k0 = min([k0] + [k for k in flagged if np.array_equal(d[k, p], d[k0, p])])  # identical: the same value
        rivals = [k for k in flagged if not np.array_equal(d[k, p], d[k0, p])]
        if not rivals:
            out[p] = k0
            continue
        hm = h[int(hidx[p])].tolist()
        exact = {int(k): quadratic_exact(d[k, p].tolist(), hm) for k in sorted({k0, *rivals})}
        low = min(exact.values())
        out[p] = min(k for k, v in exact.items() if v == low)
    return out
