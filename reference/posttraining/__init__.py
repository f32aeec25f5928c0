"""Post-training methods that calibrate a layer on its inputs: the Optimal Brain Surgeon family, GPTQ and
SparseGPT, in exact arithmetic (`obs`)."""

from . import adaround, halfquadratic, obs, rotation, scaling
from .adaround import *  # noqa: F403
from .halfquadratic import *  # noqa: F403
from .obs import *  # noqa: F403
from .rotation import *  # noqa: F403
from .scaling import *  # noqa: F403

__all__ = [*obs.__all__, *scaling.__all__, *rotation.__all__, *halfquadratic.__all__, *adaround.__all__]
