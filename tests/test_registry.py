"""The registry is complete and the two trees mirror each other, name for name and parameter for parameter."""

import ast
import importlib
import inspect
import pathlib
import subprocess
import sys

import pytest

from spec.backends import TORCH
from spec.registry import REGISTRY
from tests.helpers import ENTRY_PARAMS

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _public_functions(path: pathlib.Path) -> dict[str, list[str]]:
    tree = ast.parse(path.read_text())
    out = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
            a = node.args
            out[node.name] = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs]
    return out


# Not algorithm modules: `reference/common/` (array-free code both backends import, written once) and
# `reference/checkpoint.py` (the NumPy-only reader of exported models); neither has a twin or registry entries.
NOT_ALGORITHMS = ("common", "checkpoint.py")


def _reference_files():
    """The algorithm modules: every public file of `reference/` except `NOT_ALGORITHMS`."""
    return sorted(
        p
        for p in (ROOT / "reference").rglob("*.py")
        if not p.name.startswith("_") and p.relative_to(ROOT / "reference").parts[0] not in NOT_ALGORITHMS
    )


def _dotted(path: pathlib.Path) -> str:
    return ".".join(path.relative_to(ROOT / "reference").with_suffix("").parts)


@pytest.mark.parametrize("path", _reference_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_torch_backend_mirrors_reference_file(path):
    """Every public function of a reference module has a twin of the same name in the torch module: either a
    function defined there with the same parameters (array arithmetic, written twice) or the reference's own object,
    re-exported (array-free code, written once); the torch module has no public function of its own."""
    twin = ROOT / "torch_backend" / path.relative_to(ROOT / "reference")
    assert twin.exists(), f"{twin} is missing: every reference module has a torch twin"
    mine, theirs = _public_functions(path), _public_functions(twin)
    assert not set(theirs) - set(mine), f"torch-only public functions: {sorted(set(theirs) - set(mine))}"
    ref_module = importlib.import_module(f"reference.{_dotted(path)}")
    tb_module = importlib.import_module(f"torch_backend.{_dotted(path)}")
    for name, params in mine.items():
        if name in theirs:
            assert theirs[name] == params, f"{name}: parameters {params} vs {theirs[name]}"
        else:
            assert getattr(tb_module, name, None) is getattr(ref_module, name), (
                f"{name}: neither defined in {twin.name} nor the reference's function re-exported"
            )
    assert sorted(getattr(tb_module, "__all__", ())) == sorted(getattr(ref_module, "__all__", ())), "__all__ differs"


def test_torch_backend_has_no_extra_modules():
    """Every torch_backend module has a reference twin, except the training layer `torch_backend/nn/` (it drives
    torch modules and is checked by replay), `torch_backend/kernels/` (fused extra implementations of registry
    entries, checked against the reference by the same conformance function) and `torch_backend/distributed/`
    (cross-rank versions of registry entries, checked bit for bit against one process by tests/test_distributed.py)."""
    for path in (ROOT / "torch_backend").rglob("*.py"):
        layer = path.relative_to(ROOT / "torch_backend").parts[0]
        if path.name.startswith("_") or layer in ("nn", "kernels", "distributed"):
            continue
        assert (ROOT / "reference" / path.relative_to(ROOT / "torch_backend")).exists(), f"{path} has no reference twin"


@pytest.mark.parametrize("entry", ENTRY_PARAMS)
def test_entry_has_both_implementations_with_equal_signatures(entry):
    ref = entry.reference()
    impl = TORCH.function(entry)
    assert callable(ref) and callable(impl)
    assert inspect.signature(ref) == inspect.signature(impl), f"{entry.name}: signatures differ"
    assert ref.__doc__ and "**Arguments:**" in ref.__doc__ and "**Returns:**" in ref.__doc__, "reference docstring"
    assert impl.__doc__, "torch function needs a docstring"


@pytest.mark.parametrize("entry", ENTRY_PARAMS)
def test_entry_is_complete(entry):
    assert entry.family in {"core", "quantization", "pruning"}
    assert entry.summary and entry.golden, f"{entry.name}: every entry needs a summary and golden vectors"
    if entry.vjp:
        assert entry.vjp in REGISTRY, f"{entry.name}: its VJP {entry.vjp} must be an entry of its own"


def test_every_public_reference_function_is_a_registry_entry():
    names = {(e.module, e.name) for e in REGISTRY.values()}
    for path in _reference_files():
        module = _dotted(path)
        for fn in _public_functions(path):
            assert (module, fn) in names, f"reference.{module}.{fn} has no registry entry"


def test_packages_reexport_every_entry():
    ref, tb = importlib.import_module("reference"), importlib.import_module("torch_backend")
    for e in REGISTRY.values():
        assert getattr(ref, e.name) is e.reference(), e.name
        assert getattr(tb, e.name) is e.implementation("torch_backend"), e.name
    assert sorted(ref.__all__) == sorted(tb.__all__)


def test_reference_never_imports_torch():
    code = "import sys, reference, spec.registry, spec.strategies; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    for path in (ROOT / "reference").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
                assert not any(n and n.split(".")[0] in {"torch", "torch_backend"} for n in names), (
                    f"{path} imports torch"
                )


def test_a_missing_implementation_is_detected():
    from spec.entry import Entry

    ghost = Entry(name="ghost", family="core", module="core.reduce", summary="", strategy=lambda: None)
    with pytest.raises(AttributeError):
        ghost.reference()
