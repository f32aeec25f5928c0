"""The divergence catalog's snippets run; its counts are records of the peer versions it names, never
requirements; and the lottery-ticket codebases' pruning rules, as documented on `imp_mask`, prune more."""

import importlib.util
import pathlib
import platform
import re

import numpy as np
import pytest

import reference as R

ROOT = pathlib.Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("divergences", ROOT / "scripts" / "divergences.py")
divergences = importlib.util.module_from_spec(spec)
spec.loader.exec_module(divergences)


@pytest.fixture(scope="module")
def measured():
    return {row[0]: row for row in divergences.measure()}


def _page_records():
    """{title: (peer, version, machine, differ, total)} as printed on docs/divergences.md."""
    text = (ROOT / "docs" / "divergences.md").read_text()
    records = {}
    for section in text.split("\n## ")[1:]:
        title = section.split(" {#")[0]
        m = re.search(divergences.MEASURED, section)
        assert m, f"docs/divergences.md: no measurement line under {title!r}"
        peer, version, machine, differ, total = m.groups()
        records[title] = (peer, version, machine, int(differ.replace(",", "")), int(total.replace(",", "")))
    return records


@pytest.mark.parametrize("title", [t for t, *_ in divergences.SNIPPETS])
def test_documented_divergence_is_recorded_with_its_peer_version(title, measured):
    _, peer, version, _, _, differ, total = measured[title]
    assert 0 <= differ <= total
    rec_peer, rec_version, rec_machine, rec_differ, rec_total = _page_records()[title]
    assert rec_peer == peer and rec_total == total, "docs/divergences.md is stale: run scripts/divergences.py"
    if version == rec_version and platform.machine() == rec_machine and title not in divergences.HARDWARE:
        # the same peer version measures the same count: the page is the record of this version
        assert differ == rec_differ, f"{peer} {version}: {differ} differ, the page records {rec_differ}"
    # another version (or CPU, for the hardware-dependent entries) may agree or differ: nothing is required


def test_page_lists_every_snippet():
    text = (ROOT / "docs" / "divergences.md").read_text()
    for title, *_ in divergences.SNIPPETS:
        assert f"## {title}" in text, f"docs/divergences.md is stale: regenerate with scripts/divergences.py ({title})"


# ------------------------------------------------------------------------------------------------------------
# The lottery-ticket codebases' per-round pruning, modelled from imp_mask's docstring
# ------------------------------------------------------------------------------------------------------------


def _frankle_carbin_keep(w, mask, p):
    """Sort the surviving |w|, cutoff at index rne(p m) (np.round), prune |w| <= cutoff."""
    alive = np.sort(np.abs(w[mask]))
    cutoff = alive[int(np.round(p * alive.size))]
    return mask & (np.abs(w) > cutoff)


def _open_lth_keep(w, mask, p):
    """OpenLTH sparse_global: threshold at index ceil(p m), keep |w| > threshold."""
    alive = np.sort(np.abs(w[mask]))
    threshold = alive[int(np.ceil(p * alive.size))]
    return mask & (np.abs(w) > threshold)


@pytest.mark.parametrize(("p", "pqref", "frankle", "open_lth"), [(0.2, 2, 3, 3), (0.25, 2, 3, 4), (0.5, 5, 6, 6)])
def test_lottery_codebases_prune_one_more_than_imp_mask(p, pqref, frankle, open_lth):
    w = np.arange(1, 11, dtype=np.float32)[::-1].copy()  # 10 distinct magnitudes
    mask = np.ones(10, bool)
    ours = R.imp_mask(w, mask, p)
    assert 10 - int(ours.sum()) == pqref == round(p * 10)
    assert 10 - int(_frankle_carbin_keep(w, mask, p).sum()) == frankle == pqref + 1
    assert 10 - int(_open_lth_keep(w, mask, p).sum()) == open_lth == int(np.ceil(p * 10)) + 1
    # every rule prunes the smallest magnitudes; pqref's survivors include theirs
    assert np.all(_frankle_carbin_keep(w, mask, p) <= ours) and np.all(_open_lth_keep(w, mask, p) <= ours)


def test_lottery_codebases_prune_every_tie_at_the_cutoff():
    w = np.array([1, 1, 1, 1, 5, 6], np.float32)  # p = 0.25: rne(1.5) = 2 for pqref, cutoff 1 for both codebases
    mask = np.ones(6, bool)
    assert R.imp_mask(w, mask, 0.25).tolist() == [True, True, False, False, True, True]  # ties: lower index kept
    assert _frankle_carbin_keep(w, mask, 0.25).tolist() == [False] * 4 + [True, True]
    assert _open_lth_keep(w, mask, 0.25).tolist() == [False] * 4 + [True, True]


def test_lottery_codebases_schedules_as_documented():
    """imp_schedule's docstring: from 10 at p = 0.2, [10, 8, 6, 5] for pqref, [10, 7, 5, 3] and [10, 7, 4, 2]."""
    w = np.arange(1, 11, dtype=np.float32)
    runs = {"pqref": lambda w, m, p: R.imp_mask(w, m, p), "frankle": _frankle_carbin_keep, "open_lth": _open_lth_keep}
    counts = {}
    for name, rule in runs.items():
        mask, seen = np.ones(10, bool), [10]
        for _ in range(3):
            mask = rule(w, mask, 0.2)
            seen.append(int(mask.sum()))
        counts[name] = seen
    assert counts == {"pqref": [10, 8, 6, 5], "frankle": [10, 7, 5, 3], "open_lth": [10, 7, 4, 2]}
    assert R.imp_schedule(10, 0.2, 3) == counts["pqref"]
