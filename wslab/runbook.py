"""The operator's runbook (docs/runbook.md): its tables, rendered from the
layouts and from the findings committed in docs/findings/.

    python -m wslab.runbook --update   # build/findings/ -> docs/findings/, provenance, tables
    python -m wslab.runbook --check    # exit 1 when the runbook's tables are not a render of docs/findings/

The prose of the runbook is written by hand. Each table between
``<!-- BEGIN generated: NAME -->`` and ``<!-- END generated: NAME -->`` is
rendered here, from layouts/*.yml (what each layout runs and what the tests
assert of it) and docs/findings/*.json (what the Molecule suites measured,
wslab.findings). A render reads nothing else: the date and the machine come
from docs/findings/provenance.json, written when the findings are copied, so
the same files render the same runbook on any day and any machine.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from wslab import findings
from wslab.layout import LAYOUTS_DIR, PROJECT_DIR, layout_names, load_layout, server_units
from wslab.probe import runbook_anchor

DOCS_DIR = PROJECT_DIR / "docs"
RUNBOOK_PATH = DOCS_DIR / "runbook.md"
DOCS_FINDINGS_DIR = DOCS_DIR / "findings"
PROVENANCE = "provenance.json"
NOT_MEASURED = "not measured in this run"
NONE = "—"

_BLOCK = re.compile(
    r"(?P<begin><!-- BEGIN generated: (?P<name>[a-z0-9-]+) -->\n)(?P<body>.*?)(?P<end><!-- END generated: (?P=name) -->)",
    re.S,
)

# (suite, layout) -> the file's record, per topic.
Findings = dict[str, dict[tuple[str, str], dict[str, Any]]]


# ------------------------------------------------------------------ reading


def is_run_suite(suite: str) -> bool:
    """Whether SUITE is a plain suite name (bookworm), not one with a run id (bookworm-exp)."""
    return suite.isalpha()


def select_findings(
    directory: Path, layouts: Sequence[str],
) -> tuple[dict[Path, tuple[str, str, str]], list[Path]]:
    """The findings files of DIRECTORY with their (topic, suite, layout), and
    the files left out: other names, and suites with a run id."""
    chosen, skipped = {}, []
    for path in sorted(directory.glob("*.json")):
        parsed = findings.parse_name(path.name, list(layouts))
        if parsed and is_run_suite(parsed[1]):
            chosen[path] = parsed
        else:
            skipped.append(path)
    return chosen, skipped


def load_findings(directory: Path, layouts: Sequence[str]) -> Findings:
    """Every findings file of DIRECTORY named <topic>-<suite>-<layout>.json, by topic."""
    found: Findings = {topic: {} for topic in findings.TOPICS}
    for path, (topic, suite, layout) in select_findings(directory, layouts)[0].items():
        found[topic][(suite, layout)] = json.loads(path.read_text())
    return found


def load_provenance(directory: Path) -> dict[str, Any]:
    """docs/findings/provenance.json: where and when the findings were measured."""
    return json.loads((directory / PROVENANCE).read_text())


# ------------------------------------------------------------------ formatting


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _seconds(value: float | None) -> str:
    return NONE if value is None else f"{value:.1f} s"


def _codes(codes: Iterable[int]) -> str:
    return ", ".join(f"**{code}**" for code in codes) or NONE


def _layout_link(name: str) -> str:
    return f"[`{name}`](../layouts/{name}.yml)"


def _verdict_link(verdict: str) -> str:
    return f"[`{verdict}`](#{runbook_anchor(verdict)})"


def stamp(provenance: dict[str, Any], topic: str | None = None) -> str:
    """One line: when, at which commit, on which suites and machine the figures
    (of TOPIC: provenance's "commits" may name another commit for one topic) were measured."""
    commit = provenance.get("commits", {}).get(topic, provenance["commit"])
    return (
        f"*Measured {provenance['date']} at commit `{commit}` on Debian {' and '.join(provenance['suites'])},"
        f" {provenance['nproc']} cores ({provenance['machine']}); rendered from `docs/findings/` by `make runbook`.*\n"
    )


def render_provenance(provenance: dict[str, Any]) -> str:
    """The stamp, with the note that says where each set of findings comes from."""
    note = f"\n{provenance['note']}\n" if provenance.get("note") else ""
    return stamp(provenance) + note


# ------------------------------------------------------------------ blocks from the layouts


def _server_text(server: str, spec: dict[str, Any]) -> str:
    processes = spec.get("processes", 1)
    worker = (spec.get("options") or {}).get("worker_class")
    worker_text = f", worker class `{worker}`" if worker else ""
    units = server_units({"servers": {server: spec}})[server]
    if len(units) > 1:
        return (f"`{units[0]}` to `@{len(units)}`: {len(units)} processes, one per instance, each on its own"
                f" socket, {spec['interface'].upper()}")
    count = f"{processes} worker processes" if processes > 1 else "1 process"
    return f"`wslab-{server}`: {count}{worker_text}, {spec['interface'].upper()}"


def _route_text(route: dict[str, Any]) -> str:
    if route.get("websocket"):
        how = f"Upgrade forwarded, HTTP/{route.get('http_version', '1.1')}"
    else:
        how = f"no Upgrade forwarded, HTTP/{route.get('http_version', '1.0')}"
    return f"`{route['path']}` → {route['server']} ({how})"


def render_layouts(layouts: dict[str, dict[str, Any]]) -> str:
    """What each layout runs: its summary, its units, nginx's routes."""
    rows = []
    for name, layout in layouts.items():
        units = [_server_text(server, spec) for server, spec in layout["servers"].items()]
        if layout.get("channel_layer") == "redis":
            units.append("`redis-server` (channel layer)")
        units.append("`nginx`")
        routes = "; ".join(_route_text(route) for route in layout["routes"])
        rows.append([_layout_link(name), layout["summary"], "<br>".join(units), routes])
    return markdown_table(["layout", "what a request goes through", "units", "nginx routes"], rows)


def _answered_by(websocket: dict[str, Any]) -> str:
    if websocket["verdict"] == "open":
        return f"held by {websocket['server']}"
    by = websocket.get("answered_by")
    return f"answered by {by['server']} over {by['interface'].upper()}" if by else NONE


def render_matrix(layouts: dict[str, dict[str, Any]]) -> str:
    """The verified matrix: what each layout's tests assert a client gets through nginx."""
    rows = []
    for name, layout in layouts.items():
        http, websocket = layout["expect"]["http"], layout["expect"]["websocket"]
        rows.append([
            _layout_link(name),
            f"{http['status']} over {http['interface'].upper()} ({http['server']})",
            _verdict_link(websocket["verdict"]),
            websocket["handshake_status"],
            _answered_by(websocket),
            "yes" if websocket.get("cross_process") else NONE,
            websocket.get("restart_close_code", NONE),
            websocket.get("direct", NONE),
        ])
    headers = ["layout", "HTTP", "WebSocket (ws:// and wss://)", "handshake", "socket", "broadcast across processes",
               "close code on restart", "server addressed directly"]
    return markdown_table(headers, rows)


# ------------------------------------------------------------------ blocks from the findings


def _missing_row(name: str, layout: dict[str, Any], width: int) -> list[str]:
    """A row for a layout without findings, saying why."""
    why = NOT_MEASURED
    if layout["expect"]["websocket"]["verdict"] != "open":
        why = "not measured: no WebSocket through nginx"
    return [_layout_link(name), NONE, why, *[NONE] * (width - 3)]


def _rows_by_layout(
    layouts: dict[str, dict[str, Any]],
    records: dict[tuple[str, str], dict[str, Any]],
    key: str,
    row: Callable[[dict[str, Any], dict[str, Any]], list[Any]],
    width: int,
) -> list[list[Any]]:
    """One row per suite a layout's KEY was measured on (ROW of the layout and the
    file's record), or one saying it was not."""
    rows = []
    for name, layout in layouts.items():
        measured = sorted((suite, data) for (suite, lay), data in records.items() if lay == name and key in data)
        rows += [[_layout_link(name), suite, *row(layout, data)] for suite, data in measured]
        if not measured:
            rows.append(_missing_row(name, layout, width))
    return rows


def _units(layout: dict[str, Any], server: str) -> str:
    """The server's units as the tests act on them: wslab-<server>, or each of
    Daphne's instances (restarted together; kill -9 hits the first)."""
    return ", ".join(f"`{unit}`" for unit in server_units(layout)[server])


def render_restart(layouts: dict[str, dict[str, Any]], found: Findings) -> str:
    """What open sockets get on `systemctl restart` and `kill -9`, and when clients get back in."""
    def row(layout: dict[str, Any], data: dict[str, Any]) -> list[Any]:
        restart, kill = data["restart"], data.get("kill_9", {})
        return [
            _units(layout, restart["server"]),
            _codes(restart["close_codes"]),
            layout["expect"]["websocket"].get("restart_close_code", NONE),
            _seconds(restart["systemctl_restart_s"]),
            _seconds(restart["reconnect_after_restart_began_s"]),
            _seconds(kill.get("reconnect_s")),
        ]

    headers = ["layout", "suite", "unit", "close code seen", "the layout's claim", "`systemctl restart` took",
               "first new socket, from the restart", "first new socket after `kill -9`"]
    return markdown_table(headers, _rows_by_layout(layouts, found["operations"], "restart", row, len(headers)))


def render_idle(layouts: dict[str, dict[str, Any]], found: Findings) -> str:
    """When nginx closes an idle socket whose server sends no pings."""

    def row(layout: dict[str, Any], data: dict[str, Any]) -> list[Any]:
        idle = data["idle_without_pings"]
        return [_units(layout, idle["server"]), _seconds(idle["read_timeout_s"]), _seconds(idle["closed_after_s"]),
                _codes([idle["close_code"]])]

    headers = ["layout", "suite", "unit (pings off)", "nginx `proxy_read_timeout`", "socket closed after",
               "close code"]
    return markdown_table(headers, _rows_by_layout(layouts, found["operations"], "idle_without_pings", row, len(headers)))


def render_capacity_limits(found: Findings) -> str:
    """The limits in force, as the capacity tests read them from the hosts, grouped where equal."""
    groups: dict[tuple[Any, ...], list[str]] = collections.defaultdict(list)
    for (suite, layout), data in sorted(found["capacity"].items()):
        limits = data.get("nginx_limits")
        if limits:
            key = (suite, limits["wslab_max_connections"], limits["worker_connections"], limits["limit_nofile"],
                   limits["workers"])
            groups[key].append(layout)
    rows = [[suite, ", ".join(f"`{name}`" for name in names), *values]
            for (suite, *values), names in sorted(groups.items())]
    headers = ["suite", "layouts", "`wslab_max_connections`", "nginx `worker_connections`", "nginx open files",
               "nginx workers"]
    return markdown_table(headers, rows)


def _measured_or_not(layouts: dict[str, dict[str, Any]], measured: set[str]) -> str:
    missing = [f"`{name}`" for name in layouts if name not in measured]
    return f"\n{NOT_MEASURED.capitalize()}: {', '.join(missing)}.\n" if missing else ""


def render_capacity_load(layouts: dict[str, dict[str, Any]], found: Findings) -> str:
    """A thousand WebSockets through nginx: how long they took to open, how they spread, what they cost."""
    rows, measured = [], set()
    for (suite, layout), data in sorted(found["capacity"].items(), key=lambda item: (item[0][1], item[0][0])):
        opened, done = data.get("load_open"), data.get("load_done")
        if not (opened and done):
            continue
        measured.add(layout)
        rows.append([
            _layout_link(layout), suite, f"{opened['opened_and_echoed']} of {opened['sockets']}",
            f"{_seconds(opened['open_s'])} ({opened['concurrency']} at a time)", _seconds(done["held_s"]),
            done["echoed_at_end"], " / ".join(str(n) for n in opened["sockets_per_nginx_worker"]),
            _seconds(done.get("container_cpu_s")),
        ])
    headers = ["layout", "suite", "opened and echoed", "time to open", "held idle", "echoing after the hold",
               "sockets per nginx worker", "CPU of the host (container)"]
    return markdown_table(headers, rows) + _measured_or_not(layouts, measured)


def _log_kinds(kinds: dict[str, int]) -> str:
    """nginx's error-log lines, without client and request details, with their counts."""
    counted: collections.Counter[str] = collections.Counter()
    for text, count in kinds.items():
        counted[text.split(", client:", 1)[0]] += count
    return "; ".join(f"`{text}` ({count} lines)" for text, count in sorted(counted.items()))


def _refusals(refused: dict[str, int]) -> str:
    counted: collections.Counter[str] = collections.Counter()
    for text, count in refused.items():
        counted[text.split(" (", 1)[0]] += count
    return "; ".join(f"{text} × {count}" for text, count in sorted(counted.items())) or NONE


def render_capacity_stock(layouts: dict[str, dict[str, Any]], found: Findings) -> str:
    """nginx with Debian's stock worker_connections (768): where refusals begin and what they look like."""
    rows, measured = [], set()
    for (suite, layout), data in sorted(found["capacity"].items(), key=lambda item: (item[0][1], item[0][0])):
        stock = data.get("stock_768")
        if not stock:
            continue
        measured.add(layout)
        rows.append([
            _layout_link(layout), suite, stock["nginx_workers"], stock["open_when_refusals_began"],
            stock["open_when_every_worker_was_full"], _refusals(stock["refused"]),
            _verdict_link(stock["probe_verdict"]) if stock.get("probe_verdict") else NONE,
            _log_kinds(stock["error_log_kinds"]),
        ])
    headers = ["layout", "suite", "nginx workers", "open sockets at the first refusal", "open when every worker was full",
               "what refused clients got", "probe verdict", "nginx error log"]
    return markdown_table(headers, rows) + _measured_or_not(layouts, measured)


def render_hardening(layouts: dict[str, dict[str, Any]], found: Findings, suites: Sequence[str]) -> str:
    """Each unit's `systemd-analyze security` exposure, per layout and suite."""
    rows = []
    for name, layout in layouts.items():
        for suite in suites:
            exposure = found["hardening"].get((suite, name), {}).get("exposure")
            if not exposure:
                rows.append([_layout_link(name), suite, NOT_MEASURED, NONE, NONE])
                continue
            apps = ", ".join(f"`{unit}` {score:.1f}" for unit, score in sorted(exposure.items())
                             if unit.startswith("wslab-"))
            redis = exposure.get("redis-server")
            rows.append([_layout_link(name), suite, apps, f"{exposure['nginx']:.1f}",
                         NONE if redis is None else f"{redis:.1f}"])
    return markdown_table(["layout", "suite", "app server units", "nginx", "redis-server"], rows)


# ------------------------------------------------------------------ the runbook


def render_blocks(findings_dir: Path = DOCS_FINDINGS_DIR, layouts_dir: Path = LAYOUTS_DIR) -> dict[str, str]:
    """Every generated block of the runbook, by name, from LAYOUTS_DIR and FINDINGS_DIR alone."""
    layouts = {name: load_layout(name, layouts_dir) for name in layout_names(layouts_dir)}
    found = load_findings(findings_dir, list(layouts))
    provenance = load_provenance(findings_dir)

    def measured(topic: str) -> str:
        return stamp(provenance, topic) + "\n"

    return {
        "provenance": render_provenance(provenance),
        "layouts": render_layouts(layouts),
        "matrix": render_matrix(layouts),
        "restart": measured("operations") + render_restart(layouts, found),
        "idle": measured("operations") + render_idle(layouts, found),
        "capacity-limits": measured("capacity") + render_capacity_limits(found),
        "capacity-load": measured("capacity") + render_capacity_load(layouts, found),
        "capacity-stock": measured("capacity") + render_capacity_stock(layouts, found),
        "hardening": measured("hardening") + render_hardening(layouts, found, provenance["suites"]),
    }


def blocks_in(text: str) -> dict[str, str]:
    """The generated blocks of a runbook's TEXT, by name."""
    return {match["name"]: match["body"] for match in _BLOCK.finditer(text)}


def splice(text: str, blocks: dict[str, str]) -> str:
    """TEXT with the body of every generated block replaced by BLOCKS'; each must have its markers."""
    missing = sorted(set(blocks) - set(blocks_in(text)))
    if missing:
        raise ValueError(f"the runbook has no markers for the generated blocks {', '.join(missing)}")
    return _BLOCK.sub(lambda m: m["begin"] + blocks.get(m["name"], m["body"]) + m["end"], text)


def stale_blocks(runbook: Path = RUNBOOK_PATH, findings_dir: Path = DOCS_FINDINGS_DIR,
                 layouts_dir: Path = LAYOUTS_DIR) -> list[str]:
    """Names of the runbook's generated blocks that differ from a render (missing or unknown ones too)."""
    present = blocks_in(runbook.read_text())
    wanted = render_blocks(findings_dir, layouts_dir)
    return sorted(name for name in present.keys() | wanted.keys() if present.get(name) != wanted.get(name))


# ------------------------------------------------------------------ update


def git_commit() -> str:
    """HEAD's short hash, with -dirty when tracked files have changes."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(PROJECT_DIR), *args], capture_output=True, text=True,
                              check=True, timeout=30).stdout.strip()

    return git("rev-parse", "--short", "HEAD") + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def machine_provenance(suites: Iterable[str]) -> dict[str, Any]:
    """Provenance of findings copied now, on this machine: commit, date (UTC), suites, cores, architecture."""
    return {
        "commit": git_commit(),
        "date": datetime.datetime.now(datetime.UTC).date().isoformat(),
        "suites": sorted(set(suites)),
        "nproc": len(os.sched_getaffinity(0)),
        "machine": platform.machine(),
    }


def update(build_dir: Path = findings.FINDINGS_DIR, findings_dir: Path = DOCS_FINDINGS_DIR,
           runbook: Path = RUNBOOK_PATH, layouts_dir: Path = LAYOUTS_DIR) -> list[Path]:
    """Replace FINDINGS_DIR's findings with BUILD_DIR's, write the provenance, re-render RUNBOOK.

    Returns the files left out. Raises ValueError, changing nothing, when
    BUILD_DIR holds no findings or the runbook lacks a block's markers (the
    new set is rendered from a staging directory before anything is replaced).
    """
    layouts = layout_names(layouts_dir)
    chosen, skipped = select_findings(build_dir, layouts)
    if not chosen:
        raise ValueError(f"no findings to copy in {build_dir} (run make test first)")
    files = {path.name: path.read_text() for path in chosen}
    provenance = machine_provenance(suite for _, suite, _ in chosen.values())
    files[PROVENANCE] = json.dumps(provenance, indent=2, sort_keys=True) + "\n"
    with tempfile.TemporaryDirectory() as staging:
        for name, text in files.items():
            (Path(staging) / name).write_text(text)
        rendered = splice(runbook.read_text(), render_blocks(Path(staging), layouts_dir))
    findings_dir.mkdir(parents=True, exist_ok=True)
    for old in findings_dir.glob("*.json"):
        old.unlink()
    for name, text in files.items():
        (findings_dir / name).write_text(text)
    runbook.write_text(rendered)
    return skipped


# ------------------------------------------------------------------ command line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wslab.runbook", description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--update", action="store_true",
                        help="copy the run's findings into docs/findings/, write the provenance, re-render")
    action.add_argument("--check", action="store_true",
                        help="exit 1 when the runbook's generated blocks differ from a render of docs/findings/")
    parser.add_argument("--build", type=Path, default=findings.FINDINGS_DIR, help="a run's findings (--update)")
    parser.add_argument("--findings", type=Path, default=DOCS_FINDINGS_DIR, help="the committed findings")
    parser.add_argument("--runbook", type=Path, default=RUNBOOK_PATH)
    args = parser.parse_args(argv)
    if args.update:
        try:
            skipped = update(args.build, args.findings, args.runbook)
        except ValueError as exc:
            print(f"runbook: {exc}", file=sys.stderr)
            return 1
        for path in skipped:
            print(f"runbook: left out {path.name} (not <topic>-<suite>-<layout>.json with a plain suite)")
        print(f"runbook: {args.runbook} rendered from {args.findings}")
        return 0
    stale = stale_blocks(args.runbook, args.findings)
    if stale:
        print(f"runbook: {args.runbook} differs from a render of {args.findings} in: {', '.join(stale)}"
              " (python -m wslab.runbook --update after a test run, or fix the block's markers)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
