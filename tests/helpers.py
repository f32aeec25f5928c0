"""Shared test plumbing: which devices to run, and the parametrization over the registry."""

from __future__ import annotations

import os

import pytest

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
