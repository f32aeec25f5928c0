"""The registry: one `Entry` per algorithm, naming both implementations, valid inputs, invariants and goldens.

Tests, `pqref verify` and the docs are generated from `REGISTRY`. Adding an algorithm means adding one entry
(in `spec/catalog/`) and one function in each backend, nothing else.
"""

from __future__ import annotations

from spec.entry import Bad, Case, Entry, Golden, Invariant, resolve

__all__ = ["REGISTRY", "Bad", "Case", "Entry", "Golden", "Invariant", "get", "resolve"]


def _load() -> dict[str, Entry]:
    from spec.catalog import (
        codecs,
        core,
        exact,
        groups,
        lowbit,
        posttraining,
        pruning,
        quant_binary,
        quant_learned,
        quant_misc,
        quantization,
        sparsity_regularize,
        sparsity_scores,
    )

    catalogs = [core, exact, quantization, quant_binary, quant_learned, lowbit, quant_misc]
    catalogs += [codecs, pruning, sparsity_regularize, sparsity_scores, groups, posttraining]
    entries = [e for catalog in catalogs for e in catalog.ENTRIES]
    table: dict[str, Entry] = {}
    for e in entries:
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
