"""`pqref list` and `pqref verify`: the table, the exit status, and a mismatch that must be reported."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from spec import cli
from spec.registry import REGISTRY


def test_list_names_every_algorithm(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    for name in REGISTRY:
        assert name in out


def test_verify_prints_a_table_and_passes(capsys):
    assert cli.main(["verify", "--examples", "5", "--algorithm", "magnitude_mask", "--algorithm", "quantize"]) == 0
    out = capsys.readouterr().out
    assert "magnitude_mask" in out and "quantize" in out and "0 mismatches" in out
    row = next(line for line in out.splitlines() if line.startswith("quantize "))
    goldens = str(len(REGISTRY["quantize"].golden))
    assert row.split()[1:5] == ["cpu", "5", goldens, "0"]  # device, examples, goldens, mismatches


def test_verify_with_a_time_budget_runs_whole_chunks(capsys):
    """`--seconds 0`: one chunk of max(10, examples // 100) cases per algorithm; a long budget: all of them."""
    argv = ["verify", "--examples", "1500", "--algorithm", "tree_sum", "--device", "cpu"]
    assert cli.main([*argv, "--seconds", "0"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("tree_sum "))
    assert row.split()[2] == "15" and "15 generated examples in all, within --seconds 0" in out
    assert (
        cli.main(["verify", "--examples", "30", "--algorithm", "tree_sum", "--device", "cpu", "--seconds", "600"]) == 0
    )
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("tree_sum "))
    assert row.split()[2] == "30"


def test_verify_shards_split_the_algorithms(capsys):
    seen = []
    for k in range(3):
        argv = ["verify", "--examples", "1", "--algorithm", "tree_sum", "--algorithm", "quantize"]
        assert cli.main([*argv, "--algorithm", "nm_mask", "--device", "cpu", "--shard", f"{k}/3"]) == 0
        rows = [line.split()[0] for line in capsys.readouterr().out.splitlines() if " cpu " in line]
        seen.append(rows)
    assert seen == [["tree_sum"], ["quantize"], ["nm_mask"]]
    assert cli.main(["verify", "--shard", "3/3"]) == 2
    assert "--shard must be K/N" in capsys.readouterr().err


def test_verify_reports_a_wrong_backend(monkeypatch, capsys, tmp_path):
    """A torch backend that keeps one weight too many whenever it can (run in verify's worker process, so the
    wrong function lives in a module of its own)."""
    (tmp_path / "off_by_one.py").write_text(
        "import torch\n"
        "from torch_backend import *  # noqa: F403\n"
        "from torch_backend import magnitude_mask as _real\n\n\n"
        "def magnitude_mask(w, sparsity):\n"
        "    flat = _real(w, sparsity).reshape(-1).clone()\n"
        "    if (~flat).any():\n"
        "        flat[int(torch.nonzero(~flat)[0])] = True\n"
        "    return flat.reshape(w.shape)\n"
    )
    monkeypatch.chdir(tmp_path)
    argv = ["verify", "--examples", "20", "--algorithm", "magnitude_mask", "--backend", "off_by_one", "--kind", "torch"]
    assert cli.main(argv) == 1
    out = capsys.readouterr().out
    assert "first mismatch: golden magnitude_mask(np.array(" in out
    assert "does NOT conform" in out


def test_verify_rejects_unknown_algorithm_and_absent_device(capsys):
    assert cli.main(["verify", "--algorithm", "no_such_thing"]) == 2
    if not torch.cuda.is_available():
        assert cli.main(["verify", "--device", "cuda"]) == 2
    assert "not available" in capsys.readouterr().err or torch.cuda.is_available()


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "spec.cli", "list"], capture_output=True, text=True, check=True)
    assert "magnitude_mask" in out.stdout


def test_repro_is_copy_pasteable():
    import reference  # noqa: F401  (the repro names reference functions)

    case = REGISTRY["quantize"].golden[0].case
    code = case.repro("reference.quantize")
    got = eval(code, {"np": np, "reference": reference})
    assert np.array_equal(got, REGISTRY["quantize"].golden[0].expected)


def test_version_prints_the_package_and_semantics_versions(capsys):
    """Item: `pqref --version`."""
    from spec.version import PQREF_VERSION, SEMANTICS_VERSION

    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"pqref {PQREF_VERSION} (semantics {SEMANTICS_VERSION})"


def test_help_lists_every_subcommand_and_the_demo_recipes(capsys):
    """Item: the top-level help lists every subcommand; `pqref demo --help` names the recipes."""
    from torch_backend.nn.demo import RECIPES

    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for command in ("verify", "vectors", "demo", "list", "--version"):
        assert f"  {command}" in out, out
    with pytest.raises(SystemExit):
        cli.main(["demo", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for recipe in RECIPES:
        assert f"'{recipe}'" in out, out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--examples", "0"], "--examples must be >= 1, got 0"),
        (["--seconds", "-1"], "--seconds must be a number >= 0, got -1.0"),
        (["--seconds", "nan"], "--seconds must be a number >= 0, got nan"),
        (["--timeout", "0"], "--timeout must be a number > 0, got 0.0"),
        (["--show-mismatches", "-1"], "--show-mismatches must be >= 0, got -1"),
        (["--algorithm", "tree_sum", "--algorithm", "tree_sum"], "an --algorithm is given twice"),
        (["--device", "cpu", "--device", "cpu"], "a --device is given twice"),
        (["--kind", "numpy"], "--kind numpy needs --backend"),
        (["--backend", "my-backend"], "--backend must be a module name"),
        (["--vectors", "/no/such/folder"], "cannot read vectors from /no/such/folder: /no/such/folder does not exist"),
    ],
)
def test_verify_usage_errors_are_one_line(capsys, argv, message):
    assert cli.main(["verify", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("pqref verify: ") and message in captured.err, captured.err
    assert captured.err.count("\n") == 1 and captured.out == ""


def test_console_script_exit_status_of_a_backend_calling_sys_exit():
    """Item: a backend calling sys.exit(0) ended `pqref verify` with status 0; as a process it now exits 1."""
    argv = [sys.executable, "-m", "spec.cli", "verify", "--examples", "2", "--backend", "spec.examples.exiting_backend"]
    done = subprocess.run([*argv, "--algorithm", "round_half_away", "--algorithm", "tree_sum"], capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert "raised SystemExit: 0" in done.stdout and "1 crashed the worker (tree_sum)" in done.stdout
