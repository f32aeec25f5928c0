"""Peers are oracles to compare with, never definitions: what a peer does is recorded with its version.

A peer test first asserts pqref against pqref's own definition, written out exactly in the test (integer or
float64 arithmetic that is exact, `Fraction`s, brute force). Only then does it run the peer and hand the
comparison to `observe`:

- for a peer version listed in `known` (a version prefix such as `"0.7"` or `"2.13"`), the number of differing
  elements must be the one measured with that version: the table is the record, and a stale record fails;
- for any other version, the peer may differ only where a documented divergence predicts it (`predicted`); it
  may also agree there. A difference anywhere else is a divergence nobody has documented yet.

So a new peer release that changes its behaviour on a documented divergence (as ml_dtypes 0.7 did for E8M0
subnormals) passes; pqref's own semantics are asserted whatever the peer does.
"""

from __future__ import annotations

from importlib import metadata

import numpy as np

__all__ = ["version", "observe", "release"]


def version(dist: str) -> str:
    """The installed version of a distribution (`"ml_dtypes"`, `"onnx"`, `"torch"`, `"numpy"`)."""
    return metadata.version(dist)


def release(dist: str) -> tuple[int, ...]:
    """The numeric release of a distribution's version: `"2.13.0+cpu"` -> `(2, 13, 0)`."""
    out = []
    for part in version(dist).split("+")[0].split("."):
        digits = "".join(c for c in part if c.isdigit()) if part[:1].isdigit() else ""
        if not digits:
            break
        out.append(int(digits))
        if not part.isdigit():
            break
    return tuple(out)


def _known_count(dist, known):
    """The recorded count for the installed version: the longest matching prefix of `known`, or None."""
    v = version(dist).split("+")[0]
    best = None
    for prefix in known or {}:
        if v == prefix or v.startswith(prefix + "."):
            if best is None or len(prefix) > len(best):
                best = prefix
    return None if best is None else known[best]


def observe(dist, differ, *, predicted=None, known=None, what=""):
    """Record how a peer compares with pqref on one set of inputs; returns the number of differing elements.

    **Arguments:**

    - `dist`: the peer's distribution name, whose installed version keys the record.
    - `differ`: a bool array (or bool), True where the peer's result differs from pqref's.
    - `predicted`: a bool array like `differ` (or a bool), True where a documented divergence allows the peer
      to differ; `None` for nowhere.
    - `known`: `{version prefix: count}`, the counts measured with those versions (fixed inputs only).
    - `what`: a few words naming the comparison, for the failure message.
    """
    differ = np.asarray(differ, dtype=bool)
    count = int(differ.sum())
    where = f"{dist} {version(dist)}" + (f", {what}" if what else "")
    recorded = _known_count(dist, known)
    if recorded is not None:
        assert count == recorded, f"{where}: {count} elements differ from pqref, the record says {recorded}"
        return count
    allowed = np.zeros_like(differ) if predicted is None else np.broadcast_to(np.asarray(predicted, bool), differ.shape)
    stray = differ & ~allowed
    if stray.any():
        first = np.flatnonzero(stray.reshape(-1))[:4].tolist()
        raise AssertionError(
            f"{where}: {int(stray.sum())} elements differ from pqref where no documented divergence predicts it "
            f"(flat indices {first}...): document the new divergence, with this version"
        )
    return count
