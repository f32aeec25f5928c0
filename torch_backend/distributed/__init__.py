"""Exact compression statistics across ranks, on top of `torch.distributed`: identical for every world size.

A sharded model (FSDP2's `fully_shard`, DTensor) or data-parallel calibration spreads a statistic over ranks.
Computed per shard and combined with a float `all_reduce`, a sum, a threshold or a Hessian changes with the
world size. Here every cross-rank combination is of integers (counts, order-preserving keys, the exact sum's
fixed-point limbs), whose sum, minimum and maximum do not depend on the order in which the ranks meet, so each
function returns, bit for bit, what the single-process function of the same name returns on the whole tensor:

| function | single-process twin | what crosses the ranks |
|---|---|---|
| `exact_sum` | `exact_sum` | the exact sum's limbs (`exact_sum_state`), one `all_reduce(SUM)` |
| `exact_gram`, `gptq_hessian` | `exact_gram`, `gptq_hessian` | the states of the upper triangle |
| `minmax_observer`, `ema_minmax_observer`, `minmax_qparams` | the same names | integer keys, `all_reduce(MIN)` |
| `keep_largest`, `magnitude_mask`, `magnitude_mask_by_count`, `global_magnitude_masks` | the same names | radix histograms |
| `slimming_masks` (global gamma threshold), `percentile_amax` | the same names | radix histograms |
| `slimming_penalty_grad` | the same name | nothing (elementwise) |

**Inputs.** Each rank passes its own part: a DTensor (any `Shard(d)` / `Replicate()` placements, uneven shards
included; see `layout`), or a plain tensor, in which case the whole tensor is the ranks' tensors concatenated
along dimension 0 in rank order, over `group` (default: the world). Ties go to the lower flat index of the
*whole* tensor, as in one process. Outside an initialized process group every function is a world of one.

**Outputs.** Masks have the layout of the input (a DTensor mask for a DTensor, this rank's part for a plain
tensor; `full_tensor` gathers one as packed bits); statistics (sums, Hessians, scales, percentiles) are whole and
the same on every rank.

**Errors.** Every rank raises the error, with the message, that the single-process function raises on the whole
tensor (`checks`), so no rank is left waiting in a collective.

**Communication** is counted by `traffic()`: global magnitude pruning of 16 tensors of 512 x 512 sends the same
few histograms whatever the world size, where all-gathering the weights sends their size (see the docs page
"Compressing a sharded model").
"""

from torch_backend.distributed.comm import Traffic, traffic
from torch_backend.distributed.layout import Block, blocks, full_tensor, is_sharded, shard_like
from torch_backend.distributed.select import (
    global_magnitude_masks,
    keep_largest,
    magnitude_mask,
    magnitude_mask_by_count,
    percentile_amax,
    slimming_masks,
)
from torch_backend.distributed.stats import (
    ema_minmax_observer,
    exact_gram,
    exact_sum,
    gptq_hessian,
    minmax_observer,
    minmax_qparams,
    slimming_penalty_grad,
)

__all__ = [
    "exact_sum", "exact_gram", "gptq_hessian", "minmax_observer", "ema_minmax_observer", "minmax_qparams",
    "keep_largest", "magnitude_mask", "magnitude_mask_by_count", "global_magnitude_masks", "slimming_masks",
    "percentile_amax", "slimming_penalty_grad", "Block", "blocks", "full_tensor", "shard_like", "is_sharded",
    "Traffic", "traffic",
]  # fmt: skip
