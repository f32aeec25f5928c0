"""Checkpoint codecs: the packed layouts that quantized checkpoints store (GPTQ, AWQ, compressed-tensors, GGUF)
and the NVFP4 block format, each a pure bijection or a pinned quantizer with a NumPy-only decoder."""

from . import awq, compressed_tensors, gguf, gptq, nibbles, nvfp4
from .awq import *  # noqa: F403
from .compressed_tensors import *  # noqa: F403
from .gguf import *  # noqa: F403
from .gptq import *  # noqa: F403
from .nibbles import *  # noqa: F403
from .nvfp4 import *  # noqa: F403

__all__ = [name for module in (gptq, awq, compressed_tensors, gguf, nvfp4, nibbles) for name in module.__all__]
