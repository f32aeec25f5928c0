"""`pqref demo --quick` on a few recipes: the table, the exported files, the plot, and every replay matching."""

import json
import sys

import pytest
import torch

from spec import cli
from torch_backend.nn import demo, demo_lm


def test_quick_demo_prints_the_table_and_replays_everything(tmp_path, capsys):
    recipes = ["dense", "network slimming", "int8 QAT (W8A8)", "binary XNOR"]
    args = ["demo", "--quick", "--seed", "3", "--out", str(tmp_path)]
    assert cli.main(args + [a for r in recipes for a in ("--recipe", r)]) == 0
    out = capsys.readouterr().out
    for r in recipes:
        assert r in out
    results = json.loads((tmp_path / "results.json").read_text())
    assert [r["recipe"] for r in results] == recipes
    for r in results[1:]:
        assert "match" in r["replay"] and "MISMATCH" not in r["replay"]
        done, total = r["replay"].split()[0].split("/")
        assert done == total
    sizes = {r["recipe"]: r["exported_bytes"] for r in results}
    assert sizes["binary XNOR"] < sizes["int8 QAT (W8A8)"] < sizes["dense"]
    assert sizes["network slimming"] < sizes["dense"]  # channels physically removed
    assert (tmp_path / "accuracy_vs_size.png").stat().st_size > 1000
    for r in results:
        assert 0.0 <= r["accuracy"] <= 1.0


def test_quick_language_model_demo_replays_gptq_and_sparsegpt(tmp_path, capsys):
    recipes = ["float32", "RTN int4 g128", "GPTQ int4 g128", "SparseGPT 50% + int4"]
    args = ["demo", "--quick", "--out", str(tmp_path)] + [a for r in recipes for a in ("--recipe", r)]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "calibrated in batches of 8 and of 16 sequences: quantized weights bit-identical" in out
    results = json.loads((tmp_path / "results.json").read_text())
    assert [(r["part"], r["recipe"]) for r in results] == [("language model", r) for r in recipes]
    for r in results[1:]:
        done, total = r["replay"].split()[0].split("/")
        assert done == total and int(total) == 7, r  # 7 Linear layers in the quick model
        assert 0 < r["bits_per_char"] < 8 and r["exported_bytes"] < results[0]["exported_bytes"]
    assert not (tmp_path / "accuracy_vs_size.png").exists()  # the plot is the CNN's


DATASETS = """
import numpy as np
import torch

IMG = np.arange(16, dtype=np.uint8).reshape(4, 4)
GOOD = [(IMG, 0), (torch.ones(4, 4), np.int64(1)), (IMG, torch.tensor(2)), (IMG, np.array(1))]
NEGATIVE = [(IMG, 0), (IMG, -1)]
FLOAT_LABEL = [(IMG, 0), (IMG, 1.0)]
FLOAT_TENSOR_LABEL = [(IMG, 0), (IMG, torch.tensor(1.0))]
NAN_PIXEL = [(IMG, 0), (np.full((4, 4), np.nan), 1)]
HUGE_PIXEL = [(IMG, 0), (np.full((4, 4), 1e300), 1)]
SIZES = [(IMG, 0), (np.zeros((5, 5)), 1)]
NOT_SQUARE = [(np.zeros((4, 5)), 0), (np.zeros((4, 5)), 1)]
TEXT = [(IMG, 0), ("abcd", 1)]
NOT_PAIRS = [(IMG, 0, 0)]
NOT_ITERABLE = 3
ONE_ITEM = [(IMG, 0)]


def needs_a_root(root):
    return GOOD


def broken_items():
    yield (IMG, 0)
    raise OSError("disk gone")
"""

BAD_DATASETS = {
    "nope": "--dataset 'nope': expected module:attribute",
    "no_such_module_xyz:data": "cannot import no_such_module_xyz: ModuleNotFoundError",
    "demo_data:MISSING": "module demo_data has no attribute 'MISSING'",
    "demo_data:NEGATIVE": "item 1: the label is -1; labels are ints >= 0",
    "demo_data:FLOAT_LABEL": "item 1: the label is float 1.0; labels are ints >= 0",
    "demo_data:FLOAT_TENSOR_LABEL": "item 1: the label is Tensor tensor(1.); labels are ints >= 0",
    "demo_data:NAN_PIXEL": "item 1: the image has NaN or infinite pixels",
    "demo_data:HUGE_PIXEL": "item 1: the image has NaN or infinite pixels (in float32)",
    "demo_data:SIZES": "item 1: the image has shape (5, 5), item 0 has (4, 4)",
    "demo_data:NOT_SQUARE": "item 0: the image has shape (4, 5); the demo's CNN takes square images",
    "demo_data:TEXT": "item 1: the image has dtype <U4, not real numbers",
    "demo_data:NOT_PAIRS": "item 0 is a tuple of 3, not an (image, label) pair",
    "demo_data:NOT_ITERABLE": "iterating over NOT_ITERABLE failed: TypeError",
    "demo_data:ONE_ITEM": "1 item(s); the demo needs at least 2",
    "demo_data:needs_a_root": "calling needs_a_root() failed: TypeError",
    "demo_data:broken_items": "reading item 1 failed: OSError: disk gone",
}


@pytest.fixture
def datasets(tmp_path, monkeypatch):
    """A module of datasets in the current folder, found there as `pqref demo --dataset demo_data:NAME`."""
    (tmp_path / "demo_data.py").write_text(DATASETS)
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    sys.modules.pop("demo_data", None)


def _demo_fails(capsys, out, *argv):
    assert cli.main(["demo", "--quick", "--out", str(out), *argv]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("pqref demo: ") and captured.err.count("\n") == 1, captured.err
    assert "Traceback" not in captured.err + captured.out
    return captured.err


@pytest.mark.parametrize("dataset", list(BAD_DATASETS))
def test_demo_rejects_a_bad_dataset_in_one_line_before_writing(datasets, capsys, dataset):
    """Item: bad --dataset values, negative or float labels (floats were truncated), NaN pixels, mismatched sizes
    printed tracebacks (or trained on wrong data)."""
    err = _demo_fails(capsys, datasets / "out", "--dataset", dataset)
    assert BAD_DATASETS[dataset] in err, err
    assert not (datasets / "out").exists()


def test_load_data_accepts_torchvision_style_items(datasets):
    x_train, y_train, x_test, y_test = demo.load_data("demo_data:GOOD", seed=0)
    assert x_train.shape[1:] == (1, 4, 4) and x_train.dtype == torch.float32
    assert sorted(torch.cat([y_train, y_test]).tolist()) == [0, 1, 1, 2] and y_train.dtype == torch.int64
    assert float(torch.cat([x_train, x_test]).max()) == 1.0  # scaled by the largest pixel, 15


def test_demo_rejects_bad_arguments_in_one_line_before_writing(tmp_path, capsys):
    """Item: --recipe nope, --device cuda without CUDA, an existing file as --out printed tracebacks."""
    out = tmp_path / "out"
    assert "unknown demo recipe 'nope'; choose from 'dense', " in _demo_fails(capsys, out, "--recipe", "nope")
    assert "--device must be cpu, cuda or cuda:N, got 'tpu'" in _demo_fails(capsys, out, "--device", "tpu")
    if not torch.cuda.is_available():
        assert "--device cuda: CUDA is not available here" in _demo_fails(capsys, out, "--device", "cuda")
    assert "--seed must be an int in [0, 2**32), got -1" in _demo_fails(capsys, out, "--seed", "-1")
    assert not out.exists()
    a_file = tmp_path / "results.txt"
    a_file.write_text("mine")
    assert f"--out {str(a_file)!r} is a file, not a folder" in _demo_fails(capsys, a_file)
    assert "cannot be created: " in _demo_fails(capsys, a_file / "sub")
    assert a_file.read_text() == "mine"


def test_recipes_are_chosen_by_name_or_unique_prefix(monkeypatch):
    """Item: the tutorial's `pqref demo --quick --recipe "int8 QAT"` failed."""
    assert demo.select_recipes(None) == demo.recipe_names() == [*demo.RECIPES, *demo_lm.RECIPES]
    assert demo.select_recipes(["int8 QAT", "binary", "Dense"]) == ["int8 QAT (W8A8)", "binary XNOR", "dense"]
    with pytest.raises(demo.DemoError, match="'dense' is asked for twice"):
        demo.select_recipes(["dense", "den"])
    monkeypatch.setitem(demo.RECIPES, "dense twice", [])
    assert demo.select_recipes(["dense"]) == ["dense"]  # an exact name wins
    with pytest.raises(demo.DemoError, match="'den' is ambiguous: it begins 'dense', 'dense twice'"):
        demo.select_recipes(["den"])
    with pytest.raises(demo.DemoError, match="unknown demo recipe ''"):
        demo.select_recipes([""])
