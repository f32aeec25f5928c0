"""Hypothesis profiles: `ci` (derandomized, reproducible), `dev` (random, remembers failures), `thorough`.

Choose one with the environment variable `PQREF_PROFILE` or pytest's `--pqref-profile`; the default is `dev`.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]

settings.register_profile(
    "ci", max_examples=100, derandomize=True, database=None, print_blob=True, deadline=None, suppress_health_check=SLOW
)
settings.register_profile("dev", max_examples=100, deadline=None, print_blob=True, suppress_health_check=SLOW)
settings.register_profile(
    "thorough", max_examples=2000, derandomize=False, database=None, print_blob=True, deadline=None,
    suppress_health_check=SLOW,
)  # fmt: skip

PROFILES = ("ci", "dev", "thorough")


def load(name: str | None = None) -> str:
    """Load a profile by name, else `$PQREF_PROFILE`, else `dev`; returns the name loaded."""
    name = name or os.environ.get("PQREF_PROFILE") or "dev"
    if name not in PROFILES:
        raise ValueError(f"unknown Hypothesis profile {name!r}; choose one of {', '.join(PROFILES)}")
    settings.load_profile(name)
    return name
