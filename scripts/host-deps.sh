#!/usr/bin/env bash
# Debian packages the lab needs on the machine that runs it (the controller):
# python3 with venv support. Docker and debootstrap are installed on demand by
# docker-engine.sh and base-image.sh. Safe to run any number of times.
set -euo pipefail

missing=()
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
command -v curl >/dev/null 2>&1 || missing+=(curl)

if [ ${#missing[@]} -gt 0 ]; then
    echo "host-deps: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi
