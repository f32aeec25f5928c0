"""The registry: one `Entry` per algorithm, naming both implementations, valid inputs, invariants and goldens.

Tests, `pqref verify` and the docs are generated from `REGISTRY`. Adding an algorithm means adding one entry
(in `spec/catalog/`) and one function in each backend, nothing else.
"""

from __future__ import annotations

import importlib

from spec.entry import Bad, Case, Entry, Golden, Invariant, resolve

__all__ = ["CATALOG", "REGISTRY", "Bad", "Case", "Entry", "Golden", "Invariant", "get", "resolve"]


# The catalog modules, one per reference module with entries (`spec/catalog/core/reduce.py` for
# `reference/core/reduce.py`), in the order of `pqref list`.
CATALOG = (
    "core.reduce",
    "core.rounding",
    "core.random",
    "core.select",
    "core.exact",
    "core.linalg",
    "core.transcendental",
    "quantization.affine",
    "quantization.dynamic",
    "quantization.binary",
    "quantization.ternary",
    "quantization.dorefa",
    "quantization.pact",
    "quantization.lsq",
    "quantization.floats",
    "quantization.mx",
    "quantization.power_of_two",
    "quantization.codebook",
    "quantization.nf4",
    "quantization.observers",
    "quantization.packing",
    "codecs.gptq",
    "codecs.nvfp4",
    "codecs.nibbles",
    "quantization.conventions",
    "codecs.gguf",
    "codecs.awq",
    "codecs.compressed_tensors",
    "pruning.magnitude",
    "pruning.structured",
    "pruning.random",
    "pruning.regularization",
    "pruning.slimming",
    "pruning.schedules",
    "pruning.saliency",
    "pruning.lottery",
    "pruning.sparse_formats",
    "pruning.groups",
    "posttraining.obs",
    "posttraining.rotation",
    "posttraining.scaling",
    "posttraining.halfquadratic",
    "posttraining.adaround",
)


def _load() -> dict[str, Entry]:
    table: dict[str, Entry] = {}
    for module in CATALOG:
        for e in importlib.import_module(f"spec.catalog.{module}").ENTRIES:
            if e.name in table:
                raise RuntimeError(f"duplicate registry entry {e.name!r}")
            table[e.name] = e
    return table


REGISTRY: dict[str, Entry] = _load()


def get(name: str) -> Entry:
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"no algorithm named {name!r}; `pqref list` shows them all") from None
