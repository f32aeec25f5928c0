"""Post-training methods in torch: GPTQ and SparseGPT, exact (see `reference.posttraining`)."""

from . import adaround, halfquadratic, obs, rotation, scaling
from .adaround import *  # noqa: F403
from .halfquadratic import *  # noqa: F403
from .obs import *  # noqa: F403
from .rotation import *  # noqa: F403
from .scaling import *  # noqa: F403

__all__ = [*obs.__all__, *scaling.__all__, *rotation.__all__, *halfquadratic.__all__, *adaround.__all__]
