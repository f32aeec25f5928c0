"""Run the benchmarks, write `results.md` and `results.json`, and print the target table last.

    PYTHONPATH=. python3 -m benchmarks.run [--device cpu|cuda] [--quick] [--out DIR] [--only SUITE,...]

Every ratio is measured in the same run as its baseline. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import traceback

SUITES = ("fake_quant", "pruning", "reduce", "exact", "gptq", "training", "reference", "reference_large")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--quick", action="store_true", help="smaller sizes on CPU (under a minute on 2 cores)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one repetition (for tests)")
    parser.add_argument("--out", default=None, help="folder for results.md and results.json (default: a temp dir)")
    parser.add_argument("--only", default="", help=f"comma-separated subset of {','.join(SUITES)}")
    parser.add_argument("--budget-s", type=float, default=float("inf"), help="skip suites once this much time is used")
    parser.add_argument(
        "--threads", type=int, default=0, help="CPU: torch intra-op threads (default: 1 with --quick, else torch's own)"
    )
    args = parser.parse_args(argv)

    if "torch_backend.kernels._triton_kernels" not in sys.modules and os.environ.pop("TRITON_INTERPRET", None):
        print("note: TRITON_INTERPRET ignored: benchmarks time compiled code", file=sys.stderr)
    import torch

    from benchmarks import common

    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        print("--device cuda: no CUDA device here", file=sys.stderr)
        return 2
    threads = args.threads or (1 if (args.quick or args.smoke) and device == "cpu" else 0)
    if threads:  # quick CPU runs use one thread: timings stay sane on a shared machine
        torch.set_num_threads(threads)
    cfg = common.Config(device, quick=args.quick, smoke=args.smoke)
    # reference_large (minutes on CPU) runs when named, and in smoke runs (tiny sizes)
    only = [s for s in args.only.split(",") if s] or [s for s in SUITES if s != "reference_large" or args.smoke]
    unknown = sorted(set(only) - set(SUITES))
    if unknown:
        parser.error(f"unknown suites {unknown}; choose from {', '.join(SUITES)}")

    import importlib

    from torch_backend.kernels import status

    rows, errors, skipped = [], [], []
    start = time.perf_counter()
    for name in only:
        if time.perf_counter() - start > args.budget_s:
            skipped.append(name)
            continue
        t0 = time.perf_counter()
        try:
            module = importlib.import_module(f"benchmarks.bench_{name}")
            rows += module.run(cfg)
        except Exception:  # a suite that fails is reported, the others still run
            errors.append(f"{name}: {traceback.format_exc(limit=3)}")
        print(f"[{name}: {time.perf_counter() - t0:.1f} s]", file=sys.stderr)
        if cfg.cuda:
            torch.cuda.empty_cache()

    meta = {
        "device": common.device_name(device),
        "torch": torch.__version__,
        "triton": status()["triton"],
        "mode": "smoke" if args.smoke else ("quick" if args.quick else "full"),
        "seconds": round(time.perf_counter() - start, 1),
        "notes": [],
    }
    if not cfg.cuda:
        meta["notes"].append(
            "CPU run: the fused paths fall back to eager torch and sizes are scaled down; the GPU targets are pending "
            "until this runs on CUDA (bash scripts/gpu-check)."
        )
    meta["notes"] += [f"suite skipped (time budget): {s}" for s in skipped]
    meta["notes"] += [f"suite failed: {e.strip().splitlines()[-1]}" for e in errors]
    targets = compute_targets(rows, cfg)
    out = args.out or tempfile.mkdtemp(prefix="pqref-bench-")
    md_path, json_path = common.write(out, rows, targets, meta)
    for e in errors:
        print(e, file=sys.stderr)
    print(f"results: {md_path} {json_path}")
    print(f"== pqref benchmark targets ({meta['device']}, torch {meta['torch']}, {meta['mode']})")
    print(common.targets_table(targets))
    return 1 if errors else 0


def compute_targets(rows, cfg):
    from benchmarks.common import Target

    def find(suite, case_part, impl, baseline):
        for r in rows:
            if r.suite == suite and case_part in r.case and r.impl == impl and r.baseline == baseline:
                return r
        return None

    def target(name, row, goal, ok, value=None, detail=""):
        if row is None:
            return Target(name, None, goal, None, "not measured")
        value = row.ratio if value is None else value
        met = ok(value) if cfg.cuda else None
        where = "" if cfg.cuda else "CPU figure; H200 pending. "
        return Target(name, value, goal, met, where + (detail or row.note))

    fq = find("fake_quantize", "per tensor", "pqref fused", "y.copy_(x)")
    gm = find("global magnitude", "", "pqref radix select", "torch.nn.utils.prune.global_unstructured (L1)")
    ts = find("tree_sum", "", "pqref fast tree", "torch.sum(x, dtype=float64)")
    tr = find("training step", "", "W8A8 + 2:4 (pqref kernels)", "float32 step")
    peaks = [
        r.peak_extra for r in rows if r.peak_extra is not None and r.impl.startswith("pqref") and "eager" not in r.note
    ]
    peaks_rows = [r for r in rows if r.peak_extra is not None]
    out = [
        target(
            "fake quantize per tensor: fraction of copy bandwidth",
            fq,
            ">= 0.90",
            lambda v: v >= 0.9,
            value=None if fq is None else fq.baseline_ms / fq.ms,
        ),
        target("global magnitude pruning: time / global_unstructured", gm, "<= 0.5", lambda v: v <= 0.5),
        target("tree_sum: time / torch.sum(float64)", ts, "<= 1.2", lambda v: v <= 1.2),
        target("training step W8A8 + 2:4: time / float step", tr, "<= 1.15", lambda v: v <= 1.15),
    ]
    out += _exact_targets(rows, cfg)
    if cfg.cuda and peaks_rows:
        worst = max(peaks) if peaks else None
        out.append(
            Target(
                "peak extra memory of the fused ops, in input sizes (worst op)",
                worst,
                "<= 2",
                None if worst is None else worst <= 2,
                "torch.cuda.max_memory_allocated around each call",
            )
        )
    else:
        out.append(
            Target("peak extra memory of the fused ops, in input sizes (worst op)", None, "<= 2", None, "CUDA only")
        )
    return out


def _exact_targets(rows, cfg):
    """The exact linear algebra's goals, stated for the CPU at full size (issue 13): met or not on a full CPU run."""
    from benchmarks.common import Target

    goals = [
        ("exact_sum of float32: time / torch.sum(float64)", "sum of", "pqref exact_sum", 3),
        ("exact_matmul float32: time / torch.matmul float64", "matmul", "pqref exact_matmul", 20),
        ("cholesky: time / torch.linalg.cholesky float64", "cholesky", "pqref cholesky", 20),
        ("exact_gram: time / x.T @ x float64", "gram", "pqref exact_gram", 20),
    ]
    gptq = next((r for r in rows if r.suite == "gptq"), None)
    out = []
    for name, case, impl, goal in goals:
        row = next((r for r in rows if r.suite == "exact" and case in r.case and r.impl == impl), None)
        if row is None:
            out.append(Target(name, None, f"<= {goal}", None, "not measured"))
            continue
        full_cpu = not (cfg.cuda or cfg.quick or cfg.smoke)
        where = "" if full_cpu else "not the goal's device and size: no verdict. "
        met = row.ratio <= goal if full_cpu else None
        out.append(Target(name, row.ratio, f"<= {goal}", met, f"{where}{row.case}; {row.note}"))
    name = "exact GPTQ 1024x1024, 2048 rows, g128: time / plain float32 GPTQ"
    if gptq is None:
        out.append(Target(name, None, "<= 5", None, "not measured"))
    else:
        full_cpu = not (cfg.cuda or cfg.quick or cfg.smoke)
        where = "" if full_cpu else "not the goal's device and size: no verdict. "
        out.append(Target(name, gptq.ratio, "<= 5", gptq.ratio <= 5 if full_cpu else None,
                          f"{where}{gptq.case}; {gptq.note}"))  # fmt: skip
    return out


if __name__ == "__main__":
    sys.exit(main())
