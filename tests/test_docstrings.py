"""Docstring examples are doctests, and they run: a worked example in the reference is executed, never prose alone.

Each example in a reference docstring is a `>>>` block (a Markdown code block, indented), run here with the
module's own names and `np` in scope; a docstring that says "Example" must show it as such a block. The modules
listed in `PENDING` still carry prose examples and are converted one by one; a module that has none left is
reported (a warning) so that it is deleted from the list.
"""

from __future__ import annotations

import doctest
import importlib
import pathlib
import re
import warnings

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Reference modules whose "Example:" prose is not yet a doctest (their doctests, if any, run all the same).
PENDING: set[str] = set()


def _modules() -> list[str]:
    out = []
    for path in sorted((ROOT / "reference").rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out.append(".".join(parts))
    return out


def _docstrings(module):
    """`(qualified name, docstring)` of the module and of every function and class defined in it."""
    yield module.__name__, module.__doc__ or ""
    for name, obj in vars(module).items():
        if getattr(obj, "__module__", None) == module.__name__ and (callable(obj) or isinstance(obj, type)):
            yield f"{module.__name__}.{name}", getattr(obj, "__doc__", None) or ""


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    globs = {**vars(module), "np": np}
    for test in finder.find(module, name, globs=globs):
        if test.lineno is None or test.filename is None or not test.filename.startswith(str(ROOT)):
            continue  # an object re-exported from another module: its own module runs it
        runner.run(test)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, f"{results.failed} of {results.attempted} docstring examples of {name} failed"


@pytest.mark.parametrize("name", [m for m in _modules() if m not in PENDING])
def test_examples_are_doctests(name):
    module = importlib.import_module(name)
    for where, doc in _docstrings(module):
        lines = doc.splitlines()
        for i, line in enumerate(lines):
            if re.search(r"\bExamples?\b", line):
                rest = lines[i + 1 :]
                assert any(r.lstrip().startswith(">>> ") for r in rest), (
                    f"{where}: the example on line {i + 1} of its docstring is prose; show it as a doctest (>>>)"
                )


def test_pending_lists_reference_modules():
    """Every PENDING name is a reference module; one with no prose example left is reported, to be deleted."""
    assert PENDING <= set(_modules()), f"not reference modules: {sorted(PENDING - set(_modules()))}"
    done = []
    for name in sorted(PENDING):
        module = importlib.import_module(name)
        prose = False
        for _, doc in _docstrings(module):
            lines = doc.splitlines()
            for i, line in enumerate(lines):
                if re.search(r"\bExamples?\b", line) and not any(r.lstrip().startswith(">>> ") for r in lines[i + 1 :]):
                    prose = True
        if not prose:
            done.append(name)
    if done:
        warnings.warn(f"no prose example left in {done}: delete them from PENDING", stacklevel=1)
