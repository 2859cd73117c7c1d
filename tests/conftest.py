"""Scheduling of the suite over pytest-xdist's workers (make unit: one per core).

The few tests that each deploy into a container of their own take most of the
suite's time. Collected last, one of them would run alone on one core while
the other core sits idle at the end; so they are handed out first.
(pytest-xdist 3.8's `--dist loadgroup` cannot keep a module's tests on one
worker under pytest 9, whose node ids it no longer rewrites: a test that
needs a deployment of its own does all its checks on it.)
"""

from __future__ import annotations

# Modules whose tests deploy into a container, longest first.
LONG_MODULES = ("tests/preflight/test_preview.py", "tests/test_uvicorn_alone.py", "tests/browser/test_echo_page.py")


def _rank(item) -> int:
    path = item.nodeid.split("::", 1)[0]
    return LONG_MODULES.index(path) if path in LONG_MODULES else len(LONG_MODULES)


def pytest_collection_modifyitems(items):
    items.sort(key=_rank)  # stable: the rest keep their order
