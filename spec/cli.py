"""The `pqref` command: `verify` checks a backend against the reference, bit for bit; `vectors export` writes
golden vectors for backends in any language; `demo` trains and compresses a small CNN; `list` shows the
algorithms. Every command checks all its arguments before it changes anything: a usage error is one line on
stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import time

from spec.registry import REGISTRY
from spec.version import PQREF_VERSION, SEMANTICS_VERSION

MODULE_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "list":
        return _list()
    if args.command == "demo":
        return _demo(args)
    if args.command == "vectors":
        return _vectors(args)
    return _verify(args)


class _RecipesHelp(str):
    """The help of `pqref demo --recipe`, naming the recipes: built only when shown (the demo imports torch)."""

    def __mod__(self, params):
        from torch_backend.nn.demo import recipe_names

        names = "; ".join(f"'{r}'" for r in recipe_names())
        return f"only this recipe (repeatable; a unique prefix will do): {names}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pqref", description=__doc__)
    parser.add_argument("--version", action="version",
                        version=f"pqref {PQREF_VERSION} (semantics {SEMANTICS_VERSION})")  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True, metavar="{verify,vectors,demo,list}")
    v = sub.add_parser("verify", help="check torch_backend, or any backend module, against the reference, bit for bit",
                       description=VERIFY_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    v.add_argument("--device", choices=["cpu", "cuda"], action="append", help="device(s); default: every one present")
    v.add_argument("--examples", type=int, default=100, help="Hypothesis examples per algorithm (default 100)")
    v.add_argument("--algorithm", action="append", help="only this algorithm (repeatable); see `pqref list`")
    v.add_argument("--seed", type=int, default=None, help="random seed; default: derandomized (reproducible)")
    v.add_argument("--shard", default=None, metavar="K/N",
                   help="only every N-th algorithm from the K-th (0-based), to run N processes side by side")  # fmt: skip
    v.add_argument("--seconds", type=float, default=None,
                   help="time budget for the generated examples, shared evenly by the algorithms still to run; "
                        "the table then says how many examples each one reached; the run ends by S + TIMEOUT "
                        "seconds")  # fmt: skip
    v.add_argument("--timeout", type=float, default=60.0,
                   help="seconds one case (a golden, a vector or an example) may take, and the backend's import "
                        "(default 60); a case that takes longer stops its algorithm: `timeout`")  # fmt: skip
    v.add_argument("--backend", default=None, metavar="MODULE",
                   help="check this module (found in the current folder too) instead of torch_backend")  # fmt: skip
    v.add_argument("--kind", choices=["numpy", "torch"], default=None,
                   help="what --backend takes and returns (default: numpy; torch for torch_backend); with torch, "
                        "its results must be torch tensors")  # fmt: skip
    v.add_argument("--vectors", default=None, metavar="DIR",
                   help="also check the golden vectors exported into this folder")  # fmt: skip
    v.add_argument("--results-only", action="store_true",
                   help="on invalid input, require the reference's exception type but not its wording")  # fmt: skip
    v.add_argument("--show-mismatches", type=int, default=1, metavar="N",
                   help="print the first N mismatching inputs of each algorithm (default 1)")  # fmt: skip
    sub.add_parser("list", help="list the algorithms with their papers")
    vec = sub.add_parser("vectors", help="export versioned golden vectors; check results computed elsewhere")
    vec_sub = vec.add_subparsers(dest="vectors_command", required=True, metavar="{export,check}")
    ex = vec_sub.add_parser("export", help="write <entry>.jsonl and <entry>.npz files and manifest.json into DIR")
    ex.add_argument("directory", metavar="DIR", help="a new or empty folder (see --force)")
    ex.add_argument("--examples", type=int, default=20, help="generated cases per algorithm, besides goldens (>= 0)")
    ex.add_argument("--algorithm", action="append", help="only this algorithm (repeatable)")
    ex.add_argument("--force", action="store_true",
                    help="write into a folder that has files, replacing those of the same names")  # fmt: skip
    ex.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    ck = vec_sub.add_parser("check", help="compare results computed by another implementation with DIR's vectors",
                            description=CHECK_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ck.add_argument("directory", metavar="DIR", help="a folder written by `pqref vectors export`")
    ck.add_argument("results", metavar="RESULTS", help="a .jsonl results file, or a folder of them")
    ck.add_argument("--algorithm", action="append", help="only this algorithm (repeatable)")
    ck.add_argument("--show-mismatches", type=int, default=1, metavar="N",
                    help="print the first N mismatching cases of each algorithm and variant (default 1)")  # fmt: skip
    d = sub.add_parser("demo", help="train and compress a small CNN on real digits; print what it costs and saves")
    d.add_argument("--quick", action="store_true", help="a few steps per recipe (for CI)")
    d.add_argument("--seed", type=int, default=0, help="seed of the data split and the training (>= 0)")
    d.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when present)")
    d.add_argument("--out", default="pqref-demo", help="folder for the exported models, results.json and the plot")
    d.add_argument("--dataset", default=None, metavar="MODULE:ATTR",
                   help="a torchvision-style dataset, or a callable returning one (default: scikit-learn's digits)")  # fmt: skip
    d.add_argument("--recipe", action="append", metavar="NAME", help=_RecipesHelp("the recipes"))
    return parser


VERIFY_HELP = """\
Check a backend against the NumPy reference, bit for bit: every golden vector, then --examples generated cases per
algorithm and device (and the exported vectors of --vectors). The table has one row per algorithm and device.

The backend runs in a worker process: whatever it raises (SystemExit included) is a mismatch of that case; a case
that runs longer than --timeout seconds is stopped (the row says `timeout`), and a backend that ends the process
(`crashed`) is restarted for the next algorithm. With --seconds S, the whole run ends within about S + --timeout
seconds; rows the limit stopped or never reached say `stopped` and `not run`.

Exit status: 0 when everything asked for was checked and conforms; 1 on any mismatch, timeout or crash; 2 on a
usage error (a bad argument, a backend that cannot be imported, unreadable vectors); 3 when nothing failed but
something asked for was not checked (an algorithm the backend lacks, or the time ran out).
"""


def _fail(command: str, message: str) -> int:
    """A usage error: one line on stderr (a message from user code may span lines), and exit status 2."""
    print(f"pqref {command}: {' / '.join(line for line in message.splitlines() if line.strip())}", file=sys.stderr)
    return 2


CHECK_HELP = """\
Compare results computed by another implementation (in any language) with the JSON Lines vectors of DIR, bit for
bit. RESULTS holds one JSON object per line: {"algorithm": NAME, "case": INDEX, "output": VALUE} or
{"algorithm": NAME, "case": INDEX, "error": {"type": "ValueError"}} (a "message" is compared when given), values
written as in the vectors (see the conformance page). An implementation claims the variants it answers: the table
has one row per algorithm and variant with at least one result.

Exit status: 0 when every claimed case conforms; 1 on any mismatch; 2 on a usage error (unreadable vectors or
results, a result for a case the vectors lack); 3 when nothing failed but a claimed variant has cases without a
result, or nothing was claimed at all.
"""


def _vectors(args) -> int:
    from spec import vectors

    if args.vectors_command == "check":
        return _vectors_check(args)
    if args.examples < 0:
        return _fail("vectors", f"--examples must be >= 0, got {args.examples}")
    names = args.algorithm or None
    unknown = [n for n in names or [] if n not in REGISTRY]
    if unknown:
        return _fail("vectors", f"unknown algorithm(s) {', '.join(unknown)}; see `pqref list`")
    if names is not None and len(set(names)) != len(names):
        return _fail("vectors", "an --algorithm is given twice")

    def progress(done, total, name, count, seconds):
        print(f"  [{done}/{total}] {name}: {count} vectors, {seconds:.1f} s", file=sys.stderr, flush=True)

    try:
        manifest = vectors.export(args.directory, examples=args.examples, names=names, force=args.force,
                                  progress=None if args.quiet else progress)  # fmt: skip
    except vectors.VectorsError as exc:
        return _fail("vectors", str(exc))
    except OSError as exc:
        return _fail("vectors", f"cannot write {args.directory}: {exc.strerror or exc} ({exc.filename or ''})")
    count = sum(len(e["vectors"]) for e in manifest["entries"].values())
    print(f"wrote {count} vectors for {len(manifest['entries'])} algorithms to {args.directory} "
          f"(pqref {manifest['pqref']}, semantics {manifest['semantics']})")  # fmt: skip
    return 0


def _vectors_check(args) -> int:
    from spec import vectors

    if args.show_mismatches < 0:
        return _fail("vectors check", f"--show-mismatches must be >= 0, got {args.show_mismatches}")
    names = args.algorithm or None
    if names is not None and len(set(names)) != len(names):
        return _fail("vectors check", "an --algorithm is given twice")
    try:
        manifest, _ = vectors.load_jsonl(args.directory)
        groups, unclaimed = vectors.check(args.directory, args.results, names=names, keep=args.show_mismatches)
    except vectors.VectorsError as exc:
        return _fail("vectors check", str(exc))
    except OSError as exc:
        return _fail("vectors check", f"cannot read {exc.filename or args.results}: {exc.strerror or exc}")
    print(f"pqref vectors check: {args.results} against {args.directory} "
          f"(pqref {manifest['pqref']}, semantics {manifest['semantics']})")  # fmt: skip
    width = max([len(g.algorithm) for g in groups] + [9])
    vwidth = max([len(g.variant) for g in groups] + [7])
    header = (
        f"{'algorithm':<{width}}  {'variant':<{vwidth}}  {'cases':>5} {'checked':>7} {'mismatches':>10} {'missing':>7}"
    )
    print(header)
    print("-" * len(header))
    for g in groups:
        print(f"{g.algorithm:<{width}}  {g.variant or '-':<{vwidth}}  {g.cases:>5} {g.checked:>7} {g.mismatches:>10} "
              f"{g.missing:>7}")  # fmt: skip
        for i, failure in enumerate(g.failures):
            print(f"    {'first mismatch' if i == 0 else f'mismatch {i + 1}'}: {failure}")
        if g.mismatches > len(g.failures) and g.failures:
            print(f"    ({g.mismatches - len(g.failures)} more; --show-mismatches N prints N of them)")
    print("-" * len(header))
    if unclaimed:
        print(f"no results for {len(unclaimed)} algorithm(s): {_some(unclaimed)}")
    mismatches = sum(g.mismatches for g in groups)
    missing = sum(g.missing for g in groups)
    checked = sum(g.checked for g in groups)
    verdict = ""
    if mismatches:
        verdict = " - the implementation does NOT conform"
    elif missing or not checked:
        verdict = " - not everything claimed was checked" if checked else " - nothing was checked"
    print(f"{checked} cases checked in {len(groups)} variant(s), {mismatches} mismatches, {missing} missing{verdict}")
    return 1 if mismatches else 3 if (missing or not checked) else 0


def _demo(args) -> int:
    from torch_backend.nn import demo

    try:
        results = demo.run(quick=args.quick, seed=args.seed, device=args.device, out=args.out, dataset=args.dataset,
                           recipes=args.recipe)  # fmt: skip
    except demo.DemoError as exc:
        return _fail("demo", str(exc))
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


STATUS_NOTES = {
    "timeout": "timed out",
    "crashed": "crashed the worker",
    "error": "failed to run (error)",
    "missing": "not implemented by the backend",
    "stopped": "stopped by the time limit",
    "not run": "not run (time limit)",
}


def _verify(args) -> int:
    from spec.backends import TORCH, module_backend
    from spec.verify import BackendImportError, Worker

    if args.examples < 1:
        return _fail("verify", f"--examples must be >= 1, got {args.examples}")
    if args.seconds is not None and not (math.isfinite(args.seconds) and args.seconds >= 0):
        return _fail("verify", f"--seconds must be a number >= 0, got {args.seconds}")
    if not (math.isfinite(args.timeout) and args.timeout > 0):
        return _fail("verify", f"--timeout must be a number > 0, got {args.timeout}")
    if args.show_mismatches < 0:
        return _fail("verify", f"--show-mismatches must be >= 0, got {args.show_mismatches}")
    names = args.algorithm or list(REGISTRY)
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        return _fail("verify", f"unknown algorithm(s) {', '.join(unknown)}; see `pqref list`")
    if len(set(names)) != len(names):
        return _fail("verify", "an --algorithm is given twice")
    if args.shard is not None:
        k, _, n = args.shard.partition("/")
        if not (k.isdigit() and n.isdigit() and int(k) < int(n)):
            return _fail("verify", f"--shard must be K/N with 0 <= K < N, got {args.shard!r}")
        names = names[int(k) :: int(n)]
    package = args.backend or "torch_backend"
    if not MODULE_NAME.fullmatch(package) or package.endswith(".py"):
        stem = os.path.splitext(os.path.basename(package))[0]
        hint = f"; for the file {package}, give {stem}" if package.endswith(".py") else ""
        return _fail("verify", f"--backend must be a module name such as my_backend or pkg.ops, got {package!r}{hint}")
    if package == "torch_backend" and (args.kind or "torch") == "torch":
        backend = TORCH
    elif args.backend is None:
        return _fail("verify", "--kind numpy needs --backend: torch_backend takes torch tensors")
    else:
        backend = module_backend(package, args.kind or "numpy")
    vectors = None
    if args.vectors:
        from spec import vectors as vec

        try:
            manifest, vectors = vec.load(args.vectors)
        except (vec.VectorsError, OSError) as exc:
            return _fail("verify", f"cannot read vectors from {args.vectors}: {exc}")
        print(f"golden vectors: pqref {manifest['pqref']}, semantics {manifest['semantics']}")
        absent = [n for n in names if n not in vectors]
        if absent:
            print(f"golden vectors: none for {len(absent)} of the algorithms asked for ({_some(absent)})")
    present = backend.devices()
    devices = args.device or present
    if len(set(devices)) != len(devices):
        return _fail("verify", "a --device is given twice")
    missing = [d for d in devices if d not in present]
    if missing and getattr(backend, "kind", "torch") == "numpy":
        return _fail("verify", f"device {missing[0]}: a NumPy backend (--kind numpy) runs on cpu only")
    if missing:
        return _fail("verify", f"device {missing[0]} is not available here (present: {', '.join(present)})")
    worker = Worker(backend, args.timeout, search_path=os.getcwd() if args.backend else None)
    try:
        try:
            worker.start()
        except BackendImportError as exc:
            return _fail("verify", f"cannot import backend {package!r}: {exc}")
        return _verify_table(args, backend, worker, names, devices, vectors)
    finally:
        worker.close()


def _verify_table(args, backend, worker, names, devices, vectors) -> int:
    from spec.verify import FAILED, NOT_CHECKED

    print(f"pqref verify: {backend.package} against reference, {args.examples} examples per algorithm, "
          f"devices {devices}", flush=True)  # fmt: skip
    header = f"{'algorithm':<28} {'device':<6} {'examples':>8} {'goldens':>7} {'mismatches':>10} {'seconds':>8}"
    print(header)
    print("-" * len(header), flush=True)
    total = examples = 0
    unchecked: dict[str, list[str]] = {}
    torch_seen = False
    runs = [(name, device) for name in names for device in devices]
    began = time.monotonic()
    if args.seconds is not None:
        worker.hard_stop = began + args.seconds + args.timeout
    for k, (name, device) in enumerate(runs):
        start = time.monotonic()
        share = None
        if args.seconds is not None:  # an even share of what is left
            share = max(0.0, args.seconds - (start - began)) / (len(runs) - k)
        task = {"name": name, "device": device, "examples": args.examples, "seed": args.seed, "seconds": share,
                "vectors": None if vectors is None else vectors.get(name, []), "messages": not args.results_only,
                "keep": args.show_mismatches}  # fmt: skip
        row = worker.run(task)
        total += row.mismatches
        examples += row.examples
        torch_seen = torch_seen or row.torch_seen
        if row.status != "checked":
            unchecked.setdefault(row.status, []).append(name if len(devices) == 1 else f"{name} ({device})")
        shown = row.mismatches if row.status == "checked" else row.status
        print(f"{name:<28} {device:<6} {row.examples:>8} {row.goldens:>7} {shown:>10} "
              f"{time.monotonic() - start:>8.2f}")  # fmt: skip
        for i, failure in enumerate(row.failures):
            print(f"    {'first mismatch' if i == 0 else f'mismatch {i + 1}'}: {failure}")
        if row.failures and row.mismatches > len(row.failures):
            print(f"    ({row.mismatches - len(row.failures)} more; --show-mismatches N prints N of them)")
        if row.status != "checked":
            print(f"    {row.status}: {row.detail}")
        sys.stdout.flush()
    print("-" * len(header))
    if args.seconds is not None:
        print(f"{examples} generated examples in all, within --seconds {args.seconds:g} "
              f"(at most {args.examples} per algorithm)")  # fmt: skip
    failed = total > 0 or any(s in unchecked for s in FAILED)
    incomplete = any(s in unchecked for s in NOT_CHECKED)
    notes = "".join(f"; {len(unchecked[s])} {STATUS_NOTES[s]} ({_some(unchecked[s])})" for s in STATUS_NOTES
                    if s in unchecked)  # fmt: skip
    verdict = " - the backend does NOT conform" if failed else " - not everything asked for was checked" * incomplete
    print(f"{total} mismatches{notes}{verdict}")
    if failed and torch_seen and getattr(backend, "kind", "torch") == "numpy":
        print(f"hint: {backend.package} looks like a torch backend (it imports torch or returns tensors); it was "
              "given NumPy arrays: run it with --kind torch")  # fmt: skip
    return 1 if failed else 3 if incomplete else 0


def _some(names: list[str], n: int = 5) -> str:
    return ", ".join(names[:n]) + (f", ... ({len(names) - n} more)" if len(names) > n else "")


def entry_point() -> None:
    """The console script: `main`, quiet when its output pipe closes early (`pqref list | head`) and on Ctrl-C."""
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        sys.stdout = None  # nothing more can be written
        code = 0
    except KeyboardInterrupt:
        print("pqref: interrupted", file=sys.stderr)
        code = 130
    sys.exit(code)


if __name__ == "__main__":
    entry_point()
