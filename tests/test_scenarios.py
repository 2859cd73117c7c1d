"""The scenario runner (wslab.scenarios) against a fake `molecule` and a fake
`docker` on PATH.

The fake molecule prints the phase lines Molecule prints for the phases of
WSLAB_TEST_SEQUENCE and, as FAKE_MOLECULE_PLAN says for each suite/layout,
sleeps in a phase, prints extra lines in it and fails it (Molecule's
`Executed: Failed`, the final destroy, exit 1). The fake docker appends its
arguments to FAKE_DOCKER_LOG, one call a line, and fails `docker run` of a
container named in FAKE_DOCKER_FAIL.
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
from wslab.roles import raw_defaults

FAKE_MOLECULE = """\
#!{python} -S
import json, os, sys, time
layout = sys.argv[sys.argv.index("-s") + 1]
suite = os.environ["WSLAB_SUITE"]
plan = json.loads(os.environ.get("FAKE_MOLECULE_PLAN", "{{}}")).get(suite + "/" + layout, {{}})
default = "[create, converge, idempotence, verify, destroy]"
sequence = os.environ.get("WSLAB_TEST_SEQUENCE", default).strip("[]").split(", ")
def say(line):
    print(line, flush=True)
say("INFO     [%s > discovery] scenario test matrix: %s" % (layout, ", ".join(sequence)))
for phase in sequence:
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

FAKE_DOCKER = """\
#!{python} -S
import os, sys
with open(os.environ["FAKE_DOCKER_LOG"], "a") as log:
    log.write(" ".join(sys.argv[1:]) + "\\n")
if sys.argv[1] == "run" and "--name=" + os.environ.get("FAKE_DOCKER_FAIL", "-") in sys.argv:
    sys.exit("docker: Error response from daemon: fake failure.")
"""

PYTEST_FAILURES = [
    "=========================== short test summary info ============================",
    "FAILED ../shared/tests/test_layout.py::test_x[ansible://wslab-wsgi-bookworm] - assert 1 == 2",
    "ERROR ../shared/tests/test_tls.py::test_y[ansible://wslab-wsgi-bookworm] - ConnectionRefusedError",
    "==================== 1 failed, 1 error, 20 passed in 3.10s =====================",
]


@pytest.fixture(autouse=True)
def fake_molecule(tmp_path, monkeypatch):
    """A fake molecule and docker first on PATH; the build directory in tmp_path; a quiet heartbeat; a short reference loop."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "molecule"
    fake.write_text(FAKE_MOLECULE.format(python=sys.executable))
    fake.chmod(0o755)
    (bin_dir / "docker").write_text(FAKE_DOCKER.format(python=sys.executable))
    (bin_dir / "docker").chmod(0o755)
    monkeypatch.setenv("FAKE_DOCKER_LOG", str(tmp_path / "docker.log"))
    monkeypatch.delenv("FAKE_DOCKER_FAIL", raising=False)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("WSLAB_RUN_ID", raising=False)
    monkeypatch.delenv("FAKE_MOLECULE_PLAN", raising=False)
    monkeypatch.setattr(scenarios, "BUILD_DIR", tmp_path / "molecule")
    monkeypatch.setattr(scenarios, "HEARTBEAT_S", 30.0)
    monkeypatch.setattr(scenarios, "REFERENCE_LOOP", 1_000)
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
    # The machine's speed before and after, in the file and the summary.
    before, after = results["reference_loop_s"]
    assert 0 < before < 60 and 0 < after < 60
    assert f"a fixed Python loop took {before:.2f} s before the first run, {after:.2f} s after the last" in out


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
        plain = (suite, layout) in scenarios.PLAIN_RUNS
        assert ("ANSIBLE_STRATEGY" not in pure) is plain
    # One run, on the pure image, goes through Ansible's own strategy.
    assert len(scenarios.PLAIN_RUNS) == 1 and scenarios.PLAIN_RUNS <= scenarios.PURE_RUNS
    monkeypatch.setattr(scenarios, "run_env", lambda layout, suite: {"FAKE_MARK": f"{suite}-{layout}"})
    code, _ = _run(capsys, "--layout", "daphne", "--suite", "trixie", "--jobs", "1")
    assert code == 0
    assert "mark=trixie-daphne" in (fake_molecule / "trixie-daphne.log").read_text()


def _roles(layout: str) -> set[str]:
    """The roles a layout's converge runs (site.yml): the app, its servers, nginx, Redis if it uses it."""
    definition = load_layout(layout)
    redis = {"redis"} if definition.get("channel_layer") == "redis" else set()
    return {"django_app", "nginx", *definition["servers"], *redis}


def _binds(layout: str) -> set[tuple[str, str]]:
    """(server, "unix" or "tcp") for each server of the layout, as its scenario binds it."""
    scenario = yaml.safe_load((PROJECT_DIR / "molecule" / layout / "molecule.yml").read_text())
    inventory = scenario.get("provisioner", {}).get("inventory", {}).get("group_vars", {}).get("all", {})
    binds = inventory.get("wslab_app_binds") or raw_defaults("wslab")["wslab_app_binds"]
    return {(server, "unix" if binds[server].startswith("unix:") else "tcp") for server in load_layout(layout)["servers"]}


def _idempotence_layouts(suite: str) -> list[str]:
    return [layout for layout in layout_names() if "idempotence" in scenarios.molecule_phases(layout, suite)]


def test_the_idempotence_passes_cover_every_role_bind_and_pure_run():
    """Debian 12's passes go through every role, every server on each kind of
    bind a scenario gives it, and the pure image; Debian 13's through every role
    and its pure run (IDEMPOTENCE_LAYOUTS)."""
    all_roles = set().union(*map(_roles, layout_names()))
    all_binds = set().union(*map(_binds, layout_names()))
    # Each server is proven on both kinds of bind somewhere.
    assert {server for server, kind in all_binds if kind == "unix"} == {"gunicorn", "daphne", "uvicorn"}
    for suite in scenarios.VERIFY_SCOPE:
        runs_it = _idempotence_layouts(suite)
        assert set().union(*map(_roles, runs_it)) == all_roles, suite
        assert any((suite, layout) in scenarios.PURE_RUNS for layout in runs_it), suite
    assert set().union(*map(_binds, _idempotence_layouts("bookworm"))) == all_binds
    # Fewer passes than runs on each suite: the cover is not everything.
    assert all(len(_idempotence_layouts(suite)) < len(layout_names()) for suite in scenarios.VERIFY_SCOPE)


def test_the_sequence_leaves_idempotence_out_where_the_suite_does_not_run_it():
    config = (PROJECT_DIR / ".config" / "molecule" / "config.yml").read_text()
    default = re.search(r"test_sequence: \$\{WSLAB_TEST_SEQUENCE:-(\[.*\])\}", config)
    assert default, "the shared Molecule config names its sequence through WSLAB_TEST_SEQUENCE"
    assert yaml.safe_load(default[1]) == scenarios.PHASES
    for suite in ("trixie", "bookworm"):
        assert yaml.safe_load(scenarios.run_env("broken-proxy", suite)["WSLAB_TEST_SEQUENCE"]) == ["converge", "verify"]
        assert yaml.safe_load(scenarios.run_env("daphne", suite)["WSLAB_TEST_SEQUENCE"]) == [
            "converge", "idempotence", "verify"]
    # The plain run is Molecule's whole default sequence.
    (plain,) = scenarios.PLAIN_RUNS
    assert "WSLAB_TEST_SEQUENCE" not in scenarios.run_env(*reversed(plain))


def test_the_runner_starts_and_removes_the_container_outside_the_plain_run(capsys, monkeypatch, fake_molecule):
    code, out = _run(capsys, "--layout", "daphne", "--layout", "uvicorn", "--jobs", "1")
    assert code == 0
    calls = (fake_molecule.parent / "docker.log").read_text().splitlines()
    # daphne on bookworm: replaced, started from the seeded image, removed; uvicorn (plain): Molecule's.
    assert [call.split()[:2] for call in calls] == [["rm", "--force"], ["run", "--detach"], ["rm", "--force"]]
    run = calls[1].split()
    assert "--name=wslab-daphne-bookworm" in run and run[-2:] == [
        scenarios.IMAGE_PREFIX + "-seeded:bookworm", "/lib/systemd/systemd"]
    assert "--publish=127.0.0.1::80" in run and "--cap-add=SYS_ADMIN" in run
    assert calls[2].split()[-1] == "wslab-daphne-bookworm"
    log = (fake_molecule / "bookworm-daphne.log").read_text()
    assert "scenario test matrix: converge, idempotence, verify" in log
    assert re.search(r"^\[\d/2\] bookworm/daphne ok \d+ s \(create \d+ s, converge \d+ s, idempotence \d+ s, "
                     r"verify \d+ s, destroy \d+ s\)$", out, re.M), out


def test_a_container_that_does_not_start_fails_the_run_in_create(capsys, monkeypatch, fake_molecule):
    monkeypatch.setenv("FAKE_DOCKER_FAIL", "wslab-daphne-bookworm")
    code, out = _run(capsys, "--layout", "daphne", "--jobs", "1")
    assert code == 1
    assert "bookworm/daphne FAILED in create" in out
    assert "fake failure" in out
    log = (fake_molecule / "bookworm-daphne.log").read_text()
    assert "scenario test matrix" not in log  # Molecule never ran
    assert (fake_molecule.parent / "docker.log").read_text().splitlines()[-1].startswith("rm --force")


def test_the_runner_starts_the_platform_molecule_create_would():
    """Every platform key molecule/shared/create.yml passes to docker_container
    has its docker run option, and the other way round."""
    create = yaml.safe_load((PROJECT_DIR / "molecule/shared/create.yml").read_text())
    module = create[0]["tasks"][0]["community.docker.docker_container"]
    used = set(re.findall(r"item\.(\w+)", json.dumps(module)))
    from wslab import containers

    assert used - {"name", "image", "command"} == set(containers._RUN_OPTIONS)
    platform = containers.scenario_platform("daphne", {"WSLAB_SUITE": "trixie", "WSLAB_RUN_ID": "-x"})
    assert platform["name"] == "wslab-daphne-trixie-x"
    assert platform["image"] == "wslab/debian-systemd:trixie"
    with pytest.raises(ValueError, match="privileged"):
        containers.platform_run_args({**platform, "privileged": True})
