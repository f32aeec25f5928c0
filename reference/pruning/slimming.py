r"""Network slimming: an L1 penalty on batch-norm scaling factors, then channel pruning by one global threshold.

Training adds $\lambda \operatorname{sign}(\gamma)$ to the gradient of every batch-norm scale $\gamma$
(`slimming_penalty_grad`); pruning ranks $|\gamma|$ over all layers together and removes the smallest
(`slimming_masks`). Masks are bool, True where a channel is kept.
"""

from __future__ import annotations

import numpy as np

from reference import _arrays
from reference.common import checks, validate
from reference.core.select import keep_largest
from reference.pruning.magnitude import pruned_count
from reference.pruning.regularization import l1_subgradient

__all__ = ["slimming_penalty_grad", "slimming_masks"]


def slimming_penalty_grad(grads, gammas, lam):
    r"""Add the L1 subgradient of the scaling factors to their gradients: $g + \lambda \operatorname{sign}(\gamma)$.

    $$ g'_i = g_i \oplus \begin{cases} \operatorname{fl}_{32}(\lambda) & \gamma_i > 0 \\
       -\operatorname{fl}_{32}(\lambda) & \gamma_i < 0 \\ +0 & \gamma_i = 0 \end{cases} $$

    ($\oplus$: one float32 addition; the second term is `l1_subgradient(gamma, lam)`.) This is the sparsity
    term $\lambda \sum |\gamma|$ of network slimming, applied to the gradients after the backward pass and before
    the optimizer step, as the authors' `updateBN` does.

    **Arguments:**

    - `grads`: a non-empty list (or tuple) of float32 arrays, finite: the gradients of the scaling factors.
    - `gammas`: a list of float32 arrays, finite, as many as `grads`, `gammas[i]` shaped like `grads[i]`: the
      batch-norm scaling factors (usually 1-D, one per channel; any shape is accepted).
    - `lam`: the sparsity strength $\lambda$ (the paper's $\lambda$, the code's `s`), a real number >= 0.

    **Returns:**

    A list of float32 arrays shaped like `grads`.

    !!! note
        Bitwise what `grad.add_(lam * torch.sign(gamma))` gives on float32 tensors, except for signed zeros:
        the added zero is always `+0.0`, so every zero of the result is `+0.0`, where
        `lam * torch.sign(gamma)` can add `-0.0` (for `lam = 0` and `gamma < 0`) and keep a `-0.0` gradient.
        Example: `lam = 0.5` adds $0.5 \operatorname{sign}(\gamma)$, and nothing where $\gamma = 0$:

            >>> slimming_penalty_grad([np.float32([0.25, 0.25, 0.25])], [np.float32([2, -1, 0])], 0.5)
            [array([ 0.75, -0.25,  0.25], dtype=float32)]

    ??? cite "Liu et al., 2017"
        Learning Efficient Convolutional Networks through Network Slimming. ICCV. arXiv:1708.06519
    """
    grads = _arrays.finite_arrays("grads", grads)
    gammas = _arrays.finite_arrays("gammas", gammas)
    checks.paired(grads, gammas)
    for i, (g, gamma) in enumerate(zip(grads, gammas, strict=True)):
        _arrays.shaped(f"grads[{i}]", g, gamma.shape, f"gammas[{i}]")
    lam = validate.real("lam", lam, lo=0.0)
    return [np.asarray(g + l1_subgradient(gamma, lam)) for g, gamma in zip(grads, gammas, strict=True)]


def slimming_masks(gammas, ratio, min_channels=1):
    r"""Channel masks from one global threshold on $|\gamma|$ over all layers, keeping a minimum per layer.

    1. Concatenate $|\gamma|$ of all layers in list order ($N$ channels in total) and prune the
       $k = \operatorname{rne}(\text{ratio} \cdot N)$ smallest, as `global_magnitude_masks`: the mask is
       $\operatorname{keep\_largest}(|\gamma|, N - k)$, ties to the earlier layer, then the lower channel.
    2. A layer $\ell$ with $C_\ell$ channels keeps at least $m_\ell = \min(\text{min\_channels}, C_\ell)$: its
       mask is or-ed with $\operatorname{keep\_largest}(|\gamma_\ell|, m_\ell)$, so it keeps its
       $\max(\text{kept}_\ell, m_\ell)$ largest $|\gamma|$ (ties to the lower channel).

    **Arguments:**

    - `gammas`: a non-empty list (or tuple) of 1-D float32 arrays, finite: the scaling factors of each
      batch-norm layer. A layer may have 0 channels.
    - `ratio`: the fraction of all channels to prune (the code's `percent`), in `[0, 1]`.
    - `min_channels`: the fewest channels a layer keeps, an int >= 0; a layer with fewer channels keeps all.

    **Returns:**

    A list of bool arrays shaped like `gammas`, True where a channel is kept.

    !!! note
        Step 2 can only add channels back, so the total pruned can be smaller than $k$: `ratio` is an upper
        bound, reached exactly when no layer falls below its minimum. `min_channels=0` is step 1 alone. The
        masks are nested as `ratio` grows. `+0.0` and `-0.0` tie. The authors' code prunes every
        $|\gamma| \le$ the $(\lfloor \text{ratio} \cdot N \rfloor + 1)$-th smallest: one more channel than
        $\lfloor \text{ratio} \cdot N \rfloor$ when the magnitudes are distinct, all ties of the threshold
        together otherwise, and possibly a whole layer. Example: at `ratio=0.5` the two smallest of
        `[[0.1, 0.2], [0.3, 0.05]]` go; at `ratio=1`, `min_channels=1` keeps the largest of each layer:

            >>> gammas = [np.float32([0.1, 0.2]), np.float32([0.3, 0.05])]
            >>> slimming_masks(gammas, 0.5)
            [array([False,  True]), array([ True, False])]
            >>> slimming_masks(gammas, 1.0, min_channels=1)
            [array([False,  True]), array([ True, False])]

    ??? cite "Liu et al., 2017"
        Learning Efficient Convolutional Networks through Network Slimming. ICCV. arXiv:1708.06519
    """
    gammas = _arrays.finite_arrays("gammas", gammas)
    for i, gamma in enumerate(gammas):
        if gamma.ndim != 1:
            raise ValueError(
                f"gammas[{i}] must be 1-D (one scaling factor per channel), got shape {tuple(gamma.shape)}"
            )
    ratio = validate.fraction("ratio", ratio)
    min_channels = validate.integer("min_channels", min_channels, lo=0)
    scores = np.concatenate([np.abs(gamma) for gamma in gammas])
    keep = keep_largest(scores, scores.size - pruned_count(ratio, scores.size))
    bounds = np.cumsum([0] + [gamma.size for gamma in gammas])
    masks = []
    for gamma, a, b in zip(gammas, bounds[:-1], bounds[1:], strict=True):
        floor = keep_largest(np.abs(gamma), min(min_channels, gamma.size))
        masks.append(keep[a:b] | floor)
    return masks
