"""Versioned golden vectors: every registry entry's inputs and exact outputs, for checking other backends.

`export(directory)` writes `<entry>.npz` (every array of every vector) and `manifest.json` (the pqref and semantics
versions, and for each vector the call's structure: which npz arrays go where, and the plain Python values
inline). Each entry contributes its golden vectors, its bad inputs (with the expected exception type and
message), and `examples` cases drawn from its Hypothesis strategy with a fixed seed; those strategies aim at ties,
signed zeros, subnormals, x.5 midpoints and saturation. `load(directory)` reads them back as `Case`s.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings

from spec.entry import Case
from spec.registry import REGISTRY
from spec.version import PQREF_VERSION, SEMANTICS_VERSION


def export(directory, examples: int = 20, names=None) -> dict:
    """Write the vectors of `names` (default: every entry) into `directory`; returns the manifest."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    manifest = {"pqref": PQREF_VERSION, "semantics": SEMANTICS_VERSION, "entries": {}}
    for name in names or list(REGISTRY):
        entry = REGISTRY[name]
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
        np.savez(out / f"{name}.npz", **arrays)
        manifest["entries"][name] = {"file": f"{name}.npz", "vectors": vectors}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def load(directory):
    """`{entry name: [(Case, expected output or None, expected error dict or None)]}` from an exported folder."""
    root = Path(directory)
    manifest = json.loads((root / "manifest.json").read_text())
    out = {}
    for name, info in manifest["entries"].items():
        with np.load(root / info["file"]) as npz:
            arrays = {k: npz[k] for k in npz.files}
        rows = []
        for v in info["vectors"]:
            case = Case(_decode(v["args"], arrays), _decode(v["kwargs"], arrays))
            rows.append((case, _decode(v["output"], arrays) if "output" in v else None, v.get("error")))
        out[name] = rows
    return manifest, out


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


def _decode(value, arrays):
    if isinstance(value, dict):
        if "$array" in value:
            return arrays[value["$array"]]
        if "$tuple" in value:
            return tuple(_decode(v, arrays) for v in value["$tuple"])
        if "$dict" in value:
            return {k: _decode(v, arrays) for k, v in value["$dict"].items()}
        if "$float" in value:
            return float(value["$float"])
    if isinstance(value, list):
        return [_decode(v, arrays) for v in value]
    return value
