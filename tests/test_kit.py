"""The conformance kit: other backends checked through the registry, and exported golden vectors."""

import json
import re
import time

import numpy as np
import pytest

from spec import cli, codepoints, vectors
from spec.conformance import same_bits
from spec.registry import REGISTRY

SOME = ["round_half_away", "quantize", "apply_mask", "magnitude_mask", "tree_sum", "nm_mask"]


def _verify(capsys, *args):
    code = cli.main(["verify", "--examples", "15", *args])
    return code, capsys.readouterr().out


def _args(names):
    return [a for n in names for a in ("--algorithm", n)]


def test_the_torch_backend_passes_as_a_module_backend(capsys):
    code, out = _verify(capsys, "--backend", "torch_backend", "--kind", "torch", *_args(SOME))
    assert code == 0, out
    assert "0 mismatches" in out


def test_a_numpy_backend_that_is_the_reference_passes(capsys):
    code, out = _verify(capsys, "--backend", "reference", *_args(SOME))
    assert code == 0, out


def test_the_wrong_example_backend_fails_and_names_the_first_mismatching_input(capsys):
    code, out = _verify(capsys, "--backend", "spec.examples.wrong_backend", *_args(SOME))
    assert code == 1
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.split() and line.split()[0] in SOME}
    for bad in ("round_half_away", "quantize", "apply_mask"):
        assert int(rows[bad][4]) > 0, out
    for good in ("magnitude_mask", "tree_sum", "nm_mask"):
        assert rows[good][4] == "0", out
    assert "first mismatch: golden round_half_away(np.array([ 4.9999997e-01" in out
    assert "first mismatch: golden apply_mask(" in out and "bits 0x80000000" in out


def _rows(out):
    """`{algorithm: [device, examples, goldens, mismatches or status, seconds]}` of a verify table."""
    rows = {}
    for line in out.splitlines():
        m = re.match(r"(\w+) +(cpu|cuda) +(\d+) +(\d+) +(\d+|[a-z]+(?: run)?) +([\d.]+)$", line)
        if m:
            rows[m.group(1)] = list(m.groups()[1:])
    return rows


def test_missing_and_misspelled_functions_are_not_checked_and_exit_3(capsys):
    """Item: an algorithm the backend lacks (or misspells) gave exit 0; now exit 3, named in the summary."""
    names = ["tree_sum", "round_half_away", "quantize"]
    code, out = _verify(capsys, "--backend", "spec.examples.partial_backend", *_args(names))
    assert code == 3, out
    rows = _rows(out)
    assert rows["tree_sum"][3] == "0" and rows["round_half_away"][3] == "missing" and rows["quantize"][3] == "missing"
    assert "missing: spec.examples.partial_backend has no round_half_away" in out
    assert "0 mismatches; 2 not implemented by the backend (round_half_away, quantize)" in out
    assert "not everything asked for was checked" in out


def test_a_raising_backend_is_reported_in_the_table_and_the_run_goes_on(capsys):
    """Item: NotImplementedError / RuntimeError / KeyError from the backend aborted verify with a traceback."""
    names = ["quantize", "tree_sum", "apply_mask", "magnitude_mask"]
    code, out = _verify(capsys, "--backend", "spec.examples.raising_backend", *_args(names))
    assert code == 1, out
    rows = _rows(out)
    assert set(rows) == set(names), out
    entries = {n: REGISTRY[n] for n in names}
    for bad in ("quantize", "tree_sum", "apply_mask"):  # every case: goldens + examples (+ 0 vectors)
        assert int(rows[bad][3]) == len(entries[bad].golden) + 15, out
    assert rows["magnitude_mask"][3] == "0"
    assert "raised NotImplementedError: quantize is not ported yet" in out
    assert "raised RuntimeError: kernel launch failed" in out
    assert "raised KeyError: 'float32'" in out
    assert "Traceback" not in out and "does NOT conform" in out


def test_a_backend_that_exits_or_interrupts_does_not_end_verify(capsys):
    """Item: a backend calling sys.exit(0) ended verify with status 0; KeyboardInterrupt and os._exit too."""
    names = ["round_half_away", "tree_sum", "apply_mask", "magnitude_mask"]
    code, out = _verify(capsys, "--backend", "spec.examples.exiting_backend", *_args(names))
    assert code == 1, out
    rows = _rows(out)
    assert int(rows["round_half_away"][3]) > 0 and "raised SystemExit: 0" in out
    assert int(rows["apply_mask"][3]) > 0 and "raised KeyboardInterrupt" in out
    assert rows["tree_sum"][3] == "crashed"
    assert "crashed: the backend ended the worker process (exit code 0) during golden 1: tree_sum(np.array(" in out
    assert rows["magnitude_mask"][3] == "0"  # a fresh worker after the crash
    assert "1 crashed the worker (tree_sum)" in out


def test_a_hanging_backend_is_stopped_by_the_timeout(capsys):
    """Item: a hanging backend ignored every limit; now each case has --timeout seconds, C-level sleeps too."""
    names = ["tree_sum", "apply_mask", "quantize"]
    start = time.monotonic()
    code, out = _verify(capsys, "--backend", "spec.examples.hanging_backend", "--timeout", "5", *_args(names))
    assert time.monotonic() - start < 60, out
    assert code == 1, out
    rows = _rows(out)
    assert rows["tree_sum"][3] == "timeout" and rows["apply_mask"][3] == "timeout" and rows["quantize"][3] == "0"
    assert "timeout: golden 1: tree_sum(np.array([1., 2., 3.], dtype=np.float32)) did not finish within 5 s" in out
    assert "2 timed out (tree_sum, apply_mask)" in out


def test_a_hanging_backend_respects_seconds(capsys):
    """Item: a hanging backend ignored --seconds; the run now ends by --seconds + --timeout, and the algorithms
    the limit came before are `not run` instead of hanging in turn."""
    names = ["quantize", "tree_sum", "apply_mask", "nm_mask", "round_half_away"]
    start = time.monotonic()
    code, out = _verify(capsys, "--backend", "spec.examples.hanging_backend", "--seconds", "1", "--timeout", "6",
                        *_args(names))  # fmt: skip
    elapsed = time.monotonic() - start
    rows = _rows(out)
    assert set(rows) == set(names), out
    assert rows["quantize"][3] == "0", out
    assert rows["tree_sum"][3] in ("timeout", "stopped"), out  # its case hangs: stopped by one limit or the other
    assert rows["apply_mask"][3] in ("stopped", "not run"), out  # the run's limit (1 + 6 s) comes first
    assert rows["nm_mask"][3] == rows["round_half_away"][3] == "not run", out
    assert elapsed < 1 + 6 + 30, out  # the limit, plus worker start-ups on a loaded machine
    # a timeout is a failure (1); a case stopped by the run's limit leaves the run incomplete (3)
    assert code == (1 if rows["tree_sum"][3] == "timeout" else 3), out


def test_import_failures_are_one_line_errors(capsys, tmp_path, monkeypatch):
    """Item: only ImportError was caught at import; any failure (or exit, or hang) is now a one-line error."""
    monkeypatch.chdir(tmp_path)
    bodies = {
        "raises_at_import": "raise RuntimeError('no GPU found')",
        "exits_at_import": "import sys; sys.exit(0)",
        "broken_syntax": "def f(:",
        "hangs_at_import": "while True: pass",
        "two_line_error": "raise ValueError('first line\\nsecond line')",
    }
    for name, body in bodies.items():
        (tmp_path / f"{name}.py").write_text(body + "\n")
    expected = {
        "raises_at_import": "RuntimeError: no GPU found",
        "exits_at_import": "SystemExit: 0",
        "broken_syntax": "SyntaxError",
        "hangs_at_import": "did not import the backend within 2 s",
        "two_line_error": "ValueError: first line / second line",
        "no_such_module_here": "ModuleNotFoundError: No module named 'no_such_module_here'",
    }
    for name, message in expected.items():
        code = cli.main(["verify", "--backend", name, "--algorithm", "tree_sum", "--timeout", "2"])
        err = capsys.readouterr().err
        assert code == 2, (name, err)
        assert err.startswith(f"pqref verify: cannot import backend {name!r}: ") and message in err, err
        assert len(err.strip().splitlines()) == 1, err
    assert cli.main(["verify", "--backend", "my_backend.py"]) == 2
    assert "for the file my_backend.py, give my_backend" in capsys.readouterr().err


def test_a_backend_is_found_in_the_current_folder(capsys, tmp_path, monkeypatch):
    """Item: the tutorial's `pqref verify --backend my_backend` needed PYTHONPATH=."""
    (tmp_path / "cwd_backend.py").write_text("from reference import *  # noqa: F403\n")
    monkeypatch.chdir(tmp_path)
    code, out = _verify(capsys, "--backend", "cwd_backend", *_args(["tree_sum"]))
    assert code == 0, out


def test_results_only_ignores_the_wording_of_errors(capsys, tmp_path, monkeypatch):
    """Item: `--results-only` compares outputs and exception types, not messages."""
    (tmp_path / "worded_backend.py").write_text(
        "import reference\n"
        "from reference import *  # noqa: F403\n\n\n"
        "def magnitude_mask(w, sparsity):\n"
        "    try:\n"
        "        return reference.magnitude_mask(w, sparsity)\n"
        "    except (TypeError, ValueError) as exc:\n"
        "        raise type(exc)('bad input') from None\n\n\n"
        "def nm_mask(w, n, m, axis=-1):\n"
        "    try:\n"
        "        return reference.nm_mask(w, n, m, axis)\n"
        "    except (TypeError, ValueError):\n"
        "        raise RuntimeError('bad input') from None\n"
    )
    monkeypatch.chdir(tmp_path)
    vec_dir = tmp_path / "vectors"
    vectors.export(vec_dir, examples=0, names=["magnitude_mask", "nm_mask"])  # bad inputs, the reference's wording
    argv = ["--backend", "worded_backend", "--vectors", str(vec_dir), *_args(["magnitude_mask", "nm_mask"])]
    code, out = _verify(capsys, *argv)
    assert code == 1 and int(_rows(out)["magnitude_mask"][3]) >= len(REGISTRY["magnitude_mask"].bad), out
    code, out = _verify(capsys, "--results-only", *argv)
    rows = _rows(out)
    assert rows["magnitude_mask"][3] == "0", out
    assert int(rows["nm_mask"][3]) > 0 and "raised RuntimeError: bad input" in out  # the type still counts
    assert code == 1


def test_kind_torch_requires_tensors_back(capsys, tmp_path, monkeypatch):
    """Item: `--kind torch` accepted NumPy results (they compare equal); now a mismatch."""
    (tmp_path / "numpy_out_backend.py").write_text(
        "import reference\n\n\ndef tree_sum(x, axis=None):\n    return reference.tree_sum(x.numpy(), axis)\n"
    )
    monkeypatch.chdir(tmp_path)
    code, out = _verify(capsys, "--backend", "numpy_out_backend", "--kind", "torch", *_args(["tree_sum"]))
    assert code == 1, out
    assert "returned numpy.ndarray (dtype float64) where a torch backend (--kind torch) returns a torch.Tensor" in out


def test_a_torch_backend_without_kind_torch_gets_a_hint(capsys, tmp_path, monkeypatch):
    (tmp_path / "my_torch_ops.py").write_text("from torch_backend import *  # noqa: F403\n")
    monkeypatch.chdir(tmp_path)
    code, out = _verify(capsys, "--backend", "my_torch_ops", *_args(["tree_sum"]))
    assert code == 1 and "hint: my_torch_ops looks like a torch backend" in out and "--kind torch" in out
    code, out = _verify(capsys, "--backend", "my_torch_ops", "--kind", "torch", *_args(["tree_sum"]))
    assert code == 0 and "hint" not in out, out
    code, out = _verify(capsys, "--backend", "spec.examples.wrong_backend", *_args(["apply_mask"]))
    assert code == 1 and "hint" not in out  # a NumPy backend that is merely wrong gets none


def test_more_than_the_first_mismatch_on_request(capsys):
    argv = ["--backend", "spec.examples.wrong_backend", *_args(["apply_mask"])]
    code, out = _verify(capsys, "--show-mismatches", "3", *argv)
    assert code == 1
    assert "first mismatch: golden apply_mask(" in out
    shown = [line.split(":")[0] for line in out.splitlines() if line.startswith("    mismatch ")]
    assert shown == ["    mismatch 2", "    mismatch 3"], out
    n = int(_rows(out)["apply_mask"][3])
    assert n > 3 and f"({n - 3} more; --show-mismatches N prints N of them)" in out
    code, out = _verify(capsys, *argv)
    assert "first mismatch" in out and "    mismatch 2" not in out and f"({n - 1} more;" in out


def test_vectors_export_load_and_verify(tmp_path, capsys):
    names = ["quantize", "magnitude_mask", "global_magnitude_masks", "split"]
    assert cli.main(["vectors", "export", str(tmp_path), "--examples", "5", *_args(names)]) == 0
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["pqref"] and manifest["semantics"]
    assert set(manifest["entries"]) == set(names)
    _, loaded = vectors.load(tmp_path)
    for name in names:
        entry = REGISTRY[name]
        rows = loaded[name]
        assert len(rows) == len(entry.golden) + len(entry.bad) + len(codepoints.cases(name)) + 5  # + code tables
        for (_case, output, error), golden in zip(rows, entry.golden, strict=False):
            assert error is None
            same_bits(golden.expected, output)
        assert all(err is not None for _, _, err in rows[len(entry.golden) : len(entry.golden) + len(entry.bad)])
        for case, output, error in rows:
            if error is None:
                same_bits(output, entry.reference()(*case.args, **case.kwargs))
    capsys.readouterr()
    code, out = _verify(capsys, "--vectors", str(tmp_path), *_args(names))
    assert code == 0, out
    code, out = _verify(capsys, "--backend", "spec.examples.wrong_backend", "--vectors", str(tmp_path), *_args(names))
    assert code == 1 and "first mismatch" in out


def test_vectors_keep_signed_zeros_and_nonfinite_values(tmp_path):
    vectors.export(tmp_path, examples=0, names=["apply_mask"])
    _, loaded = vectors.load(tmp_path)
    case, output, _ = loaded["apply_mask"][0]
    assert np.isnan(case.args[0][2]) and np.isinf(case.args[0][1])
    assert output.view(np.uint32)[0] == 0


def test_vectors_record_a_sha256_per_file(tmp_path):
    import hashlib

    manifest = vectors.export(tmp_path, examples=1, names=["tree_sum"])
    info = manifest["entries"]["tree_sum"]
    assert info["sha256"] == hashlib.sha256((tmp_path / "tree_sum.npz").read_bytes()).hexdigest()
    assert json.loads((tmp_path / "manifest.json").read_text()) == manifest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json", "tree_sum.jsonl", "tree_sum.npz"]  # no temp


def test_vectors_export_refuses_a_non_empty_folder_unless_forced(tmp_path, capsys):
    """Item: export into a non-empty folder silently overwrote files."""
    (tmp_path / "tree_sum.npz").write_bytes(b"mine")
    (tmp_path / "notes.txt").write_text("keep me")
    argv = ["vectors", "export", str(tmp_path), "--examples", "0", "--algorithm", "tree_sum"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not empty (2 entries: notes.txt, tree_sum.npz)" in err and "--force" in err
    assert (tmp_path / "tree_sum.npz").read_bytes() == b"mine" and not (tmp_path / "manifest.json").exists()
    assert cli.main([*argv, "--force", "--quiet"]) == 0
    assert (tmp_path / "notes.txt").read_text() == "keep me"
    manifest, loaded = vectors.load(tmp_path)
    assert list(loaded) == ["tree_sum"]


def test_vectors_export_checks_its_arguments_before_writing(tmp_path, capsys):
    """Item: `--examples -5` was accepted; unwritable paths gave tracebacks."""
    target = tmp_path / "new"
    for argv, message in [
        (["--examples", "-5"], "--examples must be >= 0, got -5"),
        (["--algorithm", "nope"], "unknown algorithm(s) nope"),
        (["--algorithm", "tree_sum", "--algorithm", "tree_sum"], "given twice"),
    ]:
        assert cli.main(["vectors", "export", str(target), *argv]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
        assert not target.exists()
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    for where, message in [(a_file, "exists and is not a folder"), (a_file / "sub" / "dir", "is not a folder")]:
        assert cli.main(["vectors", "export", str(where), "--examples", "0", "--algorithm", "tree_sum"]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert a_file.read_text() == "x"


def test_vectors_export_prints_progress(tmp_path, capsys):
    """Item: a long export printed nothing until it ended."""
    argv = ["vectors", "export", str(tmp_path / "v"), "--examples", "1", *_args(["tree_sum", "quantize"])]
    assert cli.main(argv) == 0
    err = capsys.readouterr().err.splitlines()
    assert [line.split(":")[0] for line in err] == ["  [1/2] tree_sum", "  [2/2] quantize"]
    assert all(line.endswith(" s") for line in err)


def _exported(tmp_path, names=("tree_sum", "apply_mask")):
    root = tmp_path / "v"
    vectors.export(root, examples=1, names=list(names))
    return root


def _edit_manifest(root, change):
    manifest = json.loads((root / "manifest.json").read_text())
    change(manifest)
    (root / "manifest.json").write_text(json.dumps(manifest))


def _drop_sha(m):
    del m["entries"]["tree_sum"]["sha256"]


def _flip_a_byte(root):
    data = bytearray((root / "tree_sum.npz").read_bytes())
    data[len(data) // 2] ^= 0x01
    (root / "tree_sum.npz").write_bytes(bytes(data))


def _truncate(root):
    data = (root / "tree_sum.npz").read_bytes()
    (root / "tree_sum.npz").write_bytes(data[: len(data) // 2])


BROKEN = {
    "flipped byte": (_flip_a_byte, "tree_sum.npz: sha256 "),
    "truncated npz": (_truncate, "tree_sum.npz: sha256 "),
    "truncated npz, no sha256": (
        lambda r: (_edit_manifest(r, _drop_sha), _truncate(r)),
        "tree_sum.npz is not a readable .npz file (BadZipFile",
    ),
    "garbage npz, no sha256": (
        lambda r: (_edit_manifest(r, _drop_sha), (r / "tree_sum.npz").write_bytes(b"garbage" * 10)),
        "tree_sum.npz is not a readable .npz file",
    ),
    "npy instead of npz": (
        lambda r: (
            _edit_manifest(r, _drop_sha),
            np.save(r / "x.npy", np.zeros(3)),
            (r / "x.npy").rename(r / "tree_sum.npz"),
        ),
        "tree_sum.npz is a .npy array, not an .npz archive",
    ),
    "manifest is a list": (
        lambda r: (r / "manifest.json").write_text("[1, 2]"),
        "manifest.json must be a JSON object, got array",
    ),
    "manifest is not JSON": (
        lambda r: (r / "manifest.json").write_text("{'pqref': 1"),
        "is not valid JSON (Expecting property name",
    ),
    "manifest missing": (lambda r: (r / "manifest.json").unlink(), "has no manifest.json"),
    "entries is a list": (
        lambda r: _edit_manifest(r, lambda m: m.update(entries=[])),
        "'entries' must be a JSON object, got array",
    ),
    "unknown entry": (
        lambda r: _edit_manifest(r, lambda m: m["entries"].update(no_such_algo=m["entries"]["tree_sum"])),
        "entry 'no_such_algo': no such algorithm",
    ),
    "unknown field": (lambda r: _edit_manifest(r, lambda m: m.update(extra=1)), "unknown field(s) 'extra'"),
    "other semantics": (
        lambda r: _edit_manifest(r, lambda m: m.update(semantics="0")),
        "the vectors pin semantics '0'",
    ),
    "missing array": (
        lambda r: _edit_manifest(
            r,
            lambda m: (
                _drop_sha(m),
                m["entries"]["tree_sum"]["vectors"][0]["args"]["$tuple"][0].update({"$array": "nope"}),
            ),
        ),
        "tree_sum: vector 0, args: array 'nope' is not in the .npz file",
    ),
    "unused array": (
        lambda r: _edit_manifest(r, lambda m: (_drop_sha(m), m["entries"]["tree_sum"].update(vectors=[]))),
        "tree_sum.npz has",
    ),
    "vector without output or error": (
        lambda r: _edit_manifest(r, lambda m: m["entries"]["apply_mask"]["vectors"][0].pop("output")),
        "apply_mask: vector 0: exactly one of 'output' and 'error' must be given",
    ),
    "missing npz": (lambda r: (r / "apply_mask.npz").unlink(), "apply_mask.npz is missing"),
    "file outside the folder": (
        lambda r: _edit_manifest(r, lambda m: m["entries"]["tree_sum"].update(file="../tree_sum.npz")),
        "'file' must be a file name in the folder",
    ),
}


@pytest.mark.parametrize("broken", list(BROKEN), ids=list(BROKEN))
def test_broken_vectors_are_clear_errors(tmp_path, capsys, broken):
    """Item: truncated or garbage .npz, a manifest of the wrong JSON type, unknown entries: clear errors."""
    root = _exported(tmp_path)
    vectors.load(root)  # intact
    damage, message = BROKEN[broken]
    damage(root)
    with pytest.raises(vectors.VectorsError) as err:
        vectors.load(root)
    assert message in str(err.value), str(err.value)
    assert cli.main(["verify", "--vectors", str(root), "--examples", "1", "--algorithm", "tree_sum"]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("pqref verify: cannot read vectors from ") and message in captured.err
    assert captured.err.count("\n") == 1 and captured.out == ""
