"""`pqref list` and `pqref verify`: the table, the exit status, and a mismatch that must be reported."""

import subprocess
import sys

import numpy as np
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
    assert row.split()[1:5] == ["cpu", "5", "4", "0"]  # device, examples, goldens, mismatches


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


def test_verify_reports_a_wrong_backend(monkeypatch, capsys):
    import torch_backend.pruning.magnitude as mag

    real = mag.magnitude_mask

    def off_by_one(w, sparsity):  # keeps one weight too many whenever it can
        mask = real(w, sparsity)
        flat = mask.reshape(-1).clone()
        if (~flat).any():
            flat[int(torch.nonzero(~flat)[0])] = True
        return flat.reshape(mask.shape)

    monkeypatch.setattr(mag, "magnitude_mask", off_by_one)
    assert cli.main(["verify", "--examples", "20", "--algorithm", "magnitude_mask"]) == 1
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
