"""Versions: of the package, and of the semantics the spec pins (bumped whenever any pinned output changes)."""

PQREF_VERSION = "0.2.0.dev0"
SEMANTICS_VERSION = "2"
