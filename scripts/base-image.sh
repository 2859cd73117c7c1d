#!/usr/bin/env bash
# Build the lab's systemd base image for one Debian suite when it is missing.
#
#   scripts/base-image.sh bookworm     -> wslab/debian-systemd:bookworm
#
# No registry is reachable from the lab machines, so the image is made with
# debootstrap and `docker import`. Users who can pull a published systemd image
# may point LAB_IMAGE_PREFIX elsewhere and skip this script. The image holds
# only what Ansible needs to reach a host (python3) plus systemd as PID 1, and
# the host's CA bundle so pip inside the containers can verify PyPI: lab-image
# plumbing, not something the roles rely on.
set -euo pipefail

SUITE=${1:?usage: base-image.sh SUITE (bookworm|trixie)}
PREFIX=${LAB_IMAGE_PREFIX:-wslab/debian-systemd}
IMAGE="$PREFIX:$SUITE"
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# Bump when the recipe changes, so an older image is rebuilt.
RECIPE=3

case "$SUITE" in
    bookworm|trixie) ;;
    *) echo "base-image: unsupported suite '$SUITE' (bookworm or trixie)" >&2; exit 2 ;;
esac

if [ "${LAB_IMAGE_REBUILD:-0}" != 1 ] &&
   [ "$(docker image inspect -f '{{ index .Config.Labels "wslab.recipe" }}' "$IMAGE" 2>/dev/null)" = "$RECIPE" ]; then
    exit 0
fi

if ! command -v debootstrap >/dev/null 2>&1; then
    echo "base-image: installing debootstrap" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq debootstrap >/dev/null
fi

ROOT=$(mktemp -d "/var/tmp/wslab-rootfs-$SUITE.XXXXXX")
trap 'rm -rf "$ROOT"' EXIT

echo "base-image: debootstrap $SUITE into $ROOT" >&2
debootstrap --variant=minbase \
    --include=systemd,systemd-sysv,python3,python3-apt,dbus,iproute2,procps,ca-certificates \
    "$SUITE" "$ROOT" "$MIRROR" >"$ROOT.log" 2>&1 || { tail -n 30 "$ROOT.log" >&2; exit 1; }
rm -f "$ROOT.log"

# pip inside the containers verifies PyPI with the host's CA bundle.
install -m 0644 /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/wslab-host-ca.crt"
printf '[global]\ncert = /etc/ssl/certs/wslab-host-ca.crt\n' >"$ROOT/etc/pip.conf"

# Units that have no work to do in a container and only slow the boot.
for unit in systemd-udevd.service systemd-udev-trigger.service getty.target \
            console-getty.service systemd-logind.service apt-daily.timer \
            apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer; do
    ln -sf /dev/null "$ROOT/etc/systemd/system/$unit"
done
# Let apt keep downloaded packages, so a shared cache volume can serve them.
rm -f "$ROOT/etc/apt/apt.conf.d/docker-clean"
echo 'Binary::apt::APT::Keep-Downloaded-Packages "true";' >"$ROOT/etc/apt/apt.conf.d/10wslab-keep-debs"
: >"$ROOT/etc/machine-id"

tar -C "$ROOT" -c . | docker import \
    -c 'CMD ["/lib/systemd/systemd"]' \
    -c 'ENV container=docker' \
    -c "LABEL wslab.recipe=$RECIPE wslab.suite=$SUITE" \
    - "$IMAGE" >/dev/null
echo "base-image: built $IMAGE" >&2
