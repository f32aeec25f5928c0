"""Checkpoint codecs in torch; the semantics are those of `reference.codecs`."""

from . import gguf, gptq, nibbles, nvfp4
from .gguf import *  # noqa: F403
from .gptq import *  # noqa: F403
from .nibbles import *  # noqa: F403
from .nvfp4 import *  # noqa: F403

__all__ = [name for module in (gptq, gguf, nvfp4, nibbles) for name in module.__all__]
