"""Exact statistics of tensors spread over ranks: sums, Gram matrices and GPTQ Hessians, minima and maxima.

Each statistic is combined from integers whose sum (or minimum, or maximum) does not depend on the order in
which the ranks' contributions meet, so the result is the single-process result on the whole tensor, bit for
bit, for every world size and layout:

- **sums** (`exact_sum`, `exact_gram`, `gptq_hessian`): every rank computes the exact state of its own terms
  (`torch_backend.exact_sum_state`: the exact sum as 68 fixed-point limbs of 32 bits), the states are added limb
  by limb by one `all_reduce(SUM)` and rounded once (`exact_sum_round`). Only the limbs that can hold bits travel:
  two small `all_reduce`s agree on the window of limbs any rank uses (a state is zero below it and its sign
  extension above it), and the window plus one sign limb is summed; a float32 Gram matrix of activations of
  moderate range needs 4 or 5 limbs, not 68.
- **minima and maxima** (`minmax_observer`, `ema_minmax_observer`, `minmax_qparams`): order-preserving integer
  keys of the floats (`-0.0` and `+0.0` one key) reduced with one `all_reduce(MIN)` over every statistic (a
  channel, a quantization group cut by the shards), then the single-process function finishes the job.

Results are whole statistics, the same on every rank (plain tensors), whatever the layout of the input.
"""

from __future__ import annotations

import math

import torch

import torch_backend
from reference.common import checks as option_checks
from reference.common import shapes, validate
from reference.core.exact import LIMB_BITS, LIMBS
from torch_backend import _arrays
from torch_backend.distributed import checks, comm, layout

__all__ = ["exact_sum", "exact_gram", "gptq_hessian", "minmax_observer", "ema_minmax_observer", "minmax_qparams",
           "slimming_penalty_grad"]  # fmt: skip

_FLOATS = ("float32", "float64")
# products of float32 rows are summed in chunks of at most this many float64 terms
_CHUNK = 1 << 22
_BIG = 2**63 - 1


def exact_sum(x, axis=None, *, group=None):
    """The exact sum of the whole tensor (or along `axis`), rounded once to float64; see
    `reference.core.exact.exact_sum`. `x` is this rank's part (a DTensor, or a plain per-rank tensor: the whole
    tensor is their concatenation along dimension 0 over `group`); the result is the whole sum on every rank."""
    (b,) = checks.values([("x", x, *layout.blocks(["x"], [x], group), _FLOATS)], "finite", group)
    ndim = len(b.shape)
    if axis is None:
        out_shape, local = (), torch_backend.exact_sum_state(b.local).reshape(1, LIMBS)
        index = torch.zeros(1, dtype=torch.int64, device=b.local.device)
    else:
        k = validate.axis("axis", axis, ndim)
        out_shape = tuple(n for d, n in enumerate(b.shape) if d != k)
        local = torch_backend.exact_sum_state(b.local, axis=k).reshape(-1, LIMBS)
        dims = [d for d in range(ndim) if d != k]
        index = b.flat_index(out_shape, dims).narrow(k, 0, min(1, b.local.shape[k])).reshape(-1)
        if b.local.shape[k] == 0:
            local = local[:0]
    states = torch.zeros((math.prod(out_shape), LIMBS), dtype=torch.int64, device=b.local.device)
    if b.owner and local.shape[0]:
        states[index] = local
    return _round(states, b.group).reshape(out_shape)


def exact_gram(x, *, group=None):
    """The exact Gram matrix $X^\\top X$ of all ranks' rows, every entry rounded once to float64; see
    `reference.core.exact.exact_gram` (for a float32 `x` of shape `(rows, d)`).

    `x`: this rank's rows (a plain tensor, `(n_r, d)` with any `n_r >= 0`, or a DTensor whose rows are split,
    never its columns). Each rank sums the exact float64 products of its own rows (the product of two float32
    values is exact) into states; the states of the upper triangle are added over the ranks."""
    b, n = _rows("x", x, group)
    return _gram(b)


def gptq_hessian(x, *, group=None):
    """GPTQ's calibration Hessian $\\operatorname{fl}_{64}(2 G / n)$ of all ranks' rows: data-parallel
    calibration with rows split unevenly across ranks gives the single-process Hessian of the concatenated rows,
    bit for bit; see `reference.posttraining.obs.gptq_hessian`. `x` as for `exact_gram`; `n` is the total row
    count."""
    b, n = _rows("x", x, group)
    if n == 0:
        raise ValueError(f"x has shape {b.shape}: the Hessian needs at least one calibration row")
    g = _gram(b)
    return (g * 2) / _arrays.scalar(float(n), g)


def minmax_observer(x, state=None, *, axis=None, group=None):
    """The running minimum and maximum after one more batch spread over the ranks (per tensor, or per index
    along `axis` of the whole tensor); see `reference.quantization.observers.minmax_observer`.

    Data-parallel observers: with each rank's batch a plain tensor, the statistics are those of the batches
    concatenated, the same on every rank."""
    lo, hi, like = _batch(x, axis, group)
    if state is None:
        return lo, hi
    return (torch_backend.minmax_observer(lo.reshape(like), state, axis=axis)[0],
            torch_backend.minmax_observer(hi.reshape(like), state, axis=axis)[1])  # fmt: skip


def ema_minmax_observer(x, state=None, *, averaging_constant=0.01, axis=None, group=None):
    """The moving average of the batch minimum and maximum over all ranks' data; see
    `reference.quantization.observers.ema_minmax_observer`."""
    validate.real("averaging_constant", averaging_constant, lo=0.0, hi=1.0, lo_open=True)
    lo, hi, like = _batch(x, axis, group)
    if state is None:
        return lo, hi
    kw = {"averaging_constant": averaging_constant, "axis": axis}
    return (torch_backend.ema_minmax_observer(lo.reshape(like), state, **kw)[0],
            torch_backend.ema_minmax_observer(hi.reshape(like), state, **kw)[1])  # fmt: skip


def minmax_qparams(x, *, qmin, qmax, symmetric=False, axis=None, group_size=None, group=None):
    """Min-max scales and zero points of the whole tensor at a granularity (per tensor, channel or group, groups
    possibly cut by the shards); see `reference.quantization.affine.minmax_qparams`. The result is the whole
    `(scale, zero_point)`, the same on every rank."""
    (b,) = checks.values([("x", x, *layout.blocks(["x"], [x], group), ("float32",))], "finite", group)
    shape = shapes.qparam_shape(b.shape, axis, group_size)
    if b.numel == 0:
        raise ValueError(f"x has shape {b.shape}: min-max calibration needs at least one element")
    if axis is None:
        dims = []
    else:
        k = validate.axis("axis", axis, len(b.shape))
        dims = [k] if group_size is None else [d if d != k else (k, group_size) for d in range(len(b.shape))]
    lo, hi = _minmax(b, shape, dims)
    return torch_backend.qparams_from_range(lo, hi, qmin=qmin, qmax=qmax, symmetric=symmetric)


def slimming_penalty_grad(grads, gammas, lam, *, group=None):
    """Network slimming's L1 subgradient added to sharded gradients, elementwise on each rank's part; see
    `reference.pruning.slimming.slimming_penalty_grad`. `grads[i]` and `gammas[i]` must have one layout."""
    grads = checks.tensor_list("grads", grads)
    gammas = checks.tensor_list("gammas", gammas)
    names = [f"grads[{i}]" for i in range(len(grads))] + [f"gammas[{i}]" for i in range(len(gammas))]
    xs = grads + gammas
    bs = layout.blocks(names, xs, group)
    bs = checks.values([(n, x, b, ("float32",)) for n, x, b in zip(names, xs, bs, strict=True)], "finite", group)
    option_checks.paired(grads, gammas)
    gb, hb = bs[: len(grads)], bs[len(grads) :]
    for i, (g, h) in enumerate(zip(gb, hb, strict=True)):
        if g.shape != h.shape:
            raise validate.shape_mismatch(f"grads[{i}]", g.shape, h.shape, f"gammas[{i}]")
        if g.offset != h.offset or g.local.shape != h.local.shape:
            raise ValueError(f"grads[{i}] and gammas[{i}] must be sharded alike (the same layout on every rank)")
    new = torch_backend.slimming_penalty_grad([g.local for g in gb], [h.local for h in hb], lam)
    return [g.like(n) for g, n in zip(gb, new, strict=True)]


# ---- sums ---------------------------------------------------------------------------------------------------


def _round(states: torch.Tensor, group) -> torch.Tensor:
    """`exact_sum_round` of the limb-wise sum over the ranks of canonical states `(m, LIMBS)`.

    Only a window of limbs is summed: below `lo` every state is zero, above `hi` every state is its sign
    extension (limbs `2**32 - 1` and a top limb `-1` for a negative value, all zero otherwise), whose value is
    `-2**(32 (hi + 1))` units for a negative state: one sign limb at `hi + 1` carries it."""
    device = comm.device(group)
    top = states[:, -1:]
    extension = torch.where(top < 0, (1 << LIMB_BITS) - 1, 0)
    used_low = (states != 0).any(0).nonzero()
    used_high = (states[:, :-1] != extension).any(0).nonzero()
    low = int(used_low[0]) if used_low.numel() else LIMBS
    high = int(used_high[-1]) if used_high.numel() else -1
    if bool(((top != 0) & (top != -1)).any()):  # a value of 2**1069 or more: the top limb is more than a sign
        high = LIMBS - 1
    window = torch.tensor([low, -high], dtype=torch.int64, device=device)
    lo, neg_hi = comm.all_reduce(window, "min", group).tolist()
    hi = -neg_hi
    if lo > hi:  # every state of every rank is zero
        return torch.zeros(states.shape[0], dtype=torch.float64, device=states.device)
    if hi >= LIMBS - 2:  # no room for the sign limb: sum everything
        total = comm.all_reduce(states.to(device), "sum", group).to(states.device)
    else:
        part = torch.cat([states[:, lo : hi + 1], top], 1).contiguous()
        part = comm.all_reduce(part.to(device), "sum", group).to(states.device)
        total = torch.zeros_like(states)
        total[:, lo : hi + 2] = part
    return torch_backend.exact_sum_round(total)


def _rows(name, x, group):
    """The block of a matrix whose rows are spread over the ranks (checked as the reference checks `x`), and
    the total row count."""
    (b,) = checks.values([(name, x, *layout.blocks([name], [x], group), ("float32",))], "finite", group)
    if len(b.shape) != 2:
        raise validate.not_matrix(name, b.shape)
    if b.local.shape[1] != b.shape[1]:
        raise ValueError(
            f"{name}: each rank must hold whole rows (the columns of {name} are split across ranks: local shape "
            f"{tuple(b.local.shape)} of {b.shape}); shard it along dimension 0"
        )
    return b, b.shape[0]


def _gram(b) -> torch.Tensor:
    """The exact Gram matrix of the rows of all ranks' blocks, rounded once (float64 `(d, d)`)."""
    d = b.shape[1]
    i, j = torch.triu_indices(d, d, device=b.local.device)
    states = torch.zeros((i.numel(), LIMBS), dtype=torch.int64, device=b.local.device)
    rows = b.local if b.owner else b.local[:0]
    step = max(1, _CHUNK // max(1, i.numel()))
    for start in range(0, rows.shape[0], step):
        x = rows[start : start + step].to(torch.float64)
        terms = x[:, i] * x[:, j]  # exact: a product of two float32 values fits a float64
        states = torch_backend.exact_sum_combine([states, torch_backend.exact_sum_state(terms, axis=0)])
    upper = _round(states, b.group)
    g = torch.zeros((d, d), dtype=torch.float64, device=b.local.device)
    g[i, j] = upper
    g[j, i] = upper
    return g


# ---- minima and maxima --------------------------------------------------------------------------------------


def _batch(x, axis, group):
    """The whole batch's `(min, max)` per tensor or per channel (zeros `+0.0`), and the shape that makes them a
    batch giving the same statistics to the single-process observer."""
    (b,) = checks.values([("x", x, *layout.blocks(["x"], [x], group), ("float32",))], "finite", group)
    if axis is None:
        if b.numel == 0:
            raise ValueError(f"x has shape {b.shape}: the statistics need at least one element")
        shape, dims, like = (), [], (1,)
    else:
        k = validate.axis("axis", axis, len(b.shape))
        if b.numel == 0:
            raise ValueError(f"x has shape {b.shape}: per-channel statistics need at least one element per channel")
        shape, dims = (b.shape[k],), [k]
        like = tuple(b.shape[k] if d == k else 1 for d in range(len(b.shape)))
    lo, hi = _minmax(b, shape, dims)
    return lo, hi, like


def _minmax(b, shape, dims):
    """float32 minimum and maximum over all ranks of every statistic of `shape` (`dims` as for
    `Block.flat_index`): keys reduced by one `all_reduce(MIN)` of `[min keys, -max keys]`."""
    m = math.prod(shape)
    device = b.local.device
    lo = torch.full((m,), _BIG, dtype=torch.int64, device=device)
    neg_hi = torch.full((m,), _BIG, dtype=torch.int64, device=device)
    if b.owner and b.local.numel():
        keys = _float_keys(b.local.reshape(-1))
        index = b.flat_index(shape, dims).reshape(-1)
        lo.scatter_reduce_(0, index, keys, "amin")
        neg_hi.scatter_reduce_(0, index, -keys, "amin")
    both = comm.all_reduce(torch.cat([lo, neg_hi]).to(comm.device(b.group)), "min", b.group).to(device)
    return _from_keys(both[:m]).reshape(shape), _from_keys(-both[m:]).reshape(shape)


def _float_keys(x):
    """int64 order-preserving keys of float32 values: `+m` for a value of magnitude bits `m` >= 0, `-m` below
    zero, so that `-0.0` and `+0.0` are both key 0."""
    bits = x.view(torch.int32).long()
    magnitude = bits & 0x7FFFFFFF
    return torch.where(bits < 0, -magnitude, magnitude)


def _from_keys(keys):
    """float32 values of keys (key 0 is `+0.0`)."""
    magnitude = keys.abs().to(torch.int32).view(torch.float32)
    return torch.where(keys < 0, -magnitude, magnitude)
