"""CPU: the NumPy reference against the torch backend at about 1M elements, for every registry entry whose
inputs can be enlarged.

A case drawn from the entry's own strategy is enlarged by tiling: its largest array, and every array argument
of the same shape, is repeated along one axis (0, else the last) until it holds about `--large` elements
(1M by default; `--quick` 256K); parameters of other shapes (a per-channel scale along the other axis, a
second matrix operand) stay as drawn. The first tiling that the reference accepts and answers without an
error is timed. Entries whose sizes are fixed by their definition (a square Hessian, a 256-element GGUF block
with its own scales, a key) or whose inputs only fit as drawn are listed as skipped, with the reason. Each
timed pair is also compared bit for bit in the run (the note says `bit-identical: True`), and timed in turns
(a call of each, then again; the median of each, over at least 3 calls, up to 15 for fast ones). One call of
either implementation that takes longer than `CAP_S` seconds ends the entry after that call (one sample); where
a call of either grows past `CAP_S / 16` on the way up (4x at a time from 1024 elements), the entry stays at
that size (its note gives the element count, of all its arrays together). The suite caps the process's
address space at 6 GiB more than it had (an entry that needs more is skipped).
"""

from __future__ import annotations

import contextlib
import math
import statistics
import time
import warnings

import numpy as np

from benchmarks.bench_reference import draw_cases
from benchmarks.common import Config, Row
from spec.backends import REFERENCE, TORCH
from spec.conformance import Mismatch, outcome, same_bits
from spec.entry import Case
from spec.registry import REGISTRY

SUITE = "reference vs torch, large (CPU)"
MEMORY_GIB = 6  # address space the suite may add to the process
CAP_S = 2.0  # seconds: a call slower than this is timed once; a reference predicted slower gets fewer elements


def run(cfg: Config) -> list[Row]:
    if cfg.cuda:
        return []
    target = cfg.size(1 << 20, 1 << 20, 1 << 18, 1 << 12)
    reps = 1 if cfg.smoke else 3
    entries = list(REGISTRY.values())
    if cfg.smoke:
        entries = entries[:5]
    rows, slower, ratios = [], [], []
    with _memory_cap(MEMORY_GIB):
        for entry in entries:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    row = _entry_row(entry, target, reps)
                except (MemoryError, RuntimeError) as exc:  # the memory cap, or torch failing to allocate
                    why = f"{type(exc).__name__}: {str(exc).splitlines()[0][:60]}"
                    row = Row(SUITE, entry.name, "torch_backend", float("nan"), note=f"skipped: {why}")
            rows.append(row)
            if row.ratio is not None:
                ratios.append(row.ratio)
                if row.ratio > 1:
                    slower.append(entry.name)
    if ratios:
        rows.append(
            Row(
                SUITE,
                f"all {len(ratios)} enlarged algorithms (geometric mean)",
                "torch_backend",
                float("nan"),
                "NumPy reference",
                None,
                statistics.geometric_mean(ratios),
                note=f"slower than NumPy (ratio > 1): {', '.join(slower) or 'none'}",
            )
        )
    return rows


def _entry_row(entry, target, reps) -> Row:
    suite = SUITE
    try:
        cases = draw_cases(entry, 10)
    except Exception as exc:  # an entry whose strategy cannot be drawn here
        return Row(suite, entry.name, "torch_backend", float("nan"), note=f"skipped: {type(exc).__name__}")
    cases.sort(key=_size, reverse=True)
    ref_fn, torch_fn = entry.reference(), TORCH.function(entry)
    why = "no array argument"
    for case in cases:
        if _size(case) == 0:
            continue
        for axis in (0, -1):
            grown = _grown(ref_fn, torch_fn, case, target, axis)
            if grown is None:
                why = "inputs do not tile"
                continue
            big, (ref_case, kind, ref_out, first_ref), torch_call = grown
            if kind != "ok":
                why = f"the enlarged inputs are not valid ({type(ref_out).__name__}: {str(ref_out)[:60]})"
                continue
            torch_case, kind_t, got, first_torch = torch_call
            try:
                if kind_t != "ok":
                    raise Mismatch(f"torch raised {got!r:.80}")
                same_bits(ref_out, TORCH.to_numpy(got), "output")
                same = "True"
            except Mismatch as exc:
                same = f"False ({str(exc)[:80]})"
            ref_ms, torch_ms = _times((ref_fn, ref_case, first_ref), (torch_fn, torch_case, first_torch), reps)
            n = _size(big)
            return Row(
                suite,
                entry.name,
                "torch_backend",
                torch_ms,
                "NumPy reference",
                ref_ms,
                torch_ms / ref_ms if ref_ms > 0 else None,
                note=f"{n} elements in all (tiled along axis {axis}); bit-identical: {same}",
            )
    return Row(suite, entry.name, "torch_backend", float("nan"), note=f"skipped: {why}")


def _grown(ref_fn, torch_fn, case, target, axis):
    """The largest tiling of `case` along `axis` up to `target` elements whose calls stay near `CAP_S`: from
    1024 elements up, 4x at a time while the last call of either implementation, times 16 (a quadratic
    algorithm), stays under `CAP_S`. Returns `(case, reference call, torch call)` of the last size, each call
    as `(native case, outcome kind, output, seconds)` (no torch call when the reference raised), or None."""
    n = 1024
    while True:
        big = _tiled(case, min(n, target), axis)
        if big is None:
            return None
        ref = _call(ref_fn, REFERENCE, big)
        if ref[1] != "ok":
            return big, ref, None
        got = _call(torch_fn, TORCH, big)
        if n == 1024:  # the first calls may pay one-time costs (imports, autograd set-up): time the second
            ref, got = _call(ref_fn, REFERENCE, big), _call(torch_fn, TORCH, big)
        if n >= target or max(ref[3], got[3]) * 16 > CAP_S:
            return big, ref, got
        n *= 4


def _call(fn, backend, case):
    native = Case(backend.to_native(case.args, "cpu"), backend.to_native(case.kwargs, "cpu"))
    t0 = time.perf_counter()
    kind, out = outcome(fn, native)
    return native, kind, out, time.perf_counter() - t0


@contextlib.contextmanager
def _memory_cap(gib):
    """Limit this process's address space to its current size plus `gib` GiB inside the block (Linux), so an
    entry whose enlarged inputs need quadratic memory (pairwise distances of a million filters) fails with a
    MemoryError instead of exhausting a shared machine."""
    try:
        import resource

        with open("/proc/self/statm") as f:
            current = int(f.read().split()[0]) * resource.getpagesize()
        old = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (current + gib * 2**30, old[1]))
    except (ImportError, OSError, ValueError):
        yield
        return
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, old)


def _times(ref, torch_call, reps) -> tuple[float, float]:
    """Median ms of each implementation over calls made in turns (reference, torch, reference, ...), so that a
    change in the machine's speed during the entry weighs on both alike: `reps` calls each, more (up to
    `MAX_REPS`) for fast calls, about `SAMPLE_S` seconds of each; a first call slower than `CAP_S` is its only
    sample."""
    firsts = (ref[2], torch_call[2])
    n = reps if reps == 1 else max(reps, min(MAX_REPS, math.ceil(SAMPLE_S / max(max(firsts), 1e-6))))
    times = ([], [])
    for _ in range(n):
        for k, (fn, case, first_s) in enumerate((ref, torch_call)):
            if first_s > CAP_S:
                continue
            t0 = time.perf_counter()
            outcome(fn, case)
            times[k].append((time.perf_counter() - t0) * 1e3)
    return tuple(statistics.median(t) if t else f * 1e3 for t, f in zip(times, firsts, strict=True))


SAMPLE_S, MAX_REPS = 0.15, 15  # fast calls: up to 15 calls each, about 0.15 s of the slower one


def _arrays(values):
    for v in values:
        if isinstance(v, np.ndarray):
            yield v
        elif isinstance(v, list | tuple):
            yield from _arrays(v)


def _size(case: Case) -> int:
    return sum(a.size for a in _arrays(list(case.args) + list(case.kwargs.values())))


def _tiled(case: Case, target: int, axis: int) -> Case | None:
    """`case` with its largest array and every array of that shape repeated along `axis` to about `target`
    elements; None when there is nothing to tile (no array of at least one dimension and one element)."""
    arrays = [a for a in _arrays(list(case.args) + list(case.kwargs.values())) if a.ndim >= 1 and a.size]
    if not arrays:
        return None
    largest = max(arrays, key=lambda a: a.size)
    shape = largest.shape
    reps = max(1, math.ceil(target / largest.size))
    if reps == 1:
        return case

    def grow(v):
        if isinstance(v, np.ndarray) and v.shape == shape:
            tiles = [1] * v.ndim
            tiles[axis] = reps
            return np.tile(v, tiles)
        if isinstance(v, list | tuple) and not isinstance(v, str):
            return type(v)(grow(x) for x in v)
        return v

    return Case(tuple(grow(v) for v in case.args), {k: grow(v) for k, v in case.kwargs.items()})
