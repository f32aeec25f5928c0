"""Weight sharing with a codebook: deterministic 1-D k-means (Deep Compression), exact nearest-centroid
assignment, decoding, and the shared-weight gradient.
"""

from __future__ import annotations

import numpy as np

from reference import _arrays
from reference.common import shapes, validate
from reference.core.exact import exact_sum

__all__ = ["kmeans_codebook", "codebook_assign", "codebook_decode", "codebook_decode_vjp"]

MAX_ENTRIES = 256  # indices are uint8


def kmeans_codebook(w, k, *, iterations=20):
    r"""Deterministic k-means weight sharing: `(indices, codebook)` with `k` shared values for `w`.

    Linear initialization between the extremes, then exactly `iterations` Lloyd steps (assign every weight to
    its nearest centroid with `codebook_assign`, then move every centroid to the mean of its members):

    $$ c^{(0)}_j = \operatorname{fl}_{32}\!\Big(\frac{\ell \cdot (k - 1 - j) + h \cdot j}{k - 1}\Big), \qquad
       c^{(t+1)}_j = \operatorname{fl}_{32}\Big(\operatorname{fl}_{64}\Big(\frac{\operatorname{exact\_sum}\{ w_i : a^{(t)}_i = j \}}{n_j}\Big)\Big) $$

    with $\ell = \min w$, $h = \max w$, and $n_j$ the number of members of cluster $j$ (their exact sum is rounded
    once to float64, divided by $n_j$ in float64, rounded to float32). The
    initialization is evaluated in float64: the two products are exact, then one rounded sum and one rounded
    division; so $c^{(0)}_0 = \ell$ and $c^{(0)}_{k-1} = h$ exactly and every $c^{(0)}_j$ lies in $[\ell, h]$
    (the form $\ell + (h - \ell) j / (k - 1)$ can overshoot: for $w = [-2^{52}, -0.5]$, $h - \ell$ rounds to
    $2^{52}$ and its last centroid would be 0). The returned indices are `codebook_assign(w, codebook)` for the
    returned codebook.

    **Arguments:**

    - `w`: a float32 array, finite, non-empty.
    - `k`: the number of shared values, an int in `[2, 256]`.
    - `iterations`: the number of update steps, an int in `[0, 10000]` (no early stop; once the assignment stops
      changing, further steps change nothing).

    **Returns:**

    `(indices, codebook)`: a uint8 array shaped like `w` with values in $[0, k)$, and a float32 array of shape
    `(k,)`, sorted ascending (ties possible).

    !!! note
        An empty cluster keeps its previous centroid. Ties in the assignment go to the lower index, so of two
        equal centroids the higher never gets members. The codebook stays sorted: every centroid lies within
        the range of its members, which lie between the neighbouring centroids (for fewer than $2^{29}$
        weights, where every float64 partial sum is bounded exactly). All-equal `w` gives `k` copies of that
        value and all indices 0.

    Example: init `[0, 12]`; assignment `[0, 0, 0, 1, 1, 1]`; centroids `[1, 11]`, which no later step changes;
    `(indices, codebook)`:

        >>> kmeans_codebook(np.float32([0, 1, 2, 10, 11, 12]), 2)
        (array([0, 0, 0, 1, 1, 1], dtype=uint8), array([ 1., 11.], dtype=float32))

    ??? cite "Han et al., 2016"
        Deep Compression: Compressing Deep Neural Networks with Pruning, Trained Quantization and Huffman
        Coding. ICLR. arXiv:1510.00149
    """
    w = _arrays.finite_array("w", w)
    k = validate.integer("k", k, lo=2, hi=MAX_ENTRIES)
    iterations = shapes.iterations("iterations", iterations)
    if w.size == 0:
        raise ValueError(f"w has shape {tuple(w.shape)}: k-means needs at least one weight")
    flat = w.reshape(-1)
    # + 0.0 turns a -0.0 extreme into +0.0 (minimum and maximum do not order the two zeros)
    lo, hi = flat.min().astype(np.float64) + 0.0, flat.max().astype(np.float64) + 0.0
    j = np.arange(k, dtype=np.float64)
    codebook = ((lo * (np.float64(k - 1) - j) + hi * j) / np.float64(k - 1)).astype(np.float32)
    for _ in range(iterations):
        indices = _assign(flat, codebook)
        codebook = codebook.copy()
        for j in range(k):
            members = flat[indices == j]
            if members.size:
                codebook[j] = np.float32(exact_sum(members) / np.float64(members.size))
    return _assign(flat, codebook).reshape(w.shape), codebook


def codebook_assign(w, codebook):
    r"""The index of the nearest codebook entry to each weight, decided exactly; ties go to the lower index.

    $$ a_i = \min \operatorname*{arg\,min}_j\ |w_i - c_j| \quad \text{(exact real distances)} $$

    For a sorted codebook this is: count the midpoints strictly below $w$,
    $n = \#\{ j : 2 w > c_j + c_{j+1} \}$, then take the lowest index holding the value $c_n$. $2w$ is exact in
    float64; $c_j + c_{j+1}$ is split exactly into a float64 sum $s$ and error $e$ (Knuth's TwoSum), and
    $2w > s + e \iff 2w > s \lor (2w = s \land e < 0)$.

    **Arguments:**

    - `w`: a float32 array, finite.
    - `codebook`: a 1-D float32 array of 1 to 256 finite entries, sorted ascending (equal entries allowed).

    **Returns:**

    A uint8 array shaped like `w`.

    !!! note "Why not compare $|w - c|$ in float64?"
        The difference of two float32 values is exact in float64 only when their exponents are close.
        `w = 0.5`, `codebook = [-2**-60, 1]`: the true distances are $0.5 + 2^{-60}$ and $0.5$, so the answer is
        index 1; float64 (and float32) distances both round to `0.5`, a false tie that picks index 0.

    `codebook = [0, 1, 1, 2]`: `w = 1.2` gives 1 (the first of the equal entries), `w = 1.5` gives 1 (a tie
    between 1 and 2 goes to the lower index), `w = 1.6` gives 3.

    ??? cite "Han et al., 2016"
        Deep Compression: Compressing Deep Neural Networks with Pruning, Trained Quantization and Huffman
        Coding. ICLR. arXiv:1510.00149
    """
    w = _arrays.finite_array("w", w)
    codebook = _check_codebook(codebook, sorted_=True)
    return _assign(w.reshape(-1), codebook).reshape(w.shape)


def codebook_decode(indices, codebook):
    r"""Shared weights back to values: $\hat w_i = c_{a_i}$.

    **Arguments:**

    - `indices`: a uint8 array, each index below `len(codebook)`.
    - `codebook`: a 1-D float32 array of 1 to 256 finite entries (any order).

    **Returns:**

    A float32 array shaped like `indices`; its gradient with respect to `codebook` is `codebook_decode_vjp`.
    """
    indices, codebook = _check_decode(indices, codebook)
    return np.asarray(codebook[indices.astype(np.int64)])


def codebook_decode_vjp(grad, indices, codebook):
    r"""The gradient of `codebook_decode` with respect to the codebook: per entry, the sum of its weights'
    gradients (Deep Compression's centroid fine-tuning).

    $$ \frac{\partial L}{\partial c_j} = \operatorname{fl}_{32}\big(\operatorname{exact\_sum}\{ g_i : a_i = j \}\big) $$

    The gradients of an entry's weights are summed exactly, rounded once to float64, then to float32.

    **Arguments:**

    - `grad`: a float32 array shaped like `indices`, finite: the cotangent of the decoded weights.
    - `indices`, `codebook`: as for `codebook_decode`.

    **Returns:**

    A float32 array shaped like `codebook`; an entry without weights gets `+0.0`, a sum beyond the float32
    range is $\pm\infty$.

    Example: entry 0 collects $1 + 3$, entry 1 collects 2, entry 2 nothing:

        >>> codebook_decode_vjp(np.float32([1, 2, 3]), np.uint8([0, 1, 0]), np.float32([0.5, 1.5, 2.5]))
        array([4., 2., 0.], dtype=float32)

    ??? cite "Han et al., 2016"
        Deep Compression: Compressing Deep Neural Networks with Pruning, Trained Quantization and Huffman
        Coding. ICLR. arXiv:1510.00149
    """
    indices, codebook = _check_decode(indices, codebook)
    grad = _arrays.shaped("grad", _arrays.finite_array("grad", grad), indices.shape, "indices")
    g, a = grad.reshape(-1), indices.reshape(-1)
    return np.array([exact_sum(g[a == j]) for j in range(codebook.shape[0])], dtype=np.float64).astype(np.float32)


def _check_codebook(codebook, sorted_):
    c = _arrays.finite_array("codebook", codebook)
    if c.ndim != 1 or not 1 <= c.shape[0] <= MAX_ENTRIES:
        raise ValueError(
            f"codebook must be 1-D with 1 to {MAX_ENTRIES} entries (uint8 indices), got shape {tuple(c.shape)}"
        )
    if sorted_:
        bad = c[1:] < c[:-1]
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"codebook must be sorted ascending, got codebook[{i}] = {float(c[i])!r} > "
                f"codebook[{i + 1}] = {float(c[i + 1])!r}"
            )
    return c


def _check_decode(indices, codebook):
    indices = _arrays.array("indices", indices, ("uint8",))
    codebook = _check_codebook(codebook, sorted_=False)
    _arrays.within("indices", indices, 0, codebook.shape[0] - 1)
    return indices, codebook


def _assign(flat, codebook):
    """Nearest entry of a sorted codebook for each value of the 1-D `flat`, exactly, ties to the lower index."""
    x2 = flat.astype(np.float64) * 2
    s, e = _two_sum(codebook[:-1].astype(np.float64), codebook[1:].astype(np.float64))
    count = np.zeros(flat.shape, dtype=np.int64)
    for j in range(codebook.shape[0] - 1):
        count += (x2 > s[j]) | ((x2 == s[j]) & (e[j] < 0))
    first = np.searchsorted(codebook, codebook, side="left")  # the lowest index holding each value
    return first[count].astype(np.uint8)


def _two_sum(a, b):
    """`(s, e)` with `s = fl(a + b)` and `a + b = s + e` exactly (Knuth), elementwise in float64."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)
