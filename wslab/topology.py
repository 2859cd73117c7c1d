"""Read the layout definitions in topologies/ (the same files the playbooks deploy)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

PROJECT_DIR = Path(__file__).resolve().parent.parent
TOPOLOGIES_DIR = PROJECT_DIR / "topologies"


def layout_names(directory: Path = TOPOLOGIES_DIR) -> list[str]:
    return sorted(path.stem for path in directory.glob("*.yml"))


def load_layout(name: str, directory: Path = TOPOLOGIES_DIR) -> dict[str, Any]:
    path = directory / f"{name}.yml"
    if not path.is_file():
        known = ", ".join(layout_names(directory))
        raise KeyError(f"unknown layout {name!r}; known: {known}")
    with path.open() as handle:
        return yaml.safe_load(handle)
