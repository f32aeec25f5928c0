"""Rounding float32 tensors to integers; the semantics are those of `reference.core.rounding`."""

from __future__ import annotations

import torch

from reference.common import checks, validate
from reference.core.rounding import MODES
from torch_backend import _arrays, _rounding

__all__ = ["round_half_even", "round_half_away", "round_floor", "round_ceil", "round_stochastic", "round_with"]


def round_half_even(x):
    """Round to nearest, ties to even (`torch.round`); see `reference.core.rounding.round_half_even`."""
    return _rounding.half_even(_arrays.finite_array("x", x))


def round_half_away(x):
    """Round to nearest, ties away from zero, exactly; see `reference.core.rounding.round_half_away`."""
    return _rounding.half_away(_arrays.finite_array("x", x))


def round_floor(x):
    """Round toward minus infinity; see `reference.core.rounding.round_floor`."""
    return torch.floor(_arrays.finite_array("x", x))


def round_ceil(x):
    """Round toward plus infinity; see `reference.core.rounding.round_ceil`."""
    return torch.ceil(_arrays.finite_array("x", x))


def round_stochastic(x, key):
    """Round up with probability equal to the fraction; see `reference.core.rounding.round_stochastic`."""
    x = _arrays.finite_array("x", x)
    return _rounding.stochastic(x, validate.key("key", key))


def round_with(x, mode="half_even", key=None):
    """Round `x` by the rule named `mode`; see `reference.core.rounding.round_with`."""
    x = _arrays.finite_array("x", x)
    return _rounding.round_by(x, *checks.rounding(mode, key, MODES))
