"""A backend whose functions raise what a half-finished port raises, to show that `pqref verify` reports them.

It is the NumPy reference except for three functions, each raising an exception that is neither `TypeError` nor
`ValueError` (the two types pqref's functions raise for bad input), on every call:

- `quantize` raises `NotImplementedError` (a stub);
- `tree_sum` raises `RuntimeError` (a kernel that failed);
- `apply_mask` raises `KeyError` (a lookup table without the dtype).

Each is a mismatch on every case, reported in its row of the table; the other algorithms are still checked:
`pqref verify --backend spec.examples.raising_backend --algorithm quantize --algorithm magnitude_mask`.
"""

from reference import *  # noqa: F403


def quantize(x, scale, zero_point, *, qmin, qmax, axis=None, group_size=None, rounding="half_even", key=None):
    raise NotImplementedError("quantize is not ported yet")


def tree_sum(x, axis=None):
    raise RuntimeError("kernel launch failed")


def apply_mask(w, mask):
    raise KeyError(str(w.dtype))
