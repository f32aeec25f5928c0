"""Conformance runs outside pytest, counting every example and every mismatch (no stopping, no shrinking).

`verify_entry` checks one algorithm on one device in the calling process. `Worker` runs those checks in a child
process, so that a backend that raises anything, calls `sys.exit`, ends its process or never returns is reported
in its row of the table and cannot take the verifier down with it.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import signal
import sys
import time
import types
from dataclasses import dataclass, field

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings

from spec.backends import REFERENCE, OutputKindMismatch
from spec.conformance import Mismatch, check_case, numpy_call, outcome, same_bits
from spec.entry import Case

# Row statuses. "checked": every case ran (the mismatch count says how they went). Failures: "timeout" (a case
# ran past its deadline), "crashed" (the backend ended the worker process), "error" (the backend's function could
# not even be looked up). Not checked: "missing" (the backend has no such function), "stopped" (the run's hard
# time limit came first), "not run" (the run's time was spent before this row began).
FAILED = ("timeout", "crashed", "error")
NOT_CHECKED = ("missing", "stopped", "not run")


@dataclass
class Row:
    """What `verify_entry` found for one algorithm on one device."""

    examples: int = 0
    goldens: int = 0
    mismatches: int = 0
    status: str = "checked"
    detail: str = ""
    failures: list[str] = field(default_factory=list)
    torch_seen: bool = False

    @property
    def missing(self) -> bool:
        return self.status == "missing"

    @property
    def first(self) -> str:
        return self.failures[0] if self.failures else ""


class BackendRaised(Exception):
    """The backend raised an exception that is not `TypeError` or `ValueError` (which are compared with the
    reference's), or a `BaseException` such as `SystemExit`: a mismatch, whatever the reference did."""

    def __init__(self, exc: BaseException):
        self.exc = exc
        super().__init__(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)


def verify_entry(entry, backend, device, examples, seed=None, vectors=None, seconds=None, *, messages=True, keep=1,
                 progress=None) -> Row:  # fmt: skip
    """Check `examples` Hypothesis cases, every golden vector of `entry`, and exported `vectors` (a list of
    `(case, output, error)` from `spec.vectors.load`) on `backend` / `device`.

    With `seconds`, the generated cases run in chunks of `max(10, examples // 100)` and stop at the first chunk
    boundary after `seconds` (at least one chunk runs; goldens and vectors always run; `Row.examples` says how
    many cases ran). Chunk 0 is derandomized (or drawn from `seed`), chunk `i > 0` is seeded with
    `(seed or 0) * 1_000_003 + i`, so a time-limited run is reproducible given how many chunks it reached.

    **Arguments:**

    - `messages`: compare the wording of errors on invalid input; `False` compares only the exception type.
    - `keep`: how many mismatch messages `Row.failures` keeps (all are counted).
    - `progress`: called as `progress(label, case)` before each case (`"golden 2"`, `"vector 5"`, `"example 17"`),
      and as `progress("mismatch", message)` for each mismatch kept.

    !!! note
        Anything the backend raises is a mismatch of that case, recorded and counted; the run goes on. Besides
        `TypeError` and `ValueError` (compared with the reference's errors) that includes `SystemExit`, and inside
        a `Worker` also `KeyboardInterrupt` (the worker ignores Ctrl-C, which only the verifier handles). A case
        that never returns is the `Worker`'s to stop.

        NumPy's floating-point warnings are off during the run: the strategies reach overflow to +-Inf and other
        IEEE edge cases on purpose, and the reference's results there are specified, not accidents.
    """
    with np.errstate(all="ignore"):
        return _verify_entry(entry, backend, device, examples, seed, vectors, seconds, messages, keep, progress)


def _verify_entry(entry, backend, device, examples, seed, vectors, seconds, messages, keep, progress) -> Row:
    row = Row()
    try:
        raw = _guard(backend.function, row)(entry)
    except (TypeError, ValueError) as exc:
        row.status, row.detail = "error", f"looking up {entry.name} raised {type(exc).__name__}: {exc}"
        return row
    except BackendRaised as exc:
        if isinstance(exc.exc, NotImplementedError):
            row.status, row.detail = "missing", str(exc.exc)
        else:
            row.status, row.detail = "error", f"looking up {entry.name} raised {exc}"
        return row
    row.torch_seen = _uses_torch(raw)
    fn = _guard(raw, row)
    step = progress or (lambda label, case: None)

    def attempt(prefix, body):
        try:
            body()
        except (Mismatch, OutputKindMismatch) as exc:
            record(f"{prefix}: {exc}")
        except BackendRaised as exc:
            record(f"{prefix}: {backend.name} raised {exc}")
        except Exception as exc:  # a result that cannot even be compared (an odd type, an unconvertible dtype)
            record(f"{prefix}: cannot compare the result: {type(exc).__name__}: {exc}")

    def record(message):
        row.mismatches += 1
        if len(row.failures) < keep:
            row.failures.append(message)
            step("mismatch", message)

    for i, (case, output, error) in enumerate(vectors or []):
        row.goldens += 1
        step(f"vector {i + 1}", case)

        def vector(case=case, output=output, error=error):
            kind, got = outcome(fn, Case(backend.to_native(case.args, device), backend.to_native(case.kwargs, device)))
            if error is not None:
                same_type = kind == "error" and type(got).__name__ == error["type"]
                if not same_type or (messages and str(got) != error["message"]):
                    raise Mismatch(f"expected {error['type']}: {error['message']}, got {kind} {got!r:.200}")
            elif kind == "error":
                raise Mismatch(f"raised {type(got).__name__}: {got}")
            else:
                same_bits(output, backend.to_numpy(got), "vector")

        attempt(f"vector {case.repro(entry.name)}", vector)

    for i, golden in enumerate(entry.golden):
        row.goldens += 1
        step(f"golden {i + 1}", golden.case)

        def gold(golden=golden):
            kind, got = outcome(numpy_call(backend, fn, device), golden.case)
            if kind == "error":
                raise Mismatch(f"raised {type(got).__name__}: {got}")
            same_bits(golden.expected, got, "golden")

        attempt(f"golden {golden.case.repro(entry.name)}", gold)

    def check(case):
        row.examples += 1
        step(f"example {row.examples}", case)
        checked = fn if messages else _reference_wording(fn, entry, case)
        attempt(case.repro(entry.name), lambda: check_case(entry, case, backend, device, checked))

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


def _reference_wording(fn, entry, case):
    """`fn`, except that where the reference rejects `case`, an error of the same type from `fn` is replaced by
    the reference's own (so that `check_case` compares exception types only: `--results-only`)."""
    try:
        Case(REFERENCE.to_native(case.args, "cpu"), REFERENCE.to_native(case.kwargs, "cpu")).call(entry.reference())
        return fn
    except (TypeError, ValueError) as exc:
        expected = exc

    def call(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (TypeError, ValueError) as exc:
            if type(exc) is type(expected):
                raise expected from None
            raise

    return call


_IN_WORKER = False  # True in a Worker's process, where SIGINT is ignored: a KeyboardInterrupt there is the backend's


def _guard(fn, row):
    """`fn`, with anything it raises besides `TypeError` and `ValueError` turned into `BackendRaised`; notes in
    `row.torch_seen` when it returns torch objects or mentions tensors in an error."""

    def call(*args, **kwargs):
        try:
            out = fn(*args, **kwargs)
        except (TypeError, ValueError) as exc:
            row.torch_seen = row.torch_seen or "Tensor" in str(exc)
            raise
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt) and not _IN_WORKER:
                raise  # the user's Ctrl-C, in-process
            row.torch_seen = row.torch_seen or "Tensor" in str(exc)
            raise BackendRaised(exc) from None
        row.torch_seen = row.torch_seen or _is_torch(out)
        return out

    return call


def _is_torch(value) -> bool:
    if isinstance(value, list | tuple):
        return any(_is_torch(v) for v in value)
    return type(value).__module__.split(".")[0] == "torch"


def _uses_torch(fn) -> bool:
    """Whether the module defining `fn` has imported torch (a hint that it wants `--kind torch`)."""
    module = sys.modules.get(getattr(fn, "__module__", None) or "")
    return module is not None and _imports_torch(module)


def _imports_torch(module) -> bool:
    return any(
        isinstance(v, types.ModuleType) and (v.__name__ == "torch" or v.__name__.startswith("torch."))
        for v in vars(module).values()
    )


# ---------------------------------------------------------------------------------------------------------------
# The worker process
# ---------------------------------------------------------------------------------------------------------------

STARTUP_SECONDS = 300.0  # for a fresh worker to start Python and import pqref (not the backend: that is `timeout`)


class BackendImportError(Exception):
    """The backend's module could not be imported (whatever it raised, or it ended the process or hung)."""


class Worker:
    """Runs `verify_entry` for one backend in a child process (spawned: a fresh interpreter, safe with CUDA).

    Every case must finish within `timeout` seconds, measured from its start (the worker announces each case
    before running it); a case that does not is stopped by killing the process, and its row is `"timeout"`. A
    process that ends on its own (`os._exit`, a segfault) makes its row `"crashed"`. Either way the next `run`
    starts a fresh process. With `hard_stop` (a `time.monotonic()` instant) a row still running then is
    `"stopped"`. The backend's module is imported in the child within `timeout` seconds, with `search_path`
    first on `sys.path`.
    """

    def __init__(self, backend, timeout: float, search_path: str | None = None, hard_stop: float | None = None):
        self.backend, self.timeout, self.search_path, self.hard_stop = backend, timeout, search_path, hard_stop
        self.proc = self.conn = None

    def start(self) -> None:
        """Start the process and import the backend; raises `BackendImportError` if that fails."""
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, self.backend, self.search_path), daemon=True,
                                name="pqref-verify-backend")  # fmt: skip
        self.proc.start()
        child.close()
        for wait, what in ((STARTUP_SECONDS, "start"), (self.timeout, "import the backend")):
            message, _ = self._receive(wait)
            if message is None:
                self._stop()
                raise BackendImportError(f"the worker process did not {what} within {wait:g} s")
            if message[0] == "eof":
                raise BackendImportError(f"the worker process ended ({self._ended()}) trying to {what}")
            if message[0] == "import-error":
                self._stop()
                raise BackendImportError(message[1])

    def run(self, task: dict) -> Row:
        """`verify_entry(REGISTRY[name], backend, **rest)` in the worker, for `task = {"name": name, **rest}`; a row
        for whatever happens."""
        if self.hard_stop is not None and time.monotonic() >= self.hard_stop:
            return Row(status="not run", detail="the time limit was reached before it began")
        if self.proc is None:
            try:
                self.start()
            except BackendImportError as exc:
                if self.hard_stop is not None and time.monotonic() >= self.hard_stop:
                    return Row(status="not run", detail="the time limit was reached before it began")
                return Row(status="error", detail=f"restarting the worker: {exc}")
        try:
            self.conn.send(("run", task))
        except OSError:  # the process ended between two tasks (a thread the backend left behind, say)
            return Row(status="crashed", detail=f"the backend ended the worker process ({self._ended()}) between tasks")
        counts, failures, mismatches = {"example": 0, "golden": 0, "vector": 0}, [], 0
        label, case = "looking up the function", None
        while True:
            message, stopped = self._receive(self.timeout)
            if message is not None and message[0] == "case":
                _, label, case = message
                if label == "mismatch":
                    failures.append(case)
                    mismatches += 1
                else:
                    counts[label.split()[0]] += 1
                continue
            if message is not None and message[0] == "row":
                return message[1]
            where = label + (f": {case.repro(task['name'])}" if isinstance(case, Case) else "")
            if message is None:
                self._stop()
                status = "stopped" if stopped else "timeout"
                detail = (f"the run's time limit came during {where}" if stopped else
                          f"{where} did not finish within {self.timeout:g} s")  # fmt: skip
            else:
                status, detail = "crashed", f"the backend ended the worker process ({self._ended()}) during {where}"
                self.proc = None
            return Row(counts["example"], counts["golden"] + counts["vector"], mismatches, status, detail,
                       failures)  # fmt: skip

    def close(self) -> None:
        if self.proc is None:
            return
        try:
            self.conn.send(("stop",))
            self.proc.join(5)
        except (OSError, ValueError):
            pass
        self._stop()

    def _receive(self, wait):
        """`(message, False)`; `(None, stopped)` when nothing came within `wait` seconds or by the hard stop
        (`stopped` then says which); `(("eof",), False)` when the process ended."""
        now = time.monotonic()
        deadline, stopped = now + wait, False
        if self.hard_stop is not None and self.hard_stop < deadline:
            deadline, stopped = self.hard_stop, True
        try:
            if not self.conn.poll(max(0.0, deadline - now)):
                return None, stopped
            return self.conn.recv(), False
        except (EOFError, OSError):
            return ("eof",), False

    def _stop(self) -> None:
        """Kill the process, if it runs."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.is_alive():
            proc.kill()
        proc.join(5)
        self.conn.close()

    def _ended(self) -> str:
        proc = self.proc
        if proc is None:
            return "unknown exit status"
        proc.join(5)
        self.conn.close()
        self.proc = None
        code = proc.exitcode
        if code is None:
            return "unknown exit status"
        if code < 0:
            try:
                return f"killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exit code {code}"


def _worker_main(conn, backend, search_path):
    """The child: import the backend, then run the tasks the parent sends, announcing each case before it runs."""
    global _IN_WORKER
    _IN_WORKER = True
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the verifier's to handle: it kills this process
    _die_with_parent()
    os.dup2(2, 1)  # whatever the backend prints goes to stderr, not into the table
    sys.stdout = sys.stderr
    conn.send(("hello",))
    try:
        if search_path and search_path not in sys.path:
            sys.path.insert(0, search_path)
        importlib.import_module(backend.package)
        conn.send(("ready",))
    except BaseException as exc:  # noqa: B036 (whatever the backend's import raises, SystemExit included)
        conn.send(("import-error", f"{type(exc).__name__}: {exc}"))
        os._exit(0)

    def progress(label, case):
        try:
            conn.send(("case", label, case))
        except Exception:  # a case that does not pickle: announce it without its values
            conn.send(("case", label, None))

    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            break
        if message[0] != "run":
            break
        task = dict(message[1])
        try:
            from spec.registry import REGISTRY

            row = verify_entry(REGISTRY[task.pop("name")], backend, **task, progress=progress)
        except BaseException as exc:  # noqa: B036 (a strategy or the verifier failing: reported, not fatal)
            row = Row(status="error", detail=f"the check itself failed: {type(exc).__name__}: {exc}")
        conn.send(("row", row))
    sys.stderr.flush()
    os._exit(0)  # not waiting for threads the backend may have left running


def _die_with_parent() -> None:
    """On Linux, have the kernel kill this process when the verifier dies (even by SIGKILL)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
