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


def _total_ms(fn, cases) -> float:
    """The time of one call of `fn` on every case, in ms per call."""
    t0 = time.perf_counter()
    for c in cases:
        outcome(fn, c)
    return (time.perf_counter() - t0) * 1e3 / max(1, len(cases))


def _time_in_turns(ref_fn, ref_cases, torch_fn, torch_cases, reps) -> tuple[float, float]:
    """`(reference ms, torch ms)` per call: after one warm-up call of each on every case (lazy imports, cached
    constants and tables), `reps` rounds, each timing the reference on every case and then torch on every case;
    the median round of each. Taken in turns, a slower stretch of the machine (another process, a frequency
    step) lands on both sides of a ratio rather than on one."""
    for c in ref_cases:
        outcome(ref_fn, c)
    for c in torch_cases:
        outcome(torch_fn, c)
    ref, tor = [], []
    for _ in range(reps):
        ref.append(_total_ms(ref_fn, ref_cases))
        tor.append(_total_ms(torch_fn, torch_cases))
    return statistics.median(ref), statistics.median(tor)


def run(cfg: Config) -> list[Row]:
    if cfg.cuda:
        return []
    count = 2 if (cfg.quick or cfg.smoke) else 10
    reps = 1 if cfg.smoke else (2 if cfg.quick else 7)
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
            ref_ms, torch_ms = _time_in_turns(ref_fn, ref_cases, torch_fn, torch_cases, reps)
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
    rows += _floor_rows(min(reps, 3))
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


def _floor_rows(reps) -> list[Row]:
    """The per-operation floor: single torch operations against the same NumPy operations on 64 float32 elements
    (the size of the strategies' inputs), each the median of `reps` runs of 2,000 calls. An entry that needs as
    many torch operations as its reference needs NumPy calls sits near the geometric mean of these ratios; it
    can only beat it with fewer operations than NumPy (a fused check, an in-place temporary)."""
    import numpy as np
    import torch

    rng = np.random.default_rng(0)
    xn, yn = rng.standard_normal(64).astype(np.float32), rng.standard_normal(64).astype(np.float32)
    mn = xn > 0
    xt, yt, mt = torch.from_numpy(xn), torch.from_numpy(yn), torch.from_numpy(mn)
    pairs = [
        ("x + y", lambda: xt + yt, lambda: xn + yn),
        ("x > y", lambda: xt > yt, lambda: xn > yn),
        ("where(m, x, 0)", lambda: torch.where(mt, xt, 0.0), lambda: np.where(mn, xn, np.float32(0))),
        ("round half to even", lambda: torch.round(xt), lambda: np.rint(xn)),
        ("abs", lambda: torch.abs(xt), lambda: np.abs(xn)),
        ("cast to float64", lambda: xt.to(torch.float64), lambda: xn.astype(np.float64)),
        ("bit view as int32", lambda: xt.view(torch.int32), lambda: xn.view(np.int32)),
        ("zeros(64)", lambda: torch.zeros(64), lambda: np.zeros(64, np.float32)),
        ("x[mask]", lambda: xt[mt], lambda: xn[mn]),
        ("max, read on the host", lambda: float(xt.max()), lambda: float(xn.max())),
    ]
    rows, ratios = [], []
    for name, t_fn, n_fn in pairs:
        t_ms, n_ms = (_op_ms(fn, reps) for fn in (t_fn, n_fn))
        ratios.append(t_ms / n_ms)
        rows.append(Row("reference vs torch (CPU)", f"floor: {name}", "torch", t_ms, "NumPy", n_ms, t_ms / n_ms))
    rows.append(
        Row(
            "reference vs torch (CPU)",
            f"floor: {len(pairs)} single operations (geometric mean)",
            "torch",
            float("nan"),
            "NumPy",
            None,
            statistics.geometric_mean(ratios),
            note="one torch operation against one NumPy call on 64 float32 elements: the per-call floor",
        )
    )
    return rows


def _op_ms(fn, reps, calls=2000) -> float:
    fn()
    totals = []
    for _ in range(max(reps, 3)):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        totals.append((time.perf_counter() - t0) * 1e3 / calls)
    return statistics.median(totals)
