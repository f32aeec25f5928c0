"""Export a compressed model to safetensors with packed integer codes; read it back with NumPy alone.

The layout and the reader are in `reference.checkpoint` (one schema, documented there, readable without torch):
every tensor the model uses under its plain `state_dict` name, pruned ones as a packed mask plus the kept
entries, quantized ones as packed integer codes (`pack_bits`, up to 16 bits) plus the registry parameters that
decode them (`dequantize` or `codebook_decode`), and the activation quantizers' parameters, so that the NumPy
reader can run the quantized forward exactly. Every file tensor carries a sha256 in the record, and the record
its own sha256.

Before writing, the exporter decodes every compressed tensor with the reader and compares it bit for bit with the
tensor the torch model uses; a tensor whose codes cannot hold its values exactly (an XNOR slice whose mean
underflows to 0 and leaves a `-0.0`) is stored dense instead, with a warning. The file is written to a temporary
file in the same folder and renamed into place, with the usual permissions (`0o666` less the umask): a failed
export leaves no partial file and does not replace an existing one.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.nn.utils import parametrize

from reference import checkpoint
from reference.common.version import PQREF_VERSION, SEMANTICS_VERSION
from torch_backend.nn import activations
from torch_backend.nn.backend import NUMPY, TORCH, same_bits, to_numpy
from torch_backend.nn.compressions import Compression
from torch_backend.nn.policies import parameter_order

load_safetensors = checkpoint.load_safetensors


def effective_tensors(model):
    """`(name, tensor)` for every tensor of the model's `state_dict` as a plain model has it: parametrized ones as
    the forward sees them; parametrization internals and activation quantizers left out."""
    skip = set()
    for mname, module in model.named_modules():
        if activations.quantizer_of(module) is not None:
            skip.add(f"{mname}.{activations.ATTRIBUTE}" if mname else activations.ATTRIBUTE)
    for mname, module in model.named_modules():
        parts = mname.split(".")
        if "parametrizations" in parts or any(mname == s or mname.startswith(s + ".") for s in skip):
            continue
        prefix = f"{mname}." if mname else ""
        parametrized = module.parametrizations if parametrize.is_parametrized(module) else {}
        for pname in parameter_order(module):
            if pname in parametrized:
                with torch.no_grad():
                    yield prefix + pname, getattr(module, pname).detach()
            elif module._parameters.get(pname) is not None:
                yield prefix + pname, module._parameters[pname].detach()
        for bname, b in module.named_buffers(recurse=False):
            if bname not in parametrized and b is not None and bname not in module._non_persistent_buffers_set:
                yield prefix + bname, b.detach()


def export_safetensors(model, compressor, path) -> int:
    """Write `model` (compressed per `compressor`, or plain if None) to `path`; returns the file size in bytes.

    **Arguments:**

    - `model`: the `nn.Module`.
    - `compressor`: its `Compressor` (not finalized), or `None` for a model without pqref compressions.
    - `path`: the file to write (its folder must exist); an existing file is replaced only when the export
      succeeds.

    **Returns:**

    The size of the written file in bytes.
    """
    from torch_backend.nn.compressor import Compressor, is_compressed

    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if compressor is None:
        if is_compressed(model):
            raise ValueError(
                "model carries pqref compressions: pass its Compressor (export_safetensors(model, c, path))"
            )
    elif not isinstance(compressor, Compressor):
        raise TypeError(f"compressor must be a Compressor or None, got {type(compressor).__name__}")
    elif compressor.model is not model:
        raise ValueError("compressor belongs to another model (compressor.model is not model)")
    elif compressor.finalized:
        raise ValueError(
            "compressor was finalized, so the model holds plain weights and no codes: export before finalize(), "
            "or export the plain model with compressor=None"
        )
    path = _target(path)
    files, record = _build(model, compressor)
    data = _serialize(files, record)
    _write_atomically(path, data)
    return os.path.getsize(path)


def export_gptq(model, compressor, path, *, zero_format) -> int:
    """Write `model` in the GPTQ checkpoint layout that serving stacks read; returns the file size in bytes.

    Every `Linear` weight the compressor quantized with `gptq` is stored as `<module>.qweight`,
    `<module>.qzeros`, `<module>.scales` (float16) and `<module>.g_idx` (the module's name, as serving stacks read it) (`reference.codecs.gptq_pack`, codes and zero points shifted by
    `2**(bits-1)` to GPTQ's unsigned range); every other tensor dense. The header carries a `quantization_config`
    (`quant_method`, `bits`, `group_size`, `desc_act`, `sym`, `checkpoint_format` `"gptq"` for v1 or `"gptq_v2"`)
    and pqref's record with a sha256 of every tensor. `reference.checkpoint.load_gptq` reads it back with NumPy
    alone, bit for bit.

    **Arguments:**

    - `model`, `compressor`: a model calibrated with `gptq` rules (`calibrate`), not finalized. The rules need
      `scale_dtype = "float16"` (the layout stores float16 scales: only then is the file exactly the model),
      `bits` 2, 4 or 8, and layer sizes that are multiples of `32 / bits`.
    - `path`: the file to write (as `export_safetensors`).
    - `zero_format`: `"v1"` (what GPTQ checkpoints store: zero point minus one; AutoGPTQ, GPTQModel's `gptq`) or
      `"v2"` (the zero point itself). No default: the two cannot be told apart from the tensors.
    """
    from torch_backend.nn.compressions import Calibrated
    from torch_backend.nn.compressor import Compressor

    if not isinstance(compressor, Compressor) or compressor.model is not model or compressor.finalized:
        raise ValueError("export_gptq needs the model's own Compressor, not finalized")
    if zero_format not in ("v1", "v2"):
        raise ValueError(f"zero_format must be 'v1' or 'v2', got {zero_format!r}")
    path = _target(path)
    layers = {}
    for name, _, _, chain in compressor.compressed_tensors():
        if len(chain) != 1 or not isinstance(chain[0], Calibrated) or chain[0].algorithm != "gptq":
            raise ValueError(f"export_gptq: {name} is compressed by {[c.algorithm for c in chain]}, not gptq alone")
        c = chain[0]
        if c.options.get("scale_dtype") != "float16":
            raise ValueError(f"export_gptq: {name} was quantized with float32 scales; use scale_dtype = 'float16'")
        if not c.calibrated:
            raise ValueError(f"export_gptq: {name} is not calibrated: run calibrate() first")
        layers[name] = c
    if not layers:
        raise ValueError("export_gptq: the compressor has no gptq layers")
    files: dict[str, np.ndarray] = {}
    tensors: dict[str, dict] = {}
    configs = set()
    for name, tensor in effective_tensors(model):
        if name not in layers:
            tensors[name] = _dense(name, tensor, files)
            continue
        c = layers[name]
        bits = c.options["bits"]
        r = c.result(NUMPY)
        shift = 2 ** (bits - 1)
        if zero_format == "v1" and np.any(r["zero_point"] + shift == 0):
            raise ValueError(
                f"export_gptq: {name} has a group with zero point 0 on GPTQ's unsigned scale (all its weights >= 0), "
                f"which v1 cannot store (it holds the zero point minus one; AutoGPTQ writes -1 there and corrupts "
                f"the neighbouring fields): use zero_format='v2', or symmetric = true"
            )
        try:
            packed = NUMPY.gptq_pack((r["codes"] + shift).astype(np.uint8), r["scale"].astype(np.float16),
                                     (r["zero_point"] + shift).astype(np.int32), r["g_idx"], bits=bits,
                                     zero_format=zero_format)  # fmt: skip
        except (TypeError, ValueError) as exc:
            raise ValueError(f"export_gptq: {name}: {exc}") from None
        prefix = name.removesuffix(".weight")  # serving stacks read <module>.qweight, <module>.scales, ...
        for key, value in zip(("qweight", "qzeros", "scales", "g_idx"), packed, strict=True):
            files[f"{prefix}.{key}"] = value
        entry = {"dtype": _dtype_name(tensor), "shape": list(tensor.shape), "storage": "gptq", "bits": bits,
                 "zero_format": zero_format, "prefix": prefix}  # fmt: skip
        decoded = checkpoint.decode_gptq_tensor(name, entry, files, "export_gptq")
        if not same_bits(decoded, to_numpy(tensor)):
            raise ValueError(f"export_gptq: {name} does not decode to the weight the model uses")
        tensors[name] = entry
        g = tensor.shape[1] // r["scale"].shape[1]
        configs.add((bits, g, bool(c.options.get("act_order")), bool(c.options.get("symmetric"))))
    record = {"format": checkpoint.GPTQ_FORMAT, "schema": checkpoint.SCHEMA, "pqref": PQREF_VERSION,
              "semantics": SEMANTICS_VERSION, "tensors": tensors, "activations": {},
              "files": {k: _file_entry(v) for k, v in files.items()}}  # fmt: skip
    extra = {}
    if len(configs) == 1:
        bits, g, act, sym = configs.pop()
        extra["quantization_config"] = json.dumps({"quant_method": "gptq", "bits": bits, "group_size": g,
                                                   "desc_act": act, "sym": sym,
                                                   "checkpoint_format": "gptq" if zero_format == "v1" else "gptq_v2"})  # fmt: skip
    _write_atomically(path, _serialize(files, record, extra))
    return os.path.getsize(path)


def _target(path) -> Path:
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"path {str(path)!r} is a directory; give a file name such as model.safetensors")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ValueError(f"path {str(path)!r}: the folder {str(folder)!r} does not exist")
    if not os.access(folder, os.W_OK):
        raise PermissionError(f"path {str(path)!r}: the folder {str(folder)!r} is not writable")
    return path


def _build(model, compressor):
    chains = {}
    if compressor is not None:
        for name, module, tname, chain in compressor.compressed_tensors():
            chains[name] = (module, tname, chain)
    files: dict[str, np.ndarray] = {}
    tensors: dict[str, dict] = {}
    for name, tensor in effective_tensors(model):
        if name in chains:
            entry, parts = _compressed(name, tensor, *chains[name])
            if not same_bits(checkpoint.decode_tensor(name, entry, parts, "export"), to_numpy(tensor)):
                warnings.warn(
                    f"export: {name} cannot be stored exactly as codes ({entry['quant']['algorithm']}); it is stored "
                    f"dense",
                    stacklevel=3,
                )
            else:
                tensors[name] = entry
                files.update(parts)
                continue
        tensors[name] = _dense(name, tensor, files)
    acts = {}
    for mname, module in model.named_modules():
        q = activations.quantizer_of(module)
        if q is None:
            continue
        spec = q.export()
        keys = []
        for arg, value in spec["args"]:
            key = f"{mname}.{activations.ATTRIBUTE}.{arg}" if mname else f"{activations.ATTRIBUTE}.{arg}"
            files[key] = np.array(value, order="C", copy=True)
            keys.append(key)
        acts[mname] = {"algorithm": q.algorithm, "function": spec["function"], "args": keys, "kwargs": spec["kwargs"]}
    record = {
        "format": checkpoint.FORMAT,
        "schema": checkpoint.SCHEMA,
        "pqref": PQREF_VERSION,
        "semantics": SEMANTICS_VERSION,
        "tensors": tensors,
        "activations": acts,
        "files": {k: _file_entry(v) for k, v in files.items()},
    }
    return files, record


def _storable(t: torch.Tensor) -> np.ndarray:
    """A tensor as a NumPy array safetensors can hold: bfloat16 as its raw uint16 bits."""
    t = t.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(np.uint16).copy()
    return t.numpy().copy()


def _dtype_name(t: torch.Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")


def _dense(name, tensor, files) -> dict:
    files[name] = _storable(tensor)
    return {"dtype": _dtype_name(tensor), "shape": list(tensor.shape), "storage": "dense", "file": name}


def _compressed(name, tensor, module, tname, chain):
    """The record entry and file tensors of one compressed tensor (before the decode check)."""
    w = module.parametrizations[tname].original.detach()
    mask, encoded, setting = None, None, None
    for c in chain:
        keep = c.keep_mask()
        if keep is not None:
            mask = keep if mask is None else mask & keep
        codes = c.encode(TORCH, w.float(), c.state(TORCH))
        if codes is not None:
            encoded, setting = codes, c.describe()
        w = c(w)
    n = tensor.numel()
    keep = np.ones(n, dtype=bool) if mask is None else to_numpy(mask).reshape(-1)
    kept = int(keep.sum())
    files = {}
    entry = {"dtype": _dtype_name(tensor), "shape": list(tensor.shape), "storage": "compressed",
             "pruned": mask is not None, "kept": kept}  # fmt: skip
    if mask is not None:
        files[f"{name}.mask"] = NUMPY.pack_bits(keep.astype(np.uint8), 1)
    if encoded is None:
        files[f"{name}.values"] = _storable(tensor).reshape(-1)[keep]
        return entry, files
    codes = to_numpy(encoded.codes).astype(np.int64).reshape(-1)[keep] - encoded.qmin
    bits = encoded.bits
    files[f"{name}.codes"] = NUMPY.pack_bits(codes.astype(np.uint8 if bits <= 8 else np.uint16), bits)
    parts = {}
    for part, value in encoded.parts.items():
        files[f"{name}.{part}"] = np.array(to_numpy(value), order="C", copy=True)
        parts[part] = f"{name}.{part}"
    entry["quant"] = {
        "algorithm": setting["algorithm"],
        "settings": {k: v for k, v in setting.items() if k != "algorithm"},
        "decode": encoded.decode,
        "bits": bits,
        "qmin": encoded.qmin,
        "qmax": encoded.qmax,
        "parts": parts,
        "params": encoded.params,
    }
    return entry, files


def _file_entry(a: np.ndarray) -> dict:
    return {"dtype": a.dtype.name, "shape": list(a.shape), "sha256": hashlib.sha256(a.tobytes()).hexdigest()}


def _serialize(files, record, extra=None) -> bytes:
    from safetensors.numpy import save

    text = json.dumps(record)
    meta = {"pqref": text, "pqref_sha256": hashlib.sha256(text.encode()).hexdigest(), **(extra or {})}
    return save({k: np.array(v, order="C", copy=True) for k, v in files.items()}, metadata=meta)


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as for open()
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


__all__ = ["export_safetensors", "export_gptq", "load_safetensors", "effective_tensors", "Compression"]
