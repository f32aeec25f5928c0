r"""Read a model exported by `torch_backend.nn.export_safetensors`, with NumPy and the reference alone (no torch).

The file is a standard safetensors file (an 8-byte little-endian header length, a JSON header, the raw tensor
bytes); pqref's record of the model sits in the header's `__metadata__` under `"pqref"` (JSON), with its sha256
under `"pqref_sha256"`. The record (schema 1) has:

- `"tensors"`: for every tensor of the model, under the name a plain `state_dict` has (`"3.weight"`): its `dtype`
  and `shape`, and either `"storage": "dense"` (the file tensor `file` holds it) or `"storage": "compressed"`:
  `pruned` (then `<name>.mask` holds the mask, packed 1 bit per element by `pack_bits`), `kept` (the number of
  kept elements) and either `quant` (the integer codes of the kept elements in `<name>.codes`, stored as
  `code - qmin` in `bits` bits each by `pack_bits`, decoded by the reference function `decode` with the file
  tensors named in `parts`) or, unquantized, the kept values in `<name>.values`.
- `"activations"`: for every quantized module output, the reference function (`fake_quantize` or
  `pact_quantize`), its array arguments (file tensors) and its plain arguments.
- `"files"`: every file tensor's dtype, shape and sha256.

Decoding is `dequantize` (or `codebook_decode`) of the codes, `+0.0` where the mask prunes, then the dtype rule of
the training layer: float16 and bfloat16 tensors are rounded from the float32 result (ties to even), float64 ones
widened. The result is bit-identical to the tensor the torch model used. bfloat16 tensors are stored as their raw
16-bit patterns (safetensors dtype `U16`, NumPy has no bfloat16) and returned as `ml_dtypes.bfloat16`.

**Everything is checked before a value is returned**: the header's dtypes, shapes and byte ranges against the
record, every file tensor's sha256 (a flipped data byte fails), the record's own sha256 (an edited record fails),
every field against the others (algorithm, bit width and code range; code and mask byte lengths; the number of
kept elements; the shapes of scales and zero points), and that every file tensor is accounted for. Any
inconsistency raises `CheckpointError` naming the tensor and the field.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from pathlib import Path

import numpy as np

import reference

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "load_safetensors",
    "load_gptq",
    "decode_tensor",
    "SCHEMA",
    "FORMAT",
    "GPTQ_FORMAT",
]

FORMAT = "pqref-safetensors"
GPTQ_FORMAT = "pqref-gptq"  # the GPTQ checkpoint layout (qweight, qzeros, scales, g_idx), see load_gptq
SCHEMA = 1
# safetensors dtype codes <-> NumPy dtypes (bfloat16 travels as U16 raw bits)
SAFETENSORS_DTYPES = {
    "F64": "float64", "F32": "float32", "F16": "float16", "I64": "int64", "I32": "int32", "I16": "int16",
    "I8": "int8", "U64": "uint64", "U32": "uint32", "U16": "uint16", "U8": "uint8", "BOOL": "bool",
}  # fmt: skip
MODEL_DTYPES = ("float32", "float16", "bfloat16", "float64", "int64", "int32", "int16", "int8", "uint8", "bool")
# the decoders a record may name, and for each quantizing algorithm its code range from its own parameters
DECODERS = ("dequantize", "codebook_decode")
ACTIVATION_FUNCTIONS = ("fake_quantize", "pact_quantize")
MAX_HEADER = 100 * 2**20


class CheckpointError(ValueError):
    """A file is not a valid pqref export; the message names the file, the tensor and the field."""


class Checkpoint(dict):
    """The model's tensors by `state_dict` name (NumPy arrays), plus `activations`: for each module whose output
    was quantized, `{"function", "args", "kwargs"}` for the reference call (see `quantize_activation`)."""

    def __init__(self, tensors, activations, record):
        super().__init__(tensors)
        self.activations = activations
        self.record = record

    def quantize_activation(self, module: str, x: np.ndarray) -> np.ndarray:
        """The fake quantization the exported model applies to `module`'s output `x` (eval mode), with the
        reference; a non-float32 `x` is computed in float32 and cast back, as in training."""
        if module not in self.activations:
            known = ", ".join(map(repr, self.activations)) or "none"
            raise KeyError(f"no activation quantizer on module {module!r} (quantized outputs: {known})")
        spec = self.activations[module]
        fn = getattr(reference, spec["function"])
        x = np.asarray(x)
        y = fn(x.astype(np.float32), *spec["args"], **spec["kwargs"])
        return y if x.dtype == np.float32 else y.astype(x.dtype)


def load_safetensors(path) -> Checkpoint:
    """Every tensor of an exported model, reconstructed and checked with NumPy and the reference alone.

    **Arguments:**

    - `path`: a file written by `torch_backend.nn.export_safetensors`.

    **Returns:**

    A `Checkpoint`: a dict from `state_dict` names to NumPy arrays (bit-identical to the tensors the torch model
    used), with `.activations` and `.quantize_activation(module, x)` for the quantized outputs.

    !!! note
        Raises `CheckpointError` (a `ValueError`) for anything inconsistent, naming the tensor and field; nothing
        is returned from a file that fails a check.
    """
    files, record = read(path)
    where = str(path)
    tensors = {}
    for name, entry in _field(record, "tensors", dict, where).items():
        tensors[name] = decode_tensor(name, entry, files, where)
    acts = {}
    for module, spec in _field(record, "activations", dict, where).items():
        acts[module] = _activation(module, spec, files, where)
    return Checkpoint(tensors, acts, record)


def load_gptq(path) -> Checkpoint:
    """A model exported in GPTQ's checkpoint layout (`torch_backend.nn.export_gptq`), decoded with NumPy alone.

    Every GPTQ-quantized `Linear` is stored as GPTQ checkpoints store it (`<module>.qweight`, `<module>.qzeros`,
    `<module>.scales` in float16, `<module>.g_idx`; see `reference.codecs.gptq`), with its bit width and zero-point
    convention (`"v1"` or `"v2"`) in the record; every other tensor is stored dense. The header's
    `quantization_config` says the same for other readers. Decoding is `gptq_decode` (then the model's dtype), and
    every field is checked as in `load_safetensors`.

    **Returns:**

    A `Checkpoint` of every tensor under its plain `state_dict` name, bit for bit what the exported model used.
    """
    files, record = read(path, GPTQ_FORMAT)
    where = str(path)
    tensors = {}
    for name, entry in _field(record, "tensors", dict, where).items():
        if isinstance(entry, dict) and entry.get("storage") == "gptq":
            tensors[name] = decode_gptq_tensor(name, entry, files, where)
        else:
            tensors[name] = decode_tensor(name, entry, files, where)
    return Checkpoint(tensors, {}, record)


def decode_gptq_tensor(name, entry, files, where="checkpoint") -> np.ndarray:
    """One GPTQ-layout tensor from its record entry and the file tensors (`gptq_decode`, then its dtype)."""
    at = f"{where}: tensor {name!r}"
    dtype = _field(entry, "dtype", str, at)
    if dtype not in ("float32", "float16", "bfloat16", "float64"):
        raise CheckpointError(f"{at}: field 'dtype' {dtype!r} is not a floating-point dtype")
    shape = _shape(entry, at)
    bits, zero_format = _field(entry, "bits", int, at), _field(entry, "zero_format", str, at)
    prefix = _field(entry, "prefix", str, at)
    parts = [files.get(f"{prefix}.{k}") for k in ("qweight", "qzeros", "scales", "g_idx")]
    if any(p is None for p in parts):
        raise CheckpointError(f"{at}: the file lacks one of {prefix}.qweight, .qzeros, .scales, .g_idx")
    w = _call(reference.gptq_decode, at, "gptq", *parts, bits=bits, zero_format=zero_format)
    if w.shape != shape:
        raise CheckpointError(f"{at}: field 'shape' is {list(shape)} but the GPTQ tensors decode to {list(w.shape)}")
    return _as_dtype(_from_float32(w, dtype), dtype)


def read(path, format=FORMAT):
    """`(file tensors by name, record)` of a pqref safetensors file of `format`, after the file-level checks."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) < 8:
        raise CheckpointError(f"{path}: {len(data)} bytes is too short for a safetensors file")
    (n,) = struct.unpack("<Q", data[:8])
    if n > min(MAX_HEADER, len(data) - 8):
        raise CheckpointError(f"{path}: header length {n} does not fit the file ({len(data)} bytes): not safetensors")
    try:
        header = json.loads(data[8 : 8 + n])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: the safetensors header is not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: the safetensors header must be a JSON object")
    meta = header.pop("__metadata__", None)
    if not isinstance(meta, dict) or "pqref" not in meta:
        raise CheckpointError(
            f"{path}: no pqref record (__metadata__.pqref): not a pqref export, or its metadata was removed"
        )
    text = meta["pqref"]
    digest = meta.get("pqref_sha256")
    if not isinstance(text, str) or hashlib.sha256(text.encode()).hexdigest() != digest:
        raise CheckpointError(f"{path}: the pqref record does not match its sha256 (__metadata__.pqref_sha256)")
    record = json.loads(text)
    if not isinstance(record, dict) or record.get("format") != format:
        raise CheckpointError(f"{path}: the record's format is {record.get('format')!r}, expected {format!r}")
    if record.get("schema") != SCHEMA:
        raise CheckpointError(f"{path}: record schema {record.get('schema')!r}; this reader reads schema {SCHEMA}")
    listed = _field(record, "files", dict, str(path))
    extra = sorted(set(header) - set(listed))
    if extra:
        raise CheckpointError(f"{path}: tensor(s) {extra} in the file are not in its pqref record")
    missing = sorted(set(listed) - set(header))
    if missing:
        raise CheckpointError(f"{path}: tensor(s) {missing} of the pqref record are missing from the file")
    body = memoryview(data)[8 + n :]
    files = {}
    for key, want in listed.items():
        files[key] = _file_tensor(path, key, header[key], want, body)
    return files, record


def _file_tensor(path, key, info, want, body):
    where = f"{path}: file tensor {key!r}"
    if not isinstance(info, dict) or not isinstance(want, dict):
        raise CheckpointError(f"{where}: malformed header or record entry")
    dtype = SAFETENSORS_DTYPES.get(info.get("dtype"))
    if dtype is None or dtype != want.get("dtype"):
        raise CheckpointError(
            f"{where}: field 'dtype' is {info.get('dtype')!r} in the header, {want.get('dtype')!r} in the record"
        )
    shape = info.get("shape")
    if shape != want.get("shape") or not all(isinstance(s, int) and s >= 0 for s in shape):
        raise CheckpointError(f"{where}: field 'shape' is {shape!r} in the header, {want.get('shape')!r} in the record")
    offsets = info.get("data_offsets")
    size = math.prod(shape) * np.dtype(dtype).itemsize
    if (
        not isinstance(offsets, list) or len(offsets) != 2 or not all(isinstance(o, int) for o in offsets)
        or not 0 <= offsets[0] <= offsets[1] <= len(body) or offsets[1] - offsets[0] != size
    ):  # fmt: skip
        raise CheckpointError(f"{where}: field 'data_offsets' {offsets!r} does not hold {size} bytes in the file")
    raw = bytes(body[offsets[0] : offsets[1]])
    if hashlib.sha256(raw).hexdigest() != want.get("sha256"):
        raise CheckpointError(f"{where}: its bytes do not match the record's sha256 (the data changed)")
    return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype).reshape(shape)


def decode_tensor(name, entry, files, where="checkpoint") -> np.ndarray:
    """One model tensor from its record entry and the file tensors, every field checked."""
    at = f"{where}: tensor {name!r}"
    if not isinstance(entry, dict):
        raise CheckpointError(f"{at}: its record entry must be an object")
    dtype = _field(entry, "dtype", str, at)
    if dtype not in MODEL_DTYPES:
        raise CheckpointError(f"{at}: field 'dtype' {dtype!r} is not one of {', '.join(MODEL_DTYPES)}")
    shape = _shape(entry, at)
    n = math.prod(shape)
    storage = _field(entry, "storage", str, at)
    if storage == "dense":
        return _as_dtype(_stored(files, _field(entry, "file", str, at), dtype, list(shape), at), dtype)
    if storage != "compressed":
        raise CheckpointError(f"{at}: field 'storage' is {storage!r}, expected 'dense' or 'compressed'")
    if dtype not in ("float32", "float16", "bfloat16", "float64"):
        raise CheckpointError(f"{at}: a compressed tensor must be floating point, field 'dtype' is {dtype!r}")
    kept = _field(entry, "kept", int, at)
    if _field(entry, "pruned", bool, at):
        packed = _stored(files, f"{name}.mask", "uint8", [(n + 7) // 8], at)
        keep = _call(reference.unpack_bits, at, "mask", packed, 1, n).astype(bool)
    else:
        keep = np.ones(n, dtype=bool)
    if int(keep.sum()) != kept:
        raise CheckpointError(f"{at}: field 'kept' is {kept} but the mask keeps {int(keep.sum())} of {n}")
    quant = entry.get("quant")
    if quant is None:
        values = _stored(files, f"{name}.values", dtype, [kept], at)
        out = np.zeros(n, dtype=values.dtype)
        out[keep] = values
        return _as_dtype(out, dtype).reshape(shape)
    decoded = _dequantized(name, quant, files, keep, shape, at)
    return _as_dtype(_from_float32(np.where(keep, decoded, np.float32(0)), dtype), dtype).reshape(shape)


def _dequantized(name, q, files, keep, shape, at):
    if not isinstance(q, dict):
        raise CheckpointError(f"{at}: field 'quant' must be an object")
    decode = _field(q, "decode", str, f"{at} quant")
    if decode not in DECODERS:
        raise CheckpointError(f"{at}: field 'quant.decode' {decode!r} is not one of {', '.join(DECODERS)}")
    bits, qmin, qmax = (_field(q, k, int, f"{at} quant") for k in ("bits", "qmin", "qmax"))
    if not (1 <= bits <= 16 and qmin <= qmax and max(1, math.ceil(math.log2(qmax - qmin + 1))) == bits):
        raise CheckpointError(f"{at}: fields 'quant.bits' {bits}, 'qmin' {qmin}, 'qmax' {qmax} are inconsistent")
    _check_range(q, bits, qmin, qmax, at)
    n, kept = keep.size, int(keep.sum())
    packed = _stored(files, f"{name}.codes", "uint8", [(kept * bits + 7) // 8], at)
    stored = _call(reference.unpack_bits, at, "codes", packed, bits, kept).astype(np.int64)
    if np.any(stored > qmax - qmin):
        raise CheckpointError(f"{at}: field 'codes' holds a code above qmax - qmin = {qmax - qmin}")
    codes = np.full(n, qmin, dtype=np.int64)
    codes[keep] = stored + qmin
    codes = codes.reshape(shape)
    parts = _field(q, "parts", dict, f"{at} quant")
    params = _field(q, "params", dict, f"{at} quant")
    if decode == "dequantize":
        if set(parts) - {"g_idx"} != {"scale", "zero_point"} or set(params) != {"axis", "group_size"}:
            raise CheckpointError(f"{at}: 'dequantize' needs parts scale, zero_point and params axis, group_size")
        scale = _stored(files, parts["scale"], "float32", None, at)
        zero_point = _stored(files, parts["zero_point"], "int32", None, at)
        codes = codes.astype(np.int32)
        order = None
        if "g_idx" in parts:  # groups of any columns (GPTQ's act-order): gather each group's columns together
            order = _group_order(_stored(files, parts["g_idx"], "int32", None, at), codes, params, at)
            codes = codes[:, order]
        out = _call(reference.dequantize, at, "quant", codes, scale, zero_point, **params)
        if order is not None:
            out = out[:, np.argsort(order, kind="stable")]
    else:
        if set(parts) != {"codebook"} or params:
            raise CheckpointError(f"{at}: 'codebook_decode' needs the part codebook and no params")
        codebook = _stored(files, parts["codebook"], "float32", None, at)
        if qmin != 0 or qmax >= codebook.size:
            raise CheckpointError(f"{at}: codes [{qmin}, {qmax}] do not index a codebook of {codebook.size}")
        out = _call(reference.codebook_decode, at, "quant", codes.astype(np.uint8), codebook)
    return out.reshape(-1)


def _group_order(g_idx, codes, params, at):
    """The column order that makes each group of `g_idx` contiguous (groups of `group_size` columns along axis 1)."""
    g = params.get("group_size")
    if codes.ndim != 2 or params.get("axis") != 1 or not isinstance(g, int) or g < 1 or codes.shape[1] % g:
        raise CheckpointError(f"{at}: 'g_idx' needs 2-D codes grouped along axis 1 by a group_size that divides them")
    groups = codes.shape[1] // g
    valid = g_idx.shape == (codes.shape[1],) and g_idx.size and 0 <= g_idx.min() and g_idx.max() < groups
    if not valid or np.bincount(g_idx, minlength=groups).tolist() != [g] * groups:
        raise CheckpointError(f"{at}: field 'g_idx' must give each of the {groups} groups {g} columns")
    return np.argsort(g_idx, kind="stable")


def _check_range(q, bits, qmin, qmax, at):
    """The code range the algorithm's own parameters imply."""
    algorithm = _field(q, "algorithm", str, f"{at} quant")
    settings = _field(q, "settings", dict, f"{at} quant")
    if algorithm == "affine":
        want = _call(
            reference.integer_range, at, "quant.settings", settings.get("bits"), True, settings.get("symmetric")
        )
    elif algorithm == "lsq":
        b = settings.get("bits")
        want = (-(2 ** (b - 1)), 2 ** (b - 1) - 1) if isinstance(b, int) else None
    elif algorithm in ("twn", "xnor"):
        want = (-1, 1)
    elif algorithm == "ttq":
        want = (0, 2)
    elif algorithm in ("gptq", "sparsegpt", "awq", "rotation", "adaround"):
        want = _call(reference.integer_range, at, "quant.settings", settings.get("bits"), True,
                     settings.get("symmetric", False))  # fmt: skip
    elif algorithm == "smoothquant":  # symmetric, narrow range
        want = _call(reference.integer_range, at, "quant.settings", settings.get("bits"), True, True)
    else:
        raise CheckpointError(f"{at}: field 'quant.algorithm' {algorithm!r} is not a pqref weight quantizer")
    if tuple(want or ()) != (qmin, qmax):
        raise CheckpointError(
            f"{at}: fields 'quant.qmin' {qmin} and 'qmax' {qmax} disagree with {algorithm} {settings} ({want})"
        )


def _activation(module, spec, files, where):
    at = f"{where}: activation quantizer of module {module!r}"
    if not isinstance(spec, dict):
        raise CheckpointError(f"{at}: its record entry must be an object")
    function = _field(spec, "function", str, at)
    if function not in ACTIVATION_FUNCTIONS:
        raise CheckpointError(f"{at}: field 'function' {function!r} is not one of {', '.join(ACTIVATION_FUNCTIONS)}")
    args = [_stored(files, key, None, None, at) for key in _field(spec, "args", list, at)]
    kwargs = _field(spec, "kwargs", dict, at)
    fn = getattr(reference, function)
    _call(fn, at, "args", np.zeros(1, dtype=np.float32), *args, **kwargs)  # the arguments are valid
    return {"function": function, "args": args, "kwargs": kwargs, "algorithm": spec.get("algorithm")}


def _stored(files, key, dtype, shape, at):
    if not isinstance(key, str) or key not in files:
        raise CheckpointError(f"{at}: the file has no tensor {key!r}")
    a = files[key]
    want = "uint16" if dtype == "bfloat16" else dtype
    if want is not None and a.dtype.name != want:
        raise CheckpointError(f"{at}: file tensor {key!r} has dtype {a.dtype.name}, expected {want}")
    if shape is not None and list(a.shape) != list(shape):
        raise CheckpointError(f"{at}: file tensor {key!r} has shape {list(a.shape)}, expected {list(shape)}")
    return a


def _as_dtype(a, dtype):
    if dtype == "bfloat16":
        import ml_dtypes

        return a.view(ml_dtypes.bfloat16) if a.dtype == np.uint16 else a.astype(ml_dtypes.bfloat16)
    return a


def _from_float32(a, dtype):
    if dtype == "bfloat16":
        import ml_dtypes

        return a.astype(ml_dtypes.bfloat16)
    return a.astype(dtype)


def _field(obj, key, kind, at):
    value = obj.get(key) if isinstance(obj, dict) else None
    if kind is int and isinstance(value, bool):
        value = None
    if not isinstance(value, kind):
        raise CheckpointError(f"{at}: field {key!r} must be {kind.__name__}, got {value!r}")
    return value


def _shape(entry, at):
    shape = entry.get("shape")
    if not isinstance(shape, list) or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape):
        raise CheckpointError(f"{at}: field 'shape' must be a list of ints >= 0, got {shape!r}")
    return tuple(shape)


def _call(fn, at, fieldname, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{at}: field {fieldname!r}: {exc}") from None
