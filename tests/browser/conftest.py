"""The echo page's browser test runs against a bare Daphne on 127.0.0.1
(tests/bare_daphne.py) serving browser_asgi, the sample app with this
folder's additions. The browser itself comes from wslab.browser.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.bare_daphne import AppServer

HERE = Path(__file__).resolve().parent


@pytest.fixture
def app_server() -> Iterator[AppServer]:
    with tempfile.TemporaryDirectory(prefix="wslab-daphne-") as tmp:
        server = AppServer(Path(tmp), app="browser_asgi:application", pythonpath=[HERE])
        try:
            yield server
        finally:
            server.cleanup()
