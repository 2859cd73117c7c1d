"""Run Molecule scenarios side by side and report each one's phases.

    python -m wslab.scenarios [--layout NAME ...] [--suite bookworm ...] [--jobs N]

Every (layout, suite) pair is one `molecule test -s LAYOUT` run with
WSLAB_SUITE=SUITE and its own ephemeral directory, so the same scenario can
run on two distributions at once. Output goes to build/molecule/SUITE-LAYOUT.log;
the runner prints a table of phase durations (converge, idempotence,
verify, ...), writes build/molecule/results.json, shows the tail of the log of
any failed run, and exits 1 if any failed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

from wslab.topology import PROJECT_DIR, layout_names

BUILD_DIR = PROJECT_DIR / "build" / "molecule"
PHASES = ["destroy", "syntax", "create", "converge", "idempotence", "verify"]
# Longest a single scenario may run before it is stopped and counted as failed.
SCENARIO_TIMEOUT_S = 1500
_PHASE_LINE = re.compile(r"\[(?P<scenario>[\w-]+) > (?P<phase>[\w-]+)\] (?P<what>Executing|Executed: \w+)")


@dataclass
class Run:
    layout: str
    suite: str
    ok: bool = False
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)
    log: str = ""


def run_scenario(layout: str, suite: str, extra_env: dict[str, str]) -> Run:
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    run_id = os.environ.get("WSLAB_RUN_ID", "")
    log_path = BUILD_DIR / f"{suite}-{layout}{run_id}.log"
    env = {
        **os.environ,
        **extra_env,
        "WSLAB_SUITE": suite,
        "MOLECULE_EPHEMERAL_DIRECTORY": str(BUILD_DIR / "ephemeral" / f"{suite}-{layout}{run_id}"),
        "NO_COLOR": "1",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "PY_COLORS": "0",
    }
    run = Run(layout, suite, log=str(log_path.relative_to(PROJECT_DIR)))
    started = time.monotonic()
    phase_started: dict[str, float] = {}
    with log_path.open("w") as log:
        process = subprocess.Popen(
            ["molecule", "test", "-s", layout],
            cwd=PROJECT_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        timer = threading.Timer(SCENARIO_TIMEOUT_S, process.kill)
        timer.start()
        try:
            for line in process.stdout:
                log.write(line)
                match = _PHASE_LINE.search(line)
                if not match:
                    continue
                phase, now = match["phase"], time.monotonic()
                if match["what"] == "Executing":
                    phase_started.setdefault(phase, now)
                elif phase in phase_started:
                    # destroy runs twice (before and after); add both up.
                    run.phases[phase] = run.phases.get(phase, 0.0) + now - phase_started.pop(phase)
            run.ok = process.wait() == 0
        finally:
            timer.cancel()
    run.seconds = time.monotonic() - started
    return run


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
    parser.add_argument("--jobs", type=int, default=4, help="scenario runs at once (default 4)")
    args = parser.parse_args(argv)
    layouts = args.layout or layout_names()
    unknown = sorted(set(layouts) - set(layout_names()))
    if unknown:
        parser.error(f"unknown layout(s) {', '.join(unknown)}; known: {', '.join(layout_names())}")
    pairs = [(layout, suite) for suite in (args.suite or ["bookworm"]) for layout in layouts]
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        runs = list(pool.map(lambda pair: run_scenario(*pair, {}), pairs))
    wall = time.monotonic() - started
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    (BUILD_DIR / f"results{os.environ.get('WSLAB_RUN_ID', '')}.json").write_text(
        json.dumps({"wall_s": wall, "jobs": args.jobs, "runs": [asdict(r) for r in runs]}, indent=2)
    )
    for run in runs:
        if not run.ok:
            tail = (PROJECT_DIR / run.log).read_text().splitlines()[-60:]
            print(f"\n==== {run.suite}/{run.layout} FAILED; last lines of {run.log} ====", *tail, sep="\n")
    print(render(runs, wall))
    failed = sum(not r.ok for r in runs)
    print(f"scenarios: {len(runs) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
