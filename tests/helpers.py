"""Shared test plumbing: which devices to run, the parametrization over the registry, and bitwise comparison."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from spec.backends import REFERENCE, TORCH
from spec.registry import REGISTRY


def torch_devices() -> list[str]:
    only = os.environ.get("PQREF_DEVICE")
    return [only] if only else TORCH.devices()


ENTRIES = list(REGISTRY.values())
ENTRY_PARAMS = [pytest.param(e, id=e.name) for e in ENTRIES]
# (backend, device) pairs every property is checked on: the reference itself and torch on each device present
BACKEND_PARAMS = [pytest.param((REFERENCE, "cpu"), id="reference")] + [
    pytest.param((TORCH, d), id=f"torch-{d}") for d in torch_devices()
]
DEVICE_PARAMS = [pytest.param(d, id=d) for d in torch_devices()]


# ---- comparing a torch result with the reference's, bit for bit (the fast-path tests) ----------------------------


def bits(a) -> bytes:
    """The bytes of an array or tensor; float arrays as their bit patterns (signed zeros and NaN payloads count)."""
    a = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    return np.ascontiguousarray(a).view(np.uint8).tobytes() if a.dtype.kind == "f" else a.tobytes()


def same_on_cpu(ref, got):
    """`got` (a tensor, or a tuple of them) is the reference's `ref` bit for bit: dtype, shape and bits, on the
    CPU, in storage of its own (resizable: a host route's output is an ordinary tensor)."""
    ref, got = (ref, got) if isinstance(ref, tuple) else ((ref,), (got,))
    assert len(ref) == len(got)
    for r, g in zip(ref, got, strict=True):
        assert isinstance(g, torch.Tensor) and g.dtype == torch.from_numpy(np.asarray(r)).dtype
        assert tuple(g.shape) == np.asarray(r).shape
        assert g.device.type == "cpu"
        assert g.untyped_storage().resizable()
        assert bits(g) == bits(r)


def outcome(fn, *args, **kwargs):
    """`("ok", result)`, or `("error", (exception type, message))` for any exception: compared across backends."""
    try:
        return "ok", fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - the type and message are compared
        return "error", (type(exc), str(exc))


def checked_outcome(fn, *args, **kwargs):
    """`("ok", result)`, or `(exception type name, message)` for the checks' `TypeError` and `ValueError` (any
    other exception propagates and fails the test)."""
    try:
        return "ok", fn(*args, **kwargs)
    except (TypeError, ValueError) as exc:
        return type(exc).__name__, str(exc)
