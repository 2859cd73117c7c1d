#!/usr/bin/env bash
# Debian's Chromium, for the echo page's browser tests (tests/browser/ and
# molecule/shared/tests/test_browser.py), which drive it headless through
# Playwright (wslab/browser.py). Installed only when missing;
# safe to run any number of times.
set -euo pipefail

if ! command -v chromium >/dev/null 2>&1; then
    echo "browser-deps: installing chromium" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq chromium >/dev/null
fi
