"""Exact primitives: canonical reductions, rounding rules, the counter-based RNG, selection with a tie rule."""

from . import random, reduce, rounding, select
from .random import *  # noqa: F403
from .reduce import *  # noqa: F403
from .rounding import *  # noqa: F403
from .select import *  # noqa: F403

__all__ = [name for module in (random, reduce, rounding, select) for name in module.__all__]
