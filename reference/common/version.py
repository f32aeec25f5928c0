"""Versions: of the package, and of the semantics the spec pins (bumped whenever any pinned output changes)."""

PQREF_VERSION = "0.1.0"
SEMANTICS_VERSION = "1"
