"""A deliberately wrong backend, to show what `pqref verify --backend` reports.

It is the NumPy reference with three classic mistakes, each a real library's habit:

- `round_half_away` as `floor(x + 0.5)` with the sign put back: wrong for 0.49999997 and above 2**23;
- `quantize` multiplying by the reciprocal of the scale instead of dividing (as torch.ao does);
- `apply_mask` as `w * mask`: -0.0 for pruned negatives, NaN for pruned Inf.

Check it with `pqref verify --backend spec.examples.wrong_backend`: every other entry conforms, these three fail and
the table names the first mismatching input of each.
"""

import numpy as np

from reference import *  # noqa: F403
from reference import quantization as _q


def round_half_away(x):
    return np.copysign(np.floor(np.abs(x) + np.float32(0.5)), x)


def quantize(x, scale, zero_point, *, qmin, qmax, axis=None, group_size=None, rounding="half_even", key=None):
    inverse = np.float32(1) / np.asarray(scale, dtype=np.float32)
    return _q.quantize(x * inverse, np.ones_like(scale), zero_point, qmin=qmin, qmax=qmax, axis=axis,
                       group_size=group_size, rounding=rounding, key=key)  # fmt: skip


def apply_mask(w, mask):
    return w * mask.astype(w.dtype)
