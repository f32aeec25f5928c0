"""Conformance runs outside pytest, counting every example and every mismatch (no stopping, no shrinking)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings

from spec.conformance import Mismatch, check_case, numpy_call, outcome, same_bits
from spec.entry import Case


@dataclass
class Row:
    examples: int = 0
    goldens: int = 0
    mismatches: int = 0
    missing: bool = False
    first: str = ""


def verify_entry(entry, backend, device, examples, seed=None, vectors=None, seconds=None) -> Row:
    """Check `examples` Hypothesis cases, every golden vector of `entry`, and exported `vectors` (a list of
    `(case, output, error)` from `spec.vectors.load`) on `backend` / `device`.

    With `seconds`, the generated cases run in chunks of `max(10, examples // 100)` and stop at the first chunk
    boundary after `seconds` (at least one chunk runs; goldens and vectors always run; `Row.examples` says how
    many cases ran). Chunk 0 is derandomized (or drawn from `seed`), chunk `i > 0` is seeded with
    `(seed or 0) * 1_000_003 + i`, so a time-limited run is reproducible given how many chunks it reached.

    NumPy's floating-point warnings are off during the run: the strategies reach overflow to +-Inf and other
    IEEE edge cases on purpose, and the reference's results there are specified, not accidents.
    """
    with np.errstate(all="ignore"):
        return _verify_entry(entry, backend, device, examples, seed, vectors, seconds)


def _verify_entry(entry, backend, device, examples, seed, vectors, seconds) -> Row:
    row = Row()
    try:
        fn = backend.function(entry)
    except NotImplementedError:
        row.missing = True
        return row

    def record(message):
        row.mismatches += 1
        row.first = row.first or message

    for case, output, error in vectors or []:
        row.goldens += 1
        kind, got = outcome(fn, Case(backend.to_native(case.args, device), backend.to_native(case.kwargs, device)))
        try:
            if error is not None:
                if kind != "error" or type(got).__name__ != error["type"] or str(got) != error["message"]:
                    raise Mismatch(f"expected {error['type']}: {error['message']}, got {kind} {got!r:.200}")
            elif kind == "error":
                raise Mismatch(f"raised {type(got).__name__}: {got}")
            else:
                same_bits(output, backend.to_numpy(got), "vector")
        except Mismatch as exc:
            record(f"vector {case.repro(entry.name)}: {exc}")

    for golden in entry.golden:
        row.goldens += 1
        try:
            kind, got = outcome(numpy_call(backend, fn, device), golden.case)
            if kind == "error":
                raise Mismatch(f"raised {type(got).__name__}: {got}")
            same_bits(golden.expected, got, "golden")
        except Mismatch as exc:
            record(f"golden {golden.case.repro(entry.name)}: {exc}")

    def check(case):
        row.examples += 1
        try:
            check_case(entry, case, backend, device, fn)
        except Mismatch as exc:
            record(f"{case.repro(entry.name)}: {exc}")

    if seconds is None:
        _generate(entry, check, examples, seed)
        return row
    start, chunk, i = time.perf_counter(), max(10, examples // 100), 0
    while row.examples < examples and (i == 0 or time.perf_counter() - start < seconds):
        _generate(entry, check, min(chunk, examples - row.examples), seed if i == 0 else (seed or 0) * 1_000_003 + i)
        i += 1
    return row


def _generate(entry, check, examples, seed):
    """Run `check` on `examples` cases drawn from the entry's strategy: derandomized, or from `seed`."""

    @settings(
        max_examples=examples,
        derandomize=seed is None,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(entry.strategy())
    def run(case):
        check(case)

    if seed is not None:
        from hypothesis import seed as hypothesis_seed

        run = hypothesis_seed(seed)(run)
    run()
