"""Rules the site's teaching rests on, checked on the registry and the pictures without building the site (fast).

- Every golden vector says why it is there.
- A golden pins each semantic rule an entry states: ties, signed zeros, per-channel and per-group parameters,
  random outcomes from a key; and every option of the reference signature that changes the result (`axis`,
  `group_size`, `rounding`, `key`, ...) is exercised by at least one golden.
- Every entry has a topic; every page has a picture drawn by the reference whose range shows what it is about (a
  quantizer at least three output levels and not so many that the steps vanish, a rounding picture its ties, a
  mask its ties at the cut, an N:M or block picture its groups, a block format at least two blocks).
"""

from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from spec.registry import REGISTRY

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "docs"))
from sitegen import pictures, topics  # noqa: E402

VJPS = {e.vjp for e in REGISTRY.values() if e.vjp}
PAGES = [e for e in REGISTRY.values() if e.name not in VJPS]
# Options whose non-default value changes what an entry computes; a golden must use each one the entry has.
OPTIONS = ("axis", "group_size", "rounding", "key", "block_size", "narrow_range", "symmetric", "stochastic")


def _negative_zero(v) -> bool:
    if isinstance(v, np.ndarray) and v.dtype.kind == "f":
        return bool(np.any((v == 0) & np.signbit(v)))
    if isinstance(v, float):
        return v == 0 and bool(np.signbit(v))
    if isinstance(v, tuple | list):
        return any(_negative_zero(x) for x in v)
    if isinstance(v, dict):
        return any(_negative_zero(x) for x in v.values())
    if hasattr(v, "_fields"):  # named tuples of results
        return any(_negative_zero(x) for x in v)
    return False


def _keyed(case) -> bool:
    key = case.kwargs.get("key")
    if key is not None:
        return True
    return any(isinstance(a, tuple) and len(a) == 2 and all(isinstance(x, int) for x in a) for a in case.args)


def _uses(entry, option) -> bool:
    """Whether some golden of `entry` passes `option` with a value other than its default."""
    params = inspect.signature(entry.reference()).parameters
    names = list(params)
    default = params[option].default
    for g in entry.golden:
        if option in g.case.kwargs:
            v = g.case.kwargs[option]
        elif names.index(option) < len(g.case.args):
            v = g.case.args[names.index(option)]
        else:
            continue
        if isinstance(v, np.ndarray) or v != default:
            return True
    return False


@pytest.mark.parametrize("entry", REGISTRY.values(), ids=lambda e: e.name)
def test_every_golden_says_why(entry):
    empty = [g.case.repro(entry.name) for g in entry.golden if not g.why.strip()]
    assert not empty, f"goldens of {entry.name} with an empty why: {empty}"


# Entries whose semantics name a tie rule that no input can reach.
NO_TIES = {
    "cr_exp": "e**x is transcendental for x != 0: never a float32 midpoint",
    "cr_log": "ln x is transcendental for x != 1: never a float32 midpoint",
    "cr_sigmoid": "1 / (1 + e**-x) is never a float32 midpoint (sigmoid(0) = 0.5 is exact)",
    "random_mask": "a tie needs two equal 32-bit random scores: about 2**16 elements, no hand-checkable golden",
    # The codec modules state their encoding rules on every entry; these decode or compute a scale, with no tie.
    "gguf_dequantize": "the tie rules named are the quantizer's; decoding is products and differences",
    "nvfp4_dequantize": "the tie rule named is the encoder's; decoding is a product of decoded values",
    "nvfp4_global_scale": "amax / 2688 and 2688 / amax are never float32 midpoints (2688 = 21 * 2**7)",
}


@pytest.mark.parametrize("entry", REGISTRY.values(), ids=lambda e: e.name)
def test_goldens_pin_the_semantic_rules(entry):
    """A rule the semantics state about ties, -0.0, channels, groups or keys has a golden that shows it."""
    sem = " ".join(entry.semantics).lower()
    golden = entry.golden
    missing = []
    tie = r"\bti(e|es|ed)\b|halfway|midpoint"
    if (
        re.search(r"\bti(e|es|ed)\b", sem)
        and entry.name not in NO_TIES
        and not any(re.search(tie, g.why.lower()) for g in golden)
    ):
        missing.append("a tie (a golden whose why names the tie it pins)")
    if ("-0.0" in sem or "signed zero" in sem) and not any(
        _negative_zero(g.case.args) or _negative_zero(g.case.kwargs) or _negative_zero(g.expected) for g in golden
    ):
        missing.append("-0.0 (in an input or an expected output)")
    if re.search(r"per[- ]channel", sem) and "axis" in inspect.signature(entry.reference()).parameters:
        if not _uses(entry, "axis"):
            missing.append("per channel (a golden with axis)")
    if re.search(r"\bkey\b|stochastic", sem) and not any(_keyed(g.case) for g in golden):
        missing.append("a random outcome (a golden with a key)")
    assert not missing, f"{entry.name}: no golden pins " + "; ".join(missing)


@pytest.mark.parametrize("entry", REGISTRY.values(), ids=lambda e: e.name)
def test_goldens_exercise_every_option(entry):
    params = inspect.signature(entry.reference()).parameters
    unused = [
        o for o in OPTIONS if o in params and params[o].default is not inspect.Parameter.empty and not _uses(entry, o)
    ]
    assert not unused, f"{entry.name}: no golden passes a non-default {', '.join(unused)}"


def test_every_entry_has_a_topic_and_the_topics_exist():
    slugs = {t.slug for t in topics.TOPICS}
    assert len(slugs) == len(topics.TOPICS)
    for e in REGISTRY.values():
        assert topics.topic_of(e) in slugs, e.name
    for name in topics.NAMES:
        assert name in REGISTRY, f"the names table lists {name!r}, which is not in the registry"


def test_search_names_and_see_also():
    """Common names exist for the entries the site is searched by, and see-also never points to a VJP page."""
    for name, common in [("round_stochastic", "Stochastic rounding"), ("nm_mask", "N:M sparsity"),
                         ("lsq_quantize", "LSQ"), ("slimming_masks", "Network slimming"), ("nf4_quantize", "NF4")]:  # fmt: skip
        assert topics.common_name(REGISTRY[name]) == common
    assert "2:4 sparsity" in topics.aliases(REGISTRY["nm_mask"])
    for e in PAGES:
        for n in topics.see_also(e, REGISTRY):
            assert n in REGISTRY and n not in VJPS and n != e.name, (e.name, n)


@pytest.mark.parametrize("entry", PAGES, ids=lambda e: e.name)
def test_every_page_has_a_picture_that_shows_its_semantics(entry):
    p = pictures.picture(entry)
    assert p is not None, f"{entry.name} has no picture: add a builder to docs/sitegen/pictures.py"
    assert not pictures.problems(p), f"{entry.name}: {pictures.problems(p)}"


# Entries whose picture must show steps, ties, groups or blocks (so that a builder cannot silently drop them).
NEEDS = {
    "steps": ["round_half_even", "round_half_away", "round_floor", "round_ceil", "quantize", "fake_quantize",
              "lsq_quantize", "lsq_plus_quantize", "pact_quantize", "dorefa_activation", "float_quantize",
              "pow2_quantize", "codebook_assign", "twn_ternarize", "binarize"],
    "ties": ["round_half_even", "round_half_away", "quantize", "fake_quantize", "lsq_quantize", "float_quantize",
             "magnitude_mask", "keep_largest", "nm_mask", "pruned_count", "codebook_assign"],
    "groups": ["nm_mask", "block_mask", "wanda_mask", "ln_structured_mask", "sparsegpt"],
    "blocks": ["mx_quantize", "nvfp4_quantize", "nf4_quantize", "gguf_quantize"],
    "levels": ["float_encode", "float_decode", "nf4_quantize", "integer_range", "pow2_exponent_range"],
}  # fmt: skip


@pytest.mark.parametrize("need", NEEDS)
def test_pictures_that_must_show_their_structure(need):
    for name in NEEDS[need]:
        p = pictures.picture(REGISTRY[name])
        assert need in p.needs, f"{name}'s picture does not check {need}"
        assert not pictures.problems(p), (name, pictures.problems(p))


def test_the_picture_checks_can_fail():
    """A quantizer swept over a range wide enough to hide its steps, a rounding with no tie marked: rejected."""
    wide = pictures._transfer(lambda x: pictures._affine(x, s=0.5, qmin=-128, qmax=127), -60, 60)
    p = pictures._line_picture("", [wide], needs=("steps", "ties"))
    assert any("steps are invisible" in m for m in pictures.problems(p))
    assert any(
        "the range hides the steps" in m for m in pictures.problems(pictures._line_picture("", [wide], needs=()))
    )
    assert "no tie is marked" in pictures.problems(p)
    flat = pictures._transfer(lambda x: pictures._affine(x, s=100.0), -1, 1)
    assert any("distinct output levels" in m for m in pictures.problems(pictures._line_picture("", [flat])))


def test_pictures_render_as_svg():
    for name in ("lsq_quantize", "nm_mask", "nf4_quantize", "pack_bits", "tree_sum", "agp_sparsity"):
        svg = pictures.render(pictures.picture(REGISTRY[name]))
        assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>") and "nan" not in svg.split(">", 1)[0]


def test_no_control_characters_in_pages_and_docstrings():
    """No tab or other control character in the site's Markdown and in the docstrings it renders: a Python string
    escape (`"\\tilde"` written without a raw string) turns LaTeX into a tab and `ilde`, which no build fails on."""
    root = Path(__file__).resolve().parent.parent
    bad = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")  # a tab included
    pages = [p for p in (root / "docs").rglob("*.md")] + [root / "README.md", root / "ARCHITECTURE.md"]
    found = [f"{p.relative_to(root)}:{i}" for p in pages for i, line in enumerate(p.read_text().splitlines(), 1)
             if bad.search(line)]  # fmt: skip
    for entry in REGISTRY.values():
        for fn in (entry.reference(),):
            if bad.search(fn.__doc__ or ""):  # not inspect.getdoc: it expands tabs
                found.append(f"docstring of {entry.name}")
    assert not found, found
