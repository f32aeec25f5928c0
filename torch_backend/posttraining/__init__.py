"""Post-training methods in torch: GPTQ and SparseGPT, exact (see `reference.posttraining`)."""

from . import obs
from .obs import *  # noqa: F403

__all__ = list(obs.__all__)
