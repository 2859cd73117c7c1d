"""What the scenarios measure, kept for the runbook and the benchmark.

Verdicts are asserted in the tests; the figures behind them (how long a
restart took, how many sockets a worker held, how exposed a unit is) are
never pass/fail thresholds: each test records them here, one JSON file per
topic, suite and layout:

    build/findings/<topic>-<suite><WSLAB_RUN_ID>-<layout>.json   {"layout": ..., key: value, ...}
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from wslab.layout import PROJECT_DIR

FINDINGS_DIR = PROJECT_DIR / "build" / "findings"


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
