"""A faster canonical `tree_sum`: the same float64 pairwise tree, in fewer passes, bit-identical to the reference.

`torch_backend.core.reduce.tree_sum` widens the input to float64, copies it into a zero-padded power-of-two
buffer, then allocates a new array at each of the log2(n) halvings. Two faster ways to run the *same* tree:

- Triton (CUDA, or the interpreter on CPU): one kernel launch per four levels. Level `l` of the tree adds
  element `i` to element `i + h` (`h = 2**(L - l)`), so the first four levels combine, for each `q < n / 16`,
  the sixteen elements `p * n/16 + q` (`p < 16`) in a fixed order: `p` with `p + 8`, then `+4`, `+2`, `+1`.
  The kernel reads the float32 input once (widening in registers) and writes a sixteenth of it in float64;
  the padding is never materialised (masked loads of `+0.0`). The last `L mod 4` levels run eagerly on at most
  eight values per row.
- eager: the first halving is done on the unpadded input (`out[:n-h] = x[:n-h] + x[h:]`, `out[n-h:] = x[n-h:] + 0.0`
  so that `-0.0 + pad` is `+0.0` as in the reference), then every later halving is in place in one buffer.

Both use only IEEE float64 additions in the reference's order, so the result is the reference's bit for bit.
Finiteness is checked on the result: a NaN or Inf in the input always makes the sum non-finite, and only then is
the input scanned (an Inf result from finite inputs that overflow is legitimate and kept).
"""

from __future__ import annotations

import torch

from reference.common import validate
from torch_backend import _arrays
from torch_backend.core import reduce as _reduce
from torch_backend.kernels import _dispatch

__all__ = ["tree_sum"]

_FLOATS = ("float32", "float64")


def tree_sum(x, axis=None):
    """Sum in float64 along the canonical pairwise tree; see `reference.core.reduce.tree_sum`."""
    x = _arrays.array("x", x, _FLOATS)
    try:
        ax = None if axis is None else validate.axis("axis", axis, x.ndim)
    except (TypeError, ValueError):
        _arrays.finite("x", x)  # the reference checks x first
        raise
    a = x.detach()
    n = a.numel() if ax is None else a.shape[ax]
    if a.numel() == 0 or n <= 1:  # nothing to add: the canonical function handles the edge cases
        return _reduce.tree_sum(x, axis)
    rows = a.reshape(1, n) if ax is None else torch.movedim(a, ax, -1).reshape(-1, n)
    out_shape = () if ax is None else tuple(s for i, s in enumerate(a.shape) if i != ax)
    if _dispatch.use_triton(a):
        result = _tree_triton(rows.contiguous())
    else:
        result = _tree_eager(rows)
    # an overflow from finite inputs is a legitimate Inf: x is scanned only when the result is not finite
    _arrays.check_flag(~torch.isfinite(result).all(), lambda: _arrays.finite("x", x), strict=False)
    return result.reshape(out_shape)


def _tree_eager(rows):
    """The canonical tree over the last axis of a 2-d tensor with n >= 2 columns, in one float64 buffer."""
    n = rows.shape[1]
    h = 1 << ((n - 1).bit_length() - 1)  # half the padded length: h < n <= 2h
    buf = torch.empty((rows.shape[0], h), dtype=torch.float64, device=rows.device)
    buf.copy_(rows[:, :h])
    buf[:, : n - h] += rows[:, h:]
    if n - h < h:
        buf[:, n - h :] += 0.0  # the +0.0 padding: turns -0.0 into +0.0, like the reference
    while h > 1:
        h //= 2
        buf[:, :h] += buf[:, h : 2 * h]
    return buf[:, 0]


def tree_block(q: int) -> int:
    """`BQ` for a tree16 launch over rows of length `q` (`torch_backend.kernels.audit` compiles both)."""
    return 512 if q >= 512 else 32


def _tree_triton(rows):
    """The canonical tree with the 16-row Triton kernel for the top levels, four at a time."""
    k = _dispatch.kernels()
    batch, n = rows.shape
    levels = (n - 1).bit_length()  # padded length 2**levels
    src, stride, valid = rows, n, n
    while levels >= 4:
        levels -= 4
        q = 1 << levels
        bq = tree_block(q)
        nqb = -(-q // bq)
        dst = torch.empty((batch, q), dtype=torch.float64, device=rows.device)
        k.tree16_kernel[(batch * nqb,)](src, dst, valid, q, stride, nqb, BQ=bq, num_warps=4, **k.EXACT)
        src, stride, valid = dst, q, q
    if levels == 0:
        return src[:, 0]
    # the last levels (at most 3) on at most 8 values per row; `valid` < 2**levels only if nothing ran above
    a = src[:, :valid].to(torch.float64)
    a = torch.nn.functional.pad(a, (0, (1 << levels) - valid))
    while a.shape[1] > 1:
        h = a.shape[1] // 2
        a = a[:, :h] + a[:, h:]
    return a[:, 0]
