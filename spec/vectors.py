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
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings

from spec.entry import Case
from spec.registry import REGISTRY
from spec.version import PQREF_VERSION, SEMANTICS_VERSION

SOURCES = ("golden", "bad", "generated")
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

    manifest = {"pqref": PQREF_VERSION, "semantics": SEMANTICS_VERSION, "entries": {}}
    files = {}
    with np.errstate(all="ignore"):  # the strategies reach overflow on purpose; the reference's results are specified
        for k, name in enumerate(names):
            start = time.perf_counter()
            data, vectors = _entry_vectors(REGISTRY[name], examples)
            files[f"{name}.npz"] = data
            manifest["entries"][name] = {"file": f"{name}.npz", "sha256": hashlib.sha256(data).hexdigest(),
                                         "vectors": vectors}  # fmt: skip
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
    if not root.is_dir():
        raise VectorsError(f"{root} is not a folder" if root.exists() else f"{root} does not exist")
    path = root / "manifest.json"
    if not path.is_file():
        raise VectorsError(f"{root} has no manifest.json (write one with `pqref vectors export {root}`)")
    try:
        manifest = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise VectorsError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise VectorsError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    _fields(manifest, {"pqref": str, "semantics": str, "entries": dict}, (), "manifest.json")
    if semantics is not None and manifest["semantics"] != semantics:
        raise VectorsError(
            f"{path}: the vectors pin semantics {manifest['semantics']!r}, this pqref pins semantics {semantics!r}; "
            "export them again with this pqref (see the changelog for what changed)"
        )
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
    """`(npz file bytes, vector records)` of one entry."""
    arrays: dict[str, np.ndarray] = {}
    vectors = []
    cases = [(g.case, "golden") for g in entry.golden] + [(b.case, "bad") for b in entry.bad]
    cases += [(c, "generated") for c in _draw(entry, examples)]
    ref = entry.reference()
    for i, (case, source) in enumerate(cases):
        record = {"source": source, "args": _encode(case.args, arrays, f"v{i}_a"),
                  "kwargs": _encode(case.kwargs, arrays, f"v{i}_k")}  # fmt: skip
        try:
            record["output"] = _encode(case.call(ref), arrays, f"v{i}_o")
        except (TypeError, ValueError) as exc:
            record["error"] = {"type": type(exc).__name__, "message": str(exc)}
        vectors.append(record)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue(), vectors


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
