"""Rounding float32 tensors to integers; the semantics are those of `reference.core.rounding`."""

from __future__ import annotations

import torch

from reference.common import validate
from torch_backend import _arrays
from torch_backend.core.random import uniform

__all__ = ["round_half_even", "round_half_away", "round_floor", "round_ceil", "round_stochastic", "round_with"]

MODES = ("half_even", "half_away", "floor", "ceil", "stochastic")


def round_half_even(x):
    """Round to nearest, ties to even (`torch.round`); see `reference.core.rounding.round_half_even`."""
    return _half_even(_arrays.finite_array("x", x))


def round_half_away(x):
    """Round to nearest, ties away from zero, exactly; see `reference.core.rounding.round_half_away`."""
    return _half_away(_arrays.finite_array("x", x))


def round_floor(x):
    """Round toward minus infinity; see `reference.core.rounding.round_floor`."""
    return torch.floor(_arrays.finite_array("x", x))


def round_ceil(x):
    """Round toward plus infinity; see `reference.core.rounding.round_ceil`."""
    return torch.ceil(_arrays.finite_array("x", x))


def round_stochastic(x, key):
    """Round up with probability equal to the fraction; see `reference.core.rounding.round_stochastic`."""
    x = _arrays.finite_array("x", x)
    return _stochastic(x, validate.key("key", key))


def round_with(x, mode="half_even", key=None):
    """Round `x` by the rule named `mode`; see `reference.core.rounding.round_with`."""
    x = _arrays.finite_array("x", x)
    return _round(x, *_check_mode(mode, key))


def _check_mode(mode, key):
    validate.choice("rounding", mode, MODES)
    if mode == "stochastic":
        if key is None:
            raise ValueError("rounding='stochastic' needs a key; pass key=make_key(seed)")
        return mode, validate.key("key", key)
    if key is not None:
        raise ValueError(f"key is only used with rounding='stochastic', got rounding={mode!r}")
    return mode, None


def _round(x, mode, key):
    """Round without checks; also defined for +-Inf, which every mode maps to itself."""
    if mode == "half_even":
        return _half_even(x)
    if mode == "half_away":
        return _half_away(x)
    if mode == "floor":
        return torch.floor(x)
    if mode == "ceil":
        return torch.ceil(x)
    return _stochastic(x, key)


def _half_even(x):
    return torch.round(x)


def _half_away(x):
    a = torch.abs(x)
    whole = torch.floor(a)
    up = (a - whole) >= 0.5
    return torch.copysign(torch.where(up, whole + 1.0, whole), x)


def _stochastic(x, key):
    down = torch.floor(x)
    u = uniform(key, tuple(x.shape), x.device)
    return torch.where(u < x - down, down + 1.0, down)
