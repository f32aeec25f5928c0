"""Byte-level helpers of the torch codecs: the packed layouts are read and written as bytes.

The GGUF, GPTQ and AWQ layouts are little-endian: the bytes of an int32 word or a float16 lie lowest first. On a
little-endian host (x86, ARM, and the memory of every CUDA device) a view gives them in that order; on a
big-endian host `view_as` raises instead of reading them in the wrong order.
"""

from __future__ import annotations

import sys

import torch


def view_as(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The bytes of `t` along its last axis read as `dtype` (the last axis scaled by the ratio of item sizes).

    An empty `t` gives an empty tensor of the new shape: torch keeps any strides on an empty tensor and refuses to
    view it with another item size.
    """
    if sys.byteorder != "little":
        raise NotImplementedError("the packed GGUF, GPTQ and AWQ layouts are read as bytes on little-endian hosts only")
    last = t.shape[-1] * t.element_size() // dtype.itemsize
    if t.numel() == 0:
        return torch.empty((*t.shape[:-1], last), dtype=dtype, device=t.device)
    t = t.contiguous()
    if t.stride(-1) != 1 or t.storage_offset() * t.element_size() % dtype.itemsize:
        # torch calls a tensor with size-1 dimensions contiguous whatever their strides, and a view to a larger
        # item needs an aligned start: a fresh copy has both
        t = t.clone(memory_format=torch.contiguous_format)
    return t.view(dtype)
