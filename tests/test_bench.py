"""The benchmark's parts: wrk's output read right, medians and spreads, the
socket client against a real Daphne, and docs/bench.md rendered from the
committed run (never stale)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.bare_daphne import AppServer, free_port
from wslab import bench, benchclient, benchreport


WRK_OUTPUT = """Running 8s test @ http://127.0.0.1/healthz
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    15.23ms    2.11ms  40.00ms   90.00%
    Req/Sec     2.11k   100.00     2.30k    70.00%
  Latency Distribution
     50%  812.00us
     75%   15.80ms
     90%   17.00ms
     99%    1.20s
  16800 requests in 8.00s, 3.50MB read
  Socket errors: connect 0, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 5
Requests/sec:   2099.12
Transfer/sec:    447.00KB
"""


def test_wrk_output_is_read_with_its_units():
    assert bench.parse_wrk(WRK_OUTPUT) == {
        "requests_per_s": 2099.12,
        "p50_ms": 0.812,
        "p99_ms": 1200.0,
        "requests": 16800,
        "non_2xx": 5,
        "socket_errors": 5,
    }


def test_wrk_output_without_a_rate_is_an_error():
    with pytest.raises(ValueError, match="Requests/sec"):
        bench.parse_wrk("unable to connect to 127.0.0.1:80 Connection refused\n")


def test_runs_are_summarized_by_their_median_and_spread():
    runs = [
        {"requests_per_s": r, "p50_ms": r / 100, "p99_ms": r / 10, "non_2xx": 0, "socket_errors": n}
        for r, n in ((900.0, 0), (1000.0, 1), (1300.0, 0))
    ]
    summary = bench.summarize(runs)
    assert summary["requests_per_s"] == 1000.0
    assert (summary["requests_per_s_min"], summary["requests_per_s_max"]) == (900.0, 1300.0)
    # Latencies are the median run's, not a mix of runs.
    assert (summary["p50_ms"], summary["p99_ms"]) == (10.0, 100.0)
    assert summary["socket_errors"] == 1 and summary["runs"] == 3


@pytest.mark.parametrize(("fraction", "expected"), [(0.5, 50), (0.99, 99), (1.0, 100), (0.0, 1)])
def test_percentile_is_nearest_rank(fraction, expected):
    assert benchclient.percentile(list(range(100, 0, -1)), fraction) == expected


def test_percentile_of_nothing_is_none():
    assert benchclient.percentile([], 0.5) is None


@pytest.mark.parametrize("args", [["--sockets", "0"], ["--sockets", "50001"], ["--sockets", "1", "--hold", "601"]])
def test_the_client_refuses_unbounded_runs(args, capsys):
    with pytest.raises(SystemExit):
        benchclient.main(["--url", "ws://127.0.0.1/ws/echo/", *args])
    assert "is not between" in capsys.readouterr().err


def test_plans_stay_within_the_clients_bounds():
    for plan in (bench.FULL, bench.QUICK):
        assert 0 < plan.sockets <= benchclient.MAX_SOCKETS
        assert plan.hold_s <= benchclient.MAX_HOLD_S and plan.echo_sockets <= plan.sockets
    assert bench.FULL.sockets == 10_000


# ------------------------------------------------------------------ the client, for real


@pytest.fixture
def daphne(tmp_path):
    """The sample app under a bare Daphne on 127.0.0.1; yields (port, pid)."""
    server = AppServer(tmp_path)
    try:
        asyncio.run(server.start())
        yield server.port, server.proc.pid
    finally:
        server.cleanup()


def test_the_client_opens_holds_and_echoes_through_a_real_server(daphne, capsys):
    port, pid = daphne
    assert benchclient.main([
        "--url", f"ws://127.0.0.1:{port}/ws/echo/", "--sockets", "50", "--hold", "1",
        "--echo-sockets", "10", "--echo-rate", "50", "--echo-seconds", "1", f"--rss-pids=app={pid}",
        "--broadcast-url", f"ws://127.0.0.1:{port}/ws/broadcast/", "--broadcast-sockets", "20",
        "--broadcast-rounds", "2",
    ]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {"progress"} <= set(lines[0]) and "result" in lines[-1]
    result = lines[-1]["result"]
    assert (result["opened"], result["failures"], result["dropped_during_hold"]) == (50, {}, 0)
    assert result["echoed_after_hold"] == 50
    assert result["echo_messages"] == 50 and result["echo_failed"] == 0 and result["echo_sockets"] == 10
    # websockets offers compression as browsers do; Daphne declines it.
    assert result["extensions"] == ""
    assert 0 < result["connect_p50_ms"] <= result["connect_p99_ms"]
    assert 0 < result["echo_p50_ms"] <= result["echo_p99_ms"]
    assert result["rss_kib_before"]["app"] > 0 and result["rss_kib_open"]["app"] > 0
    # Every socket of the room got each round's message, from one process.
    assert (result["broadcast_opened"], result["broadcast_reached"], result["broadcast_processes"]) == (20, 20, 1)
    assert len(result["broadcast_ms"]) == 2 and all(ms > 0 for ms in result["broadcast_ms"])
    assert result["broadcast_failures"] == {}


def test_failures_are_counted_by_kind_not_raised(capsys):
    port = free_port()  # nothing listens there
    assert benchclient.main(["--url", f"ws://127.0.0.1:{port}/ws/echo/", "--sockets", "3", "--hold", "0"]) == 0
    result = json.loads(capsys.readouterr().out.splitlines()[-1])["result"]
    assert result["opened"] == 0 and result["failures"] == {"ConnectionRefusedError": 3}


# ------------------------------------------------------------------ the report


def _run(directory: Path, **overrides) -> Path:
    http = {"requests_per_s": 1000.0, "requests_per_s_min": 900.0, "requests_per_s_max": 1100.0,
            "p50_ms": 1.5, "p99_ms": 9.0, "non_2xx": 0, "socket_errors": 0, "runs": 3}
    straight = {**http, "requests_per_s": 1250.0}
    sockets = {"server": "", "processes": {"nginx": 2, "app": 1}, "sockets": 100, "opened": 100,
               "failures": {}, "dropped_during_hold": 0, "hold_s": 5.0, "echoed_after_hold": 100,
               "handshakes_per_s": 800.0, "connect_p50_ms": 2.0, "connect_p99_ms": 20.0,
               "kib_per_socket": {"nginx": 3.0, "app": 40.0}, "echo_p50_ms": 0.5, "echo_p99_ms": 4.0,
               "echo_failed": 0, "echo_messages": 5000, "extensions": "permessage-deflate",
               "broadcast_sockets": 1000, "broadcast_opened": 1000, "broadcast_reached": 1000,
               "broadcast_processes": 1, "broadcast_ms": [30.0, 10.0, 20.0]}
    directory.mkdir(parents=True, exist_ok=True)
    for layout in bench.LAYOUTS:
        server = "gunicorn" if layout in ("wsgi", "gunicorn-uvicorn") else layout.removeprefix("split-")
        record = {"layout": layout}
        if layout not in bench.SOCKETS_ONLY_LAYOUTS:
            record["http"] = {"server": server, "ceiling": http,
                              "paths": {p: {"nginx": http, "app": straight} for p in bench.HTTP_PATHS}}
        if layout in bench.ASGI_LAYOUTS:
            record["sockets"] = {**sockets, "server": server, **overrides.get(layout, {})}
        (directory / f"{layout}.json").write_text(json.dumps(record))
    (directory / "run.json").write_text(json.dumps({
        "date": "2026-11-28", "commit": "abc1234", "suite": "bookworm", "quick": False, "seconds": 600,
        "reference_loop_s": [0.2, 0.34],
        "layouts": list(bench.LAYOUTS), "plan": {**vars(bench.FULL)},
        "machine": {"cores": 2, "cpu": "Test CPU", "arch": "x86_64", "memory_gib": 24},
    }))
    return directory


def test_the_report_says_what_was_measured(tmp_path):
    blocks = benchreport.render_blocks(_run(tmp_path, uvicorn={"handshakes_per_s": 1600.0}))
    assert "at commit `abc1234`, a full run" in blocks["bench-provenance"]
    assert "10,000 sockets held 60 s" in blocks["bench-provenance"]
    assert "a fixed Python loop took 0.20 s, then 0.34 s" in blocks["bench-provenance"]
    # nginx's cost: 1000 through it against 1250 straight at the server.
    assert "| 20% |" in blocks["bench-http"]
    assert "1,000 (900–1,100)" in blocks["bench-http"]
    assert "| 100 / 100 |" in blocks["bench-sockets"]
    assert "| Handshakes/s while ramping | 800 | 1,600 | Uvicorn, 2.00× |" in blocks["bench-daphne-vs-uvicorn"]
    # The restart codes come from the layouts the suite tests them against.
    assert "| 1006 | 1012 |" in blocks["bench-daphne-vs-uvicorn"]


def _set_http(run: Path, layout: str, edit) -> None:
    """Change one layout's HTTP record in a run made by _run (EDIT mutates it)."""
    path = run / f"{layout}.json"
    record = json.loads(path.read_text())
    edit(record["http"])
    path.write_text(json.dumps(record))


def test_an_http_difference_within_the_spread_of_the_runs_has_no_winner(tmp_path):
    run = _run(tmp_path)

    def straight(low: float):
        def edit(http):
            http["paths"]["/healthz"]["app"] = {**http["paths"]["/healthz"]["app"], "requests_per_s": 1300.0,
                                                "requests_per_s_min": low, "requests_per_s_max": 1400.0}
        return edit

    _set_http(run, "uvicorn", straight(1200.0))
    table = benchreport.render_blocks(run)["bench-daphne-vs-uvicorn"]
    # Daphne 1,250 (900 to 1,100 for its own spread in the fixture) against 1,300 (1,200 to 1,400): apart.
    assert "no clear winner" not in table.split("\n")[2]
    _set_http(run, "uvicorn", straight(1000.0))
    table = benchreport.render_blocks(run)["bench-daphne-vs-uvicorn"]
    assert "no clear winner: the spreads of the runs overlap (medians: Uvicorn, 1.04×)" in table.split("\n")[2]


def test_errors_under_load_are_shown_not_hidden(tmp_path):
    run = _run(tmp_path, daphne={"failures": {"HTTP 504": 2, "TimeoutError": 5}, "opened": 93, "echo_failed": 3})
    sockets = benchreport.render_blocks(run)["bench-sockets"]
    assert "| 93 / 100 | 2 HTTP 504, 5 TimeoutError |" in sockets
    assert "0.50 / 4.00 (3 of 5000 lost)" in sockets


def test_a_broadcast_is_reported_by_its_median_round_and_who_it_missed(tmp_path):
    run = _run(tmp_path, uvicorn={"broadcast_processes": 2, "broadcast_ms": [12.0, 9.0, 11.0],
                                  "broadcast_opened": 990, "broadcast_reached": 985,
                                  "broadcast_failures": {"HTTP 403": 10}})
    blocks = benchreport.render_blocks(run)
    assert "| 20.0 (10.0–30.0), 1,000 of 1,000 reached, 1 process |" in blocks["bench-sockets"]
    assert "| 11.0 (9.0–12.0), 985 of 990 reached, 2 processes (**10 failed to join**: 10 HTTP 403) |" in blocks["bench-sockets"]
    assert "| 20.0 | 11.0 | Uvicorn, 1.82× |" in blocks["bench-daphne-vs-uvicorn"]


def test_the_fair_column_sets_one_process_against_the_layouts_own(tmp_path):
    run = _run(tmp_path)

    def one_process(http):
        single = {**http["paths"]["/"]["app"], "requests_per_s": 500.0, "requests_per_s_min": 480.0,
                  "requests_per_s_max": 520.0}
        http["one_process"] = {"server": "uvicorn", "processes": 1, "paths": {p: single for p in bench.HTTP_PATHS}}

    _set_http(run, "uvicorn", one_process)
    table = benchreport.render_blocks(run)["bench-one-process"]
    # Uvicorn: 500 with one process, 1,250 with the layout's two.
    assert "| [`uvicorn`](../layouts/uvicorn.yml) | uvicorn | `/` | 500 (480–520) |" in table
    assert "| 1,250 (900–1,100) (2) | 2.50× with 2 |" in table
    # Daphne runs one process: its own figure is the fair one. gunicorn-uvicorn,
    # without a one-process pass in this run, is left out rather than guessed.
    assert "| [`daphne`](../layouts/daphne.yml) | daphne | `/` | 1,250 (900–1,100) |" in table
    assert "gunicorn-uvicorn" not in table


def test_a_run_from_before_the_broadcast_phase_says_not_measured(tmp_path):
    run = _run(tmp_path, daphne={"broadcast_ms": []})
    assert "| 1.50 / 4.00 | — |" not in benchreport.render_blocks(run)["bench-sockets"]
    assert "| 0.50 / 4.00 | — |" in benchreport.render_blocks(run)["bench-sockets"]


def test_plots_are_drawn(tmp_path):
    written = benchreport.plot(_run(tmp_path))
    assert [p.name for p in written] == list(benchreport.PLOTS)
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in written)


def test_a_quick_run_is_rendered_beside_it_and_docs_left_alone(tmp_path):
    run = _run(tmp_path / "build", daphne={"opened": 77})
    before = benchreport.BENCH_MD.read_text()
    out = benchreport.render_build(run)
    assert out.parent == run and "| 77 / 100 |" in out.read_text()
    assert benchreport.BENCH_MD.read_text() == before


def test_update_copies_the_run_and_renders(tmp_path):
    run = _run(tmp_path / "build")
    markdown = tmp_path / "bench.md"
    markdown.write_text(benchreport.BENCH_MD.read_text())
    benchreport.update(run, tmp_path / "docs", markdown)
    assert sorted(p.name for p in (tmp_path / "docs").iterdir()) == sorted(
        [*(f"{layout}.json" for layout in bench.LAYOUTS), "run.json", *benchreport.PLOTS])
    assert benchreport.stale_blocks(markdown, tmp_path / "docs") == []


def test_update_without_a_run_changes_nothing(tmp_path):
    with pytest.raises(ValueError, match="no run"):
        benchreport.update(tmp_path / "empty", tmp_path / "docs", benchreport.BENCH_MD)
    assert not (tmp_path / "docs").exists()


def test_the_committed_report_is_a_render_of_the_committed_run():
    assert benchreport.stale_blocks() == [], "docs/bench.md differs from its run: make bench, or python -m wslab.benchreport --update"


def test_the_app_servers_processes_include_children_that_do_not_name_it():
    rows = [
        (1, 0, "/lib/systemd/systemd"),
        (20, 1, "nginx: master process /usr/sbin/nginx"),
        (21, 20, "nginx: worker process"),
        (22, 20, "nginx: worker process"),
        (30, 1, "/opt/wslab/venv/bin/python3 /opt/wslab/venv/bin/uvicorn --workers 2 labsite.asgi:application"),
        (31, 30, "/opt/wslab/venv/bin/python3 -B -c from multiprocessing.spawn import spawn_main"),
        (32, 30, "/opt/wslab/venv/bin/python3 -B -c from multiprocessing.spawn import spawn_main"),
        (40, 1, "/usr/bin/redis-server 127.0.0.1:6379"),
    ]
    assert bench.pid_groups(rows, "uvicorn") == {"nginx": [21, 22], "app": [30, 31, 32]}
    assert bench.pid_groups(rows, "daphne") == {"nginx": [21, 22], "app": []}


def test_split_daphne_is_measured_for_its_sockets_beside_daphnes_one_process(tmp_path):
    """Daphne with two processes (split-daphne's instances) beside its one
    (the daphne layout); split-daphne's pages are Gunicorn's, measured as wsgi."""
    blocks = benchreport.render_blocks(_run(tmp_path))
    rows = {line.split(" | ")[0]: line for line in blocks["bench-sockets"].splitlines()}
    assert "| daphne (2) |" in rows["| [`split-daphne`](../layouts/split-daphne.yml)"]
    assert "| daphne (1) |" in rows["| [`daphne`](../layouts/daphne.yml)"]
    assert "split-daphne" not in blocks["bench-http"]
    assert "split-daphne" not in blocks["bench-one-process"]
