"""The `pqref` command: `verify` checks a backend against the reference; `list` shows the algorithms."""

from __future__ import annotations

import argparse
import sys
import time

from spec.registry import REGISTRY


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="pqref", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    v = sub.add_parser("verify", help="check torch_backend against the reference, bit for bit")
    v.add_argument("--device", choices=["cpu", "cuda"], action="append", help="device(s); default: every one present")
    v.add_argument("--examples", type=int, default=100, help="Hypothesis examples per algorithm (default 100)")
    v.add_argument("--algorithm", action="append", help="only this algorithm (repeatable); see `pqref list`")
    v.add_argument("--seed", type=int, default=None, help="random seed; default: derandomized (reproducible)")
    v.add_argument("--shard", default=None, metavar="K/N",
                   help="only every N-th algorithm from the K-th (0-based), to run N processes side by side")  # fmt: skip
    v.add_argument("--seconds", type=float, default=None,
                   help="time budget for the generated examples, shared evenly by the algorithms still to run; "
                        "the table then says how many examples each one reached")  # fmt: skip
    v.add_argument("--backend", default=None, help="check this module instead of torch_backend (see the docs)")
    v.add_argument("--kind", choices=["numpy", "torch"], default=None,
                   help="what --backend takes and returns (default: numpy; torch for torch_backend)")  # fmt: skip
    v.add_argument("--vectors", default=None, help="also check the golden vectors exported into this folder")
    sub.add_parser("list", help="list the algorithms with their papers")
    vec = sub.add_parser("vectors", help="export versioned golden vectors for other backends")
    vec_sub = vec.add_subparsers(dest="vectors_command", required=True)
    ex = vec_sub.add_parser("export", help="write <entry>.npz files and manifest.json into DIR")
    ex.add_argument("directory")
    ex.add_argument("--examples", type=int, default=20, help="generated cases per algorithm, besides goldens")
    ex.add_argument("--algorithm", action="append", help="only this algorithm (repeatable)")
    d = sub.add_parser("demo", help="train and compress a small CNN on real digits; print what it costs and saves")
    d.add_argument("--quick", action="store_true", help="a few steps per recipe (for CI)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    d.add_argument("--out", default="pqref-demo", help="folder for the exported models, results.json and the plot")
    d.add_argument("--dataset", default=None, help="module:attribute of a torchvision-style dataset (default: digits)")
    d.add_argument("--recipe", action="append", help="only this recipe (repeatable)")
    args = parser.parse_args(argv)
    if args.command == "list":
        return _list()
    if args.command == "demo":
        return _demo(args)
    if args.command == "vectors":
        return _vectors(args)
    return _verify(args)


def _vectors(args) -> int:
    from spec import vectors

    names = args.algorithm or None
    unknown = [n for n in names or [] if n not in REGISTRY]
    if unknown:
        print(f"pqref vectors: unknown algorithm(s) {', '.join(unknown)}; see `pqref list`", file=sys.stderr)
        return 2
    manifest = vectors.export(args.directory, examples=args.examples, names=names)
    count = sum(len(e["vectors"]) for e in manifest["entries"].values())
    print(f"wrote {count} vectors for {len(manifest['entries'])} algorithms to {args.directory} "
          f"(pqref {manifest['pqref']}, semantics {manifest['semantics']})")  # fmt: skip
    return 0


def _demo(args) -> int:
    from torch_backend.nn import demo

    results = demo.run(quick=args.quick, seed=args.seed, device=args.device, out=args.out, dataset=args.dataset,
                       recipes=args.recipe)  # fmt: skip
    bad = [r.recipe for r in results if r.replay.startswith("MISMATCH")]
    if bad:
        print(f"replay mismatch in: {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0


def _list() -> int:
    width = max(len(n) for n in REGISTRY)
    for family in ("core", "quantization", "pruning"):
        print(f"{family}:")
        for e in REGISTRY.values():
            if e.family == family:
                paper = f"  [{e.paper.split('.')[0]}]" if e.paper else ""
                print(f"  {e.name:<{width}}  {e.summary}{paper}")
    return 0


def _verify(args) -> int:
    from spec.backends import TORCH, module_backend
    from spec.verify import verify_entry

    if args.examples < 1:
        print(f"pqref verify: --examples must be >= 1, got {args.examples}", file=sys.stderr)
        return 2
    names = args.algorithm or list(REGISTRY)
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        print(f"pqref verify: unknown algorithm(s) {', '.join(unknown)}; see `pqref list`", file=sys.stderr)
        return 2
    if args.shard is not None:
        k, _, n = args.shard.partition("/")
        if not (k.isdigit() and n.isdigit() and int(k) < int(n)):
            print(f"pqref verify: --shard must be K/N with 0 <= K < N, got {args.shard!r}", file=sys.stderr)
            return 2
        names = names[int(k) :: int(n)]
    if args.backend and args.backend != "torch_backend":
        backend = module_backend(args.backend, args.kind or "numpy")
        try:
            __import__(args.backend)
        except ImportError as exc:
            print(f"pqref verify: cannot import backend {args.backend!r}: {exc}", file=sys.stderr)
            return 2
    else:
        backend = TORCH if (args.kind or "torch") == "torch" else module_backend("torch_backend", args.kind)
    vectors = None
    if args.vectors:
        from spec import vectors as vec

        try:
            manifest, vectors = vec.load(args.vectors)
        except (OSError, ValueError, KeyError) as exc:
            print(f"pqref verify: cannot read vectors from {args.vectors}: {exc}", file=sys.stderr)
            return 2
        print(f"golden vectors: pqref {manifest['pqref']}, semantics {manifest['semantics']}")
    present = backend.devices()
    devices = args.device or present
    missing = [d for d in devices if d not in present]
    if missing:
        print(
            f"pqref verify: device {missing[0]} is not available here (present: {', '.join(present)})", file=sys.stderr
        )
        return 2
    print(
        f"pqref verify: {backend.package} against reference, {args.examples} examples per algorithm, devices {devices}"
    )
    header = f"{'algorithm':<28} {'device':<6} {'examples':>8} {'goldens':>7} {'mismatches':>10} {'seconds':>8}"
    print(header)
    print("-" * len(header))
    total = missing = examples = 0
    runs = [(name, device) for name in names for device in devices]
    began = time.perf_counter()
    for k, (name, device) in enumerate(runs):
        start = time.perf_counter()
        share = None
        if args.seconds is not None:  # an even share of what is left
            share = max(0.0, args.seconds - (start - began)) / (len(runs) - k)
        row = verify_entry(REGISTRY[name], backend, device, args.examples, args.seed,
                           vectors=None if vectors is None else vectors.get(name, []), seconds=share)  # fmt: skip
        total += row.mismatches
        examples += row.examples
        missing += row.missing
        mismatches = "missing" if row.missing else row.mismatches
        print(
            f"{name:<28} {device:<6} {row.examples:>8} {row.goldens:>7} {mismatches:>10} "
            f"{time.perf_counter() - start:>8.2f}"
        )
        if row.first:
            print(f"    first mismatch: {row.first}")
    print("-" * len(header))
    if args.seconds is not None:
        print(f"{examples} generated examples in all, within --seconds {args.seconds:g} "
              f"(at most {args.examples} per algorithm)")  # fmt: skip
    note = f"; {missing} algorithm(s) not implemented by the backend" if missing else ""
    print(f"{total} mismatches{note}" + ("" if total == 0 else " - the backend does NOT conform"))
    return 1 if total else 0


def entry_point() -> None:
    """The console script: `main`, quiet when its output pipe closes early (`pqref list | head`)."""
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        sys.stdout = None  # nothing more can be written
        code = 0
    sys.exit(code)


if __name__ == "__main__":
    entry_point()
