"""The architecture as tests: one layer order without cycles, no private names across modules, a catalog laid out
like `reference/`.

Every import in `reference/`, `torch_backend/` and `spec/` is parsed, at module level and inside functions alike
(an import hidden in a function still makes a dependency). ARCHITECTURE.md explains the layers and the rules.
"""

from __future__ import annotations

import ast
import functools
import pathlib
import sys
import warnings

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("reference", "torch_backend", "spec")

# The layers, lowest first: a module may import modules of its own layer or of lower ones, never of a higher one.
LAYERS = (
    "reference.common",  # array-free code both backends share: validation wording, checks, shapes, exact scalars
    "reference",  # the NumPy reference: the algorithm modules and their package-private helpers
    "torch_backend",  # the torch backend: the same algorithms, same names and parameters
    "torch_backend.kernels",  # fused kernels: extra implementations of registry entries
    "torch_backend.distributed",  # exact cross-rank statistics on torch.distributed, used by the training layer
    "torch_backend.nn",  # the training layer: modules, recipes, calibration, export
    "spec",  # the contract: registry, catalog, strategies, conformance, vectors, CLI
)

# What the lowest layers may import from outside the project. `ml_dtypes` gives NumPy the bfloat16 dtype that the
# NumPy-only reader of exported models needs (imported inside its functions, on demand).
THIRD_PARTY = {"reference.common": set(), "reference": {"numpy"}}
THIRD_PARTY_EXCEPTIONS = {"reference.checkpoint": {"ml_dtypes"}}

# Private names still imported across modules, each with who removes it: `(importer, exporter, name)`, where
# the name "*" stands for every private name between the two modules. The test fails on any private import not
# listed here, and warns about an entry that matches none (delete it: the list only shrinks).
PENDING_PRIVATE: set[tuple[str, str, str]] = set()

# Import cycles still present, as sorted tuples of modules, each with who removes it (as PENDING_PRIVATE).
PENDING_CYCLES: set[tuple[str, ...]] = set()


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


@functools.cache
def _modules() -> dict[str, pathlib.Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


@functools.cache
def _tree(module: str) -> ast.Module:
    return ast.parse(_modules()[module].read_text())


def _is_package(module: str) -> bool:
    return _modules()[module].name == "__init__.py"


def _resolve(module: str, node: ast.ImportFrom) -> str:
    """The absolute module an ImportFrom names (relative imports resolved against `module`)."""
    if not node.level:
        return node.module
    base = module.split(".")
    base = base if _is_package(module) else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str):
    """`(target module, imported name or None, line)` for every import in `module`, functions included.

    `from a import b` names the module `a.b` when that is a module of the project, else the module `a` (and `b`
    is a name defined there)."""
    mods = _modules()
    for node in ast.walk(_tree(module)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None, node.lineno
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, node)
            for alias in node.names:
                full = f"{target}.{alias.name}"
                yield (full, None, node.lineno) if full in mods else (target, alias.name, node.lineno)


def _project(target: str) -> str | None:
    """The project module `target` is, or lies in (the longest known prefix), or None outside the project."""
    mods = _modules()
    parts = target.split(".")
    for i in range(len(parts), 0, -1):
        if ".".join(parts[:i]) in mods:
            return ".".join(parts[:i])
    return None


def _edges() -> dict[str, set[str]]:
    out = {}
    for module in _modules():
        out[module] = {m for target, _, _ in _imports(module) if (m := _project(target)) and m != module}
    return out


def _layer(module: str) -> int:
    """The index in LAYERS of the most specific layer that `module` belongs to."""
    best = -1
    for i, prefix in enumerate(LAYERS):
        if (module == prefix or module.startswith(prefix + ".")) and (best < 0 or len(prefix) > len(LAYERS[best])):
            best = i
    assert best >= 0, f"{module} is in no layer"
    return best


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _top(module: str) -> str:
    return module.split(".")[0]


# ---- the layer order ----------------------------------------------------------------------------------------


def test_every_module_is_in_a_layer():
    for module in _modules():
        _layer(module)


def test_no_module_imports_a_higher_layer():
    bad = []
    for module, targets in _edges().items():
        for target in targets:
            if _layer(target) > _layer(module):
                bad.append(f"{module} ({LAYERS[_layer(module)]}) imports {target} ({LAYERS[_layer(target)]})")
    assert not bad, "imports against the layer order:\n" + "\n".join(sorted(bad))


def test_no_import_cycles():
    """Tarjan's strongly connected components of the module graph: every one must be a single module."""
    edges = _edges()
    index, low, on, stack, cycles = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(edges)))
    try:
        for v in sorted(edges):
            if v not in index:
                visit(v)
    finally:
        sys.setrecursionlimit(limit)
    found = {tuple(c) for c in cycles}
    assert not found - PENDING_CYCLES, f"import cycles: {sorted(found - PENDING_CYCLES)}"
    if PENDING_CYCLES - found:
        warnings.warn(f"PENDING_CYCLES lists cycles that are gone; delete them: {PENDING_CYCLES - found}", stacklevel=1)


def test_no_cycles_between_packages():
    packages = {(_top(a), _top(b)) for a, targets in _edges().items() for b in targets if _top(a) != _top(b)}
    for a, b in packages:
        assert (b, a) not in packages, f"{a} and {b} import each other"


@pytest.mark.parametrize("layer", ["reference.common", "reference"])
def test_nothing_below_reference_but_numpy_and_the_standard_library(layer):
    allowed = set(sys.stdlib_module_names) | THIRD_PARTY[layer] | {"reference"}
    bad = []
    for module in _modules():
        if LAYERS[_layer(module)] != layer:
            continue
        for target, _, line in _imports(module):
            top = target.split(".")[0]
            if top not in allowed | THIRD_PARTY_EXCEPTIONS.get(module, set()):
                bad.append(f"{module}:{line} imports {target}")
    assert not bad, "\n".join(bad)


# ---- private names ------------------------------------------------------------------------------------------


def _private_uses(module: str):
    """`(exporting module, private name, line)` for each private name `module` takes from another module: by an
    import, or as an attribute of an imported module (`rounding._round`). A package-private module (`_arrays`)
    may be imported within its own top-level package."""
    mods = _modules()
    bound = {}  # local name -> the project module it is bound to
    for node in ast.walk(_tree(module)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _project(alias.name):
                    bound[alias.asname or alias.name.split(".")[0]] = alias.asname and alias.name or _top(alias.name)
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, node)
            for alias in node.names:
                if f"{target}.{alias.name}" in mods:
                    bound[alias.asname or alias.name] = f"{target}.{alias.name}"
    for target, name, line in _imports(module):
        project = _project(target)
        if project is None:
            continue
        path = target.split(".")
        private_modules = [p for p in path[1:] if _private(p)]
        if private_modules and _top(target) != _top(module):
            yield target, private_modules[0], line
        if name is not None and _private(name):
            yield target, name, line
    for node in ast.walk(_tree(module)):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            chain, value = [], node.value
            while isinstance(value, ast.Attribute):
                chain.append(value.attr)
                value = value.value
            if isinstance(value, ast.Name) and value.id in bound:
                owner = ".".join([bound[value.id], *reversed(chain)])
                if owner in mods and owner != module:
                    if f"{owner}.{node.attr}" in mods and _top(owner) == _top(module):
                        continue  # a package-private module of the same package, reached as an attribute
                    yield owner, node.attr, node.lineno


def test_no_private_names_across_modules():
    found = {(module, owner, name) for module in _modules() for owner, name, _ in _private_uses(module)}

    def pending(use, entry):
        return use[:2] == entry[:2] and entry[2] in ("*", use[2])

    unexpected = sorted(use for use in found if not any(pending(use, entry) for entry in PENDING_PRIVATE))
    assert not unexpected, "private names taken from other modules (give them a public home one layer down):\n" + (
        "\n".join(f"{m} takes {n} from {o}" for m, o, n in unexpected)
    )
    stale = sorted(entry for entry in PENDING_PRIVATE if not any(pending(use, entry) for use in found))
    if stale:
        warnings.warn(f"PENDING_PRIVATE lists imports that are gone; delete them: {stale}", stacklevel=1)


# ---- the catalog and the strategies, one-to-one with reference/ ---------------------------------------------


def _registry():
    from spec.registry import CATALOG, REGISTRY

    return CATALOG, REGISTRY


def _files_under(folder: str, skip: tuple[str, ...]) -> set[str]:
    base = ROOT / folder
    out = set()
    for p in base.rglob("*.py"):
        dotted = ".".join(p.relative_to(base).with_suffix("").parts)
        if p.name != "__init__.py" and dotted not in skip:
            out.add(dotted)
    return out


def test_one_catalog_module_per_reference_module():
    """`spec/catalog/<family>/<topic>.py` holds exactly the entries of `reference/<family>/<topic>.py`, and the
    registry reads every catalog module once (`spec.registry.CATALOG`); `spec.catalog.common` holds shared helpers."""
    import importlib

    catalog, registry = _registry()
    with_entries = {e.module for e in registry.values()}
    assert sorted(catalog) == sorted(set(catalog)), "CATALOG names a module twice"
    assert set(catalog) == with_entries, f"CATALOG vs reference modules with entries: {set(catalog) ^ with_entries}"
    assert _files_under("spec/catalog", ("common",)) == with_entries, "catalog files and reference modules differ"
    for dotted in catalog:
        assert (ROOT / "reference" / (dotted.replace(".", "/") + ".py")).exists(), f"no reference module {dotted}"
        entries = importlib.import_module(f"spec.catalog.{dotted}").ENTRIES
        assert entries, f"spec.catalog.{dotted} has no entries"
        assert {e.module for e in entries} == {dotted}, f"spec.catalog.{dotted} holds entries of other modules"
        assert {e.name for e in entries} == {e.name for e in registry.values() if e.module == dotted}
    assert not hasattr(importlib.import_module("spec.catalog.common"), "ENTRIES")


def test_one_strategies_module_per_reference_module():
    """`spec/strategies/<family>/<topic>.py` defines the strategies that the entries of the catalog module of the
    same path use (every `S.<name>` in their `strategy=`); `spec.strategies.base` holds the shared building blocks."""
    catalog, _ = _registry()
    assert _files_under("spec/strategies", ("base",)) == set(catalog), "strategies files and catalog modules differ"
    for dotted in catalog:
        source = ROOT / "spec/strategies" / (dotted.replace(".", "/") + ".py")
        defined = {n.name for n in ast.parse(source.read_text()).body if isinstance(n, ast.FunctionDef)}
        tree = ast.parse((ROOT / "spec/catalog" / (dotted.replace(".", "/") + ".py")).read_text())
        used = set()
        for call in ast.walk(tree):
            if isinstance(call, ast.Call) and getattr(call.func, "id", None) == "Entry":
                strategy = next(k.value for k in call.keywords if k.arg == "strategy")
                used |= {
                    a.attr
                    for a in ast.walk(strategy)
                    if isinstance(a, ast.Attribute) and isinstance(a.value, ast.Name) and a.value.id == "S"
                }
        assert used, f"spec.catalog.{dotted}: no strategy found"
        assert used <= defined, f"spec.catalog.{dotted} uses strategies defined elsewhere: {sorted(used - defined)}"
