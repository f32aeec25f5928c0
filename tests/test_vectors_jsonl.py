"""The language-neutral vectors (JSON Lines), `pqref vectors check`, and the C example with its wrong twin."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess

import numpy as np
import pytest

from spec import cli, vectors
from spec.conformance import same_bits
from spec.registry import REGISTRY

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]
C_DIR = ROOT / "spec" / "examples" / "c"
KIT = ["round_half_away", "float_encode"]


@pytest.fixture(scope="module")
def kit_vectors(tmp_path_factory):
    root = tmp_path_factory.mktemp("kit") / "vectors"
    vectors.export(root, examples=10, names=KIT)
    return root


def _reference_results(root, path, *, names=None, drop=(), message=False):
    """Results written by the reference itself, in the results format."""
    _, loaded = vectors.load_jsonl(root)
    with open(path, "w") as f:
        for name, rows in loaded.items():
            if names and name not in names:
                continue
            ref = REGISTRY[name].reference()
            for row in rows:
                if row.index in drop:
                    continue
                try:
                    body = {"output": vectors.to_json(row.case.call(ref))}
                except (TypeError, ValueError) as exc:
                    body = {"error": {"type": type(exc).__name__, **({"message": str(exc)} if message else {})}}
                f.write(json.dumps({"algorithm": name, "case": row.index, **body}) + "\n")
    return path


def test_json_values_round_trip_bit_for_bit():
    values = [
        np.float32([0.0, -0.0, np.inf, -np.inf, 1.4e-45]),
        np.array([0x7FC00001, 0xFFBFFFFF], dtype=np.uint32).view(np.float32),  # NaN payloads and signs
        np.array([-128, 127], dtype=np.int8),
        np.array([[True, False]]),
        np.array([65504, -0.0], dtype=np.float16),
        np.zeros((0, 3), dtype=np.float64),
        np.uint64(2**64 - 1),
        (1, -(2**60), 0.1, float("-inf"), float("nan"), "half_even", None, True),
        {"key": (1, 2), "levels": [1.5, -0.0]},
    ]
    for v in values:
        encoded = json.loads(json.dumps(vectors.to_json(v)))
        back = vectors.from_json(encoded, "test")
        if isinstance(v, np.generic):
            v = np.asarray(v)
        if isinstance(v, tuple):  # NaN != NaN: compare floats by their bits
            assert [np.float64(a).tobytes() if isinstance(a, float) else a for a in back] == [
                np.float64(a).tobytes() if isinstance(a, float) else a for a in v
            ]
        elif isinstance(v, dict):
            assert back == v
        else:
            same_bits(v, back)
    assert vectors.to_json(np.float32([1.0, -0.0]))["array"]["hex"] == ["3f800000", "80000000"]
    assert vectors.to_json(-0.0) == {"float": "8000000000000000"}
    assert vectors.to_json(2**53) == {"int": str(2**53)}


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"array": {"dtype": "float32", "shape": [2], "hex": ["3f800000"]}}, "needs 2 hex strings"),
        ({"array": {"dtype": "float32", "shape": [1], "hex": ["3F800000"]}}, "8 lowercase hex digits"),
        ({"array": {"dtype": "bfloat16", "shape": [1], "hex": ["3f80"]}}, "dtype must be one of"),
        ({"array": {"dtype": "bool", "shape": [1], "hex": ["02"]}}, "must be 00 or 01"),
        ({"float": "3ff"}, "is not a valid float"),
        ({"tuple": [], "dict": {}}, "exactly one of the keys"),
        (0.5, "a bare JSON number with a fraction"),
    ],
)
def test_malformed_json_values_are_named(bad, message):
    with pytest.raises(vectors.VectorsError, match=message) as info:
        vectors.from_json(bad, "somewhere, args[0]")
    assert str(info.value).startswith("somewhere, args[0]")


def test_jsonl_and_npz_hold_the_same_cases(kit_vectors):
    manifest, jsonl = vectors.load_jsonl(kit_vectors)
    _, npz = vectors.load(kit_vectors)
    assert manifest["jsonl"]["format"] == "pqref-jsonl/1"
    for name in KIT:
        info = manifest["jsonl"]["files"][name]
        data = (kit_vectors / info["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == info["sha256"] and info["cases"] == len(jsonl[name])
        assert len(jsonl[name]) == len(npz[name])
        for row, (case, output, error) in zip(jsonl[name], npz[name], strict=True):
            same_bits(case.args, row.case.args)
            assert row.error == error
            if error is None:
                same_bits(output, row.expected)
    first = jsonl["float_encode"][0]
    assert first.source == "golden" and first.variant == "fmt=float8_e4m3fn saturate=true rounding=half_even"


def test_check_accepts_the_reference_and_reports_missing_cases(kit_vectors, tmp_path, capsys):
    results = _reference_results(kit_vectors, tmp_path / "ref.jsonl", message=True)
    assert cli.main(["vectors", "check", str(kit_vectors), str(results)]) == 0
    out = capsys.readouterr().out
    assert "0 mismatches, 0 missing" in out and "fmt=float8_e5m2 saturate=false rounding=half_even" in out
    partial = _reference_results(kit_vectors, tmp_path / "partial.jsonl", names=["round_half_away"], drop=(1,))
    assert cli.main(["vectors", "check", str(kit_vectors), str(partial)]) == 3
    out = capsys.readouterr().out
    assert "no results for 1 algorithm(s): float_encode" in out and "not everything claimed was checked" in out


def test_check_reports_a_wrong_error_type_and_message(kit_vectors, tmp_path, capsys):
    _, loaded = vectors.load_jsonl(kit_vectors)
    bad = next(r for r in loaded["round_half_away"] if r.error is not None)
    good = next(r for r in loaded["round_half_away"] if r.error is None)
    path = tmp_path / "r.jsonl"
    lines = [
        {"algorithm": "round_half_away", "case": bad.index, "error": {"type": bad.error["type"], "message": "nope"}},
        {"algorithm": "round_half_away", "case": good.index, "error": {"type": "ValueError"}},
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert cli.main(["vectors", "check", str(kit_vectors), str(path), "--show-mismatches", "2"]) == 1
    out = capsys.readouterr().out
    assert f"got {bad.error['type']}: nope" in out and "expected an output, got ValueError" in out


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"algorithm": "round_half_away", "case": 9999, "output": null}', "has no case 9999 of 'round_half_away'"),
        ('{"algorithm": "round_half_away", "case": 0}', "exactly one of 'output' and 'error'"),
        ('{"algorithm": "round_half_away", "case": 0, "output": NaN}', "NaN is not JSON"),
        ("not json", "line 1: not valid JSON"),
        ('{"algorithm": "round_half_away", "case": 0, "output": 1, "extra": 2}', "unknown field(s) 'extra'"),
    ],
)
def test_bad_results_are_one_line_usage_errors(kit_vectors, tmp_path, capsys, line, message):
    path = tmp_path / "r.jsonl"
    path.write_text(line + "\n")
    assert cli.main(["vectors", "check", str(kit_vectors), str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pqref vectors check: ") and message in err and err.count("\n") == 1


def test_a_damaged_jsonl_file_is_refused(kit_vectors, tmp_path, capsys):
    root = tmp_path / "v"
    shutil.copytree(kit_vectors, root)
    path = root / "round_half_away.jsonl"
    path.write_bytes(path.read_bytes().replace(b"3effffff", b"3f000000", 1))
    results = _reference_results(kit_vectors, tmp_path / "r.jsonl")
    assert cli.main(["vectors", "check", str(root), str(results)]) == 2
    assert "round_half_away.jsonl: sha256" in capsys.readouterr().err


# ---- the C example -----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def c_programs(tmp_path_factory):
    """The C example and its wrong twin, compiled once per session (skipped without a C compiler)."""
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        pytest.skip("no C compiler (cc, gcc or clang) on PATH: the C example is not compiled")
    out = tmp_path_factory.mktemp("c")
    built = {}
    for name in ("pqref_kit", "pqref_kit_wrong"):
        exe = out / name
        cmd = [cc, "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(exe), str(C_DIR / f"{name}.c"), "-lm"]
        done = subprocess.run(cmd, capture_output=True, text=True)
        assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stderr}"
        built[name] = exe
    return built


def test_the_c_example_passes_vectors_check(c_programs, kit_vectors, tmp_path, capsys):
    results = tmp_path / "c.jsonl"
    subprocess.run([str(c_programs["pqref_kit"]), str(kit_vectors), str(results)], check=True, capture_output=True)
    assert cli.main(["vectors", "check", str(kit_vectors), str(results)]) == 0
    out = capsys.readouterr().out
    assert "round_half_away" in out and "fmt=float8_e4m3fn saturate=false rounding=half_even" in out
    assert " 0 mismatches, 0 missing" in out


def test_the_wrong_c_example_fails_with_a_readable_report(c_programs, kit_vectors, tmp_path, capsys):
    results = tmp_path / "wrong.jsonl"
    subprocess.run([str(c_programs["pqref_kit_wrong"]), str(kit_vectors), str(results)], check=True,
                   capture_output=True)  # fmt: skip
    assert cli.main(["vectors", "check", str(kit_vectors), str(results)]) == 1
    out = capsys.readouterr().out
    assert "the implementation does NOT conform" in out
    # floor(x + 0.5) rounds 0.49999997 to 1; E4M3 ties away send 2**-10 to code 1: both named, input in full
    assert "first mismatch: case 0 (golden): round_half_away(np.array([ 4.9999997e-01," in out
    assert "expected np.float32(0.0) (bits 0x0), got np.float32(1.0) (bits 0x3f800000)" in out
    assert "first at flat index 4: expected np.uint8(0) (bits 0x0), got np.uint8(1) (bits 0x1)" in out
