"""The operator's runbook (docs/runbook.md) and its generated tables (wslab.runbook)."""

from __future__ import annotations

import json
import platform
import re
import shutil

import pytest

from wslab import runbook
from wslab.layout import PROJECT_DIR, layout_names
from wslab.probe import RUNBOOK, Verdict, runbook_anchor

TEXT = runbook.RUNBOOK_PATH.read_text()
PROVENANCE = {"commit": "abc1234", "date": "2026-01-02", "suites": ["bookworm", "trixie"], "nproc": 4,
              "machine": "aarch64"}


def _hand_written(text: str) -> str:
    """The runbook without its generated blocks."""
    return re.sub(r"<!-- BEGIN generated: ([a-z0-9-]+) -->\n.*?<!-- END generated: \1 -->", "", text, flags=re.S)


def _write(directory, name: str, data: dict) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(json.dumps(data))


def _operations(server: str, codes: list[int], reconnect: float) -> dict:
    return {
        "restart": {"server": server, "close_codes": codes, "close_reasons": [""], "systemctl_restart_s": 0.5,
                    "reconnect_after_restart_began_s": reconnect},
        "kill_9": {"server": server, "reconnect_s": 2.25},
        "idle_without_pings": {"server": server, "read_timeout_s": 10, "closed_after_s": 10.04, "close_code": 1006},
    }


def test_the_probe_names_this_file():
    assert runbook.RUNBOOK_PATH == PROJECT_DIR / RUNBOOK


@pytest.mark.parametrize("verdict", list(Verdict))
def test_every_verdict_has_a_section_with_its_anchor(verdict):
    anchor = runbook_anchor(verdict)
    section = TEXT.split(f'<a id="{anchor}"></a>\n', 1)
    assert len(section) == 2, f"no section with the anchor {anchor}"
    assert section[1].startswith(f"#### `{verdict.value}`\n")


@pytest.mark.parametrize("name", layout_names())
def test_every_layout_is_in_the_runbook_and_its_prose(name):
    assert f"(../layouts/{name}.yml)" in TEXT
    assert f"**`{name}`**" in _hand_written(TEXT), f"'What each is for' says nothing of {name}"


def test_every_internal_link_has_its_anchor():
    anchors = set(re.findall(r'<a id="([a-z0-9-]+)"></a>', TEXT))
    # GitHub's anchors of headings: lower case, punctuation dropped, spaces to hyphens.
    anchors |= {re.sub(r"[^a-z0-9 -]", "", title.lower()).replace(" ", "-")
                for title in re.findall(r"^#+ (.+)$", TEXT, re.M)}
    links = set(re.findall(r"\]\(#([^)]+)\)", TEXT))
    assert links - anchors == set()


def test_the_committed_runbook_is_a_render_of_the_committed_findings():
    """python -m wslab.runbook --check, as a test: run `make runbook` after a test run."""
    assert runbook.stale_blocks() == []


def test_the_committed_findings_use_the_topic_naming():
    names = [path.name for path in runbook.DOCS_FINDINGS_DIR.glob("*.json") if path.name != runbook.PROVENANCE]
    assert names
    assert all(runbook.findings.parse_name(name, layout_names()) for name in names), names


def test_a_render_of_synthetic_findings(tmp_path):
    _write(tmp_path, "provenance.json", PROVENANCE)
    _write(tmp_path, "operations-bookworm-daphne.json", {"layout": "daphne", **_operations("daphne", [1006], 3.04)})
    _write(tmp_path, "operations-bookworm-split-uvicorn.json",
           {"layout": "split-uvicorn", **_operations("uvicorn", [1012], 1.96)})
    # The old naming and a run id are not read.
    _write(tmp_path, "bookworm-uvicorn.json", {"layout": "uvicorn", **_operations("uvicorn", [1000], 9.0)})
    _write(tmp_path, "operations-bookworm-exp-uvicorn.json", {"layout": "uvicorn", **_operations("uvicorn", [1000], 9.0)})
    _write(tmp_path, "hardening-trixie-daphne.json", {"layout": "daphne", "exposure": {"nginx": 2.6, "wslab-daphne": 1.25}})

    blocks = runbook.render_blocks(tmp_path)

    restart = blocks["restart"]
    assert restart.startswith(
        "*Measured 2026-01-02 at commit `abc1234` on Debian bookworm and trixie, 4 cores (aarch64);"
    )
    assert ("| [`daphne`](../layouts/daphne.yml) | bookworm | `wslab-daphne` | **1006** | 1006 | 0.5 s | 3.0 s"
            " | 2.2 s |") in restart
    assert ("| [`split-uvicorn`](../layouts/split-uvicorn.yml) | bookworm | `wslab-uvicorn` | **1012** | 1012"
            " | 0.5 s | 2.0 s | 2.2 s |") in restart
    assert "| [`uvicorn`](../layouts/uvicorn.yml) | — | not measured in this run |" in restart
    assert "| [`wsgi`](../layouts/wsgi.yml) | — | not measured: no WebSocket through nginx |" in restart
    assert "**1000**" not in restart
    assert "| [`daphne`](../layouts/daphne.yml) | bookworm | `wslab-daphne` | 10.0 s | 10.0 s | **1006** |" in blocks["idle"]
    hardening = blocks["hardening"]
    assert "| [`daphne`](../layouts/daphne.yml) | trixie | `wslab-daphne` 1.2 | 2.6 | — |" in hardening
    assert "| [`daphne`](../layouts/daphne.yml) | bookworm | not measured in this run | — | — |" in hardening
    assert "Not measured in this run: `broken-proxy`, `daphne`," in blocks["capacity-load"]


def test_rendering_is_deterministic_and_reads_only_the_findings(tmp_path):
    shutil.copytree(runbook.DOCS_FINDINGS_DIR, tmp_path / "findings")
    first = runbook.render_blocks(tmp_path / "findings")
    assert first == runbook.render_blocks(runbook.DOCS_FINDINGS_DIR)
    assert first == runbook.render_blocks(tmp_path / "findings")


def test_check_names_a_stale_block_and_exits_1(tmp_path, capsys):
    stale = tmp_path / "runbook.md"
    stale.write_text(TEXT.replace("| **1006** |", "| **1000** |", 1))
    assert runbook.stale_blocks(stale) == ["restart"]
    assert runbook.main(["--check", "--runbook", str(stale)]) == 1
    assert "restart" in capsys.readouterr().err
    assert runbook.main(["--check"]) == 0


def test_update_replaces_the_findings_writes_provenance_and_renders(tmp_path, capsys):
    build, docs, page = tmp_path / "build", tmp_path / "docs", tmp_path / "runbook.md"
    page.write_text(TEXT)
    _write(docs, "operations-bookworm-uvicorn.json", {"layout": "uvicorn", **_operations("uvicorn", [1012], 2.0)})
    _write(docs, "provenance.json", PROVENANCE)
    _write(build, "operations-bookworm-daphne.json", {"layout": "daphne", **_operations("daphne", [1006], 3.0)})
    _write(build, "hardening-trixie-daphne.json", {"layout": "daphne", "exposure": {"nginx": 2.6, "wslab-daphne": 1.2}})
    _write(build, "capacity-bookworm-exp-daphne.json", {"layout": "daphne"})
    _write(build, "bookworm-daphne.json", {"layout": "daphne"})

    assert runbook.main(["--update", "--build", str(build), "--findings", str(docs), "--runbook", str(page)]) == 0

    assert sorted(path.name for path in docs.iterdir()) == [
        "hardening-trixie-daphne.json", "operations-bookworm-daphne.json", "provenance.json"]
    provenance = json.loads((docs / "provenance.json").read_text())
    assert provenance["suites"] == ["bookworm", "trixie"]
    assert provenance["machine"] == platform.machine()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", provenance["date"])
    assert re.fullmatch(r"[0-9a-f]{7,}(-dirty)?", provenance["commit"])
    assert provenance["nproc"] >= 1
    out = capsys.readouterr().out
    assert "left out bookworm-daphne.json" in out and "left out capacity-bookworm-exp-daphne.json" in out
    assert runbook.stale_blocks(page, docs) == []
    assert "| [`uvicorn`](../layouts/uvicorn.yml) | — | not measured in this run |" in page.read_text()
    assert _hand_written(page.read_text()) == _hand_written(TEXT)


def test_update_without_findings_changes_nothing(tmp_path, capsys):
    docs, page = tmp_path / "docs", tmp_path / "runbook.md"
    page.write_text(TEXT)
    _write(docs, "provenance.json", PROVENANCE)
    (tmp_path / "build").mkdir()
    argv = ["--update", "--build", str(tmp_path / "build"), "--findings", str(docs), "--runbook", str(page)]
    assert runbook.main(argv) == 1
    assert "no findings to copy" in capsys.readouterr().err
    assert [path.name for path in docs.iterdir()] == ["provenance.json"]
    assert page.read_text() == TEXT


def test_a_block_without_its_markers_is_refused():
    with pytest.raises(ValueError, match="no markers for the generated blocks restart"):
        runbook.splice("no markers here", {"restart": "| x |\n"})
