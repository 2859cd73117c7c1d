#!/usr/bin/env bash
# Make sure a Docker engine answers on this machine.
#
# The lab machines ship only the docker CLI and do not run systemd as PID 1, so
# the engine is Debian's docker.io, started in the background when nothing
# answers. Safe to run any number of times.
set -euo pipefail

LOG=${DOCKERD_LOG:-/var/log/wslab-dockerd.log}
WAIT_SECONDS=${DOCKERD_WAIT_SECONDS:-60}

if docker info >/dev/null 2>&1; then
    if pgrep -x docker-proxy >/dev/null 2>&1; then
        echo "docker-engine: this engine publishes ports through docker-proxy, which fails past a few" \
             "thousand connections; restart dockerd with --userland-proxy=false" >&2
    fi
    exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
    echo "docker-engine: installing Debian's docker.io" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq docker.io >/dev/null
fi

if ! pgrep -x dockerd >/dev/null 2>&1; then
    echo "docker-engine: starting dockerd (log: $LOG)" >&2
    # Containers inherit the engine's open-file limit, and systemd inside them
    # silently clamps LimitNOFILE to it: give the engine all the shell may.
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    # --userland-proxy=false: a published port (127.0.0.1:8083 -> the
    # container's nginx) is the kernel's NAT, not a docker-proxy process that
    # holds two files per connection and, past a few thousand WebSockets, left
    # the port refusing everything until the container was recreated.
    # setsid: the engine must outlive the make target that started it.
    setsid dockerd --userland-proxy=false >"$LOG" 2>&1 < /dev/null &
fi

for _ in $(seq 1 "$WAIT_SECONDS"); do
    if docker info >/dev/null 2>&1; then
        exit 0
    fi
    sleep 1
done
echo "docker-engine: dockerd did not answer within ${WAIT_SECONDS}s; last log lines:" >&2
tail -n 20 "$LOG" >&2 || true
exit 1
