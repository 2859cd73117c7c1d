"""The scenario runner (wslab.scenarios) against a fake `molecule` on PATH.

The fake prints the phase lines Molecule prints and, as FAKE_MOLECULE_PLAN
says for each suite/layout, sleeps in a phase, prints extra lines in it and
fails it (Molecule's `Executed: Failed`, the final destroy, exit 1).
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
from pathlib import Path

import pytest
import yaml

from wslab import scenarios
from wslab.layout import PROJECT_DIR, layout_names, load_layout

FAKE_MOLECULE = """\
#!{python} -S
import json, os, sys, time
layout = sys.argv[sys.argv.index("-s") + 1]
suite = os.environ["WSLAB_SUITE"]
plan = json.loads(os.environ.get("FAKE_MOLECULE_PLAN", "{{}}")).get(suite + "/" + layout, {{}})
def say(line):
    print(line, flush=True)
say("INFO     [%s > discovery] scenario test matrix: create, converge, idempotence, verify, destroy" % layout)
for phase in ["create", "converge", "idempotence", "verify", "destroy"]:
    say("INFO     [%s > %s] Executing" % (layout, phase))
    time.sleep(plan.get("sleep", {{}}).get(phase, 0))
    for line in plan.get("output", {{}}).get(phase, []):
        say(line)
    if plan.get("fail") == phase:
        say("ERROR    [%s > %s] Executed: Failed" % (layout, phase))
        say("INFO     [%s > destroy] Executing" % layout)
        say("INFO     [%s > destroy] Executed: Successful" % layout)
        sys.exit(1)
    say("INFO     [%s > %s] Executed: Successful" % (layout, phase))
say("mark=" + os.environ.get("FAKE_MARK", ""))
"""

PYTEST_FAILURES = [
    "=========================== short test summary info ============================",
    "FAILED ../shared/tests/test_layout.py::test_x[ansible://wslab-wsgi-bookworm] - assert 1 == 2",
    "ERROR ../shared/tests/test_tls.py::test_y[ansible://wslab-wsgi-bookworm] - ConnectionRefusedError",
    "==================== 1 failed, 1 error, 20 passed in 3.10s =====================",
]


@pytest.fixture(autouse=True)
def fake_molecule(tmp_path, monkeypatch):
    """A fake molecule first on PATH; the build directory in tmp_path; a quiet heartbeat."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "molecule"
    fake.write_text(FAKE_MOLECULE.format(python=sys.executable))
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("WSLAB_RUN_ID", raising=False)
    monkeypatch.delenv("FAKE_MOLECULE_PLAN", raising=False)
    monkeypatch.setattr(scenarios, "BUILD_DIR", tmp_path / "molecule")
    monkeypatch.setattr(scenarios, "HEARTBEAT_S", 30.0)
    return tmp_path / "molecule"


def _plan(monkeypatch, **runs: dict) -> None:
    """FAKE_MOLECULE_PLAN from suite_layout=... keywords (bookworm_wsgi -> bookworm/wsgi)."""
    plan = {key.replace("_", "/", 1).replace("_", "-"): value for key, value in runs.items()}
    monkeypatch.setenv("FAKE_MOLECULE_PLAN", json.dumps(plan))


def _run(capsys, *argv: str) -> tuple[int, str]:
    code = scenarios.main(list(argv))
    return code, capsys.readouterr().out


def test_start_and_end_lines_have_the_counter_and_the_phases(capsys, fake_molecule):
    code, out = _run(capsys, "--layout", "daphne", "--layout", "wsgi", "--jobs", "2")
    assert code == 0
    assert re.search(r"^\[1/2\] start bookworm/(daphne|wsgi)$", out, re.M)
    assert re.search(r"^\[2/2\] start bookworm/(daphne|wsgi)$", out, re.M)
    for n in (1, 2):
        end = re.search(rf"^\[{n}/2\] bookworm/(daphne|wsgi) ok \d+ s \((.*)\)$", out, re.M)
        assert end, out
        assert re.fullmatch(r"create \d+ s, converge \d+ s, idempotence \d+ s, "
                            r"verify \d+ s, destroy \d+ s", end[2])
    assert "scenarios: 2 passed, 0 failed" in out
    results = json.loads((fake_molecule / "results.json").read_text())
    assert [(r["suite"], r["layout"], r["ok"]) for r in results["runs"]] == [
        ("bookworm", "daphne", True), ("bookworm", "wsgi", True)]
    assert set(results["runs"][0]["phases"]) == set(scenarios.PHASES)


def test_a_failure_is_shown_when_its_run_ends_not_after_all_runs(capsys, monkeypatch, fake_molecule):
    _plan(monkeypatch,
          bookworm_daphne={"sleep": {"verify": 0.5}},
          bookworm_wsgi={"fail": "verify", "output": {"verify": PYTEST_FAILURES}})
    code, out = _run(capsys, "--layout", "daphne", "--layout", "wsgi", "--jobs", "2")
    assert code == 1
    log = str(fake_molecule / "bookworm-wsgi.log")
    failed_at = out.index("bookworm/wsgi FAILED in verify")
    assert out.index(f"    log: {log}") > failed_at
    assert out.index("FAILED test_layout.py::test_x[ansible://wslab-wsgi-bookworm] - assert 1 == 2") > failed_at
    assert out.index("ERROR test_tls.py::test_y[ansible://wslab-wsgi-bookworm]") > failed_at
    # ...all of it before the slow run ends.
    assert out.index("ERROR test_tls.py::test_y") < out.index("bookworm/daphne ok")
    # The listing at the end: one line per failed run.
    listing = out.split("failed runs (suite/layout, phase, log, failing tests):\n")[1].splitlines()
    assert listing[0].split() == ["bookworm/wsgi", "verify", log,
                                  "test_layout.py::test_x[ansible://wslab-wsgi-bookworm],",
                                  "test_tls.py::test_y[ansible://wslab-wsgi-bookworm]"]
    assert listing[1] == "scenarios: 1 passed, 1 failed"
    assert "bookworm  wsgi    FAILED" in out  # the table is still there


def test_a_converge_failure_shows_the_failed_task_and_not_the_ignored_one():
    log = "\n".join([
        "INFO     [daphne > converge] Executing",
        "TASK [wslab : Probe for an old unit] *******************************************",
        "fatal: [wslab-daphne-bookworm]: FAILED! =>",
        "    msg: not there",
        "...ignoring",
        "TASK [daphne : Install the app's packages] *************************************",
        "Wednesday 25 November 2026  17:24:30 +0000 (0:00:00.025)       0:00:00.025 ****",
        "ok: [wslab-daphne-bookworm] => (item=a)",
        "failed: [wslab-daphne-bookworm] (item=b) =>",
        "    changed: false",
        "    msg: No package matching 'b' is available",
        "",
        "PLAY RECAP *********************************************************************",
        "ERROR    [daphne > converge] Executed: Failed",
        "INFO     [daphne > destroy] Executing",
        "INFO     [daphne > destroy] Executed: Successful",
    ])
    failure = scenarios.read_failure(log)
    assert failure.phase == "converge"
    assert failure.tests == []
    assert failure.tasks == ["daphne : Install the app's packages"]
    assert failure.lines == [
        "TASK [daphne : Install the app's packages]",
        "failed: [wslab-daphne-bookworm] (item=b) =>",
        "    changed: false",
        "    msg: No package matching 'b' is available",
    ]


def test_an_idempotence_failure_lists_the_changed_tasks():
    log = "\n".join([
        "INFO     [uvicorn > converge] Executing",
        "INFO     [uvicorn > converge] Executed: Successful",
        "INFO     [uvicorn > idempotence] Executing",
        "changed: [wslab-uvicorn-bookworm]",
        # As Molecule 26 prints it (copied from a real log).
        "CRITICAL Idempotence test failed because of the following tasks:",
        "*  => django_app : Record the pins the venv was built from",
        "*  => nginx : Reload nginx",
        "ERROR    [uvicorn > idempotence] Executed: Failed",
    ])
    failure = scenarios.read_failure(log)
    assert failure.phase == "idempotence"
    assert failure.lines == [
        "Idempotence test failed because of the following tasks:",
        "*  => django_app : Record the pins the venv was built from",
        "*  => nginx : Reload nginx",
    ]


def test_a_killed_run_fails_in_the_phase_it_was_in_and_shows_the_log_tail():
    log = "\n".join([
        "INFO     [daphne > verify] Executing",
        *(f"line {n}" for n in range(40)),
    ])
    failure = scenarios.read_failure(log)
    assert failure.phase == "verify"
    assert failure.lines == [f"line {n}" for n in range(25, 40)]


def test_a_failure_shows_at_most_max_failure_lines():
    log = "\n".join(f"FAILED tests/test_many.py::test_{n} - assert False" for n in range(100))
    failure = scenarios.read_failure(log)
    assert len(failure.tests) == 100
    assert len(failure.lines) == scenarios.MAX_FAILURE_LINES
    assert failure.lines[-1] == f"... {100 - scenarios.MAX_FAILURE_LINES + 1} more"


def test_a_heartbeat_when_a_run_is_silent_and_the_thread_stops(capsys, monkeypatch):
    monkeypatch.setattr(scenarios, "HEARTBEAT_S", 0.2)
    _plan(monkeypatch, bookworm_daphne={"sleep": {"verify": 0.5}})
    code, out = _run(capsys, "--layout", "daphne", "--jobs", "1")
    assert code == 0
    beat = re.search(r"^\[00:00\] running: bookworm/daphne verify \d+ s; 0 done, 0 waiting$", out, re.M)
    assert beat, out
    assert out.index("start bookworm/daphne") < beat.start() < out.index("bookworm/daphne ok")
    assert not [t for t in threading.enumerate() if t.name == "wslab-heartbeat"]


def test_the_status_line_names_running_and_waiting_runs():
    progress = scenarios.Progress(3)
    progress.start("uvicorn", "bookworm")
    progress.phase("uvicorn", "bookworm", "verify")
    progress.start("wsgi", "trixie")
    assert progress.status() == (
        "[00:00] running: bookworm/uvicorn verify 0 s, trixie/wsgi starting 0 s; 0 done, 1 waiting")


def test_longest_last_run_starts_first(capsys, monkeypatch, fake_molecule):
    monkeypatch.setenv("WSLAB_RUN_ID", "-x")
    monkeypatch.setattr(scenarios, "PURE_RUNS", frozenset())
    fake_molecule.mkdir(parents=True)
    history = [("wsgi", 300.0, True), ("daphne", 100.0, True), ("uvicorn", 900.0, False)]
    (fake_molecule / "results-x.json").write_text(json.dumps({"runs": [
        {"suite": "bookworm", "layout": layout, "seconds": seconds, "ok": ok} for layout, seconds, ok in history
    ]}))
    # A results.json of another run id is not read.
    (fake_molecule / "results.json").write_text(json.dumps({"runs": [
        {"suite": "bookworm", "layout": "daphne", "seconds": 999.0, "ok": True}]}))
    code, out = _run(capsys, "--layout", "daphne", "--layout", "uvicorn", "--layout", "wsgi", "--jobs", "1")
    assert code == 0
    # wsgi 300 s; uvicorn failed last time: estimated (210 s); daphne 100 s.
    assert re.findall(r"start bookworm/(\S+)", out) == ["wsgi", "uvicorn", "daphne"]
    assert (fake_molecule / "bookworm-wsgi-x.log").is_file()
    assert json.loads((fake_molecule / "results-x.json").read_text())["jobs"] == 1


def test_without_history_the_estimate_orders_the_runs(monkeypatch):
    monkeypatch.setattr(scenarios, "VERIFY_SCOPE", {})
    pure_runs = scenarios.PURE_RUNS
    monkeypatch.setattr(scenarios, "PURE_RUNS", frozenset())
    pairs = [(layout, suite) for suite in ("bookworm", "trixie")
             for layout in ("broken-proxy", "daphne", "split-daphne", "uvicorn", "wsgi")]
    assert scenarios.schedule(pairs, {}) == [
        ("daphne", "bookworm"), ("uvicorn", "bookworm"), ("daphne", "trixie"), ("uvicorn", "trixie"),
        ("split-daphne", "bookworm"), ("split-daphne", "trixie"),
        ("broken-proxy", "bookworm"), ("wsgi", "bookworm"), ("broken-proxy", "trixie"), ("wsgi", "trixie"),
    ]
    # A suite with a smaller verify scope is lighter.
    monkeypatch.setitem(scenarios.VERIFY_SCOPE, "trixie", "verdicts")
    assert scenarios.expected_seconds("daphne", "trixie", {}) < scenarios.expected_seconds("daphne", "bookworm", {})
    assert scenarios.schedule([("daphne", "trixie"), ("uvicorn", "bookworm")], {}) == [
        ("uvicorn", "bookworm"), ("daphne", "trixie")]
    # A pure run installs everything: it comes before the same layout seeded.
    monkeypatch.setattr(scenarios, "PURE_RUNS", pure_runs)
    (suite, layout), *_ = sorted(scenarios.PURE_RUNS)
    other = next(s for s in ("bookworm", "trixie") if s != suite)
    monkeypatch.setitem(scenarios.VERIFY_SCOPE, other, "full")
    monkeypatch.setitem(scenarios.VERIFY_SCOPE, suite, "full")
    assert scenarios.expected_seconds(layout, suite, {}) > scenarios.expected_seconds(layout, other, {})
    # History wins over the estimate.
    assert scenarios.expected_seconds("wsgi", "trixie", {("trixie", "wsgi"): 1000.0}) == 1000.0


def test_jobs_zero_or_empty_means_twice_the_cores_at_most_one_per_run(capsys, monkeypatch, fake_molecule):
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert scenarios.resolve_jobs(0, 5) == 2
    assert scenarios.resolve_jobs(0, 1) == 1
    assert scenarios.resolve_jobs(3, 1) == 3
    for jobs, expected in (("0", 2), ("", 2), ("1", 1)):
        code, out = _run(capsys, "--layout", "daphne", "--layout", "wsgi", "--layout", "uvicorn", "--jobs", jobs)
        assert code == 0
        assert f"3 scenario runs, {expected} at once" in out
        assert json.loads((fake_molecule / "results.json").read_text())["jobs"] == expected
    with pytest.raises(SystemExit):
        scenarios.main(["--jobs", "-1"])
    capsys.readouterr()


def test_run_env_reaches_the_run(capsys, monkeypatch, fake_molecule):
    seeded = scenarios.run_env("daphne", "bookworm")
    assert seeded["WSLAB_IMAGE_PREFIX"] == scenarios.IMAGE_PREFIX + "-seeded"
    assert seeded["WSLAB_VERIFY"] == "full"
    assert int(seeded["WSLAB_APT_CACHE_VALID_TIME"]) >= 24 * 3600
    # Seeded runs go through Mitogen's strategy, whose plugin directory exists.
    assert seeded["ANSIBLE_STRATEGY"] == "mitogen_linear"
    assert (Path(seeded["ANSIBLE_STRATEGY_PLUGINS"]) / "mitogen_linear.py").is_file()
    assert scenarios.run_env("daphne", "trixie")["WSLAB_VERIFY"] == "verdicts"
    # One run per suite proves the roles install everything from nothing.
    assert {suite for suite, _ in scenarios.PURE_RUNS} == set(scenarios.VERIFY_SCOPE)
    for suite, layout in scenarios.PURE_RUNS:
        pure = scenarios.run_env(layout, suite)
        assert pure["WSLAB_IMAGE_PREFIX"] == scenarios.IMAGE_PREFIX
        assert "WSLAB_APT_CACHE_VALID_TIME" not in pure  # the roles' own hour
        plain = (suite, layout) in scenarios.PLAIN_ANSIBLE_RUNS
        assert ("ANSIBLE_STRATEGY" not in pure) is plain
    # One run, on the pure image, goes through Ansible's own strategy.
    assert len(scenarios.PLAIN_ANSIBLE_RUNS) == 1 and scenarios.PLAIN_ANSIBLE_RUNS <= scenarios.PURE_RUNS
    monkeypatch.setattr(scenarios, "run_env", lambda layout, suite: {"FAKE_MARK": f"{suite}-{layout}"})
    code, _ = _run(capsys, "--layout", "daphne", "--suite", "trixie", "--jobs", "1")
    assert code == 0
    assert "mark=trixie-daphne" in (fake_molecule / "trixie-daphne.log").read_text()


def _roles(layout: str) -> set[str]:
    """The roles a layout's converge runs (site.yml): the app, its servers, nginx, Redis if it uses it."""
    definition = load_layout(layout)
    redis = {"redis"} if definition.get("channel_layer") == "redis" else set()
    return {"django_app", "nginx", *definition["servers"], *redis}


def test_every_role_runs_the_idempotence_pass_on_every_suite():
    config = (PROJECT_DIR / ".config" / "molecule" / "config.yml").read_text()
    default = re.search(r"test_sequence: \$\{WSLAB_TEST_SEQUENCE:-(\[.*\])\}", config)
    assert default, "the shared Molecule config names its sequence through WSLAB_TEST_SEQUENCE"
    assert yaml.safe_load(default[1]) == scenarios.PHASES
    all_roles = set().union(*map(_roles, layout_names()))
    for suite in scenarios.VERIFY_SCOPE:
        runs_it = [layout for layout in layout_names() if "WSLAB_TEST_SEQUENCE" not in scenarios.run_env(layout, suite)]
        assert set().union(*map(_roles, runs_it)) == all_roles, suite
    skipped = scenarios.run_env("wsgi", "trixie")["WSLAB_TEST_SEQUENCE"]
    assert yaml.safe_load(skipped) == [p for p in scenarios.PHASES if p != "idempotence"]
    assert "WSLAB_TEST_SEQUENCE" not in scenarios.run_env("wsgi", "bookworm")
