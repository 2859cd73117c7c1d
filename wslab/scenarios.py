"""Run Molecule scenarios side by side and report each one's phases.

    python -m wslab.scenarios [--layout NAME ...] [--suite bookworm ...] [--jobs N]

Every (layout, suite) pair is one `molecule test -s LAYOUT` run with
WSLAB_SUITE=SUITE and its own ephemeral directory, so the same scenario can
run on two distributions at once. Output goes to build/molecule/SUITE-LAYOUT.log
(WSLAB_BUILD_DIR moves build/molecule elsewhere). --jobs N runs N at once;
0, the default, means twice the machine's cores (a run spends most of its
time waiting on containers and sockets), at most one per run.

The runs expected to take longest start first: the seconds of each pair's
last passing run in build/molecule/results.json (results$WSLAB_RUN_ID.json),
else an estimate (expected_seconds). While they run the runner prints

    [3/16] start trixie/daphne                  when a run starts (3rd of 16),
    [5/16] trixie/daphne ok 212 s (create 4 s, converge 40 s, ...)
                                                when one ends (5th to end),
    [02:31] running: bookworm/uvicorn verify 48 s, ...; 6 done, 4 waiting
                                                after HEARTBEAT_S without a line,

and for a failed run, at once: its log, the phase that failed, the failing
tests (pytest's FAILED/ERROR summary lines), the failed Ansible tasks or the
tasks that broke idempotence. At the end: a table of phase durations
(converge, idempotence, verify, ...), the failed runs again one a line,
build/molecule/results.json; the exit status is 1 if any run failed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from wslab.containers import IMAGE_PREFIX, remove_platform, scenario_platform, start_platform
from wslab.layout import PROJECT_DIR, layout_names

BUILD_DIR = Path(os.environ.get("WSLAB_BUILD_DIR") or PROJECT_DIR / "build" / "molecule")
PHASES = ["create", "converge", "idempotence", "verify", "destroy"]
# Longest a single scenario may run before it is stopped and counted as failed.
SCENARIO_TIMEOUT_S = 1500
# A status line is printed when no line has been printed for this long.
HEARTBEAT_S = 50.0
# Most lines shown for one failed run (its log has the rest).
MAX_FAILURE_LINES = 30
_PHASE_LINE = re.compile(r"\[(?P<scenario>[\w-]+) > (?P<phase>[\w-]+)\] (?P<what>Executing|Executed: \w+)")

# Expected seconds of a run that has no history, from the README's timings
# (2-core machine): every run spends about SETUP_SECONDS outside verify
# (create, converge, idempotence, destroy); its
# verify takes VERIFY_SECONDS, more on the layouts that also prove 1,000-socket
# capacity, a few seconds on the layouts that refuse WebSockets.
SETUP_SECONDS = 130.0
VERIFY_SECONDS = 50.0
CAPACITY_LAYOUTS = frozenset({"daphne", "uvicorn", "gunicorn-uvicorn"})
CAPACITY_VERIFY_SECONDS = 80.0
REFUSED_LAYOUTS = frozenset({"broken-proxy", "wsgi"})
REFUSED_VERIFY_SECONDS = 5.0
# What each suite's verify step runs (WSLAB_VERIFY; molecule/shared/tests/
# conftest.py). Debian 12 runs everything. Debian 13 proves what can differ
# there (its packages, Python, Django, systemd and nginx; every layout's
# verdict over HTTP, WebSocket and TLS; units, limits, config) and leaves out
# the operations and load tests, whose subject (the servers' own behaviour under
# restart, kill, idle and 1,000 sockets) is the same pinned code on both, and
# the echo page in Chromium (the same page and browser on both).
VERIFY_SCOPE = {"bookworm": "full", "trixie": "verdicts"}
# Share of the full verify suite each scope runs, for scheduling.
SCOPE_SHARE = {"full": 1.0, "verdicts": 0.3}
# The runs on the pure base image: they prove that the roles install every
# Debian package and the app's venv (from PyPI) themselves. Every other run
# starts from the seeded image, where both are in place (scripts/base-image.sh).
PURE_RUNS = frozenset({("bookworm", "uvicorn"), ("trixie", "gunicorn-uvicorn")})
# Where each suite runs Molecule's idempotence pass (a second converge that
# must change nothing). A pass re-runs the tasks its layout's converge ran, and
# which tasks run depends on the roles and on each server's bind (a unix: bind
# gets a socket unit and its directory, a TCP bind removes them), not on the
# rest of the layout (broken-proxy and proxy-http10 differ from daphne only in
# nginx's template values). Debian 12 runs it where, between them, the runs go
# through every role, every server on both kinds of bind and the pure image:
# uvicorn (pure; Uvicorn on a unix socket, Redis), wsgi (Gunicorn on a unix
# socket), split-daphne (Daphne's two instances on unix sockets, Gunicorn on
# TCP), split-uvicorn (Uvicorn on TCP) and daphne (Daphne on TCP). Debian 13, whose
# tasks are the same, runs every role once: gunicorn-uvicorn (pure:
# django_app, Gunicorn, Redis and nginx installed from nothing), daphne and
# uvicorn. tests/test_scenarios.py checks both covers against the layouts and
# the scenarios' binds. The other runs get WSLAB_TEST_SEQUENCE
# (.config/molecule/config.yml) without it.
IDEMPOTENCE_LAYOUTS = {
    "bookworm": frozenset({"uvicorn", "wsgi", "split-daphne", "split-uvicorn", "daphne"}),
    "trixie": frozenset({"gunicorn-uvicorn", "daphne", "uvicorn"}),
}
# The run made as a user makes it, from the pure image: `molecule test` whole,
# with Molecule's own create and destroy steps (molecule/shared/create.yml and
# destroy.yml), and Ansible's own linear strategy, as `make up` and most users
# run site.yml. Every other run
# - goes through Mitogen's linear strategy: the same plays and tasks, with one
#   module interpreter kept alive in the container instead of a new Python per
#   task;
# - gets its container from the runner (RUNNER_PHASES): the same platform
#   started and removed with the docker CLI (wslab.containers), which spares
#   two Ansible runs and the Molecule steps around them, about 9 s of CPU a run.
PLAIN_RUNS = frozenset({("bookworm", "uvicorn")})
# The phases the runner itself carries out for the runs outside PLAIN_RUNS.
RUNNER_PHASES = ("create", "destroy")
# How old apt's package lists may be on the seeded image before a role
# refreshes them (WSLAB_APT_CACHE_VALID_TIME, .config/molecule/config.yml):
# every package is already installed there, the lists are never used.
SEEDED_APT_CACHE_VALID_S = 30 * 24 * 3600
# What a pure run adds: apt and pip download and install everything.
PURE_EXTRA_SECONDS = 150.0

# The machine's speed, taken before the first run and after the last: the
# best of REFERENCE_REPEATS timings of a fixed loop of pure Python. The lab's
# 2-core VM has run the same work 1.5 times slower from one minute to the
# next while idle, so a run's wall time is read together with these.
REFERENCE_LOOP = 10_000_000
REFERENCE_REPEATS = 3

# (suite, layout) -> seconds of that pair's last run.
History = Mapping[tuple[str, str], float]

_TEST_LINE = re.compile(r"^(?P<kind>FAILED|ERROR) (?P<test>\S+\.py(?:::\S+)?)(?: - (?P<message>.*))?$")
_TASK_LINE = re.compile(r"^(?:TASK|RUNNING HANDLER) \[(?P<task>.*)\]")
_ANSIBLE_FAILURE = re.compile(r"^(?:fatal|failed): \[")
_IDEMPOTENCE = "Idempotence test failed because of the following tasks:"
_MAX_LINE = 200


@dataclass
class Run:
    layout: str
    suite: str
    ok: bool = False
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)
    log: str = ""


@dataclass
class Failure:
    """What went wrong in a failed run, as read from its log."""

    phase: str
    tests: list[str] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


def run_env(layout: str, suite: str) -> dict[str, str]:
    """Extra environment for the run of LAYOUT on SUITE: its base image, its
    verify scope (VERIFY_SCOPE; SCOPE_SHARE tells scheduling its size), its
    strategy, and the phases Molecule runs (molecule_phases)."""
    pure = (suite, layout) in PURE_RUNS
    sequence = molecule_phases(layout, suite)
    return {
        **({} if (suite, layout) in PLAIN_RUNS else mitogen_env()),
        "WSLAB_IMAGE_PREFIX": IMAGE_PREFIX if pure else f"{IMAGE_PREFIX}-seeded",
        **({} if pure else {"WSLAB_APT_CACHE_VALID_TIME": str(SEEDED_APT_CACHE_VALID_S)}),
        "WSLAB_VERIFY": VERIFY_SCOPE.get(suite, "full"),
        **({} if sequence == PHASES else {"WSLAB_TEST_SEQUENCE": "[" + ", ".join(sequence) + "]"}),
    }


def molecule_phases(layout: str, suite: str) -> list[str]:
    """The phases Molecule runs for LAYOUT on SUITE: all of PHASES, less the
    idempotence pass where IDEMPOTENCE_LAYOUTS leaves it out, less the
    RUNNER_PHASES outside PLAIN_RUNS (the runner does those)."""
    left_out = set() if (suite, layout) in PLAIN_RUNS else set(RUNNER_PHASES)
    if not _runs_idempotence(layout, suite):
        left_out.add("idempotence")
    return [phase for phase in PHASES if phase not in left_out]


def _runs_idempotence(layout: str, suite: str) -> bool:
    """The layouts IDEMPOTENCE_LAYOUTS names for the suite (every layout on a suite it does not name)."""
    return suite not in IDEMPOTENCE_LAYOUTS or layout in IDEMPOTENCE_LAYOUTS[suite]


# Host variables of a container reached through Mitogen's strategy: the
# docker connection by its short name, which the strategy recognises, and the
# interpreter, which it would otherwise discover again for every task (the
# scenarios set the same in .config/molecule/config.yml).
MITOGEN_HOST_VARS = {"ansible_connection": "docker", "ansible_python_interpreter": "/usr/bin/python3"}


def mitogen_env() -> dict[str, str]:
    """Ansible settings for Mitogen's linear strategy (requirements/lab.txt),
    for hosts with MITOGEN_HOST_VARS."""
    import ansible_mitogen

    return {
        "ANSIBLE_STRATEGY_PLUGINS": str(Path(ansible_mitogen.__file__).parent / "plugins" / "strategy"),
        "ANSIBLE_STRATEGY": "mitogen_linear",
    }


def expected_seconds(layout: str, suite: str, history: History) -> float:
    """How long the run of LAYOUT on SUITE should take: its history, else an estimate."""
    if (suite, layout) in history:
        return history[(suite, layout)]
    if layout in CAPACITY_LAYOUTS:
        verify = CAPACITY_VERIFY_SECONDS
    elif layout in REFUSED_LAYOUTS:
        verify = REFUSED_VERIFY_SECONDS
    else:
        verify = VERIFY_SECONDS
    pure = PURE_EXTRA_SECONDS if (suite, layout) in PURE_RUNS else 0.0
    return SETUP_SECONDS + pure + verify * SCOPE_SHARE[VERIFY_SCOPE.get(suite, "full")]


def load_history(run_id: str = "") -> dict[tuple[str, str], float]:
    """Seconds of each pair's last passing run in results{run_id}.json; {} if none.

    A failed run stopped early, so its time says little: those pairs fall
    back on the estimate.
    """
    try:
        runs = json.loads((BUILD_DIR / f"results{run_id}.json").read_text())["runs"]
        return {(r["suite"], r["layout"]): float(r["seconds"]) for r in runs if r.get("ok")}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def schedule(pairs: list[tuple[str, str]], history: History) -> list[tuple[str, str]]:
    """(layout, suite) pairs, the longest expected first; ties keep their order."""
    return sorted(pairs, key=lambda pair: -expected_seconds(*pair, history))


def resolve_jobs(jobs: int, runs: int) -> int:
    """Runs at once: JOBS, or for 0 twice the cores, at most one per run."""
    if jobs > 0:
        return jobs
    return max(1, min(2 * (os.cpu_count() or 1), runs))


def _jobs_arg(value: str) -> int:
    """--jobs: a count, 0 or empty for automatic."""
    try:
        jobs = int(value or 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if jobs < 0:
        raise argparse.ArgumentTypeError("must be 0 (automatic) or more")
    return jobs


def _shown(path: Path) -> str:
    """PATH relative to the project if it is inside it."""
    try:
        return str(path.relative_to(PROJECT_DIR))
    except ValueError:
        return str(path)


def run_scenario(
    layout: str, suite: str, extra_env: dict[str, str], on_phase: Callable[[str], None] | None = None,
) -> Run:
    """One `molecule test` run; ON_PHASE is called as it enters each phase.

    Outside PLAIN_RUNS the runner starts the scenario's container before it
    and removes it after it, whatever happened (RUNNER_PHASES), and logs each
    as Molecule logs a phase.
    """
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    run_id = os.environ.get("WSLAB_RUN_ID", "")
    log_path = BUILD_DIR / f"{suite}-{layout}{run_id}.log"
    # A new ephemeral directory: Molecule keeps no state from an earlier run
    # (the sequence has no destroy first; create replaces a leftover container).
    ephemeral = BUILD_DIR / "ephemeral" / f"{suite}-{layout}{run_id}"
    shutil.rmtree(ephemeral, ignore_errors=True)
    env = {
        **os.environ,
        **extra_env,
        "WSLAB_SUITE": suite,
        "MOLECULE_EPHEMERAL_DIRECTORY": str(ephemeral),
        "NO_COLOR": "1",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "PY_COLORS": "0",
    }
    run = Run(layout, suite, log=_shown(log_path))
    started = time.monotonic()
    phase_started: dict[str, float] = {}
    current = ""
    runner_phases = (suite, layout) not in PLAIN_RUNS

    with log_path.open("w") as log:

        def record(line: str) -> None:
            nonlocal current
            log.write(line)
            match = _PHASE_LINE.search(line)
            if not match:
                return
            phase, now = match["phase"], time.monotonic()
            if match["what"] == "Executing":
                phase_started.setdefault(phase, now)
                if phase != current and on_phase:
                    on_phase(phase)
                current = phase
            elif phase in phase_started:
                # A phase that runs twice (destroy after a failure) adds up.
                run.phases[phase] = run.phases.get(phase, 0.0) + now - phase_started.pop(phase)

        def runner_phase(phase: str, action: Callable[[], object]) -> bool:
            record(f"INFO     [{layout} > {phase}] Executing (python -m wslab.scenarios, docker CLI)\n")
            try:
                action()
            except (OSError, subprocess.SubprocessError, ValueError) as error:
                detail = getattr(error, "stderr", "") or ""
                record(f"{error}\n{detail}".rstrip() + "\n")
                record(f"ERROR    [{layout} > {phase}] Executed: Failed\n")
                return False
            record(f"INFO     [{layout} > {phase}] Executed: Successful\n")
            return True

        platform = scenario_platform(layout, env) if runner_phases else {}
        if runner_phases and not runner_phase("create", lambda: start_platform(platform)):
            runner_phase("destroy", lambda: remove_platform(platform))
            run.seconds = time.monotonic() - started
            return run
        process = subprocess.Popen(
            ["molecule", "test", "-s", layout],
            cwd=PROJECT_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        timer = threading.Timer(SCENARIO_TIMEOUT_S, process.kill)
        timer.start()
        try:
            for line in process.stdout:
                record(line)
            run.ok = process.wait() == 0
        finally:
            timer.cancel()
            if runner_phases:
                run.ok = runner_phase("destroy", lambda: remove_platform(platform)) and run.ok
    run.seconds = time.monotonic() - started
    return run


def _clip(line: str) -> str:
    line = line.rstrip()
    return line if len(line) <= _MAX_LINE else line[: _MAX_LINE - 3] + "..."


def _failed_section(lines: list[str]) -> tuple[str, list[str]]:
    """The phase that failed and its lines: the first `Executed: Failed`, else
    the last phase that never finished (a run killed by the timeout)."""
    open_at: dict[str, int] = {}
    for number, line in enumerate(lines):
        match = _PHASE_LINE.search(line)
        if not match:
            continue
        phase = match["phase"]
        if match["what"] == "Executing":
            open_at.setdefault(phase, number)
            continue
        start = open_at.pop(phase, number)
        if match["what"] == "Executed: Failed":
            return phase, lines[start:number + 1]
    if open_at:
        phase, start = max(open_at.items(), key=lambda item: item[1])
        return phase, lines[start:]
    return "-", lines


def _test_lines(lines: list[str]) -> tuple[list[str], list[str]]:
    """pytest's short summary lines (FAILED/ERROR path::test - message): names, lines to show."""
    names, shown = [], []
    for line in lines:
        match = _TEST_LINE.match(line.rstrip())
        if match:
            path, colons, test = match["test"].partition("::")
            name = path.rsplit("/", 1)[-1] + colons + test
            if name not in names:
                names.append(name)
                message = f" - {match['message']}" if match["message"] else ""
                shown.append(_clip(f"{match['kind']} {name}{message}"))
    return names, shown


def _ansible_lines(lines: list[str]) -> tuple[list[str], list[str]]:
    """fatal:/failed: results (not the ignored ones) under their TASK header: tasks, lines to show."""
    tasks, shown = [], []
    task_header, task = "", ""
    number = 0
    while number < len(lines):
        line = lines[number].rstrip()
        header = _TASK_LINE.match(line)
        if header:
            task_header, task = line.rstrip(" *"), header["task"]
        if not _ANSIBLE_FAILURE.match(line):
            number += 1
            continue
        block = [line]
        number += 1
        while number < len(lines) and lines[number][:1] in (" ", "\t") and lines[number].strip():
            block.append(lines[number].rstrip())
            number += 1
        if number < len(lines) and lines[number].strip() == "...ignoring":
            continue
        if task_header and task not in tasks:
            tasks.append(task)
            shown.append(_clip(task_header))
        shown.extend(_clip(entry) for entry in block[:6])
    return tasks, shown


def _idempotence_lines(lines: list[str]) -> list[str]:
    """Molecule's list of the tasks that changed on the second converge."""
    for number, line in enumerate(lines):
        if _IDEMPOTENCE in line:
            # Molecule lists them as "*  => role : task" (older releases "* [host] => ...").
            following = []
            for entry in lines[number + 1:]:
                if not entry.lstrip().startswith("*"):
                    break
                following.append(_clip(entry))
            return [_IDEMPOTENCE, *following]
    return []


def read_failure(log_text: str) -> Failure:
    """The failed phase, failing tests and tasks, and the lines worth showing, from a run's log."""
    lines = log_text.splitlines()
    phase, section = _failed_section(lines)
    tests, test_lines = _test_lines(lines)
    tasks, task_lines = _ansible_lines(section)
    shown = [*test_lines, *task_lines, *_idempotence_lines(lines)]
    if not shown:
        shown = [_clip(line) for line in (section or lines)[-15:]]
    if len(shown) > MAX_FAILURE_LINES:
        shown = [*shown[: MAX_FAILURE_LINES - 1], f"... {len(shown) - MAX_FAILURE_LINES + 1} more"]
    return Failure(phase, tests, tasks, shown)


def _failure_of(run: Run) -> Failure:
    try:
        return read_failure((PROJECT_DIR / run.log).read_text(errors="replace"))
    except OSError as error:
        return Failure("-", lines=[f"cannot read the log: {error}"])


def _phase_times(run: Run) -> str:
    return ", ".join(f"{p} {run.phases[p]:.0f} s" for p in PHASES if p in run.phases)


def _listing(run: Run, failure: Failure) -> str:
    """One line for a failed run: suite/layout, phase, log, failing tests (or tasks)."""
    what = ", ".join(failure.tests) or ", ".join(f"task {t}" for t in failure.tasks) or "-"
    return f"  {run.suite}/{run.layout}  {failure.phase}  {run.log}  {what}"


class Progress:
    """Prints a line as runs start and end, and a status line when it has been quiet."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.started_at = time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._last_line = self.started_at
        self._started = 0
        self._finished = 0
        # (suite, layout) -> (phase, when it started); in the order the runs started.
        self._running: dict[tuple[str, str], tuple[str, float]] = {}
        self._heartbeat = threading.Thread(target=self._beat, name="wslab-heartbeat", daemon=True)

    def __enter__(self) -> Progress:
        self._heartbeat.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._heartbeat.join()

    def say(self, *lines: str) -> None:
        with self._lock:
            self._say(*lines)

    def _say(self, *lines: str) -> None:
        print(*lines, sep="\n", flush=True)
        self._last_line = time.monotonic()

    def start(self, layout: str, suite: str) -> None:
        with self._lock:
            self._started += 1
            self._running[(suite, layout)] = ("starting", time.monotonic())
            self._say(f"[{self._started}/{self.total}] start {suite}/{layout}")

    def phase(self, layout: str, suite: str, phase: str) -> None:
        with self._lock:
            self._running[(suite, layout)] = (phase, time.monotonic())

    def end(self, run: Run, failure: Failure | None) -> None:
        with self._lock:
            self._finished += 1
            self._running.pop((run.suite, run.layout), None)
            result = "ok" if failure is None else f"FAILED in {failure.phase}"
            times = _phase_times(run)
            line = f"[{self._finished}/{self.total}] {run.suite}/{run.layout} {result} {run.seconds:.0f} s"
            line += f" ({times})" if times else ""
            if failure is None:
                self._say(line)
            else:
                self._say(line, f"    log: {run.log}", *(f"    {entry}" for entry in failure.lines))

    def status(self) -> str:
        with self._lock:
            return self._status()

    def _status(self) -> str:
        now = time.monotonic()
        minutes, seconds = divmod(int(now - self.started_at), 60)
        running = ", ".join(
            f"{suite}/{layout} {phase} {now - since:.0f} s" for (suite, layout), (phase, since) in self._running.items()
        )
        waiting = self.total - self._started
        return f"[{minutes:02d}:{seconds:02d}] running: {running or '-'}; {self._finished} done, {waiting} waiting"

    def _beat(self) -> None:
        while not self._stop.wait(max(0.0, self._last_line + HEARTBEAT_S - time.monotonic())):
            with self._lock:
                if time.monotonic() - self._last_line >= HEARTBEAT_S:
                    self._say(self._status())


def _run_reported(layout: str, suite: str, progress: Progress) -> tuple[Run, Failure | None]:
    progress.start(layout, suite)
    run = run_scenario(layout, suite, run_env(layout, suite), lambda phase: progress.phase(layout, suite, phase))
    failure = None if run.ok else _failure_of(run)
    progress.end(run, failure)
    return run, failure


def reference_loop_s() -> float:
    """Seconds of the fastest of REFERENCE_REPEATS runs of sum(range(REFERENCE_LOOP))."""
    best = float("inf")
    for _ in range(REFERENCE_REPEATS):
        started = time.perf_counter()
        sum(range(REFERENCE_LOOP))
        best = min(best, time.perf_counter() - started)
    return best


def render(runs: list[Run], wall: float) -> str:
    headers = ["suite", "layout", "result", "total", *PHASES]
    rows = [
        [r.suite, r.layout, "ok" if r.ok else "FAILED", f"{r.seconds:.0f}s",
         *(f"{r.phases[p]:.0f}s" if p in r.phases else "-" for p in PHASES)]
        for r in runs
    ]
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows)]
    fmt = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    lines = [fmt(headers), fmt(["-" * w for w in widths]), *(fmt(r) for r in rows)]
    busy = sum(r.seconds for r in runs)
    lines.append(f"wall {wall:.0f}s for {len(runs)} scenario runs ({busy:.0f}s of scenario time)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wslab.scenarios", description=__doc__.splitlines()[0])
    parser.add_argument("--layout", action="append", help="layout to test (repeatable; default: all)")
    parser.add_argument("--suite", action="append", help="Debian suite (repeatable; default: bookworm)")
    parser.add_argument("--jobs", type=_jobs_arg, default=0,
                        help="scenario runs at once (default 0: twice the cores, at most one per run)")
    args = parser.parse_args(argv)
    layouts = args.layout or layout_names()
    unknown = sorted(set(layouts) - set(layout_names()))
    if unknown:
        parser.error(f"unknown layout(s) {', '.join(unknown)}; known: {', '.join(layout_names())}")
    pairs = [(layout, suite) for suite in (args.suite or ["bookworm"]) for layout in layouts]
    run_id = os.environ.get("WSLAB_RUN_ID", "")
    order = schedule(pairs, load_history(run_id))
    jobs = resolve_jobs(args.jobs, len(pairs))
    results: dict[tuple[str, str], tuple[Run, Failure | None]] = {}
    reference = [reference_loop_s()]
    with Progress(len(pairs)) as progress:
        progress.say(f"{len(pairs)} scenario runs, {jobs} at once, longest expected first")
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            for pair, result in zip(order, pool.map(lambda pair: _run_reported(*pair, progress), order)):
                results[pair] = result
        wall = time.monotonic() - progress.started_at
    reference.append(reference_loop_s())
    runs = [results[pair][0] for pair in pairs]
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    (BUILD_DIR / f"results{run_id}.json").write_text(json.dumps(
        {"wall_s": wall, "jobs": jobs, "reference_loop_s": reference, "runs": [asdict(r) for r in runs]}, indent=2,
    ))
    print(render(runs, wall))
    print(f"machine speed: a fixed Python loop took {reference[0]:.2f} s before the first run, "
          f"{reference[1]:.2f} s after the last (lower is faster)")
    failures = [(run, failure) for run, failure in (results[pair] for pair in pairs) if failure]
    if failures:
        print("failed runs (suite/layout, phase, log, failing tests):")
        print(*(_listing(run, failure) for run, failure in failures), sep="\n")
    print(f"scenarios: {len(runs) - len(failures)} passed, {len(failures)} failed", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
