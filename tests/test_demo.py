"""`pqref demo --quick` on a few recipes: the table, the exported files, the plot, and every replay matching."""

import json

from spec import cli


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


def test_demo_rejects_an_unknown_recipe(tmp_path):
    import pytest

    with pytest.raises(ValueError, match="unknown demo recipe"):
        cli.main(["demo", "--quick", "--out", str(tmp_path), "--recipe", "nope"])
