"""Exact sums and products in torch, bit-identical to `reference.core.exact` on every device and shard layout.

Exact routes that no order, thread count, kernel or device can change, chosen by size (`_exact.sums`,
`_exact.products`; every route gives the same bits, and the tests force each one everywhere):

- **Small and short sums**: `math.fsum` for small CPU tensors (Python integers for states), and, for rows up to
  `2**16` terms, the reference's proof (`_exact.proven_sums`): high parts cut on a grid, so that their sum is
  exact in any order, and a rigorous bound on the low parts' float64 sum, certified to round to one float64 (a
  second cut for exact sums on ties); the rows it leaves open go to the bins.
- **Sums** (`exact_sum` and its state): each float becomes one integer in a bin of 8 exponents, accumulated with
  `index_add_` on int64 bins, then the few bins are carried and rounded once. A float32 `x` in bin `b = E >> 3`
  (`E` its biased exponent) contributes `x * 2**(150 - 8 b)`, an integer below `2**31`, computed exactly in
  float32 as `(x * m) * m` with `m = 2**(75 - 4 b)` made from the bits of `x` (a float64 contributes
  `x * 2**(1075 - 8 b) < 2**60`, split into two 32-bit halves). A bin therefore takes `2**31` terms before it
  could overflow; the chunked loop flushes bins into small digits long before (every `2**28` elements of a row).
- **Small products** (`products_by_sums`, up to `2**14` products): every product written out as exact float64
  terms (one for float32 factors, Dekker's pair for float64 ones) and each output summed exactly as above; tiny
  CPU inputs outside Dekker's range take Python integers (`integer_products`).
- **Products** (`exact_dot`, `exact_matmul`, `exact_gram`, and the linear algebra): the integer-slice scheme of
  Ozaki et al. Each row of `a` (each column of `b`) is scaled by a power of two and cut into signed `w`-bit
  integer slices; slice products are float64 matmuls of integers whose every partial sum is an integer below
  `2**53` (`k * (2**w - 1)**2 < 2**53`), hence **exact whatever the summation order, blocking or use of fused
  multiply-add inside the BLAS** (an exact result has no rounding to change). They are converted to int64 and
  added per output by slice group, again exactly.

The sums end in `round_limbs`: the integers of each output are carried into canonical limbs (a loop over the few
limbs that hold bits, vectorized over the outputs), and the top 55+ bits plus a sticky bit go through one IEEE float64
addition, which rounds them correctly; results below `2**-1022` are rounded on the subnormal grid in integers. The
products (at most three slices per operand: float32 rows spanning up to 42 bits of exponent at 512 terms) take a
shorter road: one carry pass over their three to five slice groups leaves two exact float64 values and a remainder;
rounding the remainder to odd and adding once gives the correctly rounded result (Boldo and Melquiond's round to
odd); wider rows and subnormal results take `round_limbs`. No `torch.sum` of floats, no float `matmul` of
non-integers, no `addmm`, no fused multiply-add. The machinery lives in `torch_backend.core._exact`, which the
linear algebra and the backward passes of other modules share (`sum_unchecked`: `exact_sum` without checks).

Choices made by measurement (CPU, torch 2.13, on this project's shared 2-core machine; the ratios of the goals are
in benchmarks/README.md, suite `exact`):

- The sums run in chunks of `2**14` elements: per-element work stays in cache, and each operation stays below
  torch's parallel grain (32768), so it does not wake the thread pool. On a busy machine with 2 threads, chunks
  of `2**16` took 1.27 s for 16M float32 against 0.26 s with `2**14` or `2**15` (`torch.sum(x, dtype=float64)`:
  0.16 s); a separate `isfinite` pass cost more than `torch.sum`, so finiteness is checked inside the loop.
  `torch.bincount` with weights is a float64 loop (150 ms here for 16M) and was not used.
- Masks are integer factors, not `torch.where`: on the CPU `where` costs 5 to 7 times an addition (int64 and
  float64). Limbs are carried through `unbind` views (`d[k] &= m` costs a select, the operation, a select and a
  copy), row by row when there are many columns, by whole-array operations when there are few (`_magnitude`: no
  host read, about 40 operations whatever the number of rows). The rounding handles 2**14 columns at a time.
"""

from __future__ import annotations

import math
import struct

import torch

from reference.common import validate
from reference.core.exact import LIMB_BITS, LIMBS, TOP_LIMB, UNIT
from torch_backend import _arrays
from torch_backend.codecs._bytes import host_tensor, on_host
from torch_backend.core._exact import (
    SMALL_STATES,
    as_rows,
    by_blocks,
    digits_of_state,
    limbs_of,
    products,
    round_limbs,
    rounded,
    small_states,
    small_values,
    state_limbs,
    sums,
)

__all__ = ["exact_sum", "exact_sum_state", "exact_sum_combine", "exact_sum_round", "exact_dot", "exact_matmul",
           "exact_gram"]  # fmt: skip

_FLOATS = ("float32", "float64")


def exact_sum(x, axis=None):
    """The exact sum rounded once to float64; see `reference.core.exact.exact_sum` for the semantics."""
    rows, shape, x = _sum_rows(x, axis)
    return sums(rows, lambda r: by_blocks(r, x, lambda digits, base: round_limbs(digits, base, 16))).reshape(shape)


def exact_sum_state(x, axis=None):
    """The exact sum as 68 canonical 32-bit limbs; see `reference.core.exact.exact_sum_state`."""
    rows, shape, x = _sum_rows(x, axis)
    limbs = small_states(rows)
    if limbs is None:
        limbs = by_blocks(rows, x, lambda digits, base: state_limbs(digits, base)[0])
    return limbs.reshape(shape + (LIMBS,))


def exact_sum_combine(states):
    """The canonical state of the exact total of states; see `reference.core.exact.exact_sum_combine`."""
    arrays = _state_list(states)
    host = _host_combine(arrays)
    if host is not None:
        return host
    _canonical(arrays)
    total = torch.stack([s.detach() for s in arrays]).sum(0)  # int64: exact for fewer than 2**31 states
    flat = total.reshape(-1, LIMBS)
    values = small_values(flat)
    if values is not None:  # Python integers
        for i, v in enumerate(values):
            if not -TOP_LIMB <= v >> (LIMB_BITS * (LIMBS - 1)) < TOP_LIMB:
                raise validate.state_overflow(i)
        return limbs_of(values).reshape(total.shape)
    limbs, ok = state_limbs(*digits_of_state(flat))
    bad = ~ok
    if bool(bad.any()):
        raise validate.state_overflow(int(bad.nonzero()[0]))
    return limbs.reshape(total.shape)


def _host_combine(arrays):
    """`exact_sum_combine` on Python integers for a few plain CPU states (`SMALL_STATES` in all), else None.

    Each state is read once (`tolist`) and checked in the reference's order (state by state, the first bad limb
    in flat order); a canonical state's value is its 67 low limbs read as one little-endian unsigned integer of
    32-bit words (`struct`, then `int.from_bytes`) plus the signed top limb times `2**(32 * 67)`. The totals are
    added as Python integers, checked against the state's range, and written back as canonical limbs (the low
    `32 * 67` bits as 32-bit words, the rest, signed, as the top limb)."""
    if len(arrays) * arrays[0].numel() > SMALL_STATES * LIMBS or not on_host(*arrays):
        return None
    totals = None
    for i, s in enumerate(arrays):
        flat = s.detach().reshape(-1).tolist()
        values = []
        for r in range(0, len(flat), LIMBS):
            low, top = flat[r : r + LIMBS - 1], flat[r + LIMBS - 1]
            if min(low, default=0) < 0 or max(low, default=0) >= _LIMB or not -TOP_LIMB <= top < TOP_LIMB:
                _canonical([s], i)  # raises the reference's error naming the first bad limb
            values.append(int.from_bytes(struct.pack(_LOW_WORDS, *low), "little") + (top << _TOP_SHIFT))
        totals = values if totals is None else [a + b for a, b in zip(totals, values, strict=True)]
    limbs = []
    for i, v in enumerate(totals):
        top = v >> _TOP_SHIFT
        if not -TOP_LIMB <= top < TOP_LIMB:
            raise validate.state_overflow(i)
        limbs.extend(struct.unpack(_LOW_WORDS, (v & _LOW_MASK).to_bytes(4 * (LIMBS - 1), "little")))
        limbs.append(top)
    return host_tensor("q", limbs, torch.int64, tuple(arrays[0].shape))


_LIMB = 1 << LIMB_BITS
_TOP_SHIFT = LIMB_BITS * (LIMBS - 1)
_LOW_MASK = (1 << _TOP_SHIFT) - 1
_LOW_WORDS = f"<{LIMBS - 1}I"  # the low limbs as little-endian unsigned 32-bit words


def exact_sum_round(state):
    """The float64 nearest to the value of a state; see `reference.core.exact.exact_sum_round`."""
    state = _state_array("state", state)
    flat = state.detach().reshape(-1, LIMBS)
    values = small_values(flat)
    if values is not None:  # Python integers
        return torch.tensor([rounded(v, UNIT) for v in values], dtype=torch.float64).reshape(state.shape[:-1])
    return round_limbs(*digits_of_state(flat), 16).reshape(state.shape[:-1])


def exact_dot(a, b, axis=-1):
    """The exact dot product along `axis`, rounded once; see `reference.core.exact.exact_dot`."""
    a, b = _pair(a, b)
    k = validate.axis("axis", axis, a.ndim)
    shape = tuple(s for i, s in enumerate(a.shape) if i != k)
    m, n = math.prod(shape), a.shape[k]
    ra = torch.movedim(a.detach(), k, -1).reshape(m, 1, n)
    rb = torch.movedim(b.detach(), k, -1).reshape(m, n, 1)
    return products(ra, rb).reshape(shape)


def exact_matmul(a, b):
    """Every entry an exact dot product rounded once; see `reference.core.exact.exact_matmul`."""
    a, b = _matrices(a, b)
    batch = a.shape[:-2]
    count = math.prod(batch)
    out = products(a.detach().reshape(count, *a.shape[-2:]), b.detach().reshape(count, *b.shape[-2:]))
    return out.reshape(batch + out.shape[-2:])


def exact_gram(x):
    """`x^T x` with every entry an exact dot product rounded once; see `reference.core.exact.exact_gram`."""
    x = _arrays.finite_array("x", x, _FLOATS)
    if x.ndim < 2:
        raise validate.not_matrix("x", x.shape)
    batch = x.shape[:-2]
    x3 = x.detach().reshape(math.prod(batch), *x.shape[-2:])
    out = products(x3.transpose(1, 2), x3, gram=True)
    return out.reshape(batch + out.shape[-2:])


def _sum_rows(x, axis):
    """Checks, then `x` as rows `(M, n)` (one per output), the result's shape, and `x` checked.

    Finiteness is checked without a pass of its own (a separate `isfinite` pass over 16M float32 cost more than
    `torch.sum`): a scaled value `x * 2**(150 - 8 b)` is below `2**31` (`2**60` for float64) exactly when `x` is
    finite, so the accumulation carries the largest one along its chunks and `by_blocks` reads it once per block
    of rows; when it is not below, the reference's check runs and raises its error.
    """
    x = _arrays.array("x", x, _FLOATS)
    try:
        k = None if axis is None else validate.axis("axis", axis, x.ndim)
    except (TypeError, ValueError):
        _arrays.finite("x", x)  # the reference checks finiteness first
        raise
    rows, shape = as_rows(x.detach(), k)
    return rows, shape, x


# ---- the state --------------------------------------------------------------------------------------------------


def _state_array(name, s):
    s = _arrays.array(name, s, ("int64",))
    if s.ndim < 1 or s.shape[-1] != LIMBS:
        raise validate.not_state(name, s.shape, LIMBS)
    return s


def _state_list(states):
    _arrays.nonempty_list("states", states, "state")
    arrays = [_state_array(f"states[{i}]", s) for i, s in enumerate(states)]
    for i, s in enumerate(arrays[1:], start=1):
        _arrays.same_device(f"states[{i}]", s, "states[0]", arrays[0])
        if s.shape != arrays[0].shape:
            raise validate.shape_mismatch(f"states[{i}]", s.shape, arrays[0].shape, "combining with states[0]")
    return arrays


def _canonical(arrays, first=0):
    """Raise the reference's error for the first state (numbered from `first`) with a limb out of its range."""
    for i, s in enumerate(arrays, start=first):
        flat = s.detach().reshape(-1)
        top = (torch.arange(flat.numel(), device=flat.device) % LIMBS) == LIMBS - 1
        bad = torch.where(top, (flat < -TOP_LIMB) | (flat >= TOP_LIMB), (flat < 0) | (flat >= 2**LIMB_BITS))
        if bool(bad.any()):
            j = int(bad.nonzero()[0])
            raise validate.not_canonical_state(f"states[{i}]", j, LIMBS, int(flat[j]))


def _pair(a, b):
    a = _arrays.finite_array("a", a, _FLOATS)
    b = _arrays.finite_array("b", b, (_arrays.dtype_name(a.dtype),))
    _arrays.same_device("b", b, "a", a)
    if b.shape != a.shape:
        raise validate.shape_mismatch("b", b.shape, a.shape, "a dot product with a")
    return a, b


def _matrices(a, b):
    a = _arrays.finite_array("a", a, _FLOATS)
    b = _arrays.finite_array("b", b, (_arrays.dtype_name(a.dtype),))
    for name, t in (("a", a), ("b", b)):
        if t.ndim < 2:
            raise validate.not_matrix(name, t.shape)
    expected = tuple(a.shape[:-2]) + (a.shape[-1], b.shape[-1])
    if tuple(b.shape) != expected:
        raise validate.shape_mismatch("b", b.shape, expected, f"a of shape {tuple(a.shape)}")
    _arrays.same_device("b", b, "a", a)
    return a, b
