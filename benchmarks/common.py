"""Shared benchmark plumbing: sizes per device, timing, peak memory, result rows, and the markdown/JSON writers."""

from __future__ import annotations

import json
import math
import statistics
import time
from dataclasses import asdict, dataclass, field

import torch


@dataclass
class Config:
    device: str
    quick: bool = False
    smoke: bool = False  # tiny sizes, one repetition: only checks that everything runs (tests)

    @property
    def cuda(self) -> bool:
        return self.device == "cuda"

    def size(self, cuda, cpu, quick, smoke):
        """A size for this run: full on CUDA, scaled down on CPU, more with --quick, tiny with --smoke."""
        if self.smoke:
            return smoke
        if self.cuda:
            return cuda
        return quick if self.quick else cpu

    @property
    def reps(self) -> int:
        return 1 if self.smoke else (20 if self.cuda else (3 if self.quick else 5))

    @property
    def warmup(self) -> int:
        return 0 if self.smoke else (3 if self.cuda else 1)


@dataclass
class Row:
    """One measurement. `ratio` = ms / baseline_ms (lower is faster) unless `ratio_kind` says otherwise."""

    suite: str
    case: str
    impl: str
    ms: float
    baseline: str = ""
    baseline_ms: float | None = None
    ratio: float | None = None
    peak_extra: float | None = None  # peak extra device memory / input bytes (CUDA only)
    path: str = ""
    note: str = ""
    extra: dict = field(default_factory=dict)


@dataclass
class Target:
    """A pinned target of the issue, as a ratio measured in this run."""

    name: str
    value: float | None
    goal: str
    met: bool | None
    detail: str = ""


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def timeit(fn, cfg: Config, reps: int | None = None, warmup: int | None = None, setup=None) -> float:
    """Median wall time of `fn()` in milliseconds; `setup()` runs untimed before each call."""
    reps = cfg.reps if reps is None else reps
    warmup = cfg.warmup if warmup is None else warmup
    for _ in range(warmup):
        if setup:
            setup()
        fn()
    sync(cfg.device)
    times = []
    for _ in range(max(1, reps)):
        if setup:
            setup()
        sync(cfg.device)
        if cfg.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def peak_extra(fn, cfg: Config, input_bytes: int) -> float | None:
    """Peak device memory allocated by `fn()` beyond what was live before, in units of the input's size (CUDA)."""
    if not cfg.cuda or input_bytes == 0:
        return None
    sync(cfg.device)
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    out = fn()
    sync(cfg.device)
    peak = torch.cuda.max_memory_allocated() - base
    del out
    return peak / input_bytes


def fmt(v, digits=3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        return f"{v:.{digits}g}" if abs(v) < 1e4 else f"{v:.0f}"
    return str(v)


def markdown(rows: list[Row], targets: list[Target], meta: dict) -> str:
    out = ["# pqref benchmarks", ""]
    out.append(", ".join(f"{k}: {v}" for k, v in meta.items() if k != "notes"))
    for note in meta.get("notes", []):
        out.append(f"\n> {note}")
    out += ["", "## Targets", "", targets_table(targets), "", "## Measurements", ""]
    out.append("| suite | case | impl | ms | baseline | baseline ms | ratio | peak extra | path | note |")
    out.append("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        out.append(
            f"| {r.suite} | {r.case} | {r.impl} | {fmt(r.ms)} | {r.baseline} | {fmt(r.baseline_ms)} | "
            f"{fmt(r.ratio)} | {fmt(r.peak_extra)} | {r.path} | {r.note} |"
        )
    return "\n".join(out) + "\n"


def targets_table(targets: list[Target]) -> str:
    lines = ["| target | measured | goal | status | detail |", "|---|---|---|---|---|"]
    for t in targets:
        status = "met" if t.met else ("NOT met" if t.met is False else "pending")
        lines.append(f"| {t.name} | {fmt(t.value)} | {t.goal} | {status} | {t.detail} |")
    return "\n".join(lines)


def write(out_dir, rows: list[Row], targets: list[Target], meta: dict) -> tuple[str, str]:
    import os

    os.makedirs(out_dir, exist_ok=True)
    md_path, json_path = os.path.join(out_dir, "results.md"), os.path.join(out_dir, "results.json")
    with open(md_path, "w") as f:
        f.write(markdown(rows, targets, meta))
    with open(json_path, "w") as f:
        json.dump(
            _finite({"meta": meta, "targets": [asdict(t) for t in targets], "results": [asdict(r) for r in rows]}),
            f,
            indent=1,
            allow_nan=False,
            default=str,
        )
    return md_path, json_path


def _finite(value):
    """JSON has no NaN or Inf: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def device_name(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name(0)
    import platform

    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
