"""Byte-level helpers of the torch codecs: the packed layouts are read and written as bytes.

The GGUF, GPTQ and AWQ layouts are little-endian: the bytes of an int32 word or a float16 lie lowest first. On a
little-endian host (x86, ARM, and the memory of every CUDA device) a view gives them in that order; on a
big-endian host `view_as` raises instead of reading them in the wrong order.
"""

from __future__ import annotations

import math
import struct
import sys

import torch

from torch_backend._arrays import PLAIN


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


# ---- host routes: tiny CPU inputs on Python ints and floats, where a dozen tensor operations cost more

HOST_MAX = 256  # up to this many CPU elements (read or written) a codec may run on the host; more: tensors


def on_host(*tensors) -> bool:
    """Whether every tensor is a plain CPU tensor (no subclass: a DTensor or a tensor-like keeps its own route)."""
    return all(type(t) in PLAIN and t.device.type == "cpu" for t in tensors)


def host_tensor(code: str, values, dtype: torch.dtype, shape) -> torch.Tensor:
    """A fresh CPU tensor of `dtype` and `shape` holding `values` (row-major), written by `struct` in the host's
    byte order with the standard size of the format character `code` (`b`, `B`, `i`, `I`, `f`), then read as
    `dtype` (`torch.frombuffer`) and copied once into a tensor of its own storage (a tensor over a `bytearray`
    cannot be resized, unlike every other output of the codecs). `I` writes a word `< 2**32` whose bits an int32 reads in two's complement,
    as the reference's `astype(uint32).view(int32)`; `f` writes a Python float that is a float32 value (or an Inf,
    or a NaN: `math.nan` is written as the quiet NaN 0x7FC00000) exactly."""
    if not values:
        return torch.empty(shape, dtype=dtype)
    data = torch.frombuffer(bytearray(struct.pack(f"={len(values)}{code}", *values)), dtype=dtype)
    return (data if len(shape) == 1 else data.view(shape)).clone()  # flat already: a view costs as much as the copy


def host_bytes(values, shape) -> torch.Tensor:
    """`host_tensor("B", values, torch.uint8, shape)` for ints in [0, 256), by `bytes` (copied, as there)."""
    if not values:
        return torch.empty(shape, dtype=torch.uint8)
    data = torch.frombuffer(bytearray(values), dtype=torch.uint8)
    return (data if len(shape) == 1 else data.view(shape)).clone()


def host_finite(t):
    """The values of a small CPU float tensor `t` as a flat list of Python floats (exact), or None when one is a
    NaN or an Inf: then the caller runs `_arrays.finite`, which raises the reference's error naming it, and takes
    its tensor route. One Python `sum` decides (a NaN or an Inf makes it NaN or infinite; finite float32 values
    cannot overflow it, and a float64 overflow only sends finite values to the tensor route as well)."""
    values = t.detach().reshape(-1).tolist()
    return values if math.isfinite(sum(values)) else None


def host_from_bytes(data, dtype: torch.dtype, shape) -> torch.Tensor:
    """A fresh contiguous CPU tensor of `dtype` and `shape` over a copy of the bytes `data` (row-major, this
    host's byte order, `len(data)` the tensor's size in bytes): `UntypedStorage.from_buffer` copies them into a
    storage of the tensor's own (resizable), one operation where `host_tensor` takes a `frombuffer` and a copy."""
    return torch.empty(0, dtype=dtype, device="cpu").set_(
        torch.UntypedStorage.from_buffer(data, dtype=torch.uint8), 0, shape
    )


def host_mask(keep, shape) -> torch.Tensor:
    """A fresh CPU bool tensor of `shape` from a flat list of Python bools (row-major): their bytes (0 or 1, valid
    bools) copied once into a tensor of its own storage, cheaper than `torch.tensor` of the list."""
    if not keep:
        return torch.empty(shape, dtype=torch.bool)
    return torch.frombuffer(bytearray(keep), dtype=torch.bool).clone().view(shape)
