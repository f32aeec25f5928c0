"""Pruning algorithms: masks are bool, True where a weight is kept."""

from .magnitude import (
    apply_mask,
    apply_mask_vjp,
    global_magnitude_masks,
    magnitude_mask,
    magnitude_mask_by_count,
    magnitude_mask_by_threshold,
    pruned_count,
)
from .random import random_mask
from .structured import ln_structured_mask, nm_mask

__all__ = [
    "apply_mask", "apply_mask_vjp", "global_magnitude_masks", "ln_structured_mask", "magnitude_mask",
    "magnitude_mask_by_count",
    "magnitude_mask_by_threshold", "nm_mask", "pruned_count", "random_mask",
]  # fmt: skip
