"""docs/bench.md from a benchmark run: tables and plots, never typed by hand.

The text of docs/bench.md is written by hand; every block between
``<!-- BEGIN generated: NAME -->`` and ``<!-- END generated: NAME -->`` is
rendered from the run committed in docs/bench/ (the JSON that wslab.bench
wrote, and the plots drawn from it). ``--update`` copies build/bench/ there
and renders again; ``--build-only`` renders a quick run's report beside it in
build/bench/, leaving docs/ alone; ``--check`` (tests/test_bench.py) fails when the blocks
differ from a render of the committed run.

    python -m wslab.benchreport --update | --build-only | --check
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from wslab import bench
from wslab.layout import load_layout
from wslab.runbook import blocks_in, markdown_table, splice

ROOT = Path(__file__).resolve().parent.parent
DOCS_DIR = ROOT / "docs"
BENCH_MD = DOCS_DIR / "bench.md"
DOCS_BENCH_DIR = DOCS_DIR / "bench"
RUN = "run.json"
PLOTS = ("http.png", "sockets.png")
NONE = "—"

Records = dict[str, dict[str, Any]]


def load(directory: Path) -> tuple[dict[str, Any], Records]:
    """The run's provenance and its records by layout, in the benchmark's order."""
    provenance = json.loads((directory / RUN).read_text())
    records = {
        layout: json.loads((directory / f"{layout}.json").read_text())
        for layout in bench.LAYOUTS
        if (directory / f"{layout}.json").exists()
    }
    if not records:
        raise ValueError(f"no layout's results in {directory}")
    return provenance, records


# ---------------------------------------------------------------- formatting


def _num(value: float | None, digits: int = 0, unit: str = "") -> str:
    if value is None:
        return NONE
    return f"{value:,.{digits}f}{unit}"


def _rate(summary: dict[str, Any]) -> str:
    """Median requests/s, with the spread when there were several runs."""
    text = _num(summary["requests_per_s"])
    if summary["runs"] > 1:
        text += f" ({_num(summary['requests_per_s_min'])}–{_num(summary['requests_per_s_max'])})"
    if summary["non_2xx"] or summary["socket_errors"]:
        text += f" **{summary['non_2xx']} non-2xx, {summary['socket_errors']} socket errors**"
    return text


def _latency(summary: dict[str, Any]) -> str:
    return f"{_num(summary['p50_ms'], 2)} / {_num(summary['p99_ms'], 2)}"


def nginx_cost(through: dict[str, Any], straight: dict[str, Any]) -> float:
    """The share of the app server's own throughput that going through nginx costs."""
    return 1 - through["requests_per_s"] / straight["requests_per_s"]


def _layout_link(layout: str) -> str:
    return f"[`{layout}`](../layouts/{layout}.yml)"


def _processes(layout: str, server: str) -> int:
    return int(load_layout(layout)["servers"][server].get("processes", 1))


# ---------------------------------------------------------------- blocks


def _speed(provenance: dict[str, Any]) -> str:
    loop = provenance.get("reference_loop_s")
    if not loop:
        return ""
    return f"; a fixed Python loop took {' s, then '.join(f'{s:.2f}' for s in loop)} s (the machine's speed, lower is faster)"


def render_provenance(provenance: dict[str, Any]) -> str:
    plan = provenance["plan"]
    cpu = provenance["machine"]
    kind = "a quick run (`QUICK=1`): small numbers, not for comparison" if provenance["quick"] else "a full run"
    return (
        f"*Measured {provenance['date']} at commit `{provenance['commit']}`, {kind}, on Debian"
        f" {provenance['suite']} containers, {cpu['cores']} cores ({cpu['cpu']}, {cpu['memory_gib']} GiB);"
        f" {plan['runs']} wrk run(s) of {plan['http_seconds']} s with {plan['http_connections']} connections"
        f" per figure; {plan['sockets']:,} sockets held {plan['hold_s']:.0f} s; echo on"
        f" {plan['echo_sockets']:,} sockets at {plan['echo_rate']:.0f} messages/s for {plan['echo_seconds']:.0f} s;"
        f" {provenance['seconds']} s of measuring{_speed(provenance)}. Rendered from `docs/bench/` by `make bench`.*\n"
    )


def render_http(records: Records) -> str:
    headers = ["layout", "server (processes)", "path", "through nginx, req/s", "p50 / p99 ms",
               "straight at the server, req/s", "p50 / p99 ms", "nginx's cost"]
    rows = []
    for layout, record in records.items():
        if "http" not in record:
            continue  # measured for its sockets only (bench.SOCKETS_ONLY_LAYOUTS)
        http = record["http"]
        server = http["server"]
        for path, targets in http["paths"].items():
            rows.append([
                _layout_link(layout), f"{server} ({_processes(layout, server)})", f"`{path}`",
                _rate(targets["nginx"]), _latency(targets["nginx"]),
                _rate(targets["app"]), _latency(targets["app"]),
                f"{nginx_cost(targets['nginx'], targets['app']):.0%}",
            ])
        ceiling = http["ceiling"]
        rows.append([_layout_link(layout), "nginx alone", f"`{bench.CEILING_PATH}`", _rate(ceiling),
                     _latency(ceiling), NONE, NONE, NONE])
    return markdown_table(headers, rows)


def render_one_process(records: Records) -> str:
    """The fair column: HTTP straight at each server with one process, beside
    the layout's own processes."""
    headers = ["layout", "server", "path", "one process, req/s", "p50 / p99 ms",
               "the layout's processes, req/s", "gain from the extra processes"]
    rows = []
    for layout, record in records.items():
        if "http" not in record:
            continue
        http = record["http"]
        server, processes = http["server"], _processes(layout, http["server"])
        one = http.get("one_process")
        if one is None and processes != 1:
            continue  # measured before the fair column existed
        for path, targets in http["paths"].items():
            own = targets["app"]
            single = one["paths"][path] if one else own
            gain = f"{own['requests_per_s'] / single['requests_per_s']:.2f}× with {processes}" if one else NONE
            rows.append([_layout_link(layout), server, f"`{path}`", _rate(single), _latency(single),
                         f"{_rate(own)} ({processes})", gain])
    if not rows:
        return "Not measured in this run.\n"
    return markdown_table(headers, rows)


def broadcast_median_ms(sockets: dict[str, Any]) -> float | None:
    """The median of a run's broadcast rounds (ms until the last socket had it)."""
    rounds = sorted(sockets.get("broadcast_ms") or [])
    return statistics.median(rounds) if rounds else None


def _broadcast(sockets: dict[str, Any]) -> str:
    """'median (min–max) ms, reached/opened on N processes', or not measured."""
    rounds = sockets.get("broadcast_ms") or []
    if not rounds:
        return NONE
    text = f"{_num(broadcast_median_ms(sockets), 1)} ({_num(min(rounds), 1)}–{_num(max(rounds), 1)})"
    reached, opened = sockets["broadcast_reached"], sockets["broadcast_opened"]
    processes = sockets["broadcast_processes"]
    text += f", {reached:,} of {opened:,} reached, {processes} process{'es' if processes != 1 else ''}"
    if opened < sockets["broadcast_sockets"]:
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted((sockets.get("broadcast_failures") or {}).items()))
        text += f" (**{sockets['broadcast_sockets'] - opened} failed to join**{': ' + kinds if kinds else ''})"
    return text


def _echo_failures(sockets: dict[str, Any]) -> str:
    """Messages that did not come back."""
    return f" ({sockets['echo_failed']} of {sockets['echo_messages']} lost)" if sockets["echo_failed"] else ""


def render_sockets(records: Records) -> str:
    headers = ["layout", "server (processes)", "opened / asked", "failed", "dropped while held",
               "echoed after the hold", "handshakes/s", "connect p50 / p99 ms",
               "KiB per socket: nginx", "KiB per socket: server", "compression agreed", "echo p50 / p99 ms",
               "one broadcast to a room, ms to the last socket: median (range)"]
    rows = []
    for layout, record in records.items():
        sockets = record.get("sockets")
        if sockets is None:
            continue
        failures = ", ".join(f"{n} {kind}" for kind, n in sorted(sockets["failures"].items())) or "0"
        rows.append([
            _layout_link(layout), f"{sockets['server']} ({_processes(layout, sockets['server'])})",
            f"{sockets['opened']:,} / {sockets['sockets']:,}", failures,
            f"{sockets['dropped_during_hold']:,} in {sockets['hold_s']:.0f} s",
            f"{sockets['echoed_after_hold']:,}", _num(sockets["handshakes_per_s"]),
            f"{_num(sockets['connect_p50_ms'], 1)} / {_num(sockets['connect_p99_ms'], 1)}",
            _num(sockets["kib_per_socket"]["nginx"], 1), _num(sockets["kib_per_socket"]["app"], 1),
            f"`{sockets['extensions']}`" if sockets.get("extensions") else "none",
            f"{_num(sockets['echo_p50_ms'], 2)} / {_num(sockets['echo_p99_ms'], 2)}" + _echo_failures(sockets),
            _broadcast(sockets),
        ])
    return markdown_table(headers, rows)


def spreads_overlap(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two HTTP figures' ranges of runs (min to max requests/s) overlap."""
    return a["requests_per_s_min"] <= b["requests_per_s_max"] and b["requests_per_s_min"] <= a["requests_per_s_max"]


def _ratio_verdict(name_a: str, a: float | None, name_b: str, b: float | None, higher_is_better: bool = True) -> str:
    if a is None or b is None or not a or not b:
        return "not measured"
    if a == b:
        return "equal"
    better_a = (a > b) == higher_is_better
    winner, loser = ((name_a, a), (name_b, b)) if better_a else ((name_b, b), (name_a, a))
    factor = max(winner[1], loser[1]) / min(winner[1], loser[1])
    return f"{winner[0]}, {factor:.2f}×"


def render_daphne_vs_uvicorn(records: Records) -> str:
    """The guides' comparison, each row a measured number or a tested behaviour."""
    daphne, uvicorn = records.get("daphne"), records.get("uvicorn")
    if daphne is None or uvicorn is None:
        return "Not measured in this run: it needs both the `daphne` and the `uvicorn` layouts.\n"
    rows = []

    for path, target, label in (("/healthz", "app", "HTTP req/s, `/healthz` straight at the server"),
                                ("/", "nginx", "HTTP req/s, `/` (a template) through nginx")):
        a, b = daphne["http"]["paths"][path][target], uvicorn["http"]["paths"][path][target]
        verdict = _ratio_verdict("Uvicorn", b["requests_per_s"], "Daphne", a["requests_per_s"])
        if spreads_overlap(a, b):
            verdict = f"no clear winner: the spreads of the runs overlap (medians: {verdict})"
        rows.append([label, _rate(a), _rate(b), verdict])
    ds, us = daphne.get("sockets"), uvicorn.get("sockets")
    if ds and us:
        rows.append(["WebSockets held through nginx (dropped while held)",
                     f"{ds['opened']:,} ({ds['dropped_during_hold']})", f"{us['opened']:,} ({us['dropped_during_hold']})",
                     _ratio_verdict("Uvicorn", us["opened"] - us["dropped_during_hold"],
                                    "Daphne", ds["opened"] - ds["dropped_during_hold"])])
        rows.append(["Handshakes/s while ramping", _num(ds["handshakes_per_s"]), _num(us["handshakes_per_s"]),
                     _ratio_verdict("Uvicorn", us["handshakes_per_s"], "Daphne", ds["handshakes_per_s"])])
        rows.append(["Connect p99, ms", _num(ds["connect_p99_ms"], 1), _num(us["connect_p99_ms"], 1),
                     _ratio_verdict("Uvicorn", us["connect_p99_ms"], "Daphne", ds["connect_p99_ms"], False)])
        rows.append(["Server memory per socket, KiB", _num(ds["kib_per_socket"]["app"], 1),
                     _num(us["kib_per_socket"]["app"], 1),
                     _ratio_verdict("Uvicorn", us["kib_per_socket"]["app"], "Daphne", ds["kib_per_socket"]["app"], False)])
        rows.append(["Echo p99 at a fixed rate, ms", _num(ds["echo_p99_ms"], 2), _num(us["echo_p99_ms"], 2),
                     _ratio_verdict("Uvicorn", us["echo_p99_ms"], "Daphne", ds["echo_p99_ms"], False)])
        db, ub = broadcast_median_ms(ds), broadcast_median_ms(us)
        rows.append([f"One broadcast to a room of {ds.get('broadcast_sockets', 0):,} sockets, median ms to the last"
                     " (Uvicorn's crosses its worker processes through Redis)",
                     _num(db, 1), _num(ub, 1), _ratio_verdict("Uvicorn", ub, "Daphne", db, False)])
    codes = {name: load_layout(name)["expect"]["websocket"]["restart_close_code"] for name in ("daphne", "uvicorn")}
    rows.append(["Close code open sockets get on a restart (tested: `test_operations.py`, `test_browser.py`)",
                 f"{codes['daphne']}", f"{codes['uvicorn']}",
                 "Uvicorn: it says why (1012 Service Restart); Daphne drops the connection (1006)"
                 if (codes["daphne"], codes["uvicorn"]) == (1006, 1012) else "see the codes"])
    procs = {name: _processes(name, name) for name in ("daphne", "uvicorn")}
    rows.append(["Processes per unit in the lab's layouts", f"{procs['daphne']} (Daphne has no workers option)",
                 f"{procs['uvicorn']} (`--workers`)", "Uvicorn: one unit uses every core"])
    rows.append(["Django fit (tested: every Molecule scenario)", "serves the unchanged `labsite.asgi` with Channels",
                 "the same", "equal"])
    return markdown_table(["", "Daphne", "Uvicorn", "verdict"], rows)


def render_blocks(directory: Path) -> dict[str, str]:
    return _blocks(*load(directory))


def _blocks(provenance: dict[str, Any], records: Records) -> dict[str, str]:
    return {
        "bench-provenance": render_provenance(provenance),
        "bench-http": render_http(records),
        "bench-one-process": render_one_process(records),
        "bench-sockets": render_sockets(records),
        "bench-daphne-vs-uvicorn": render_daphne_vs_uvicorn(records),
    }


# ---------------------------------------------------------------- plots


def plot(directory: Path, records: Records | None = None) -> list[Path]:
    """Draw http.png and sockets.png into DIRECTORY from its run (RECORDS,
    when the caller has loaded them already)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    if records is None:
        _, records = load(directory)
    written = []
    layouts = [name for name in records if "http" in records[name]]
    fig, axes = pyplot.subplots(1, len(bench.HTTP_PATHS), figsize=(10, 4), sharey=True)
    for ax, path in zip(axes, bench.HTTP_PATHS):
        xs = range(len(layouts))
        for offset, target, label in ((-0.2, "nginx", "through nginx"), (0.2, "app", "straight at the server")):
            values = [records[name]["http"]["paths"][path][target]["requests_per_s"] for name in layouts]
            ax.bar([x + offset for x in xs], values, width=0.4, label=label)
        ax.set_xticks(list(xs), layouts, rotation=20)
        ax.set_title(f"HTTP {path}")
        ax.set_ylabel("requests/s (median)")
    axes[0].legend()
    fig.tight_layout()
    written.append(directory / "http.png")
    fig.savefig(written[-1], dpi=80, metadata={"Software": None})
    pyplot.close(fig)

    with_sockets = [name for name in records if "sockets" in records[name]]
    fig, axes = pyplot.subplots(1, 2, figsize=(10, 4))
    xs = range(len(with_sockets))
    for offset, group in ((-0.2, "nginx"), (0.2, "app")):
        values = [records[name]["sockets"]["kib_per_socket"][group] for name in with_sockets]
        axes[0].bar([x + offset for x in xs], values, width=0.4, label="nginx" if group == "nginx" else "app server")
    axes[0].set_xticks(list(xs), with_sockets, rotation=20)
    axes[0].set_ylabel("KiB of resident memory per open socket")
    axes[0].legend()
    axes[1].bar(list(xs), [records[name]["sockets"]["handshakes_per_s"] for name in with_sockets])
    axes[1].set_xticks(list(xs), with_sockets, rotation=20)
    axes[1].set_ylabel("handshakes/s while ramping up")
    fig.tight_layout()
    written.append(directory / "sockets.png")
    fig.savefig(written[-1], dpi=80, metadata={"Software": None})
    pyplot.close(fig)
    return written


# ---------------------------------------------------------------- update / check


def stale_blocks(markdown: Path = BENCH_MD, directory: Path = DOCS_BENCH_DIR) -> list[str]:
    present = blocks_in(markdown.read_text())
    wanted = render_blocks(directory)
    return sorted(name for name in present.keys() | wanted.keys() if present.get(name) != wanted.get(name))


def _report(directory: Path, markdown: Path, named: Path) -> str:
    """MARKDOWN rendered from DIRECTORY's run, whose plots are drawn there too
    (NAMED is the folder the user knows it by)."""
    if not (directory / RUN).exists():
        raise ValueError(f"no run in {named} (make bench first)")
    provenance, records = load(directory)
    rendered = splice(markdown.read_text(), _blocks(provenance, records))
    plot(directory, records)
    return rendered


def update(build: Path = bench.OUT, directory: Path = DOCS_BENCH_DIR, markdown: Path = BENCH_MD) -> None:
    """Replace DIRECTORY's run with BUILD's, draw its plots and render MARKDOWN's blocks.

    Raises ValueError, changing nothing, when BUILD holds no run or MARKDOWN
    lacks a block's markers.
    """
    with tempfile.TemporaryDirectory() as staging:
        staged = Path(staging)
        for source in build.glob("*.json"):
            shutil.copyfile(source, staged / source.name)
        rendered = _report(staged, markdown, named=build)
        directory.mkdir(parents=True, exist_ok=True)
        for old in [*directory.glob("*.json"), *directory.glob("*.png")]:
            old.unlink()
        for new in staged.iterdir():
            shutil.copyfile(new, directory / new.name)
    markdown.write_text(rendered)


def render_build(build: Path = bench.OUT, markdown: Path = BENCH_MD) -> Path:
    """A quick run's report, in BUILD beside its results: docs/ untouched."""
    out = build / markdown.name
    out.write_text(_report(build, markdown, named=build))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wslab.benchreport", description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--update", action="store_true", help="copy build/bench/ into docs/bench/ and render docs/bench.md")
    action.add_argument("--build-only", action="store_true",
                        help="render build/bench/bench.md and its plots from build/bench/, docs/ untouched")
    action.add_argument("--check", action="store_true", help="exit 1 when docs/bench.md differs from a render")
    args = parser.parse_args(argv)
    try:
        if args.update:
            update()
            print(f"benchreport: {BENCH_MD.relative_to(ROOT)} rendered from {DOCS_BENCH_DIR.relative_to(ROOT)}/")
            return 0
        if args.build_only:
            out = render_build()
            print(f"benchreport: {out.relative_to(ROOT)} rendered (docs/ untouched)")
            return 0
    except ValueError as exc:
        print(f"benchreport: {exc}", file=sys.stderr)
        return 1
    stale = stale_blocks()
    if stale:
        print(f"benchreport: stale blocks in {BENCH_MD.relative_to(ROOT)}: {', '.join(stale)} (run make bench)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
