"""What the scenarios measure, kept for the runbook (docs/runbook.md) and the benchmark.

Verdicts are asserted in the tests; the figures behind them (how long a
restart took, how many sockets a worker held, how exposed a unit is) are
never pass/fail thresholds: each test records them here, one JSON file per
topic, suite and layout:

    build/findings/<topic>-<suite><WSLAB_RUN_ID>-<layout>.json   {"layout": ..., key: value, ...}

`make runbook` (wslab.runbook) copies a run's files into docs/findings/ and
renders the runbook's tables from them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from wslab.layout import PROJECT_DIR

FINDINGS_DIR = PROJECT_DIR / "build" / "findings"
# What the Molecule suites record: test_operations.py, test_capacity.py, test_hardening.py.
TOPICS = ("operations", "capacity", "hardening")


def finding_path(topic: str, layout: str) -> Path:
    """The findings file of TOPIC for LAYOUT on this run's suite (WSLAB_SUITE, WSLAB_RUN_ID)."""
    suite = os.environ.get("WSLAB_SUITE", "bookworm") + os.environ.get("WSLAB_RUN_ID", "")
    return FINDINGS_DIR / f"{topic}-{suite}-{layout}.json"


def record(topic: str, layout: str, key: str, value: Any) -> Path:
    """Set KEY to VALUE in the findings file of TOPIC for LAYOUT; its path."""
    path = finding_path(topic, layout)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(path.read_text()) if path.exists() else {"layout": layout}
    data[key] = value
    path.write_text(json.dumps(data, indent=2, sort_keys=True))
    return path


def parse_name(name: str, layouts: list[str]) -> tuple[str, str, str] | None:
    """(topic, suite, layout) of a findings file name, None for any other name.

    The layout is the longest of LAYOUTS the name ends with (split-daphne, not
    daphne); the suite is what stands between topic and layout, the run id
    included (bookworm-exp).
    """
    stem = name.removesuffix(".json")
    topic, _, rest = stem.partition("-")
    if name == stem or topic not in TOPICS:
        return None
    for layout in sorted(layouts, key=len, reverse=True):
        suite = rest.removesuffix(f"-{layout}")
        if suite != rest and suite:
            return topic, suite, layout
    return None
