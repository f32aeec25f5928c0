"""Exact primitives: canonical reductions, exact sums and linear algebra, rounding rules, the counter-based RNG,
selection with a tie rule."""

from . import exact, linalg, random, reduce, rounding, select, transcendental
from .exact import *  # noqa: F403
from .linalg import *  # noqa: F403
from .random import *  # noqa: F403
from .reduce import *  # noqa: F403
from .rounding import *  # noqa: F403
from .select import *  # noqa: F403
from .transcendental import *  # noqa: F403

__all__ = [
    name for module in (random, reduce, exact, linalg, transcendental, rounding, select) for name in module.__all__
]
