"""Backends: how to turn a NumPy case into a backend's native values and its results back into NumPy.

The reference is NumPy itself. `TorchBackend` runs `torch_backend` on a device. A future backend (another
framework, a fused-kernel package) is one more `Backend` with a package name and conversions; the conformance
suite and `pqref verify` then check it against the reference through the same registry.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import numpy as np


class OutputKindMismatch(AssertionError):
    """A backend returned an array of the other kind: NumPy from a `--kind torch` backend."""


@dataclass(frozen=True)
class Backend:
    """NumPy in, NumPy out: the reference, or any module tree with the same names that takes NumPy arrays."""

    name: str = "reference"
    package: str = "reference"

    def devices(self) -> list[str]:
        return ["cpu"]

    def to_native(self, value, device):
        return _copy(value)

    def to_numpy(self, value):
        return _normalize(value)

    def function(self, entry):
        return entry.implementation(self.package)


@dataclass(frozen=True)
class TorchBackend(Backend):
    """torch tensors on a device; arrays become tensors, everything else (keys, ints, strings) stays as it is."""

    name: str = "torch"
    package: str = "torch_backend"

    def devices(self) -> list[str]:
        torch = importlib.import_module("torch")
        return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])

    def to_native(self, value, device):
        torch = importlib.import_module("torch")
        if isinstance(value, np.ndarray | np.generic):
            return torch.from_numpy(np.array(value, copy=True)).to(device)
        if isinstance(value, list | tuple):
            return _same_kind(value, [self.to_native(v, device) for v in value])
        if isinstance(value, dict):
            return {k: self.to_native(v, device) for k, v in value.items()}
        return value

    def to_numpy(self, value):
        torch = importlib.import_module("torch")
        if isinstance(value, torch.Tensor):
            return value.detach().cpu().numpy().copy()
        if isinstance(value, list | tuple):
            return _same_kind(value, [self.to_numpy(v) for v in value])
        return _normalize(value)


def _same_kind(value, items):
    """A list, tuple or named tuple of the same type as `value` holding `items`."""
    return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)


def _copy(value):
    if isinstance(value, np.ndarray | np.generic):
        return np.array(value, copy=True)
    if isinstance(value, list | tuple):
        return _same_kind(value, [_copy(v) for v in value])
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    return value


def _normalize(value):
    if isinstance(value, np.generic):
        return np.asarray(value)
    if isinstance(value, list | tuple):
        return _same_kind(value, [_normalize(v) for v in value])
    return value


REFERENCE = Backend()
TORCH = TorchBackend()
BACKENDS = {"reference": REFERENCE, "torch": TORCH}


@dataclass(frozen=True)
class ModuleBackend(Backend):
    """Any module that implements the registry's function names, flat (`module.quantize`) or in the mirrored tree
    (`module.quantization.affine.quantize`); `kind` says whether it takes NumPy arrays or torch tensors."""

    kind: str = "numpy"

    def devices(self) -> list[str]:
        return TORCH.devices() if self.kind == "torch" else ["cpu"]

    def to_native(self, value, device):
        return TORCH.to_native(value, device) if self.kind == "torch" else _copy(value)

    def to_numpy(self, value):
        """The backend's output as NumPy; a `kind="torch"` backend must return torch tensors where the reference
        returns arrays (`OutputKindMismatch` otherwise: a NumPy array would compare equal and hide the fact)."""
        if self.kind != "torch":
            return _normalize(value)
        _no_numpy(value)
        return TORCH.to_numpy(value)

    def function(self, entry):
        module = importlib.import_module(self.package)
        fn = getattr(module, entry.name, None)
        if fn is None:
            try:
                fn = getattr(importlib.import_module(entry.path(self.package)), entry.name, None)
            except ImportError:
                fn = None
        if fn is None:
            raise NotImplementedError(f"{self.package} has no {entry.name}")
        if not callable(fn):
            raise NotImplementedError(f"{self.package}.{entry.name} is a {type(fn).__name__}, not a function")
        return fn


def _no_numpy(value):
    if isinstance(value, np.ndarray | np.generic):
        raise OutputKindMismatch(
            f"returned numpy.{type(value).__name__} (dtype {value.dtype}) where a torch backend (--kind torch) "
            "returns a torch.Tensor"
        )
    if isinstance(value, list | tuple):
        for v in value:
            _no_numpy(v)


def module_backend(module: str, kind: str = "numpy") -> Backend:
    if kind not in ("numpy", "torch"):
        raise ValueError(f"kind must be 'numpy' or 'torch', got {kind!r}")
    return ModuleBackend(name=module, package=module, kind=kind)
