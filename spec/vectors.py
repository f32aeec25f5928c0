"""Versioned golden vectors: every registry entry's inputs and exact outputs, for checking other backends.

`export(directory)` writes `<entry>.npz` (every array of every vector) and `manifest.json` (the pqref and semantics
versions, and for each entry its file, the file's sha256 and, for each vector, the call's structure: which npz
arrays go where, and the plain Python values inline). Each entry contributes its golden vectors, its bad inputs
(with the expected exception type and message), and `examples` cases drawn from its Hypothesis strategy with a
fixed seed; those strategies aim at ties, signed zeros, subnormals, x.5 midpoints and saturation. `load(directory)`
checks everything it reads and returns the vectors as `Case`s.

The manifest, as JSON:

```text
{"pqref": "0.1.0", "semantics": "1",
 "entries": {"<entry name>": {"file": "<entry name>.npz", "sha256": "<64 hex digits>",
                              "vectors": [{"source": "golden" | "bad" | "generated",
                                           "args": <value>, "kwargs": <value>,
                                           "output": <value>  or  "error": {"type": "ValueError", "message": "..."}}]}}}
```

A `<value>` is a JSON number, string, boolean, null or list, or one of `{"$array": "<npz key>"}`,
`{"$tuple": [<value>, ...]}`, `{"$dict": {"<key>": <value>}}`, `{"$float": "nan" | "inf" | "-inf"}`. Manifests
written before the sha256 was recorded load without the check.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings

from spec import codepoints
from spec.entry import Case
from spec.registry import REGISTRY
from spec.version import PQREF_VERSION, SEMANTICS_VERSION

SOURCES = ("golden", "bad", "table", "generated")
JSONL_FORMAT = "pqref-jsonl/1"
ERROR_TYPES = ("TypeError", "ValueError")
DTYPE_KINDS = "biuf"  # bool, signed and unsigned integers, IEEE floats: all that pqref's functions take and return


class VectorsError(ValueError):
    """A vectors folder that cannot be written, or a manifest or `.npz` file that is not what `export` writes."""


def export(directory, examples: int = 20, names=None, *, force: bool = False, progress=None) -> dict:
    """Write the vectors of `names` (default: every entry) into `directory`; returns the manifest.

    **Arguments:**

    - `examples`: generated cases per entry (`>= 0`), besides its goldens and bad inputs.
    - `force`: write into a folder that already has files (files of the same names are replaced, others stay);
      without it such a folder is refused.
    - `progress`: called as `progress(done, total, name, vectors, seconds)` after each entry.

    !!! note
        Everything is checked, then computed, before anything is written: a bad argument or an unwritable path
        fails at once and changes nothing. The files are written into a temporary folder inside `directory` and
        then moved into place, `manifest.json` last; if writing fails, the folders this call created and its
        temporary files are removed again.
    """
    if isinstance(examples, bool) or not isinstance(examples, int) or examples < 0:
        raise VectorsError(f"examples must be an int >= 0, got {examples!r}")
    names = list(REGISTRY) if names is None else list(names)
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise VectorsError(f"unknown algorithm(s) {', '.join(map(repr, unknown))}; see `pqref list`")
    if len(set(names)) != len(names):
        raise VectorsError(f"an algorithm is named twice in {names}")
    out = Path(directory)
    _check_target(out, force)

    manifest = {"pqref": PQREF_VERSION, "semantics": SEMANTICS_VERSION, "entries": {},
                "jsonl": {"format": JSONL_FORMAT, "files": {}}}  # fmt: skip
    files = {}
    with np.errstate(all="ignore"):  # the strategies reach overflow on purpose; the reference's results are specified
        for k, name in enumerate(names):
            start = time.perf_counter()
            data, vectors, jsonl = _entry_vectors(REGISTRY[name], examples)
            files[f"{name}.npz"] = data
            files[f"{name}.jsonl"] = jsonl
            manifest["entries"][name] = {"file": f"{name}.npz", "sha256": hashlib.sha256(data).hexdigest(),
                                         "vectors": vectors}  # fmt: skip
            manifest["jsonl"]["files"][name] = {"file": f"{name}.jsonl", "sha256": hashlib.sha256(jsonl).hexdigest(),
                                                "cases": len(vectors)}  # fmt: skip
            if progress is not None:
                progress(k + 1, len(names), name, len(vectors), time.perf_counter() - start)
    files["manifest.json"] = json.dumps(manifest, indent=1).encode()
    _write(out, files)
    return manifest


def load(directory, *, semantics: str | None = SEMANTICS_VERSION):
    """`(manifest, {entry name: [(Case, expected output or None, expected error dict or None)]})` from an exported
    folder, everything checked.

    **Arguments:**

    - `semantics`: the semantics version the vectors must have (default: this pqref's); `None` accepts any.

    !!! note
        Raises `VectorsError` naming the file, the entry, the vector and the field for anything `export` would not
        have written: a missing or non-JSON manifest, a manifest of the wrong JSON type or with unknown fields,
        entries that are not in this pqref's registry, a file whose sha256 differs from the manifest's (a flipped
        byte), a truncated or garbage `.npz`, arrays that are missing, unused or of a dtype pqref never uses.
    """
    root = Path(directory)
    manifest = _read_manifest(root, semantics)
    out = {}
    for name, info in manifest["entries"].items():
        where = f"manifest.json, entry {name!r}"
        if name not in REGISTRY:
            raise VectorsError(f"{where}: no such algorithm in pqref {PQREF_VERSION} (see `pqref list`)")
        _fields(info, {"file": str, "vectors": list}, ("sha256",), where)
        out[name] = _load_entry(root, name, info, where)
    return manifest, out


# ---- export -------------------------------------------------------------------------------------------------


def _entry_vectors(entry, examples):
    """`(npz file bytes, vector records, JSON Lines file bytes)` of one entry."""
    arrays: dict[str, np.ndarray] = {}
    vectors, lines = [], []
    cases = [(g.case, "golden") for g in entry.golden] + [(b.case, "bad") for b in entry.bad]
    cases += [(c, "table") for c in codepoints.cases(entry.name)]
    cases += [(c, "generated") for c in _draw(entry, examples)]
    ref = entry.reference()
    for i, (case, source) in enumerate(cases):
        record = {"source": source, "args": _encode(case.args, arrays, f"v{i}_a"),
                  "kwargs": _encode(case.kwargs, arrays, f"v{i}_k")}  # fmt: skip
        line = {"algorithm": entry.name, "case": i, "source": source, "variant": variant(entry, case),
                "args": [to_json(a) for a in case.args], "kwargs": {k: to_json(v) for k, v in case.kwargs.items()}}  # fmt: skip
        try:
            output = case.call(ref)
        except (TypeError, ValueError) as exc:
            record["error"] = line["error"] = {"type": type(exc).__name__, "message": str(exc)}
        else:
            record["output"] = _encode(output, arrays, f"v{i}_o")
            line["expected"] = to_json(output)
        vectors.append(record)
        lines.append(json.dumps(line, separators=(",", ":")))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue(), vectors, ("\n".join(lines) + "\n").encode()


def _check_target(out: Path, force: bool) -> None:
    """Refuse a target that is a file, a non-empty folder (without `force`), or a path that cannot be created."""
    if out.exists():
        if not out.is_dir():
            raise VectorsError(f"{out} exists and is not a folder")
        present = sorted(p.name for p in out.iterdir())
        if present and not force:
            shown = ", ".join(present[:3]) + (", ..." if len(present) > 3 else "")
            raise VectorsError(
                f"{out} is not empty ({len(present)} entries: {shown}); export into a new or empty folder, "
                "or pass --force to replace files of the same names"
            )
        if not os.access(out, os.W_OK | os.X_OK):
            raise VectorsError(f"{out} is not writable")
        return
    parent = out.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise VectorsError(f"cannot create {out}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise VectorsError(f"cannot create {out}: {parent} is not writable")


def _write(out: Path, files: dict[str, bytes]) -> None:
    created = None
    top = out
    while not top.exists():
        created, top = top, top.parent
    try:
        out.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".pqref-export-", dir=out))
        try:
            for name, data in files.items():
                (tmp / name).write_bytes(data)
            for name in files:  # manifest.json last: a reader never sees it before its files
                os.replace(tmp / name, out / name)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        raise


def _draw(entry, n):
    found = []
    if n <= 0:
        return found

    @settings(max_examples=n, derandomize=True, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(entry.strategy())
    def collect(case):
        found.append(case)

    collect()
    return found[:n]


def _encode(value, arrays, prefix):
    if isinstance(value, np.ndarray | np.generic):
        key = f"{prefix}{len(arrays)}"
        arrays[key] = np.asarray(value)
        return {"$array": key}
    if isinstance(value, tuple):
        return {"$tuple": [_encode(v, arrays, prefix) for v in value]}
    if isinstance(value, list):
        return [_encode(v, arrays, prefix) for v in value]
    if isinstance(value, dict):
        return {"$dict": {k: _encode(v, arrays, prefix) for k, v in value.items()}}
    if isinstance(value, float) and not np.isfinite(value):
        return {"$float": repr(value)}
    return value


# ---- load ---------------------------------------------------------------------------------------------------


def _fields(value, required: dict, optional: tuple, where: str) -> None:
    """`value` is a JSON object with the `required` fields (of the given types), perhaps `optional` ones, no other."""
    if not isinstance(value, dict):
        raise VectorsError(f"{where} must be a JSON object, got {_json_type(value)}")
    for key, kind in required.items():
        if key not in value:
            raise VectorsError(f"{where}: the field {key!r} is missing")
        if not isinstance(value[key], kind):
            raise VectorsError(f"{where}: {key!r} must be a JSON {_json_name(kind)}, got {_json_type(value[key])}")
    unknown = [k for k in value if k not in required and k not in optional]
    if unknown:
        raise VectorsError(f"{where}: unknown field(s) {', '.join(map(repr, unknown))}")


def _load_entry(root: Path, name: str, info: dict, where: str):
    file = info["file"]
    if not file.endswith(".npz") or file in (".npz", "") or Path(file).name != file or file.startswith("."):
        raise VectorsError(f"{where}: 'file' must be a file name in the folder ending in .npz, got {file!r}")
    path = root / file
    if not path.is_file():
        raise VectorsError(f"{where}: {file} is missing from {root}")
    data = path.read_bytes()
    if "sha256" in info:
        want = info["sha256"]
        if not isinstance(want, str) or len(want) != 64 or any(c not in "0123456789abcdef" for c in want):
            raise VectorsError(f"{where}: 'sha256' must be 64 lowercase hex digits, got {want!r}")
        got = hashlib.sha256(data).hexdigest()
        if got != want:
            raise VectorsError(
                f"{file}: sha256 {got} differs from the manifest's {want}: the file was changed or damaged"
            )
    arrays = _read_npz(data, file)
    used: set[str] = set()
    rows = []
    for i, v in enumerate(info["vectors"]):
        at = f"{file.removesuffix('.npz')}: vector {i}"
        _fields(v, {"source": str, "args": object, "kwargs": object}, ("output", "error"), f"{where}, vector {i}")
        if v["source"] not in SOURCES:
            raise VectorsError(f"{at}: 'source' must be one of {SOURCES}, got {v['source']!r}")
        if ("output" in v) == ("error" in v):
            raise VectorsError(f"{at}: exactly one of 'output' and 'error' must be given")
        args = _decode(v["args"], arrays, used, f"{at}, args")
        kwargs = _decode(v["kwargs"], arrays, used, f"{at}, kwargs")
        if not isinstance(args, tuple):
            raise VectorsError(f"{at}: 'args' must be a {{\"$tuple\": [...]}}, got {_json_type(v['args'])}")
        if not isinstance(kwargs, dict):
            raise VectorsError(f"{at}: 'kwargs' must be a {{\"$dict\": {{...}}}}, got {_json_type(v['kwargs'])}")
        error = v.get("error")
        if error is not None:
            _fields(error, {"type": str, "message": str}, (), f"{at}, error")
            if error["type"] not in ERROR_TYPES:
                raise VectorsError(f"{at}: error type must be one of {ERROR_TYPES}, got {error['type']!r}")
        output = _decode(v["output"], arrays, used, f"{at}, output") if "output" in v else None
        rows.append((Case(args, kwargs), output, error))
    unused = sorted(set(arrays) - used)
    if unused:
        raise VectorsError(f"{file} has {len(unused)} array(s) the manifest does not use: {', '.join(unused[:3])}")
    return rows


def _read_npz(data: bytes, file: str) -> dict[str, np.ndarray]:
    try:
        npz = np.load(io.BytesIO(data), allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise VectorsError(f"{file} is a .npy array, not an .npz archive")
        with npz:
            arrays = {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as exc:
        if isinstance(exc, VectorsError):
            raise
        raise VectorsError(f"{file} is not a readable .npz file ({type(exc).__name__}: {exc})") from None
    for key, a in arrays.items():
        if a.dtype.kind not in DTYPE_KINDS or a.dtype.byteorder not in "=|" + ("<" if np.little_endian else ">"):
            raise VectorsError(f"{file}: array {key!r} has dtype {a.dtype.str}, which pqref's vectors never use")
    return arrays


def _decode(value, arrays, used, where):
    if isinstance(value, dict):
        if len(value) != 1:
            raise VectorsError(f"{where}: expected one of $array, $tuple, $dict, $float, got the object {value!r:.80}")
        ((tag, body),) = value.items()
        if tag == "$array":
            if not isinstance(body, str) or body not in arrays:
                raise VectorsError(f"{where}: array {body!r} is not in the .npz file")
            used.add(body)
            return arrays[body]
        if tag == "$tuple" and isinstance(body, list):
            return tuple(_decode(v, arrays, used, where) for v in body)
        if tag == "$dict" and isinstance(body, dict):
            return {k: _decode(v, arrays, used, where) for k, v in body.items()}
        if tag == "$float" and body in ("nan", "inf", "-inf"):
            return float(body)
        raise VectorsError(f"{where}: {tag!r} with {_json_type(body)} {body!r:.40} is not a value vectors encode")
    if isinstance(value, list):
        return [_decode(v, arrays, used, where) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        raise VectorsError(f'{where}: a bare {value!r} (non-finite floats are written as {{"$float": ...}})')
    return value


def _json_name(kind) -> str:
    return {str: "string", dict: "object", list: "array"}.get(kind, kind.__name__)


def _json_type(value) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


# ---- JSON Lines: the language-neutral format ----------------------------------------------------------------

JSON_DTYPES = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16",
               "float32", "float64")  # fmt: skip
MAX_JSON_INT = 2**53  # larger ints are written as {"int": "<decimal>"}: many JSON readers hold numbers as doubles
ONE_KEY_TAGS = ("array", "tuple", "dict", "float", "int")


def variant(entry, case) -> str:
    """The named variant of a call: its string and bool arguments (defaults filled in) as `name=value`, in the
    order of the function's parameters; `""` when it has none. `float_encode(x, "float8_e4m3fn")` is
    `fmt=float8_e4m3fn saturate=true rounding=half_even`."""
    import inspect

    try:
        bound = inspect.signature(entry.reference()).bind(*case.args, **case.kwargs)
    except TypeError:
        return "(unbound call)"
    bound.apply_defaults()
    parts = []
    for name, value in bound.arguments.items():
        if isinstance(value, bool):
            parts.append(f"{name}={'true' if value else 'false'}")
        elif isinstance(value, str):
            parts.append(f"{name}={value}")
    return " ".join(parts)


def to_json(value):
    """A Python / NumPy value as pqref-jsonl/1 JSON: arrays as `{"array": {"dtype", "shape", "hex"}}` with every
    element's bit pattern in hex, floats as `{"float": "<float64 bits>"}`, tuples and dicts tagged."""
    if isinstance(value, np.ndarray | np.generic):
        a = np.asarray(value)
        if a.dtype.name not in JSON_DTYPES:
            raise VectorsError(f"an array of dtype {a.dtype} cannot be written as pqref-jsonl/1")
        width = a.dtype.itemsize
        bits = (
            a.astype(a.dtype.newbyteorder("=")).reshape(-1).view(f"u{width}")
            if a.dtype.kind != "b"
            else a.reshape(-1).view(np.uint8)
        )
        return {"array": {"dtype": a.dtype.name, "shape": list(a.shape),
                          "hex": [format(int(b), f"0{2 * width}x") for b in bits.tolist()]}}  # fmt: skip
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value if abs(value) < MAX_JSON_INT else {"int": str(value)}
    if isinstance(value, float):
        return {"float": np.float64(value).view(np.uint64).item().to_bytes(8, "big").hex()}
    if isinstance(value, tuple):
        return {"tuple": [to_json(v) for v in value]}
    if isinstance(value, list):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {"dict": {str(k): to_json(v) for k, v in value.items()}}
    raise VectorsError(f"a {type(value).__name__} cannot be written as pqref-jsonl/1")


def from_json(value, where: str):
    """The inverse of `to_json`, checking everything: raises `VectorsError` naming `where` and the field."""
    if isinstance(value, dict):
        if len(value) != 1 or next(iter(value)) not in ONE_KEY_TAGS:
            keys = ", ".join(map(repr, value))
            raise VectorsError(
                f"{where}: an object must have exactly one of the keys {', '.join(ONE_KEY_TAGS)}; got {keys or 'none'}"
            )
        ((tag, body),) = value.items()
        if tag == "array":
            return _array_from_json(body, where)
        if tag == "tuple" and isinstance(body, list):
            return tuple(from_json(v, f"{where}[{i}]") for i, v in enumerate(body))
        if tag == "dict" and isinstance(body, dict):
            return {k: from_json(v, f"{where}.{k}") for k, v in body.items()}
        if tag == "float" and isinstance(body, str) and len(body) == 16 and _is_hex(body):
            return float(np.uint64(int(body, 16)).view(np.float64))
        if tag == "int" and isinstance(body, str) and body.lstrip("-").isdigit():
            return int(body)
        raise VectorsError(f"{where}: {{{tag!r}: {json.dumps(body)[:40]}}} is not a valid {tag}")
    if isinstance(value, list):
        return [from_json(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, float):
        raise VectorsError(
            f'{where}: a bare JSON number with a fraction or exponent ({value!r}); floats are written as {{"float": "<16 hex digits>"}}'
        )
    return value


def _is_hex(s: str) -> bool:
    return all(c in "0123456789abcdef" for c in s)


def _array_from_json(body, where):
    if not isinstance(body, dict) or set(body) != {"dtype", "shape", "hex"}:
        got = sorted(body) if isinstance(body, dict) else _json_type(body)
        raise VectorsError(f'{where}: an array must be {{"dtype", "shape", "hex"}}, got {got}')
    dtype, shape, digits = body["dtype"], body["shape"], body["hex"]
    if dtype not in JSON_DTYPES:
        raise VectorsError(f"{where}: dtype must be one of {', '.join(JSON_DTYPES)}; got {dtype!r}")
    if not isinstance(shape, list) or not all(type(n) is int and 0 <= n < 2**40 for n in shape):
        raise VectorsError(f"{where}: shape must be a list of ints >= 0, got {json.dumps(shape)[:60]}")
    n = int(np.prod(shape, dtype=np.int64))
    if not isinstance(digits, list) or len(digits) != n:
        got = len(digits) if isinstance(digits, list) else _json_type(digits)
        raise VectorsError(f"{where}: shape {tuple(shape)} needs {n} hex strings in 'hex', got {got}")
    width = np.dtype(dtype).itemsize
    for i, h in enumerate(digits):
        if not isinstance(h, str) or len(h) != 2 * width or not _is_hex(h):
            raise VectorsError(f"{where}: hex[{i}] must be {2 * width} lowercase hex digits (a {dtype}), got {h!r}")
    if dtype == "bool":
        raw = np.array([int(h, 16) for h in digits], dtype=np.uint8)
        if np.any(raw > 1):
            i = int(np.flatnonzero(raw > 1)[0])
            raise VectorsError(f"{where}: hex[{i}] of a bool must be 00 or 01, got {digits[i]!r}")
        return raw.astype(bool).reshape(shape)
    raw = np.array([int(h, 16) for h in digits], dtype=f"u{width}")
    return raw.view(dtype).reshape(shape)


class JsonCase(NamedTuple):
    """One line of a pqref-jsonl/1 vectors file."""

    algorithm: str
    index: int
    source: str
    variant: str
    case: Case
    expected: object  # the output, or None for an error case
    error: dict | None


def load_jsonl(directory, *, semantics: str | None = SEMANTICS_VERSION):
    """`(manifest, {entry name: [JsonCase]})` from the JSON Lines files of an exported folder, checked as `load`
    checks the `.npz` side: the manifest's `jsonl` section, each file's sha256, every line and field."""
    root = Path(directory)
    manifest = _read_manifest(root, semantics)
    if "jsonl" not in manifest:
        raise VectorsError(f"{root / 'manifest.json'} has no 'jsonl' section: export the vectors again with this pqref")
    section = manifest["jsonl"]
    _fields(section, {"format": str, "files": dict}, (), "manifest.json, 'jsonl'")
    if section["format"] != JSONL_FORMAT:
        raise VectorsError(f"manifest.json: jsonl format {section['format']!r} is not {JSONL_FORMAT!r}")
    out = {}
    for name, info in section["files"].items():
        where = f"manifest.json, jsonl file of {name!r}"
        if name not in REGISTRY:
            raise VectorsError(f"{where}: no such algorithm in pqref {PQREF_VERSION} (see `pqref list`)")
        _fields(info, {"file": str, "sha256": str, "cases": int}, (), where)
        data = _checked_file(root, info, ".jsonl", where)
        rows = []
        for k, text in enumerate(_lines(data, info["file"])):
            at = f"{info['file']}, line {k + 1}"
            rec = _json_line(text, at)
            _fields(rec, {"algorithm": str, "case": int, "source": str, "variant": str, "args": list, "kwargs": dict},
                    ("expected", "error"), at)  # fmt: skip
            if rec["algorithm"] != name or rec["case"] != k:
                raise VectorsError(
                    f"{at}: expected algorithm {name!r}, case {k}; got {rec['algorithm']!r}, case {rec['case']}"
                )
            if rec["source"] not in SOURCES:
                raise VectorsError(f"{at}: 'source' must be one of {SOURCES}, got {rec['source']!r}")
            if ("expected" in rec) == ("error" in rec):
                raise VectorsError(f"{at}: exactly one of 'expected' and 'error' must be given")
            error = rec.get("error")
            if error is not None:
                _fields(error, {"type": str, "message": str}, (), f"{at}, error")
            args = tuple(from_json(a, f"{at}, args[{i}]") for i, a in enumerate(rec["args"]))
            kwargs = {key: from_json(v, f"{at}, kwargs.{key}") for key, v in rec["kwargs"].items()}
            expected = from_json(rec["expected"], f"{at}, expected") if "expected" in rec else None
            rows.append(JsonCase(name, k, rec["source"], rec["variant"], Case(args, kwargs), expected, error))
        if len(rows) != info["cases"]:
            raise VectorsError(f"{info['file']} has {len(rows)} cases, the manifest says {info['cases']}")
        out[name] = rows
    return manifest, out


def _read_manifest(root: Path, semantics):
    if not root.is_dir():
        raise VectorsError(f"{root} is not a folder" if root.exists() else f"{root} does not exist")
    path = root / "manifest.json"
    if not path.is_file():
        raise VectorsError(f"{root} has no manifest.json (write one with `pqref vectors export {root}`)")
    manifest = _json_document(path.read_bytes(), str(path))
    _fields(manifest, {"pqref": str, "semantics": str, "entries": dict}, ("jsonl",), "manifest.json")
    if semantics is not None and manifest["semantics"] != semantics:
        raise VectorsError(
            f"{path}: the vectors pin semantics {manifest['semantics']!r}, this pqref pins semantics {semantics!r}; "
            "export them again with this pqref (see the changelog for what changed)"
        )
    return manifest


def _json_document(data: bytes, where: str):
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise VectorsError(f"{where} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise VectorsError(f"{where} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None


def _json_line(text: str, where: str):
    try:
        return json.loads(text, parse_constant=lambda c: _bad_constant(c, where))
    except json.JSONDecodeError as exc:
        raise VectorsError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None


def _bad_constant(constant, where):
    raise VectorsError(f'{where}: {constant} is not JSON; write floats as {{"float": "<16 hex digits>"}}')


def _lines(data: bytes, file: str) -> list[str]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise VectorsError(f"{file} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return [line for line in text.splitlines() if line.strip()]


def _checked_file(root: Path, info: dict, suffix: str, where: str) -> bytes:
    file = info["file"]
    if not file.endswith(suffix) or Path(file).name != file or file.startswith("."):
        raise VectorsError(f"{where}: 'file' must be a file name in the folder ending in {suffix}, got {file!r}")
    path = root / file
    if not path.is_file():
        raise VectorsError(f"{where}: {file} is missing from {root}")
    data = path.read_bytes()
    want = info["sha256"]
    if not isinstance(want, str) or len(want) != 64 or not _is_hex(want):
        raise VectorsError(f"{where}: 'sha256' must be 64 lowercase hex digits, got {want!r}")
    got = hashlib.sha256(data).hexdigest()
    if got != want:
        raise VectorsError(f"{file}: sha256 {got} differs from the manifest's {want}: the file was changed or damaged")
    return data


# ---- checking results computed elsewhere ----------------------------------------------------------------------


def read_results(path) -> dict[tuple[str, int], dict]:
    """`{(algorithm, case): {"output": value} or {"error": {...}}}` from a results file, or from every `.jsonl`
    file of a results folder. Each line is `{"algorithm", "case", "output"}` or `{"algorithm", "case",
    "error": {"type"[, "message"]}}`; everything is checked, a case given twice is an error."""
    path = Path(path)
    if not path.exists():
        raise VectorsError(f"{path} does not exist")
    files = sorted(p for p in path.glob("*.jsonl")) if path.is_dir() else [path]
    if not files:
        raise VectorsError(f"{path} has no .jsonl files")
    out: dict[tuple[str, int], dict] = {}
    for file in files:
        for k, text in enumerate(_lines(file.read_bytes(), str(file))):
            at = f"{file}, line {k + 1}"
            rec = _json_line(text, at)
            _fields(rec, {"algorithm": str, "case": int}, ("output", "error"), at)
            if ("output" in rec) == ("error" in rec):
                raise VectorsError(f"{at}: exactly one of 'output' and 'error' must be given")
            key = (rec["algorithm"], rec["case"])
            if key in out:
                raise VectorsError(f"{at}: case {rec['case']} of {rec['algorithm']!r} is given twice")
            if "error" in rec:
                _fields(rec["error"], {"type": str}, ("message",), f"{at}, error")
                out[key] = {"error": rec["error"], "at": at}
            else:
                out[key] = {"output": from_json(rec["output"], f"{at}, output"), "at": at}
    return out


@dataclass
class Group:
    """What `check` found for one algorithm and variant."""

    algorithm: str
    variant: str
    cases: int = 0
    checked: int = 0
    mismatches: int = 0
    missing: int = 0
    failures: list[str] = field(default_factory=list)


def check(directory, results, *, names=None, keep: int = 1) -> tuple[list[Group], list[str]]:
    """Compare results computed elsewhere with exported vectors, bit for bit.

    Returns `(groups, unknown)`: one `Group` per algorithm and variant that has at least one result (a variant
    without any result is one the implementation does not claim), and the algorithms of `names` (default: every
    one exported) with no result at all.

    !!! note
        A result for a case the vectors do not have is an error (`VectorsError`), so is an unreadable line.
        An output must have the expected dtype, shape and bits; an error must have the expected type, and the
        expected message when the result gives one.
    """
    from spec.conformance import Mismatch, same_bits

    _, loaded = load_jsonl(directory)
    got = read_results(results)
    names = list(loaded) if names is None else list(names)
    for name in names:
        if name not in loaded:
            raise VectorsError(f"{directory} has no vectors for {name!r}")
    for (algorithm, index), r in got.items():
        if algorithm not in loaded or not 0 <= index < len(loaded[algorithm]):
            raise VectorsError(f"{r['at']}: {directory} has no case {index} of {algorithm!r}")
    groups: dict[tuple[str, str], Group] = {}
    claimed = {(a, loaded[a][i].variant) for a, i in got if a in names}
    unknown = [n for n in names if not any(a == n for a, _ in claimed)]
    for name in names:
        for row in loaded[name]:
            if (name, row.variant) not in claimed:
                continue
            g = groups.setdefault((name, row.variant), Group(name, row.variant))
            g.cases += 1
            r = got.get((name, row.index))
            if r is None:
                g.missing += 1
                continue
            g.checked += 1
            try:
                if row.error is not None:
                    e = r.get("error")
                    if e is None:
                        raise Mismatch(f"expected {row.error['type']}: {row.error['message']}, got an output")
                    if e["type"] != row.error["type"] or e.get("message", row.error["message"]) != row.error["message"]:
                        shown = e["type"] + (f": {e['message']}" if "message" in e else "")
                        raise Mismatch(f"expected {row.error['type']}: {row.error['message']}, got {shown}")
                elif "error" in r:
                    raise Mismatch(f"expected an output, got {r['error']['type']}: {r['error'].get('message', '')}")
                else:
                    same_bits(row.expected, r["output"], "output")
            except Mismatch as exc:
                g.mismatches += 1
                if len(g.failures) < keep:
                    g.failures.append(f"case {row.index} ({row.source}): {row.case.repro(name)}\n      {exc}")
    return list(groups.values()), unknown
