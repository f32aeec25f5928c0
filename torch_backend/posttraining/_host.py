"""The cached float32 constants of the post-training algorithms (package-private)."""

from __future__ import annotations

import torch

from torch_backend import _arrays


def f32(value, like: torch.Tensor) -> torch.Tensor:
    """The float32 0-d tensor `value` on `like`'s device, from `torch_backend._arrays.constant`'s cache: only for
    operands, never for a returned tensor. Every scalar of these algorithms enters as a 0-d tensor on the data's
    device, so that a division is IEEE on CUDA too."""
    return _arrays.constant(float(value), like, torch.float32)
