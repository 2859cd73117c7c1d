"""A wheelhouse for the sample app's pinned requirements, built once per pin set.

    python -m wslab.wheelhouse            # build it if missing, print its path
    python -m wslab.wheelhouse --path     # print its path only

The lab's containers install the app's venv from it (`django_app_wheelhouse`:
pip with `--no-index --find-links`), mounted read-only, so no scenario asks
PyPI for what the machine already has. Its directory is named after a hash of
sample_app/requirements.txt and of the target interpreters: a new pin makes a
new wheelhouse, and an old one is never half-reused.

Wheels (binary only) are downloaded by each Debian suite's own Python and pip,
in a container of the suite's seeded image (scripts/base-image.sh SUITE seeded).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path, PurePosixPath

from wslab.topology import PROJECT_DIR

REQUIREMENTS = PROJECT_DIR / "sample_app" / "requirements.txt"
# Where wheelhouses live on this machine, and where the lab's containers see
# this directory, read-only (.config/molecule/config.yml, the lab inventory).
CACHE_DIR = Path(os.environ.get("WSLAB_CACHE_DIR", "/var/cache/wslab")) / "wheels"
MOUNT_POINT = PurePosixPath("/var/cache/wslab/wheels")
# The suites the lab runs. Each one's wheels are downloaded by its own Python,
# in a throwaway container of its seeded image: markers such as redis-py's
# `python_full_version < "3.11.3"` are decided by the interpreter the hosts run.
SUITES = ("bookworm", "trixie")
IMAGE = os.environ.get("WSLAB_IMAGE_PREFIX", "wslab/debian-systemd") + "-seeded:{suite}"
COMPLETE = ".complete"


def wheelhouse_id() -> str:
    digest = hashlib.sha256(REQUIREMENTS.read_bytes())
    digest.update(" ".join(SUITES).encode())
    return digest.hexdigest()[:16]


def path() -> Path:
    return CACHE_DIR / wheelhouse_id()


def build() -> Path:
    """Download every pinned wheel for every target; returns the wheelhouse's path."""
    target = path()
    if (target / COMPLETE).exists():
        return target
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".building-", dir=CACHE_DIR))
    try:
        for suite in SUITES:
            subprocess.run([str(PROJECT_DIR / "scripts" / "base-image.sh"), suite, "seeded"], check=True)
            print(f"wheelhouse: downloading wheels with {suite}'s Python", file=sys.stderr, flush=True)
            subprocess.run(
                ["docker", "run", "--rm", "--network", "bridge",
                 "-v", f"{REQUIREMENTS}:/wheelhouse-requirements.txt:ro", "-v", f"{staging}:/wheelhouse",
                 IMAGE.format(suite=suite), "sh", "-ec",
                 "python3 -m venv /tmp/venv && /tmp/venv/bin/pip download -qq --disable-pip-version-check"
                 " --only-binary=:all: --dest /wheelhouse -r /wheelhouse-requirements.txt"],
                check=True, timeout=600,
            )
        (staging / COMPLETE).write_text(REQUIREMENTS.read_text())
        for wheel in staging.iterdir():
            wheel.chmod(0o644)
        staging.chmod(0o755)
        # Whole or not at all: a run that stops half-way leaves no wheelhouse.
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    count = sum(1 for p in target.iterdir() if p.suffix == ".whl")
    print(f"wheelhouse: {count} wheels in {target}", file=sys.stderr, flush=True)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wslab.wheelhouse", description=__doc__.splitlines()[0])
    parser.add_argument("--path", action="store_true", help="print the wheelhouse's path, build nothing")
    args = parser.parse_args(argv)
    print(path() if args.path else build())
    return 0


if __name__ == "__main__":
    sys.exit(main())
