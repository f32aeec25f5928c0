r"""Sparsity schedules and iterative pruning: how much to prune at each step, and one magnitude step on a mask.

The schedules are pure functions of Python ints and floats that return a Python float. Both backends evaluate the
same float64 (IEEE double) operations in the same order, on the host, so they agree bit for bit; the cosine and
exponential schedules call the same C library `cos` and `pow` through Python's `math.cos` and `**`.

Every schedule runs from $s_i$ at step $t_0$ to $s_f$ at step $t_0 + n\,\Delta t$, changing only at the pruning
steps $t_0 + k\,\Delta t$: at step $t$ it is evaluated at $k = \lfloor (t - t_0) / \Delta t \rfloor$ (the last
pruning step reached, Python's floor division), so it is constant between pruning steps. For $k \le 0$
(before $t_0$ and up to the first update) it is exactly $s_i$; for $k \ge n$ exactly $s_f$; in between the
formula's value is clamped to the closed interval between $s_i$ and $s_f$, which keeps it there despite
rounding.
"""

from __future__ import annotations

import math

import numpy as np

from reference import _arrays
from reference.common import shapes, validate
from reference.core.select import keep_largest
from reference.pruning.magnitude import pruned_count

__all__ = [
    "agp_sparsity",
    "linear_sparsity",
    "cosine_sparsity",
    "exponential_sparsity",
    "iterative_sparsities",
    "prune_remaining_mask",
    "prune_total_mask",
]

MODES = ("remaining", "total")


def agp_sparsity(t, *, s_i, s_f, t0, n, dt=1):
    r"""Automated gradual pruning (Zhu & Gupta): a cubic from $s_i$ to $s_f$ over $n$ pruning steps.

    $$ s_t = s_f + (s_i - s_f)\left(1 - \frac{k}{n}\right)^3, \qquad
       k = \left\lfloor \frac{t - t_0}{\Delta t} \right\rfloor $$

    ($\frac{t - t_0}{n \Delta t}$ of the paper, at the last pruning step.) Evaluated in float64 as
    `r = 1.0 - k / n`, then `s_f + (s_i - s_f) * (r * r * r)`, where `k / n` is Python's correctly rounded
    integer division. Pruning is fast at first and slows as the network has fewer weights left.

    **Arguments:**

    - `t`: the current step, an int >= 0.
    - `s_i`, `s_f`: the initial and final sparsity, in `[0, 1]` (`s_i > s_f` is allowed: then it decreases).
    - `t0`: the first pruning step, an int >= 0.
    - `n`: the number of pruning steps, an int >= 1.
    - `dt`: the pruning frequency $\Delta t$ in steps, an int >= 1.

    **Returns:**

    A Python float between `s_i` and `s_f`: `s_i` for $t < t_0 + \Delta t$, `s_f` for
    $t \ge t_0 + n \Delta t$. Monotone in `t` (every operation is monotone and the clamp keeps the endpoints).

    !!! note
        Example: `s_i=0`, `s_f=1`, `t0=0`, `n=4`, `dt=10` gives 0 for steps 0..9, $1 - (3/4)^3$ for 10..19,
        $1 - (2/4)^3$ for 20..29, $1 - (1/4)^3$ for 30..39 and 1 from step 40 on:

            >>> [agp_sparsity(t, s_i=0, s_f=1, t0=0, n=4, dt=10) for t in (9, 10, 20, 30, 40)]
            [0.0, 0.578125, 0.875, 0.984375, 1.0]

    ??? cite "Zhu & Gupta, 2017"
        To prune, or not to prune: exploring the efficacy of pruning for model compression. arXiv:1710.01878
    """
    k, s_i, s_f, n = _schedule(t, s_i, s_f, t0, n, dt)
    if k <= 0:
        return s_i
    if k >= n:
        return s_f
    r = 1.0 - k / n
    return _between(s_f + (s_i - s_f) * (r * r * r), s_i, s_f)


def linear_sparsity(t, *, s_i, s_f, t0, n, dt=1):
    r"""A linear ramp from $s_i$ to $s_f$ over $n$ pruning steps.

    $$ s_t = s_f + (s_i - s_f)\left(1 - \frac{k}{n}\right), \qquad
       k = \left\lfloor \frac{t - t_0}{\Delta t} \right\rfloor $$

    Evaluated in float64 as `s_f + (s_i - s_f) * (1.0 - k / n)`.

    **Arguments:** as for `agp_sparsity`.

    **Returns:**

    A Python float between `s_i` and `s_f`: `s_i` for $t < t_0 + \Delta t$, `s_f` for
    $t \ge t_0 + n \Delta t$; monotone in `t`.

    !!! note
        Example: `s_i=0`, `s_f=0.5`, `t0=0`, `n=4`, `dt=1`, steps 0 to 4:

            >>> [linear_sparsity(t, s_i=0, s_f=0.5, t0=0, n=4) for t in range(5)]
            [0.0, 0.125, 0.25, 0.375, 0.5]
    """
    k, s_i, s_f, n = _schedule(t, s_i, s_f, t0, n, dt)
    if k <= 0:
        return s_i
    if k >= n:
        return s_f
    return _between(s_f + (s_i - s_f) * (1.0 - k / n), s_i, s_f)


def cosine_sparsity(t, *, s_i, s_f, t0, n, dt=1):
    r"""A half cosine from $s_i$ to $s_f$ over $n$ pruning steps: slow at both ends, fastest in the middle.

    $$ s_t = s_f + (s_i - s_f)\,\frac{1 + \cos(\pi k / n)}{2}, \qquad
       k = \left\lfloor \frac{t - t_0}{\Delta t} \right\rfloor $$

    Evaluated in float64 as `s_f + (s_i - s_f) * (0.5 * (1.0 + math.cos(math.pi * (k / n))))`.

    **Arguments:** as for `agp_sparsity`.

    **Returns:**

    A Python float between `s_i` and `s_f`: `s_i` for $t < t_0 + \Delta t$, `s_f` for
    $t \ge t_0 + n \Delta t$.

    !!! note
        Both backends call the same `math.cos` (the C library's) on the same float64 argument, so they agree
        bit for bit; the C library's `cos` is not guaranteed correctly rounded, so another machine may differ
        in the last bit. Monotone in `t` when `cos` is accurate to less than one ulp (glibc's is): consecutive
        exact values are at least $(\pi / n)^2 / 2$ apart, more than two ulps for $n < 10^8$. Example:
        `s_i=0`, `s_f=1`, `n=2` (at $k = 1$, $\cos(\pi/2)$ is $6.1 \cdot 10^{-17}$, and $1 + 6.1 \cdot
        10^{-17}$ rounds to 1):

            >>> [cosine_sparsity(t, s_i=0, s_f=1, t0=0, n=2) for t in range(3)]
            [0.0, 0.5, 1.0]

    ??? cite "Loshchilov & Hutter, 2017"
        SGDR: Stochastic Gradient Descent with Warm Restarts (the cosine curve). ICLR. arXiv:1608.03983
    """
    k, s_i, s_f, n = _schedule(t, s_i, s_f, t0, n, dt)
    if k <= 0:
        return s_i
    if k >= n:
        return s_f
    return _between(s_f + (s_i - s_f) * (0.5 * (1.0 + math.cos(math.pi * (k / n)))), s_i, s_f)


def exponential_sparsity(t, *, s_i, s_f, t0, n, dt=1):
    r"""Geometric decay of the density $1 - s$: every pruning step removes the same fraction of what remains.

    $$ 1 - s_t = (1 - s_i)\left(\frac{1 - s_f}{1 - s_i}\right)^{k / n}, \qquad
       k = \left\lfloor \frac{t - t_0}{\Delta t} \right\rfloor $$

    Evaluated in float64 as `1.0 - (1.0 - s_i) * ((1.0 - s_f) / (1.0 - s_i)) ** (k / n)`. From $s_i = 0$ each
    step keeps the fraction $(1 - s_f)^{1/n}$ of the remaining weights: iterative pruning at a constant rate
    (`iterative_sparsities(..., mode="remaining")`), as in the lottery-ticket experiments.

    **Arguments:** as for `agp_sparsity`, with `s_i` and `s_f` in `[0, 1)`.

    **Returns:**

    A Python float between `s_i` and `s_f`: `s_i` for $t < t_0 + \Delta t$, `s_f` for
    $t \ge t_0 + n \Delta t$.

    !!! note
        A sparsity of 1 (density 0) has no place on a geometric path and is rejected with `ValueError`. `**` is
        the C library's `pow`, called identically by both backends (not guaranteed correctly rounded; monotone
        in `t` when accurate to less than one ulp and the steps' exact values are more than two ulps apart).
        Example: `s_i=0`, `s_f=0.75`, `n=2`; the middle step is $1 - 0.25^{1/2}$:

            >>> [exponential_sparsity(t, s_i=0, s_f=0.75, t0=0, n=2) for t in range(3)]
            [0.0, 0.5, 0.75]

    ??? cite "Frankle & Carbin, 2019"
        The Lottery Ticket Hypothesis: Finding Sparse, Trainable Neural Networks. ICLR. arXiv:1803.03635
    """
    k, s_i, s_f, n = _schedule(t, s_i, s_f, t0, n, dt)
    if s_i == 1.0 or s_f == 1.0:
        raise ValueError(
            f"exponential_sparsity needs s_i < 1 and s_f < 1 (a density 1 - s of 0 has no geometric path), "
            f"got s_i={s_i!r}, s_f={s_f!r}"
        )
    if k <= 0:
        return s_i
    if k >= n:
        return s_f
    density = (1.0 - s_i) * ((1.0 - s_f) / (1.0 - s_i)) ** (k / n)
    return _between(1.0 - density, s_i, s_f)


def iterative_sparsities(fraction, steps, mode="remaining"):
    r"""The cumulative sparsity after each of `steps` pruning rounds of `fraction` each.

    $$ \text{remaining: } s_k = 1 - d_k,\ d_k = d_{k-1} \otimes_{64} (1 - f),\ d_0 = 1 \qquad
       \text{total: } s_k = k \otimes_{64} f $$

    `"remaining"`: each round prunes the fraction $f$ of the weights still unpruned (torch.nn.utils.prune's
    semantics when pruning is applied repeatedly), so $s_k = 1 - (1 - f)^k$, the density computed by repeated
    float64 multiplication. `"total"`: each round prunes the fraction $f$ of all weights, so $s_k = k f$.

    **Arguments:**

    - `fraction`: the fraction $f$ pruned per round, in `[0, 1]`.
    - `steps`: the number of rounds, an int in `[0, 10000]`.
    - `mode`: `"remaining"` or `"total"`.

    **Returns:**

    A list of `steps` Python floats $s_1, \dots, s_{steps}$, non-decreasing, in `[0, 1]`.

    !!! note
        `"total"` rejects $\text{steps} \cdot f > 1$ (more than every weight) with `ValueError`. These are
        fractions; the masks round a count at every round (`prune_remaining_mask`, `prune_total_mask`), so
        after several rounds they can differ from `pruned_count(s_k, n)`: 10 weights, $f = 0.5$, two rounds of
        `prune_remaining_mask` prune 5 then $\operatorname{rne}(2.5) = 2$, sparsity 0.7, where
        $s_2 = 0.75$ and $\operatorname{rne}(7.5) = 8$. Example: $[0.2, 0.36, 0.488]$ up to float64 rounding:

            >>> iterative_sparsities(0.2, 3)
            [0.19999999999999996, 0.3599999999999999, 0.4879999999999999]

    ??? cite "Han et al., 2015; Frankle & Carbin, 2019"
        Learning both Weights and Connections for Efficient Neural Networks. NeurIPS. arXiv:1506.02626
    """
    fraction = validate.fraction("fraction", fraction)
    steps = shapes.iterations("steps", steps)
    validate.choice("mode", mode, MODES)
    if mode == "total":
        if steps * fraction > 1.0:
            raise ValueError(
                f"mode='total' with steps={steps} and fraction={fraction!r} prunes {steps * fraction!r} of the "
                f"weights, more than all of them"
            )
        return [k * fraction for k in range(1, steps + 1)]
    out, density = [], 1.0
    for _ in range(steps):
        density = density * (1.0 - fraction)
        out.append(1.0 - density)
    return out


def prune_remaining_mask(w, mask, fraction):
    r"""One round of iterative magnitude pruning that prunes a fraction of the weights still kept.

    Of the $m$ weights kept by `mask`, $k = \operatorname{rne}(\text{fraction} \cdot m)$ with the smallest
    $|w|$ are pruned; pruned weights stay pruned:

    $$ \text{mask}' = \operatorname{keep\_largest}\big(\operatorname{where}(\text{mask}, |w|, -1),\ m - k\big) $$

    This is what `torch.nn.utils.prune.l1_unstructured` does when applied to an already pruned tensor (its
    `PruningContainer` computes the amount on the unpruned entries).

    **Arguments:**

    - `w`: a float32 array, finite: the (dense) weights; pruned entries are ignored.
    - `mask`: a bool array of exactly `w`'s shape, True where kept.
    - `fraction`: the fraction of the kept weights to prune, in `[0, 1]`.

    **Returns:**

    A bool array shaped like `w`, nested in `mask`, with exactly $m - k$ True entries.

    !!! note
        Ties in $|w|$ among kept weights go to the lower flat index; `+0.0` and `-0.0` tie. `torch.nn.utils.prune`
        picks among ties with `topk` (unspecified). Example: `fraction=0.5` prunes 2 and 1 of `[4, 3, 2, 1]`;
        again, it prunes $\operatorname{rne}(1) = 1$ more, the 3:

            >>> w = np.float32([4, 3, 2, 1])
            >>> half = prune_remaining_mask(w, np.ones(4, dtype=bool), 0.5)
            >>> half, prune_remaining_mask(w, half, 0.5)
            (array([ True,  True, False, False]), array([ True, False, False, False]))
    """
    w, mask = _weights_and_mask(w, mask)
    fraction = validate.fraction("fraction", fraction)
    kept = int(mask.sum())
    return _prune_kept(w, mask, kept - pruned_count(fraction, kept))


def prune_total_mask(w, mask, fraction):
    r"""One round of iterative magnitude pruning that prunes a fraction of all weights, among those still kept.

    Of the $N$ weights, $k = \operatorname{rne}(\text{fraction} \cdot N)$ more are pruned: the $k$ kept ones
    with the smallest $|w|$. With $m$ kept:

    $$ \text{mask}' = \operatorname{keep\_largest}\big(\operatorname{where}(\text{mask}, |w|, -1),\ m - k\big) $$

    **Arguments:**

    - `w`: a float32 array, finite: the (dense) weights; pruned entries are ignored.
    - `mask`: a bool array of exactly `w`'s shape, True where kept.
    - `fraction`: the fraction of all $N$ weights to prune in this round, in `[0, 1]`.

    **Returns:**

    A bool array shaped like `w`, nested in `mask`, with exactly $m - k$ True entries.

    !!! note
        $k > m$ (more than remain) is rejected with `ValueError`, never clipped. Ties as for
        `prune_remaining_mask`. Example: `fraction=0.25` of `[4, 3, 2, 1]` prunes the 1, then the 2, then the 3
        (`prune_remaining_mask` would prune $\operatorname{rne}(1) = 1$, then $\operatorname{rne}(0.75) = 1$,
        then $\operatorname{rne}(0.5) = 0$):

            >>> w, mask = np.float32([4, 3, 2, 1]), np.ones(4, dtype=bool)
            >>> for _ in range(3):
            ...     mask = prune_total_mask(w, mask, 0.25)
            ...     print(mask)
            [ True  True  True False]
            [ True  True False False]
            [ True False False False]
    """
    w, mask = _weights_and_mask(w, mask)
    fraction = validate.fraction("fraction", fraction)
    kept = int(mask.sum())
    k = pruned_count(fraction, w.size)
    if k > kept:
        raise ValueError(f"fraction {fraction!r} of {w.size} weights prunes {k} more, but only {kept} remain unpruned")
    return _prune_kept(w, mask, kept - k)


def _schedule(t, s_i, s_f, t0, n, dt):
    """Check a schedule's arguments; return the pruning step index k and the checked s_i, s_f, n."""
    t = validate.integer("t", t, lo=0)
    s_i = validate.fraction("s_i", s_i)
    s_f = validate.fraction("s_f", s_f)
    t0 = validate.integer("t0", t0, lo=0)
    n = validate.integer("n", n, lo=1)
    dt = validate.integer("dt", dt, lo=1)
    return (t - t0) // dt, s_i, s_f, n


def _between(s, a, b):
    """`s` clamped to the closed interval between `a` and `b`."""
    return min(max(s, min(a, b)), max(a, b))


def _weights_and_mask(w, mask):
    w = _arrays.finite_array("w", w)
    mask = _arrays.shaped("mask", _arrays.array("mask", mask, ("bool",)), w.shape, "w")
    return w, mask


def _prune_kept(w, mask, count):
    """Keep the `count` largest |w| among the kept weights (pruned ones score -1, below every magnitude)."""
    return keep_largest(np.where(mask, np.abs(w), np.float32(-1)), count)
