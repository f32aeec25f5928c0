"""Lottery tickets: the mask and rewind arithmetic of iterative magnitude pruning (IMP).

One IMP round, after training the current sparse network to `w_trained`:

    mask = imp_mask(w_trained, mask, fraction)      # prune `fraction` of the weights still alive
    w = lottery_rewind(w_rewind, mask)              # reset the survivors, zero the rest

`w_rewind` is the snapshot to rewind to: the initial weights $w_0$ (Frankle & Carbin, 2019) or the weights after
$k$ training steps $w_k$ (rewinding, Frankle et al., 2020). The two differ only in which snapshot the caller kept;
the arithmetic is the same. The training loop itself is not part of this module.
"""

from __future__ import annotations

import numpy as np

from reference import _arrays
from reference.common import shapes, validate
from reference.core.select import keep_largest
from reference.pruning.magnitude import pruned_count

__all__ = ["imp_mask", "lottery_rewind", "imp_schedule"]


def imp_mask(w, mask, fraction):
    r"""One round of iterative magnitude pruning: prune `fraction` of the weights that are still kept, by $|w|$.

    With $m$ = the number of True entries of `mask` and $k = \operatorname{rne}(\text{fraction} \cdot m)$:

    $$ \text{new} = \operatorname{keep\_largest}\big(\operatorname{where}(\text{mask}, |w|, -\infty),\ m - k\big) $$

    so the $m - k$ largest surviving magnitudes stay, and a pruned weight never comes back, whatever its value.

    **Arguments:**

    - `w`: a float32 array, finite: the trained weights (pruned entries may hold anything finite; they are ignored).
    - `mask`: a bool array of exactly `w`'s shape, True where the weight is still kept.
    - `fraction`: the fraction of the surviving weights to prune this round, in `[0, 1]` (0.2 for the fully connected layers in the paper).

    **Returns:**

    A bool array shaped like `w` with exactly $m - k$ True entries, all of them True in `mask`.

    !!! note
        Ties in $|w|$ go to the lower flat index, `+0.0` and `-0.0` tie, as in `magnitude_mask`. Counts round
        half to even: of $m = 5$ survivors, fraction 0.5 prunes 2. Starting from an all-True mask, round $r$
        keeps the counts of `imp_schedule`. On weights with distinct magnitudes this is `torch.nn.utils.prune`'s
        `l1_unstructured` applied once per round (tested). For global IMP over several layers, concatenate their
        flattened weights and masks. Example: of the $m = 3$ survivors of $[4, 1, 3, 2]$, fraction 0.5 prunes
        $k = \operatorname{rne}(1.5) = 2$, and only the largest stays:

            >>> imp_mask(np.float32([4, 1, 3, 2]), np.array([True, True, True, False]), 0.5)
            array([ True, False, False, False])

    !!! note "The lottery-ticket codebases prune more"
        Both reference codebases sort the surviving $|w|$ ascending and prune up to and including a cutoff
        element, so they prune one weight more than their count on distinct magnitudes, and every weight tied
        with the cutoff:

        - Frankle & Carbin's code (`google-research/lottery-ticket-hypothesis`, `foundations/pruning.py`,
          `prune_by_percent_once`): cutoff $= \operatorname{sorted}(|w|)[\operatorname{rne}(p\,m)]$ (NumPy's
          `np.round`), prune $|w| \le$ cutoff: $\operatorname{rne}(p\,m) + 1$ weights (and an `IndexError` at
          $p = 1$);
        - OpenLTH (`facebookresearch/open_lth`, `pruning/sparse_global.py`, the default strategy): threshold
          $= \operatorname{sorted}(|w|)[\lceil p\,m \rceil]$, keep $|w| >$ threshold: $\lceil p\,m \rceil + 1$
          weights. (Its `sparse_layerwise.py` keeps $|w| \ge$ threshold: $\lceil p\,m \rceil$, fewer on ties.)

        pqref prunes exactly $k = \operatorname{rne}(p\,m)$, `torch.nn.utils.prune`'s count, with ties to the
        lower index. Example: of $m = 10$ distinct magnitudes, $p = 0.2$ prunes 2 here and 3 in both codebases;
        $p = 0.25$ prunes 2 here, 3 in Frankle & Carbin's and 4 in OpenLTH's. The per-round counts, and so
        `imp_schedule`, differ accordingly (tests/test_divergences.py models both rules).

            >>> pruned_count(0.2, 10), pruned_count(0.25, 10)
            (2, 2)

    ??? cite "Frankle & Carbin, 2019"
        The Lottery Ticket Hypothesis: Finding Sparse, Trainable Neural Networks. ICLR. arXiv:1803.03635
    """
    w = _arrays.finite_array("w", w)
    mask = _arrays.shaped("mask", _arrays.array("mask", mask, ("bool",)), w.shape, "w")
    fraction = validate.fraction("fraction", fraction)
    alive = int(np.count_nonzero(mask))
    k = pruned_count(fraction, alive)
    scores = np.where(mask, np.abs(w), np.float32(-np.inf))
    return keep_largest(scores, alive - k)


def lottery_rewind(w_rewind, mask):
    r"""Rewind the surviving weights to a snapshot and zero the pruned ones.

    $$ w = \operatorname{where}(\text{mask},\ w_r,\ +0) $$

    **Arguments:**

    - `w_rewind`: a float32 array, finite: the snapshot to rewind to, $w_0$ (the initialization, Frankle & Carbin)
      or $w_k$ (the weights after $k$ steps, Frankle et al. 2020).
    - `mask`: a bool array of exactly `w_rewind`'s shape, True where the weight is kept (from `imp_mask`).

    **Returns:**

    A float32 array shaped like `w_rewind`: the kept snapshot values bit for bit, `+0.0` where pruned.

    !!! note
        The trained weights do not enter: they only chose the mask. A pruned entry is `+0.0` even where the
        snapshot is negative (`w * mask` would give `-0.0`). Example:

            >>> lottery_rewind(np.float32([-1, 2, -3]), np.array([False, True, True]))
            array([ 0.,  2., -3.], dtype=float32)

    ??? cite "Frankle et al., 2020"
        Linear Mode Connectivity and the Lottery Ticket Hypothesis. ICML. arXiv:1912.05671
    """
    w_rewind = _arrays.finite_array("w_rewind", w_rewind)
    mask = _arrays.shaped("mask", _arrays.array("mask", mask, ("bool",)), w_rewind.shape, "w_rewind")
    return np.where(mask, w_rewind, np.float32(0))


def imp_schedule(n, fraction, rounds):
    r"""How many of `n` weights survive each round of iterative magnitude pruning at a fixed per-round `fraction`.

    $$ m_0 = n, \qquad m_{r+1} = m_r - \operatorname{rne}(\text{fraction} \cdot m_r) $$

    These are exactly the counts `imp_mask` keeps when started from an all-True mask. The sparsity after round
    $r$ is $1 - m_r / n$, close to $1 - (1 - \text{fraction})^r$ but settled by the integer counts.

    **Arguments:**

    - `n`: the number of weights, an int >= 0.
    - `fraction`: the fraction of survivors pruned per round, in `[0, 1]`.
    - `rounds`: the number of rounds, an int >= 0.

    **Returns:**

    A list of `rounds + 1` Python ints $[m_0, m_1, \ldots, m_{\text{rounds}}]$, non-increasing.

    !!! note
        Example: $0.2 \cdot 10 = 2$, then $0.2 \cdot 8 = 1.6$ rounds to 2, then $0.2 \cdot 6 = 1.2$ to 1:

            >>> imp_schedule(10, 0.2, 3)
            [10, 8, 6, 5]

        Once $\text{fraction} \cdot m_r < 0.5$ the count stops moving. The
        lottery-ticket codebases prune one more per round ($\operatorname{rne}(p\,m) + 1$, OpenLTH
        $\lceil p\,m \rceil + 1$; see `imp_mask`): from $n = 10$, $p = 0.2$ Frankle & Carbin's code keeps
        $[10, 7, 5, 3]$ and OpenLTH's $[10, 7, 4, 2]$.

    ??? cite "Frankle & Carbin, 2019"
        The Lottery Ticket Hypothesis: Finding Sparse, Trainable Neural Networks. ICLR. arXiv:1803.03635
    """
    n = shapes.size("n", n, lo=0)
    fraction = validate.fraction("fraction", fraction)
    rounds = shapes.iterations("rounds", rounds)
    counts = [n]
    for _ in range(rounds):
        counts.append(counts[-1] - pruned_count(fraction, counts[-1]))
    return counts
