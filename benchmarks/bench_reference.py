"""CPU: the NumPy reference against the torch backend, for every algorithm in the registry.

Inputs are drawn from each entry's own Hypothesis strategy (a fixed seed), so they are small (at most a few
hundred elements) and the ratio mostly measures per-call overhead: checks, conversions, kernel dispatch. The
large-input comparisons are in the other suites (fake quantize, pruning, tree_sum) on CPU.
"""

from __future__ import annotations

import statistics
import time
import warnings

from hypothesis import HealthCheck, Phase, given, settings

from benchmarks.common import Config, Row
from spec.backends import REFERENCE, TORCH
from spec.conformance import outcome
from spec.entry import Case
from spec.registry import REGISTRY


def draw_cases(entry, count: int) -> list[Case]:
    cases: list[Case] = []

    @settings(
        max_examples=count,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(entry.strategy())
    def collect(case):
        cases.append(case)

    collect()
    return cases[:count]


def _time_calls(fn, cases, reps) -> float:
    """Median over `reps` of the total time of calling `fn` on every case, in ms per call."""
    totals = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for c in cases:
            outcome(fn, c)
        totals.append((time.perf_counter() - t0) * 1e3 / max(1, len(cases)))
    return statistics.median(totals)


def run(cfg: Config) -> list[Row]:
    if cfg.cuda:
        return []
    count = 2 if (cfg.quick or cfg.smoke) else 10
    reps = 1 if cfg.smoke else (2 if cfg.quick else 3)
    entries = list(REGISTRY.values())
    if cfg.smoke:
        entries = entries[:5]
    rows: list[Row] = []
    ratios = []
    for entry in entries:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cases = draw_cases(entry, count)
            ref_fn, torch_fn = entry.reference(), TORCH.function(entry)
            ref_cases = [Case(REFERENCE.to_native(c.args, "cpu"), REFERENCE.to_native(c.kwargs, "cpu")) for c in cases]
            torch_cases = [Case(TORCH.to_native(c.args, "cpu"), TORCH.to_native(c.kwargs, "cpu")) for c in cases]
            outcome(torch_fn, torch_cases[0]) if torch_cases else None  # warm up lazy imports
            ref_ms = _time_calls(ref_fn, ref_cases, reps)
            torch_ms = _time_calls(torch_fn, torch_cases, reps)
        ratio = torch_ms / ref_ms if ref_ms > 0 else None
        if ratio:
            ratios.append(ratio)
        size = max((_size(c) for c in cases), default=0)
        rows.append(
            Row(
                "reference vs torch (CPU)",
                entry.name,
                "torch_backend",
                torch_ms,
                "NumPy reference",
                ref_ms,
                ratio,
                note=f"{len(cases)} strategy inputs, up to {size} elements",
            )
        )
    if ratios:
        geo = statistics.geometric_mean(ratios)
        rows.append(
            Row(
                "reference vs torch (CPU)",
                f"all {len(ratios)} algorithms (geometric mean)",
                "torch_backend",
                float("nan"),
                "NumPy reference",
                None,
                geo,
                note="per-call time on small inputs; ratio < 1: torch faster",
            )
        )
    return rows


def _size(case: Case) -> int:
    import numpy as np

    total = 0
    for v in list(case.args) + list(case.kwargs.values()):
        if isinstance(v, np.ndarray):
            total += v.size
        elif isinstance(v, list | tuple):
            total += sum(x.size for x in v if isinstance(x, np.ndarray))
    return total
