"""Exact results from float64 approximations in torch, shared by this package's post-training modules; the
semantics and bounds of `reference.posttraining._certified`, bit for bit."""

from __future__ import annotations

import torch

from reference.common.posttraining import quadratic_exact
from torch_backend import _arrays
from torch_backend.core.exact import exact_dot

F32, F64 = torch.float32, torch.float64
EPS = 2.0**-53
TINY = 2.0**-1074


def certify(approx, magnitude, terms):
    r"""`(fl32(approx), ok)`; see the reference's `certify`, whose interval this one contains, so that a value
    certified here is certified there too (the rest is settled exactly, on either side: the same bits).

    With $A = \operatorname{fl}(s \operatorname{fl}(m + |a|))$ ($s = 2 (t + 2) 2^{-53}$, as the reference) and
    $B = 4 \max(A, 2^{-999})$, the bounds are $\operatorname{fl}(a \mp B)$, with no `nextafter` and no addition
    of the subnormal floor $f = 2 (t + 2) 2^{-1074} \le 2^{-999}$ (each cost 10 to 15 times an addition on the
    CPU). They lie beyond $a \mp 1.5 (A + f)$, outside the reference's `nextafter(fl(a \mp fl(A + f)))`:
    $|\operatorname{fl}(a - B) - (a - B)| \le 2^{-53} (|a| + B)$, and $2^{-53} |a| \le 0.26 A + 2^{-1024}$
    ($A \ge 2^{-51} (1 - 2^{-53}) |a|$ unless $s |a|$ underflows, when $|a| < 2^{-971}$), so
    $a - \operatorname{fl}(a - B) \ge B (1 - 2^{-53}) - 0.26 A - 2^{-1024} \ge 1.5 (A + f)$.
    """
    scale = _arrays.scalar((2.0 * (terms + 2)) * EPS, approx)
    bound = (scale * (magnitude + approx.abs())).clamp_min_(_FLOOR).mul_(_arrays.constant(4.0, approx))
    value = approx.to(F32)
    lo = (approx - bound).to(F32)
    hi = bound.add_(approx).to(F32)
    ok = torch.isfinite(value) & (lo == value) & (hi == value)
    return value, ok


_FLOOR = 2.0**-999  # at least the reference's floor 2 (terms + 2) 2**-1074 for any count of terms below 2**70


def matmul32(a, b):
    """fl32 of the exact `a @ b` for float64 `a (m, k)` and `b (k, n)`; see the reference (a certified zero is
    settled exactly too: the approximation's sign depends on the order of the additions)."""
    value, ok = certify(a @ b, a.abs() @ b.abs(), a.shape[1])
    bad = (~(ok & (value != 0))).nonzero()
    if bad.numel():
        rows, cols = bad[:, 0], bad[:, 1]
        value[rows, cols] = exact32(a[rows], b[:, cols].T)
    return value


def exact32(a, b, what="a value"):
    """fl32(a_r . b_r) exactly for rows of `a` and `b` (one value per row); see the reference's `exact32`."""
    ones = torch.ones((a.shape[0], 1), dtype=F64, device=a.device)
    near = exact_dot(a, b)
    residual = exact_dot(torch.cat([a, near[:, None]], dim=1), torch.cat([b, -ones], dim=1))
    value = near.to(F32)
    if not bool(torch.isfinite(value).all()):
        bad = int((~torch.isfinite(value)).nonzero()[0])
        raise ValueError(f"{what} leaves the float32 range: {float(near[bad])!r}")
    below = torch.where(value.to(F64) > near, torch.nextafter(value, torch.full_like(value, float("-inf"))), value)
    above = torch.nextafter(below, torch.full_like(below, float("inf")))
    midpoint = (near - below.to(F64)) == (above.to(F64) - near)
    beyond = torch.where(residual > 0, above, below)
    return torch.where(midpoint & (residual != 0), beyond, value)


def argmin_quadratic(d, h, hidx):
    """The first index of the exact minimum of `sum_r d[k, p, r] @ h[hidx[p]] @ d[k, p, r]` over `k`, per `p`;
    see the reference (the same bound, identical-candidate rule and exact comparisons)."""
    n_cand, n_pos, rows, m = d.shape
    hp = h[hidx][None]
    approx = ((d @ hp) * d).sum(dim=(2, 3))
    magnitude = ((d.abs() @ hp.abs()) * d.abs()).sum(dim=(2, 3))
    scale = _arrays.scalar((2.0 * (m + rows * m + 4)) * EPS, approx)
    bound = scale * (magnitude + approx.abs()) + _arrays.scalar(8 * TINY, approx)
    best = torch.argmin(approx, dim=0)  # the first index of the smallest (torch.argmin returns the first)
    positions = torch.arange(n_pos, device=d.device)
    rival = (approx - bound) <= (approx + bound)[best, positions][None, :]
    rival[best, positions] = False
    out = best.to(torch.int64).clone()
    need = rival.any(dim=0).nonzero().reshape(-1).tolist()
    for p in need:
        k0 = int(best[p])
        flagged = rival[:, p].nonzero().reshape(-1).tolist()
        k0 = min([k0] + [k for k in flagged if torch.equal(d[k, p], d[k0, p])])
        rivals = [k for k in flagged if not torch.equal(d[k, p], d[k0, p])]
        if not rivals:
            out[p] = k0
            continue
        hm = h[int(hidx[p])].tolist()
        exact = {k: quadratic_exact(d[k, p].tolist(), hm) for k in sorted({k0, *rivals})}
        low = min(exact.values())
        out[p] = min(k for k, v in exact.items() if v == low)
    return out
