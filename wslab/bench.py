"""`make bench`: how much each layout carries, measured side by side in one run.

Deploys one container per measured layout with playbooks/lab.yml and the
real site.yml (inventories/bench: sized for the sockets, servers pinned to
the second core), then, layout after layout, from the first core and inside
the container's own network namespace (nsenter -n: no Docker port proxy, no
bridge on the path):

- HTTP: wrk on `/healthz` and on `/` (a template page), through nginx and
  straight at the app server, RUNS times each, the median and the spread
  kept; a static file nginx serves alone is the ceiling.
- WebSockets (the ASGI layouts): SOCKETS sockets through nginx
  (wslab.benchclient), held HOLD seconds, drops counted, every socket echoing
  at the end; resident memory of nginx and of the app server before and with
  every socket open; handshakes per second and connect p50/p99; echo p50/p99
  on ECHO_SOCKETS sockets at a fixed message rate.

Writes build/bench/<layout>.json and build/bench/run.json;
`python -m wslab.benchreport --update` turns them into docs/bench.md.

    python -m wslab.bench [--layout daphne ...] [--quick] [--no-deploy]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from wslab.layout import load_layout, server_units
from wslab.roles import raw_defaults
from wslab.runbook import git_commit
from wslab.scenarios import reference_loop_s

ROOT = Path(__file__).resolve().parent.parent
INVENTORY = ROOT / "inventories" / "bench"
OUT = ROOT / "build" / "bench"
CONTAINER = "wslab-bench-{layout}"
ASGI_LAYOUTS = ("daphne", "split-daphne", "uvicorn", "gunicorn-uvicorn")
LAYOUTS = ("wsgi", *ASGI_LAYOUTS)
# Layouts measured for their sockets only: split-daphne's pages are Gunicorn's
# (the wsgi layout's figures); its sockets are Daphne's two processes, beside
# the daphne layout's one.
SOCKETS_ONLY_LAYOUTS = ("split-daphne",)
# Load generators run here; inventories/bench pins the containers to core 1.
CLIENT_CORE = "0"
# A static file nginx serves without the app: the HTTP ceiling.
CEILING_PATH = "/static/echo/app.css"
HTTP_PATHS = ("/healthz", "/")
# The fair column: each server's own variable for its number of processes,
# set to 1 for a second HTTP pass straight at the server (Daphne runs one).
PROCESSES_VARIABLE = {"gunicorn": "gunicorn_workers", "uvicorn": "uvicorn_workers"}
# Every command below ends by itself; these bound how long it may try.
DEPLOY_TIMEOUT_S = 1800
CLIENT_SLACK_S = 900
RESTART_TIMEOUT_S = 120


@dataclass(frozen=True)
class Plan:
    sockets: int
    hold_s: float
    echo_sockets: int
    echo_rate: float
    echo_seconds: float
    http_seconds: int
    http_connections: int
    runs: int
    broadcast_sockets: int
    broadcast_rounds: int


FULL = Plan(sockets=10_000, hold_s=60, echo_sockets=1_000, echo_rate=500, echo_seconds=10,
            http_seconds=8, http_connections=32, runs=3, broadcast_sockets=1_000, broadcast_rounds=5)
QUICK = Plan(sockets=500, hold_s=5, echo_sockets=100, echo_rate=200, echo_seconds=3,
             http_seconds=2, http_connections=16, runs=1, broadcast_sockets=100, broadcast_rounds=2)


def say(text: str) -> None:
    print(f"bench: {text}", flush=True)


# ---------------------------------------------------------------- wrk


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not match:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match[1]) * _UNITS[match[2]]


def parse_wrk(output: str) -> dict:
    """Requests/s, p50/p99 latency (ms), requests, non-2xx/3xx and socket errors from `wrk --latency`."""
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    if not rps:
        raise ValueError(f"wrk printed no Requests/sec:\n{output}")
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", output, re.MULTILINE))
    requests = re.search(r"^\s+(\d+) requests in", output, re.MULTILINE)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return {
        "requests_per_s": float(rps[1]),
        "p50_ms": _ms(latency["50"]) if "50" in latency else None,
        "p99_ms": _ms(latency["99"]) if "99" in latency else None,
        "requests": int(requests[1]) if requests else None,
        "non_2xx": int(non_2xx[1]) if non_2xx else 0,
        "socket_errors": sum(int(n) for n in errors.groups()) if errors else 0,
    }


def summarize(runs: Sequence[dict]) -> dict:
    """The median run's figures, and the spread (min, max) of requests/s."""
    rates = [run["requests_per_s"] for run in runs]
    median = statistics.median(rates)
    middle = min(runs, key=lambda run: abs(run["requests_per_s"] - median))
    return {
        "requests_per_s": round(median, 1),
        "requests_per_s_min": round(min(rates), 1),
        "requests_per_s_max": round(max(rates), 1),
        "p50_ms": middle["p50_ms"],
        "p99_ms": middle["p99_ms"],
        "non_2xx": sum(run["non_2xx"] for run in runs),
        "socket_errors": sum(run["socket_errors"] for run in runs),
        "runs": len(runs),
    }


# ---------------------------------------------------------------- container


def container_pid(name: str) -> int:
    out = subprocess.run(
        ["docker", "inspect", "-f", "{{.State.Pid}}", name], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    return int(out.strip())


def processes(name: str) -> list[tuple[int, int, str]]:
    """(host pid, parent pid, command line) of every process in the container."""
    out = subprocess.run(
        ["docker", "top", name, "-eo", "pid,ppid,args"], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    rows = []
    for line in out.splitlines()[1:]:
        pid, ppid, args = line.split(None, 2)
        rows.append((int(pid), int(ppid), args.strip()))
    return rows


def pid_groups(rows: Sequence[tuple[int, int, str]], server: str) -> dict[str, list[int]]:
    """nginx's workers, and the app server's processes: the ones that name
    SERVER and all their descendants (Uvicorn's workers are bare
    multiprocessing children)."""
    app = {pid for pid, _, args in rows if re.search(rf"\b{re.escape(server)}\b", args) and "nginx" not in args}
    grew = True
    while grew:
        children = {pid for pid, ppid, _ in rows if ppid in app} - app
        app |= children
        grew = bool(children)
    return {
        "nginx": sorted(pid for pid, _, args in rows if args.startswith("nginx: worker process")),
        "app": sorted(app),
    }


def in_container(pid: int, argv: Sequence[str]) -> list[str]:
    """ARGV run in the container's network namespace, on the client's core."""
    return ["nsenter", "-t", str(pid), "-n", "taskset", "-c", CLIENT_CORE, *argv]


# ---------------------------------------------------------------- phases


def wrk(pid: int, url: str, plan: Plan) -> dict:
    argv = in_container(pid, [
        "wrk", "-t1", f"-c{plan.http_connections}", f"-d{plan.http_seconds}s", "--latency", url,
    ])
    out = subprocess.run(argv, capture_output=True, text=True, timeout=plan.http_seconds + 60)
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr.strip()}")
    return parse_wrk(out.stdout)


def http_server(layout: str) -> tuple[str, str]:
    """The server that answers the layout's "/" and its own base URL in the
    container (its wslab_app_binds address)."""
    definition = load_layout(layout)
    server = next(route["server"] for route in definition["routes"] if route["path"] == "/")
    return server, f"http://{raw_defaults('wslab')['wslab_app_binds'][server]}"


def wrk_runs(layout: str, pid: int, url: str, plan: Plan, label: str) -> dict:
    """PLAN's wrk runs on URL, one after the other, summarized."""
    runs = []
    for n in range(plan.runs):
        runs.append(wrk(pid, url, plan))
        say(f"{layout}: HTTP {label}, run {n + 1}/{plan.runs}:"
            f" {runs[-1]['requests_per_s']:.0f} req/s, p99 {runs[-1]['p99_ms']} ms")
    return summarize(runs)


def http_phase(layout: str, pid: int, plan: Plan) -> dict:
    server, app = http_server(layout)
    targets = {"nginx": "http://127.0.0.1", "app": app}
    results: dict = {"server": server, "paths": {}}
    for path in HTTP_PATHS:
        runs: dict[str, list[dict]] = {target: [] for target in targets}
        for n in range(plan.runs):
            # The targets take turns, so a drift in the machine's speed (it
            # varies from minute to minute) weighs on both alike.
            for target, base in targets.items():
                runs[target].append(wrk(pid, base + path, plan))
                say(f"{layout}: HTTP {path} via {target}, run {n + 1}/{plan.runs}:"
                    f" {runs[target][-1]['requests_per_s']:.0f} req/s, p99 {runs[target][-1]['p99_ms']} ms")
        results["paths"][path] = {target: summarize(target_runs) for target, target_runs in runs.items()}
    results["ceiling"] = wrk_runs(layout, pid, targets["nginx"] + CEILING_PATH, plan,
                                  f"ceiling (nginx alone, {CEILING_PATH})")
    return results


def redeploy_server(name: str, server: str, extra_vars: dict) -> None:
    """site.yml for SERVER's role only (--tags), on one bench container."""
    playbook = str(Path(sys.executable).parent / "ansible-playbook")
    subprocess.run([playbook, "site.yml", "-i", str(INVENTORY), "--limit", name, "--tags", server,
                    "-e", json.dumps(extra_vars)], cwd=ROOT, check=True, capture_output=True, timeout=DEPLOY_TIMEOUT_S)


def one_process_phase(layout: str, pid: int, name: str, plan: Plan) -> dict | None:
    """HTTP straight at the server with one process, as Daphne has: the same
    wrk runs as the layout's own figures, then the layout's processes back.
    None when the layout runs one process already (its own figures are these)."""
    server, base = http_server(layout)
    if load_layout(layout)["servers"][server].get("processes", 1) == 1:
        return None
    say(f"{layout}: {server} with one process ({PROCESSES_VARIABLE[server]}=1, site.yml --tags {server})")
    redeploy_server(name, server, {PROCESSES_VARIABLE[server]: 1})
    try:
        wait_until_answers(name, f"{base}/healthz")
        paths = {path: wrk_runs(layout, pid, base + path, plan, f"{path} via app, one process")
                 for path in HTTP_PATHS}
    finally:
        say(f"{layout}: {server} back to the layout's processes")
        redeploy_server(name, server, {})
        wait_until_answers(name, f"{base}/healthz")
    return {"server": server, "processes": 1, "paths": paths}


def fresh_start(name: str, units: Sequence[str]) -> None:
    """Restart UNITS in the container and wait until nginx answers /healthz
    again: memory per socket is then measured from a server that has held no
    socket yet (Python keeps what an earlier run made it allocate)."""
    subprocess.run(["docker", "exec", name, "systemctl", "restart", *units], check=True, timeout=120)
    wait_until_answers(name, "http://127.0.0.1/healthz")


def wait_until_answers(name: str, url: str) -> None:
    """Wait until URL answers inside the container NAME (a server restarted by
    systemd takes seconds to load Django and listen)."""
    deadline = time.monotonic() + RESTART_TIMEOUT_S
    while subprocess.run(
        ["docker", "exec", name, "python3", "-c",
         f"import urllib.request; urllib.request.urlopen({url!r}, timeout=5)"],
        capture_output=True, timeout=60,
    ).returncode != 0:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name}: {url} did not answer within {RESTART_TIMEOUT_S:.0f} s of the restart")
        time.sleep(0.5)


def sockets_phase(layout: str, pid: int, name: str, plan: Plan) -> dict:
    definition = load_layout(layout)
    server = definition["expect"]["websocket"]["server"]
    units = server_units(definition)[server]
    say(f"{layout}: restarting nginx and {', '.join(units)}, so that memory is measured from fresh processes")
    fresh_start(name, ["nginx", *units])
    groups = pid_groups(processes(name), server)
    if not groups["nginx"] or not groups["app"]:
        raise RuntimeError(f"{name}: no nginx worker or no {server} process to measure: {groups}")
    argv = in_container(pid, [
        sys.executable, "-m", "wslab.benchclient", "--url", "ws://127.0.0.1/ws/echo/",
        "--sockets", str(plan.sockets), "--hold", str(plan.hold_s),
        "--echo-sockets", str(plan.echo_sockets), "--echo-rate", str(plan.echo_rate),
        "--echo-seconds", str(plan.echo_seconds),
        "--broadcast-url", "ws://127.0.0.1/ws/broadcast/", "--broadcast-sockets", str(plan.broadcast_sockets),
        "--broadcast-rounds", str(plan.broadcast_rounds),
        *(f"--rss-pids={group}={','.join(map(str, pids))}" for group, pids in groups.items()),
    ])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = None
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env) as client:
        deadline = time.monotonic() + plan.hold_s + CLIENT_SLACK_S
        assert client.stdout is not None
        for line in client.stdout:
            record = json.loads(line)
            if "progress" in record:
                fields = ", ".join(f"{k} {v}" for k, v in record["progress"].items())
                say(f"{layout}: sockets: {fields}")
            else:
                result = record["result"]
            if time.monotonic() > deadline:
                client.kill()
                raise RuntimeError(f"the socket client ran past {plan.hold_s + CLIENT_SLACK_S:.0f} s")
    if client.returncode != 0 or result is None:
        raise RuntimeError(f"the socket client failed ({client.returncode})")
    result["server"] = server
    result["processes"] = {group: len(pids) for group, pids in groups.items()}
    opened = result["opened"] or 1
    result["kib_per_socket"] = {
        group: round((result["rss_kib_open"][group] - result["rss_kib_before"][group]) / opened, 2)
        for group in groups
    }
    say(f"{layout}: {result['opened']}/{result['sockets']} sockets opened at {result['handshakes_per_s']}/s"
        f" (connect p99 {result['connect_p99_ms']} ms), {result['dropped_during_hold']} dropped in"
        f" {result['hold_s']:.0f} s, {result['echoed_after_hold']} echoed after;"
        f" KiB per socket nginx {result['kib_per_socket']['nginx']}, app {result['kib_per_socket']['app']};"
        f" echo p50/p99 {result['echo_p50_ms']}/{result['echo_p99_ms']} ms;"
        f" a broadcast reached {result['broadcast_reached']}/{result['broadcast_opened']} sockets"
        f" on {result['broadcast_processes']} process(es) in {result['broadcast_ms']} ms")
    return result


# ---------------------------------------------------------------- run


def machine() -> dict:
    model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.machine(),
    )
    return {"cores": os.cpu_count(), "cpu": model, "arch": platform.machine(),
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30)}


def deploy(layouts: Sequence[str]) -> None:
    hosts = [CONTAINER.format(layout=layout) for layout in layouts]
    playbook = str(Path(sys.executable).parent / "ansible-playbook")
    say(f"starting the containers {', '.join(hosts)} (playbooks/lab.yml -i inventories/bench)")
    subprocess.run([playbook, "playbooks/lab.yml", "-i", str(INVENTORY), "-e", json.dumps({"wslab_lab_hosts": hosts})],
                   cwd=ROOT, check=True, timeout=DEPLOY_TIMEOUT_S)
    say(f"deploying {', '.join(layouts)} with site.yml -i inventories/bench")
    subprocess.run([playbook, "site.yml", "-i", str(INVENTORY), "--limit", ",".join(hosts)],
                   cwd=ROOT, check=True, timeout=DEPLOY_TIMEOUT_S)


def run(layouts: Sequence[str], plan: Plan, quick: bool) -> dict:
    OUT.mkdir(parents=True, exist_ok=True)
    for stale in OUT.glob("*.json"):
        stale.unlink()
    provenance = {
        "date": datetime.date.today().isoformat(),
        "commit": git_commit(),
        "machine": machine(),
        "suite": "bookworm",
        "quick": quick,
        "plan": asdict(plan),
        "layouts": list(layouts),
    }
    # The machine's own speed drifts from minute to minute (see README,
    # Timings): a fixed loop timed at both ends lets a reader weigh the figures.
    provenance["reference_loop_s"] = [round(reference_loop_s(), 3)]
    started = time.monotonic()
    for layout in layouts:
        name = CONTAINER.format(layout=layout)
        pid = container_pid(name)
        say(f"{layout}: measuring in {name} (servers on core 1, load from core {CLIENT_CORE})")
        record: dict = {"layout": layout}
        if layout not in SOCKETS_ONLY_LAYOUTS:
            record["http"] = http_phase(layout, pid, plan)
            one_process = one_process_phase(layout, pid, name, plan)
            if one_process:
                record["http"]["one_process"] = one_process
        if layout in ASGI_LAYOUTS:
            record["sockets"] = sockets_phase(layout, pid, name, plan)
        (OUT / f"{layout}.json").write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    provenance["seconds"] = round(time.monotonic() - started)
    provenance["reference_loop_s"].append(round(reference_loop_s(), 3))
    (OUT / "run.json").write_text(json.dumps(provenance, indent=1, sort_keys=True) + "\n")
    say(f"measured {len(layouts)} layouts in {provenance['seconds']} s; results in {OUT.relative_to(ROOT)}/")
    return provenance


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wslab.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--layout", action="append", choices=LAYOUTS, help="measure only this layout (repeatable)")
    parser.add_argument("--quick", action="store_true", help=f"a small run: {QUICK}")
    parser.add_argument("--no-deploy", action="store_true", help="measure the bench containers as they are")
    args = parser.parse_args(argv)
    layouts = tuple(args.layout or LAYOUTS)
    plan = QUICK if args.quick else FULL
    if not args.no_deploy:
        deploy(layouts)
    run(layouts, plan, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
