"""Selection with a pinned tie rule: the one place where pqref decides which of equal scores wins."""

from __future__ import annotations

import numpy as np

from reference import _arrays
from reference.common import validate

__all__ = ["keep_largest"]

SCORE_DTYPES = ("float32", "float64", "int64")


def keep_largest(scores, count):
    r"""A mask of the `count` largest scores; among equal scores the lower flat index wins.

    Order the flat indices by score, descending, with a *stable* sort (equal scores keep index order), and keep
    the first `count`:

    $$ \text{keep}_i \iff \#\{ j : s_j > s_i \} + \#\{ j < i : s_j = s_i \} < \text{count} $$

    **Arguments:**

    - `scores`: a float32, float64 or int64 array, any shape, without NaN (+-Inf are ordinary scores).
    - `count`: an int in `[0, scores.size]`.

    **Returns:**

    A bool array shaped like `scores` with exactly `count` True entries.

    !!! note
        `torch.topk` and `torch.kthvalue` leave the choice among ties unspecified, and CPU and CUDA do choose
        differently; this rule is the same everywhere. `-0.0` and `+0.0` are equal scores.

    Example: the two largest of `[1, 3, 3, 2]` are at indices 1 and 2; of three equal scores, index 0 is kept:

        >>> keep_largest(np.float32([1, 3, 3, 2]), 2)
        array([False,  True,  True, False])
        >>> keep_largest(np.float32([3, 3, 3]), 1)
        array([ True, False, False])
    """
    scores = _arrays.not_nan("scores", _arrays.array("scores", scores, SCORE_DTYPES))
    count = validate.integer("count", count, lo=0, hi=scores.size)
    flat = scores.reshape(-1)
    # descending = ascending on a reversed key: -x for floats, ~x = -x - 1 for int64 (which cannot overflow)
    order = np.argsort(~flat if flat.dtype.kind == "i" else -flat, kind="stable")
    keep = np.zeros(scores.size, dtype=bool)
    keep[order[:count]] = True
    return keep.reshape(scores.shape)
