"""Export a compressed model to safetensors with packed integer codes, and load it back with NumPy alone.

Layout, per tensor the model uses (names as a plain model has them, e.g. `3.weight`):

- uncompressed: the float32 tensor under its name;
- pruned: `<name>.mask` (the bool mask packed 8 per byte, first element in the lowest bit) and `<name>.values`
  (the kept entries in C order), or, if also quantized, the kept entries' codes;
- quantized: `<name>.codes` (unsigned `code - qmin`, packed `bits` per code, little-endian bit stream),
  `<name>.scale`, `<name>.zero_point`, and the parameters in the file's metadata.

`load_safetensors` reconstructs every tensor with the NumPy reference (`dequantize`, `apply_mask` semantics), and
the result equals the tensor the torch model uses, bit for bit. Sizes reported are the files' real sizes.
"""

from __future__ import annotations

import json
import os

import numpy as np
import torch
from torch.nn.utils import parametrize

from torch_backend.nn.compressions import Compression


def effective_tensors(model):
    """`(name, tensor)` for every parameter and buffer, parametrized ones as the forward sees them."""
    seen = set()
    for mname, module in model.named_modules():
        if "parametrizations" in mname.split("."):
            continue  # the master weights and compression state inside a parametrization
        prefix = f"{mname}." if mname else ""
        if parametrize.is_parametrized(module):
            for tname in module.parametrizations:
                with torch.no_grad():
                    yield prefix + tname, getattr(module, tname).detach()
                seen.add(prefix + tname)
        for pname, p in list(module.named_parameters(recurse=False)) + list(module.named_buffers(recurse=False)):
            name = prefix + pname
            if name not in seen and p is not None:
                seen.add(name)
                yield name, p.detach()


def export_safetensors(model, compressor, path) -> int:
    """Write `model` (compressed per `compressor`, or plain if None) to `path`; returns the file size in bytes."""
    from safetensors.numpy import save_file

    arrays: dict[str, np.ndarray] = {}
    meta: dict[str, dict] = {}
    chains = {}
    scalars: list[str] = []
    if compressor is not None:
        for name, module, tname, chain in compressor.compressed_tensors():
            chains[name] = (module, tname, chain)
    for name, tensor in effective_tensors(model):
        if name not in chains:
            arrays[name] = np.array(tensor.cpu().numpy(), copy=True)
            if tensor.ndim == 0:
                scalars.append(name)
            continue
        module, tname, chain = chains[name]
        w = module.parametrizations[tname].original.detach()
        mask = None
        info: dict = {"shape": list(w.shape), "dtype": str(w.dtype).removeprefix("torch.")}
        stored = None
        for c in chain:
            if c.kind == "pruning":
                mask = c.mask if mask is None else mask & c.mask
            elif isinstance(c, Compression) and hasattr(c, "export"):
                parts, qmeta = c.export(w.float())
                stored = parts
                info["quant"] = qmeta
            w = c(w)
        if mask is not None:
            m = mask.cpu().numpy()
            arrays[f"{name}.mask"] = pack(m.reshape(-1).astype(np.uint32), 1)
            info["pruned"] = True
        keep = None if mask is None else mask.cpu().numpy().reshape(-1)
        if stored is None:
            values = w.detach().cpu().numpy().reshape(-1)
            arrays[f"{name}.values"] = np.ascontiguousarray(values if keep is None else values[keep])
        else:
            codes = stored.pop("codes").reshape(-1)
            q = info["quant"]
            codes = codes if keep is None else codes[keep]
            arrays[f"{name}.codes"] = pack((codes - q["qmin"]).astype(np.uint32), q["bits"])
            q["part_shapes"] = {k: list(np.shape(v)) for k, v in stored.items()}
            for k, v in stored.items():
                arrays[f"{name}.{k}"] = np.array(v, copy=True)
        meta[name] = info
    save_file(arrays, str(path), metadata={"pqref": json.dumps(meta), "pqref_scalars": json.dumps(scalars)})
    return os.path.getsize(path)


def load_safetensors(path) -> dict[str, np.ndarray]:
    """Every tensor of an exported model, reconstructed with NumPy and the reference alone."""
    from safetensors import safe_open
    from safetensors.numpy import load_file

    arrays = load_file(str(path))
    with safe_open(str(path), framework="numpy") as f:
        header = f.metadata() or {}
    meta = json.loads(header.get("pqref", "{}"))
    for k in json.loads(header.get("pqref_scalars", "[]")):
        arrays[k] = arrays[k].reshape(())
    out = {k: v for k, v in arrays.items() if k.rsplit(".", 1)[0] not in meta}
    for name, info in meta.items():
        shape = tuple(info["shape"])
        n = int(np.prod(shape, dtype=np.int64))
        keep = unpack(arrays[f"{name}.mask"], 1, n).astype(bool) if info.get("pruned") else np.ones(n, dtype=bool)
        if "quant" in info:
            q = info["quant"]
            codes = np.full(n, 0, dtype=np.int32)
            codes[keep] = unpack(arrays[f"{name}.codes"], q["bits"], int(keep.sum())).astype(np.int32) + q["qmin"]
            decode = decoders()[q["algorithm"]]
            parts = {k: arrays[f"{name}.{k}"].reshape(q["part_shapes"][k]) for k in q["parts"]}
            full = decode(codes.reshape(shape), parts, q)
            flat = full.reshape(-1)
            w = np.where(keep, flat, np.float32(0))
        else:
            w = np.zeros(n, dtype=np.float32)
            w[keep] = arrays[f"{name}.values"]
        out[name] = w.reshape(shape)
    return out


def pack(codes: np.ndarray, bits: int) -> np.ndarray:
    """Unsigned codes below 2**bits into a little-endian bit stream: bit b of code j is stream bit j * bits + b."""
    stream = (codes.reshape(-1, 1) >> np.arange(bits, dtype=np.uint32)) & 1
    return np.packbits(stream.astype(np.uint8).reshape(-1), bitorder="little")


def unpack(packed: np.ndarray, bits: int, count: int) -> np.ndarray:
    stream = np.unpackbits(packed, bitorder="little")[: count * bits].reshape(count, bits).astype(np.uint32)
    return (stream << np.arange(bits, dtype=np.uint32)).sum(axis=1, dtype=np.uint32)


def decoders():
    """`algorithm -> decode(codes, parts, meta)` for every quantizing compression (NumPy reference only)."""
    out = {}
    todo = [Compression]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if "decode" in cls.__dict__:
            out[cls.algorithm] = cls.decode
    return out
