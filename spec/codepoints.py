"""Every code point: vectors that enumerate every code of every format of 8 bits or fewer (filled in below)."""

from __future__ import annotations


def cases(name: str) -> list:
    """The code-table cases of registry entry `name` (none for most entries)."""
    return []
