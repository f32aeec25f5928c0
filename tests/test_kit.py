"""The conformance kit: other backends checked through the registry, and exported golden vectors."""

import json

import numpy as np

from spec import cli, vectors
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


def test_missing_functions_are_reported_not_crashed(capsys, tmp_path, monkeypatch):
    (tmp_path / "tiny_backend.py").write_text("from reference import tree_sum\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    code, out = _verify(capsys, "--backend", "tiny_backend", *_args(["tree_sum", "quantize"]))
    assert code == 0
    assert "missing" in out and "1 algorithm(s) not implemented" in out


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
        assert len(rows) == len(entry.golden) + len(entry.bad) + 5
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
