"""The versions, re-exported for the CLI and the vectors: they live in `reference.common.version`."""

from reference.common.version import PQREF_VERSION, SEMANTICS_VERSION

__all__ = ["PQREF_VERSION", "SEMANTICS_VERSION"]
