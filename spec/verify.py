"""Conformance runs outside pytest, counting every example and every mismatch (no stopping, no shrinking)."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import HealthCheck, Phase, given, settings

from spec.conformance import Mismatch, check_case, numpy_call, same_bits


@dataclass
class Row:
    examples: int = 0
    goldens: int = 0
    mismatches: int = 0
    first: str = ""


def verify_entry(entry, backend, device, examples, seed=None) -> Row:
    """Check `examples` Hypothesis cases and every golden vector of `entry` on `backend` / `device`."""
    row = Row()

    def record(message):
        row.mismatches += 1
        row.first = row.first or message

    for golden in entry.golden:
        row.goldens += 1
        try:
            same_bits(golden.expected, numpy_call(backend, backend.function(entry), device)(golden.case), "golden")
        except Mismatch as exc:
            record(f"golden {golden.case.repro(entry.name)}: {exc}")

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
        row.examples += 1
        try:
            check_case(entry, case, backend, device)
        except Mismatch as exc:
            record(f"{case.repro(entry.name)}: {exc}")

    if seed is not None:
        from hypothesis import seed as hypothesis_seed

        run = hypothesis_seed(seed)(run)
    run()
    return row
