#!/usr/bin/env bash
# Build one of the lab's systemd base images for a Debian suite when it is missing.
#
#   scripts/base-image.sh bookworm          -> wslab/debian-systemd:bookworm
#   scripts/base-image.sh bookworm seeded   -> wslab/debian-systemd-seeded:bookworm
#
# An image is rebuilt when its recipe changes, or always with WSLAB_IMAGE_REBUILD=1.
#
# No registry is reachable from the lab machines, so the image is made with
# debootstrap and `docker import`. Users who can pull a published systemd image
# may point WSLAB_IMAGE_PREFIX elsewhere and skip this script. The pure image
# holds only what Ansible needs to reach a host (python3, and sudo for a
# connection user who is not root) plus systemd as PID 1, and the host's CA
# bundle so pip inside the containers can verify PyPI: lab-image plumbing, not
# something the roles rely on. Like Debian's cloud images it has a user
# `debian` with sudo and no password, whom a scenario connects as
# (molecule/gunicorn-uvicorn).
#
# The seeded image is the pure one plus what every layout installs: the Debian
# packages of the roles (SEED_PACKAGES) and the app's venv with its pinned
# requirements (SEED_VENV), so that a scenario does not download, unpack and
# compile them again: the roles find them in place, as on a host deployed
# before, with the services disabled.
# One scenario per suite runs on the pure image and proves that the roles
# install everything themselves (wslab/scenarios.py).
set -euo pipefail

SUITE=${1:?usage: base-image.sh SUITE (bookworm|trixie) [pure|seeded]}
VARIANT=${2:-pure}
PREFIX=${WSLAB_IMAGE_PREFIX:-wslab/debian-systemd}
IMAGE="$PREFIX:$SUITE"
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# Bump when the recipe changes, so an older image is rebuilt.
RECIPE=4
# What roles/*/tasks install with ansible.builtin.apt, nothing more, and the
# app's venv where roles/django_app makes it by default (wslab_app_root/venv),
# from the app's pins; tests/test_images.py keeps both in step with the roles.
SEED_PACKAGES="nginx openssl python3-packaging python3-venv redis-server"
SEED_VENV=/opt/wslab/venv
# Beside the venv, the pins it was built from, where roles/django_app keeps
# them (_django_app_venv_pins): the role then finds the venv current and skips pip.
SEED_PINS=$SEED_VENV/wslab-requirements.lock
# Bump when the seeded recipe changes, so an older seeded image is rebuilt.
SEED_RECIPE=3
# The app's lock: every package pinned and hashed, as roles/django_app installs it.
REQUIREMENTS="$(cd "$(dirname "$0")/.." && pwd)/sample_app/requirements.lock"

case "$SUITE" in
    bookworm|trixie) ;;
    *) echo "base-image: unsupported suite '$SUITE' (bookworm or trixie)" >&2; exit 2 ;;
esac

case "$VARIANT" in
    pure) ;;
    seeded)
        "$0" "$SUITE" pure
        SEEDED="$PREFIX-seeded:$SUITE"
        # Rebuilt when its recipe, the pure image under it, the package list or the app's pins change.
        STAMP="$SEED_RECIPE $(docker image inspect -f '{{ .Id }}' "$IMAGE") $SEED_PACKAGES $(sha256sum <"$REQUIREMENTS" | cut -c1-16)"
        if [ "${WSLAB_IMAGE_REBUILD:-0}" != 1 ] &&
           [ "$(docker image inspect -f '{{ index .Config.Labels "wslab.seeded-from" }}' "$SEEDED" 2>/dev/null)" = "$STAMP" ]; then
            exit 0
        fi
        echo "base-image: building $SEEDED ($SEED_PACKAGES; the app's venv in $SEED_VENV)" >&2
        CONTEXT=$(mktemp -d)
        trap 'rm -rf "$CONTEXT"' EXIT
        cp "$REQUIREMENTS" "$CONTEXT/requirements.lock"
        # The classic builder takes FROM a local image without a registry.
        # policy-rc.d keeps the packages from starting services in the build.
        printf '%s\n' \
            "FROM $IMAGE" \
            "COPY requirements.lock /tmp/wslab-requirements.lock" \
            "RUN printf '#!/bin/sh\\nexit 101\\n' >/usr/sbin/policy-rc.d && chmod 0755 /usr/sbin/policy-rc.d \\" \
            " && apt-get update -qq \\" \
            " && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $SEED_PACKAGES >/dev/null \\" \
            " && systemctl disable --quiet nginx redis-server \\" \
            " && rm -f /usr/sbin/policy-rc.d /var/cache/apt/archives/*.deb" \
            "RUN python3 -m venv $SEED_VENV \\" \
            " && $SEED_VENV/bin/pip install -qq --disable-pip-version-check --require-hashes -r /tmp/wslab-requirements.lock \\" \
            " && install -m 0644 /tmp/wslab-requirements.lock $SEED_PINS \\" \
            " && rm -f /tmp/wslab-requirements.lock && rm -rf /root/.cache/pip" \
            >"$CONTEXT/Dockerfile"
        # A line per build step (packages, then the venv), the full log on failure.
        DOCKER_BUILDKIT=0 docker build --label "wslab.seeded-from=$STAMP" --tag "$SEEDED" "$CONTEXT" 2>&1 \
            | tee "$CONTEXT/log" | sed -n -u 's/^Step \([0-9]*\/[0-9]*\) : \(RUN\|FROM\) \(.\{0,70\}\).*/base-image: step \1 \3/p' >&2
        [ "${PIPESTATUS[0]}" = 0 ] || { cat "$CONTEXT/log" >&2; exit 1; }
        echo "base-image: built $SEEDED" >&2
        exit 0
        ;;
    *) echo "base-image: unknown variant '$VARIANT' (pure or seeded)" >&2; exit 2 ;;
esac
if [ "${WSLAB_IMAGE_REBUILD:-0}" != 1 ] &&
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
    --include=systemd,systemd-sysv,python3,python3-apt,dbus,iproute2,procps,ca-certificates,sudo \
    "$SUITE" "$ROOT" "$MIRROR" >"$ROOT.log" 2>&1 || { tail -n 30 "$ROOT.log" >&2; exit 1; }
rm -f "$ROOT.log"

# The connection user who is not root, as on Debian's cloud images.
chroot "$ROOT" useradd --create-home --shell /bin/bash --groups sudo debian
printf 'debian ALL=(ALL) NOPASSWD:ALL\n' >"$ROOT/etc/sudoers.d/90-wslab-debian"
chmod 0440 "$ROOT/etc/sudoers.d/90-wslab-debian"

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
