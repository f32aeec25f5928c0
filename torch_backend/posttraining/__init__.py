"""Post-training methods in torch: GPTQ and SparseGPT, exact (see `reference.posttraining`)."""

from . import obs, rotation
from .obs import *  # noqa: F403
from .rotation import *  # noqa: F403

__all__ = [*obs.__all__, *rotation.__all__]
