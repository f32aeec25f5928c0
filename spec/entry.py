"""The shape of the contract: `Entry` (one algorithm), `Case` (one call), goldens, bad inputs, invariants.

Implementations are named by dotted paths and imported lazily, so reading the registry needs neither torch
nor any other backend.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

REFERENCE = "reference"


@dataclass(frozen=True)
class Case:
    """One call: positional and keyword arguments, as NumPy arrays and plain Python values."""

    args: tuple = ()
    kwargs: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"Case(args={literal(self.args)}, kwargs={literal(self.kwargs)})"

    def call(self, fn):
        return fn(*self.args, **self.kwargs)

    def repro(self, name: str) -> str:
        """A copy-pasteable call, exact to the bit (float32 values print in their shortest round-trip form)."""
        parts = [literal(a) for a in self.args] + [f"{k}={literal(v)}" for k, v in self.kwargs.items()]
        return f"{name}({', '.join(parts)})"


@dataclass(frozen=True)
class Golden:
    """A small hand-checkable example: the exact expected output (arrays compared as bits)."""

    case: Case
    expected: Any
    why: str = ""


@dataclass(frozen=True)
class Bad:
    """An invalid call: every backend must raise `error` with the same message, containing `match`."""

    case: Case
    error: type
    match: str


@dataclass(frozen=True)
class Invariant:
    """A property of one output. `check(call, case, out)` raises AssertionError when it fails.

    `call(case)` runs the same backend again (NumPy in, NumPy out), for properties that relate two calls such as
    nesting of masks; `out` is the output of `case` converted to NumPy.
    """

    name: str
    check: Callable[[Callable, Case, Any], None]


@dataclass(frozen=True)
class Entry:
    """One algorithm in the contract."""

    name: str
    family: str
    module: str
    summary: str
    strategy: Callable[[], Any]
    semantics: tuple[str, ...] = ()
    invariants: tuple[Invariant, ...] = ()
    golden: tuple[Golden, ...] = ()
    bad: tuple[Bad, ...] = ()
    vjp: str | None = None
    paper: str = ""
    extra: tuple[tuple[str, str], ...] = ()
    # (peer, what it computes differently): recorded peer differences, on the entry's page and the divergence catalog
    peers: tuple[tuple[str, str], ...] = ()

    def path(self, package: str) -> str:
        return f"{package}.{self.module}"

    def reference(self):
        return resolve(f"{self.path(REFERENCE)}:{self.name}")

    def implementation(self, package: str):
        return resolve(f"{self.path(package)}:{self.name}")


def resolve(target: str):
    """Import `"package.module:function"` and return the function."""
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def literal(value) -> str:
    """Python source that rebuilds `value` exactly."""
    if isinstance(value, np.ndarray | np.generic):
        with np.printoptions(floatmode="unique", threshold=sys.maxsize, linewidth=sys.maxsize):
            body = np.array2string(np.asarray(value), separator=", ")
        body = body.replace("nan", "np.nan").replace("inf", "np.inf")
        return f"np.array({body}, dtype=np.{np.asarray(value).dtype.name})"
    if isinstance(value, list):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    if isinstance(value, tuple):
        return "(" + ", ".join(literal(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {literal(v)}" for k, v in value.items()) + "}"
    return repr(value)
