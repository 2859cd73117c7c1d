#!/usr/bin/env bash
# What `make bench` runs on the host beside the venv: Debian's wrk (the HTTP
# load generator) and util-linux's nsenter and taskset (load generated inside
# a container's network namespace, on a core of its own). Installed only when
# missing; safe to run any number of times.
set -euo pipefail

missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v nsenter >/dev/null 2>&1 || missing+=(util-linux)
command -v taskset >/dev/null 2>&1 || missing+=(util-linux)

if [ ${#missing[@]} -gt 0 ]; then
    echo "bench-deps: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi
