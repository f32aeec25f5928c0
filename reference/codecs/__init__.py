"""Checkpoint codecs: the packed layouts that quantized checkpoints store (GPTQ, AWQ, compressed-tensors, GGUF)
and the NVFP4 block format, each a pure bijection or a pinned quantizer with a NumPy-only decoder."""

from . import gptq
from .gptq import *  # noqa: F403

__all__ = [name for module in (gptq,) for name in module.__all__]
