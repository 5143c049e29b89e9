"""Draw a report's charts on two cores: this process and one helper process.

matplotlib holds the GIL, so threads cannot draw two charts at once. While ``rce analyze`` runs,
a helper Python process waits for chart requests. It is started a moment after the run begins,
so its ~1 s of imports runs on the core left idle while this process imports its own libraries.
When the report is written, this process and the helper take charts from one queue until none
is left. A chart is the same ``<svg>`` string whichever process draws it (same interpreter and
libraries, the house style reset for every chart, deterministic ids), and anything that goes
wrong with the helper -- it cannot start, dies, answers with an error, or a chart's arguments
do not survive JSON -- leaves that chart to this process, which draws it (and raises its error)
as before.

The helper also runs a few slow pure functions (``CALLS``: the subgroup gap tables) while this
process fits the other models (:func:`call_in_helper`); their arguments and values cross the
pipe pickled, and the same fallbacks apply.

A chart request holds numbers and labels already in the results dict, never a student row. A
call's arguments may hold the analysis rows (the pipeline leaves the student ID out); the helper
writes nothing anywhere and its error output is discarded.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import pickle
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = ["Job", "Pending", "call_in_helper", "charts_on_two_cores", "helper_running",
           "prefetch", "render_jobs", "start_helper", "start_helper_soon"]

#: One chart call: (chart function from :mod:`rce.report.charts`, args, kwargs).
Job = tuple[Callable[..., str], tuple[Any, ...], dict[str, Any]]

_helper: _Helper | None = None
_helper_lock = threading.Lock()
#: Depth of open charts_on_two_cores() blocks; the helper may run only inside one.
_wanted = 0


class _Helper:
    """The helper process and its pipes (one request in flight at a time)."""

    def __init__(self) -> None:
        import rce

        root = Path(rce.__file__).resolve().parent.parent
        env = dict(os.environ)
        if not _is_site_packages(root):
            # The helper must import this very copy of rce (a checkout, a --rce-path
            # benchmark). A site-packages folder is never put first: it could hide the
            # standard library behind an old backport.
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root),
                                                              env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rce.report.chart_helper"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        self.alive = True
        self.busy = threading.Lock()  # one request on the pipe at a time

    def draw(self, name: str, payload: bytes) -> str | None:
        """The helper's SVG for one chart, or None (then it is drawn here)."""
        with self.busy:
            return self._draw(name, payload)

    def _draw(self, name: str, payload: bytes) -> str | None:
        if not self.alive:
            return None
        try:
            assert self.proc.stdin is not None and self.proc.stdout is not None
            self.proc.stdin.write(payload + b"\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        except (OSError, ValueError):
            line = b""
        if not line:
            self.alive = False
            return None
        answer = json.loads(line)
        svg = answer.get("svg")
        return svg if isinstance(svg, str) and answer.get("function") == name else None

    def call(self, name: str, payload: bytes) -> tuple[bool, Any]:
        """(True, the helper's return value) of one allowed call, or (False, None)."""
        with self.busy:
            if not self.alive:
                return False, None
            try:
                assert self.proc.stdin is not None and self.proc.stdout is not None
                head = {"call": name, "nbytes": len(payload)}
                self.proc.stdin.write(json.dumps(head).encode("ascii") + b"\n" + payload)
                self.proc.stdin.flush()
                answer = json.loads(self.proc.stdout.readline() or b"null")
                if not isinstance(answer, dict) or answer.get("call") != name:
                    # an error answer leaves the pipe in step; anything else may not
                    self.alive = isinstance(answer, dict) and "error" in answer
                    return False, None
                body = self.proc.stdout.read(int(answer["nbytes"]))
                return True, pickle.loads(body)
            except (OSError, ValueError, EOFError, pickle.UnpicklingError):
                self.alive = False
                return False, None

    def close(self) -> None:
        self.alive = False
        with contextlib.suppress(OSError, ValueError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        # Nothing it does is needed once the block ends; a run that failed early must not wait
        # for the helper's imports to finish.
        with contextlib.suppress(OSError):
            self.proc.kill()
        self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _is_site_packages(folder: Path) -> bool:
    import site

    try:
        places = [*site.getsitepackages(), site.getusersitepackages()]
    except AttributeError:  # some virtualenv builds lack getsitepackages
        places = [p for p in sys.path if p.endswith(("site-packages", "dist-packages"))]
    return any(Path(p).resolve() == folder for p in places if p)


def _stop() -> None:
    global _helper, _prefetched
    with _helper_lock:
        helper, _helper = _helper, None
        _prefetched = None
    if helper is not None:
        helper.close()


atexit.register(_stop)


@contextlib.contextmanager
def charts_on_two_cores() -> Iterator[None]:
    """Inside the block, reports may draw their charts here and in a helper process.

    The helper starts when :func:`start_helper` or :func:`start_helper_soon` is called inside
    the block (``rce analyze`` calls the latter first, so the helper's imports overlap this
    process's own) and is stopped at the end of the block. Without it, on a single-core
    machine, or when other programs kept the cores busy since the block began, charts are
    drawn here only.
    """
    global _wanted, _since
    _wanted += 1
    if _wanted == 1:
        _since = _cpu_sample()
    try:
        yield
    finally:
        _wanted -= 1
        if _wanted == 0:
            _stop()


def start_helper() -> None:
    """Start the helper process now, inside :func:`charts_on_two_cores` (else do nothing)."""
    global _helper
    if not _wanted or not _spare_core(_since, _cpu_sample()):
        return
    with _helper_lock:
        if _helper is None and _wanted:
            try:
                _helper = _Helper()
            except OSError:
                _helper = None


#: Seconds of the machine's CPU use that :func:`start_helper_soon` looks at before deciding.
EVIDENCE_SECONDS = 0.3


def start_helper_soon() -> None:
    """Start the helper once the block has run :data:`EVIDENCE_SECONDS`, if a core is spare.

    At the very start of a run only the load average could decide, and it still counts the
    programs that just ended (the previous run of a script); a moment later the machine's
    busy time since the block began says whether other programs hold the cores now. The
    decision is taken on a thread, so this process goes on with its imports meanwhile.
    """
    if not _wanted:
        return
    began = _since[0] if _since is not None else None

    def later() -> None:
        import time

        if began is not None:
            time.sleep(max(0.0, began + EVIDENCE_SECONDS - time.monotonic()))
        start_helper()

    threading.Thread(target=later, name="rce-helper-start", daemon=True).start()


#: (wall seconds, machine busy seconds over all cores, this process's CPU seconds) or None.
_Sample = tuple[float, float, float] | None
_since: _Sample = None


def _cpu_sample() -> _Sample:
    """Linux: the machine's busy CPU time (/proc/stat) and this process's; None elsewhere."""
    import time

    try:
        with open("/proc/stat", encoding="ascii") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
        ticks = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, AttributeError):
        return None
    # user nice system idle iowait irq softirq steal: busy is all but idle and iowait.
    busy = sum(fields[:8]) - fields[3] - fields[4]
    return time.monotonic(), busy / ticks, time.process_time()


def _spare_core(before: _Sample, now: _Sample) -> bool:
    """True when a second core is free for the helper.

    The helper's imports and charts take about a core-second; when other programs keep the
    cores busy they only slow this process down (measured: +0.5-0.9 s on the example at load
    3.6 on two cores). Other programs' share is the machine's busy time less this process's,
    since the run began; without /proc, or over too short a time, the load average decides.
    """
    cores = os.cpu_count() or 1
    if cores < 2:
        return False
    if before is not None and now is not None and now[0] - before[0] >= 0.3:
        others = (now[1] - before[1]) - (now[2] - before[2])
        return others / (now[0] - before[0]) < 0.5
    try:
        return os.getloadavg()[0] < cores - 0.5
    except (AttributeError, OSError):
        return True


def helper_running() -> bool:
    """True while a helper process takes charts (inside :func:`charts_on_two_cores`)."""
    helper = _helper
    return helper is not None and helper.alive


def _payload(function: Callable[..., str], args: tuple[Any, ...], kwargs: dict[str, Any]
             ) -> bytes | None:
    """The request as one JSON line; None for a function the helper does not have or
    arguments that do not survive JSON unchanged."""
    from rce.report import charts

    name = getattr(function, "__name__", "")
    if name not in charts.__all__ or getattr(charts, name) is not function:
        return None
    request = {"function": name, "args": list(args), "kwargs": kwargs}
    try:
        text = json.dumps(request, allow_nan=True, ensure_ascii=True)
    except (TypeError, ValueError):
        return None
    if json.loads(text) != _as_json_types(request):
        return None
    return text.encode("ascii")


def _as_json_types(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _as_json_types(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_as_json_types(v) for v in value]
    return value


class _Batch:
    """One report's charts: a queue shared by this process and the helper, largest first."""

    def __init__(self, jobs: Sequence[Job], helper: _Helper) -> None:
        self.jobs = list(jobs)
        self.results: list[str | None] = [None] * len(jobs)
        self.payloads = [_payload(function, args, kwargs) for function, args, kwargs in jobs]
        # The request's size stands in for the drawing time: largest first, so the chart that
        # finishes last is a small one whichever process draws it.
        self.shared = deque(sorted((i for i, p in enumerate(self.payloads) if p is not None),
                                   key=lambda i: -len(self.payloads[i] or b"")))
        # A daemon thread: an abandoned duplicate must not hold up the end of the run; the
        # helper's pipe is closed when the charts_on_two_cores() block ends.
        threading.Thread(target=self._feed, args=(helper,), name="rce-chart-helper",
                         daemon=True).start()

    def same_jobs(self, jobs: Sequence[Job]) -> bool:
        return len(jobs) == len(self.jobs) and all(
            f is g and a == b and k == m
            for (f, a, k), (g, b, m) in zip(jobs, self.jobs, strict=True))

    def _feed(self, helper: _Helper) -> None:
        while helper.alive:
            try:
                i = self.shared.popleft()
            except IndexError:
                return
            svg = helper.draw(self.jobs[i][0].__name__, self.payloads[i] or b"")
            if svg is None:
                return  # the helper failed: its chart is drawn here
            if self.results[i] is None:
                self.results[i] = svg

    def finish(self) -> list[str]:
        """Draw here what the helper has not taken; never wait for the helper (see
        :func:`render_jobs`)."""
        jobs, results = self.jobs, self.results
        for i, payload in enumerate(self.payloads):
            if payload is None:
                results[i] = jobs[i][0](*jobs[i][1], **jobs[i][2])
        while True:
            try:
                i = self.shared.popleft()
            except IndexError:
                break
            results[i] = jobs[i][0](*jobs[i][1], **jobs[i][2])
        out = []
        for i, svg in enumerate(results):
            if svg is None:  # in the helper, or given back by it: drawn here as well
                function, args, kwargs = jobs[i]
                svg = results[i] or function(*args, **kwargs)
            out.append(svg)
        return out


#: Charts handed to the helper ahead of the report (see :func:`prefetch`).
_prefetched: _Batch | None = None


def prefetch(jobs: Sequence[Job]) -> None:
    """Let the helper start on these charts now, while this process does other work.

    A later :func:`render_jobs` with the same jobs takes over the queue (what is drawn is kept);
    with other jobs, or without a helper, nothing changes.
    """
    global _prefetched
    helper = _helper
    if helper is not None and helper.alive and len(jobs) >= 2:
        _prefetched = _Batch(jobs, helper)


def render_jobs(jobs: Sequence[Job]) -> list[str]:
    """Draw every chart, sharing them with the helper process when one is running.

    Returns the SVG strings in the order of ``jobs``. This process never waits for the helper:
    when no chart is left to start, it also draws the one the helper is still drawing (the
    helper is slower when other programs hold the cores), and the first copy done is used.
    """
    global _prefetched
    batch, _prefetched = _prefetched, None
    if batch is not None and not batch.same_jobs(jobs):
        batch.shared.clear()  # its feeder stops after the chart it is on
        batch = None
    if batch is None:
        helper = _helper
        if helper is None or not helper.alive or len(jobs) < 2:
            return [function(*args, **kwargs) for function, args, kwargs in jobs]
        batch = _Batch(jobs, helper)
    return batch.finish()


#: The helper's nice value: a lower CPU priority than this process's threads (as the hashing
#: thread of rce.pipeline has).
HELPER_NICE = 10

#: Functions the helper may run besides charts, as "module:name" (see :func:`call_in_helper`).
CALLS = frozenset({"rce.stats.gaps:compute_gaps"})


class Pending:
    """A function's result, computed in the helper process or, failing that, here."""

    def __init__(self, function: Callable[..., Any], args: tuple[Any, ...],
                 kwargs: dict[str, Any]) -> None:
        self._job = (function, args, kwargs)
        self._answer: tuple[bool, Any] = (False, None)
        self._thread: threading.Thread | None = None
        helper = _helper
        name = f"{function.__module__}:{function.__qualname__}"
        if helper is not None and helper.alive and name in CALLS and _small(args, kwargs):
            # A daemon thread: it only waits on the pipe, which is closed when the
            # charts_on_two_cores() block ends.
            self._thread = threading.Thread(target=self._ask, args=(helper, name),
                                            name="rce-helper-call", daemon=True)
            self._thread.start()

    def _ask(self, helper: _Helper, name: str) -> None:
        _function, args, kwargs = self._job
        try:
            payload = pickle.dumps((args, kwargs), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # not picklable: computed here
            return
        self._answer = helper.call(name, payload)

    def result(self) -> Any:
        """The return value. When the helper has not given it (no helper, it died, the function
        raised there, or it is not done yet), the function runs here -- and raises its own error
        here. This process never waits for the helper: on a machine whose cores are taken by
        other programs the helper (at low priority) may be far behind."""
        done, value = self._answer
        if done:
            return value
        function, args, kwargs = self._job
        return function(*args, **kwargs)


#: Arguments larger than this stay here: pickled, sent and unpickled they would be held three
#: times over (a state's analysis rows are hundreds of MB), for a second's gain.
MAX_CALL_BYTES = 64 * 2**20


def _small(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    # sys.getsizeof counts a DataFrame's data (pandas' __sizeof__), not just the object header
    return sum(sys.getsizeof(a) for a in (*args, *kwargs.values())) <= MAX_CALL_BYTES


def call_in_helper(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Pending:
    """Start ``function(*args, **kwargs)`` in the helper process; ``.result()`` gives its value.

    For a slow pure function of picklable data (``CALLS``) that this process does not need
    until later: meanwhile this process runs other stages on the other core. The helper runs
    the same code on one BLAS thread, as this process does (:mod:`rce._blas`), so the value is
    the one computed here, to the last digit. Without a helper, or when the helper is not done
    by then, the function runs on ``.result()``.
    """
    return Pending(function, args, kwargs)


def _serve() -> None:
    """The helper: read one JSON request per line from stdin, answer one JSON line each
    (a call's pickled arguments follow its line, and its pickled value its answer)."""
    import importlib

    # Low priority: the helper takes the cycles this run leaves idle (its imports while the
    # parent imports on one core, charts and calls while the parent fits models on one core),
    # not DuckDB's while it reads the usage logs on both.
    with contextlib.suppress(AttributeError, OSError):
        os.nice(HELPER_NICE)

    from rce._blas import single_thread_blas
    from rce.report import charts

    for name in sorted(CALLS):  # while the parent is busy elsewhere, not when it asks
        with contextlib.suppress(Exception):  # a call that cannot import fails (and runs there)
            importlib.import_module(name.split(":")[0])
    source, out = sys.stdin.buffer, sys.stdout.buffer
    while line := source.readline():
        try:
            request = json.loads(line)
        except ValueError:
            request = {}
        if "call" in request:
            body = source.read(int(request["nbytes"]))
            try:
                module, _sep, attr = request["call"].partition(":")
                if request["call"] not in CALLS:
                    raise ValueError(request["call"])
                args, kwargs = pickle.loads(body)
                with single_thread_blas():
                    value = getattr(importlib.import_module(module), attr)(*args, **kwargs)
                data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception as exc:  # the parent runs it again and raises the error there
                out.write(json.dumps({"error": type(exc).__name__}).encode("ascii") + b"\n")
            else:
                head = {"call": request["call"], "nbytes": len(data)}
                out.write(json.dumps(head).encode("ascii") + b"\n" + data)
            out.flush()
            continue
        try:
            name = request["function"]
            function = getattr(charts, name) if name in charts.__all__ else None
            if function is None:
                raise ValueError(name)
            answer = {"function": name,
                      "svg": function(*request["args"], **request["kwargs"])}
        except Exception as exc:  # the parent draws the chart again and reports the error
            answer = {"error": type(exc).__name__}
        out.write(json.dumps(answer, ensure_ascii=True).encode("ascii") + b"\n")
        out.flush()


if __name__ == "__main__":
    _serve()
