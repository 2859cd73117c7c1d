"""The layout filters. The rules live in wslab/layout.py, the layout schema
that the scenario runner, the matrix and the tests import too."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

try:
    from wslab import layout
except ImportError:  # Ansible from outside the project's venv (make venv puts the project on its path)
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
    from wslab import layout


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "wslab_layout_errors": layout.layout_errors,
            "wslab_nginx_upstreams": layout.nginx_upstreams,
            "wslab_nginx_locations": layout.nginx_locations,
        }
