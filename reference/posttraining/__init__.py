"""Post-training methods that calibrate a layer on its inputs: the Optimal Brain Surgeon family, GPTQ and
SparseGPT, in exact arithmetic (`obs`)."""

from . import halfquadratic, obs, rotation, scaling
from .halfquadratic import *  # noqa: F403
from .obs import *  # noqa: F403
from .rotation import *  # noqa: F403
from .scaling import *  # noqa: F403

__all__ = [*obs.__all__, *scaling.__all__, *rotation.__all__, *halfquadratic.__all__]
