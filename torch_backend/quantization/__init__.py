"""Quantization algorithms."""

from . import (
    affine,
    binary,
    codebook,
    conventions,
    dorefa,
    dynamic,
    floats,
    lsq,
    mx,
    nf4,
    observers,
    packing,
    pact,
    power_of_two,
    ternary,
)
from .affine import *  # noqa: F403
from .binary import *  # noqa: F403
from .codebook import *  # noqa: F403
from .conventions import *  # noqa: F403
from .dorefa import *  # noqa: F403
from .dynamic import *  # noqa: F403
from .floats import *  # noqa: F403
from .lsq import *  # noqa: F403
from .mx import *  # noqa: F403
from .nf4 import *  # noqa: F403
from .observers import *  # noqa: F403
from .packing import *  # noqa: F403
from .pact import *  # noqa: F403
from .power_of_two import *  # noqa: F403
from .ternary import *  # noqa: F403

__all__ = [
    name
    for module in (
        affine,
        dynamic,
        conventions,
        binary,
        ternary,
        dorefa,
        pact,
        lsq,
        floats,
        mx,
        power_of_two,
        codebook,
        nf4,
        observers,
        packing,
    )
    for name in module.__all__
]
