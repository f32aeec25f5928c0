"""The per-peer conformance table: its adapters run against the peers installed, and docs/peers.md is the
script's output for the versions it names. Peers are records, never requirements: with other versions installed,
only the adapters' running is checked."""

from __future__ import annotations

import importlib.util
import pathlib
import re
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def table():
    spec = importlib.util.spec_from_file_location("conformance_table", ROOT / "scripts" / "conformance_table.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    with np.errstate(all="ignore"):
        rows, notes = module.collect()
    return module, rows, notes


def test_every_installed_peer_has_rows_and_no_adapter_failed(table):
    module, rows, notes = table
    failed = [n for n in notes if "adapter failed" in n]
    assert not failed, failed
    measured = {r.peer.split(" ")[0] for r in rows}
    assert "ml_dtypes" in measured and "onnx" in measured and "torch" in measured
    for r in rows:
        assert r.version and r.total > 0 and r.differ, r
        assert all(0 <= n <= r.total for n in r.differ.values()), r


def test_the_variants_pqref_names_are_told_apart(table):
    """Where a peer implements one of two variants, the other differs: the vectors can tell the variants apart."""
    _, rows, _ = table
    for r in rows:
        if len(r.differ) > 1 and 0 in r.differ.values() and r.entry in ("quantize", "symmetric_scale", "mx_quantize"):
            assert max(r.differ.values()) > 0, f"{r.function}: the vectors do not separate {list(r.differ)}"


def test_the_page_is_the_scripts_output_for_its_versions(table):
    module, rows, notes = table
    page = (ROOT / "docs" / "peers.md").read_text()
    recorded = dict(re.findall(r"^\| ([^|]+?) \| ([^|]+?) \|", page, flags=re.M)[2:])
    installed = {r.peer: r.version for r in rows}
    if any(recorded.get(peer) != v for peer, v in installed.items()):
        pytest.skip(f"docs/peers.md records other peer versions than those installed ({installed}): not compared")
    assert page == module.page(rows, notes), "run python scripts/conformance_table.py"
