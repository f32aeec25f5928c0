"""Checkpoint codecs in torch; the semantics are those of `reference.codecs`."""

from . import gptq
from .gptq import *  # noqa: F403

__all__ = [name for module in (gptq,) for name in module.__all__]
