"""Post-training methods that calibrate a layer on its inputs: the Optimal Brain Surgeon family, GPTQ and
SparseGPT, in exact arithmetic (`obs`)."""

from . import obs
from .obs import *  # noqa: F403

__all__ = list(obs.__all__)
