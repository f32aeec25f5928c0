"""The divergence catalog's snippets run, and every divergence they document still exists."""

import importlib.util
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("divergences", ROOT / "scripts" / "divergences.py")
divergences = importlib.util.module_from_spec(spec)
spec.loader.exec_module(divergences)


@pytest.fixture(scope="module")
def measured():
    return {row[0]: row for row in divergences.measure()}


@pytest.mark.parametrize("title", [t for t, _, _ in divergences.SNIPPETS])
def test_documented_divergence_exists(title, measured):
    _, _, _, differ, total = measured[title]
    assert 0 < differ <= total


def test_page_lists_every_snippet():
    text = (ROOT / "docs" / "divergences.md").read_text()
    for title, _, _ in divergences.SNIPPETS:
        assert f"## {title}" in text, f"docs/divergences.md is stale: regenerate with scripts/divergences.py ({title})"
