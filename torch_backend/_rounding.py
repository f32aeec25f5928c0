"""Rounding without checks, shared inside `torch_backend`: the arithmetic of `torch_backend.core.rounding`, also used
by the quantizers, codecs and kernels that round values they have already checked (package-private)."""

from __future__ import annotations

import torch

from torch_backend.core.random import uniform


def round_by(x, mode, key):
    """Round without checks; also defined for +-Inf, which every mode maps to itself."""
    if mode == "half_even":
        return half_even(x)
    if mode == "half_away":
        return half_away(x)
    if mode == "floor":
        return torch.floor(x)
    if mode == "ceil":
        return torch.ceil(x)
    return stochastic(x, key)


def half_even(x):
    return torch.round(x)


def half_away(x):
    """`copysign(where(|x| - floor(|x|) >= 0.5, floor(|x|) + 1, floor(|x|)), x)`, in place on two temporaries: adding
    the boolean adds exactly 1 or 0, and `floor(|x|) + 0` is `floor(|x|)` bit for bit (it is never -0)."""
    a = torch.abs(x)
    whole = torch.floor(a)
    up = a.sub_(whole) >= 0.5
    return whole.add_(up).copysign_(x)


def stochastic(x, key):
    down = torch.floor(x)
    u = uniform(key, tuple(x.shape), x.device)
    return torch.where(u < x - down, down + 1.0, down)
