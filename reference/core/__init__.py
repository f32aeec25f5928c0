"""Exact primitives: canonical reductions, rounding rules, the counter-based RNG, selection with a tie rule."""

from .random import fold_in, make_key, random_bits, split, threefry2x32, uniform
from .reduce import lp_norm, tree_mean, tree_sum
from .rounding import round_ceil, round_floor, round_half_away, round_half_even, round_stochastic, round_with
from .select import keep_largest

__all__ = [
    "fold_in", "keep_largest", "lp_norm", "make_key", "random_bits", "round_ceil", "round_floor", "round_half_away",
    "round_half_even", "round_stochastic", "round_with", "split", "threefry2x32", "tree_mean", "tree_sum", "uniform",
]  # fmt: skip
