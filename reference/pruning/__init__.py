"""Pruning algorithms: masks are bool, True where a weight is kept."""

from . import (
    groups,
    lottery,
    magnitude,
    random,
    regularization,
    saliency,
    schedules,
    slimming,
    sparse_formats,
    structured,
)
from .groups import *  # noqa: F403
from .lottery import *  # noqa: F403
from .magnitude import *  # noqa: F403
from .random import *  # noqa: F403
from .regularization import *  # noqa: F403
from .saliency import *  # noqa: F403
from .schedules import *  # noqa: F403
from .slimming import *  # noqa: F403
from .sparse_formats import *  # noqa: F403
from .structured import *  # noqa: F403

__all__ = [
    name
    for module in (
        magnitude,
        structured,
        random,
        regularization,
        slimming,
        schedules,
        saliency,
        lottery,
        sparse_formats,
        groups,
    )
    for name in module.__all__
]
