"""Containers that tests start for themselves, from what the project's scripts
provide: the Docker engine (scripts/docker-engine.sh), the base images
(scripts/base-image.sh), and `docker run` options for systemd as PID 1 taken
from the scenarios' own platform (.config/molecule/config.yml), so that a
test's container and a scenario's start alike.
"""

from __future__ import annotations

import subprocess

import yaml

from wslab.layout import PROJECT_DIR
from wslab.scenarios import IMAGE_PREFIX

DOCKER_TIMEOUT = 60
SETUP_TIMEOUT = 900  # installing the engine, building a base image with debootstrap


def docker(*args: str, timeout: float = DOCKER_TIMEOUT, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=check)


def image_name(suite: str, seeded: bool = False) -> str:
    """The pure base image of a Debian suite, or the one seeded with what every layout installs."""
    return f"{IMAGE_PREFIX}{'-seeded' if seeded else ''}:{suite}"


def base_image(suite: str, seeded: bool = False) -> str:
    """image_name(suite, seeded), with the engine started and the image built if they are not."""
    if docker("info", check=False).returncode != 0:
        subprocess.run([str(PROJECT_DIR / "scripts/docker-engine.sh")], cwd=PROJECT_DIR, check=True,
                       timeout=SETUP_TIMEOUT)
    image = image_name(suite, seeded)
    if docker("image", "inspect", image, check=False).returncode != 0:
        subprocess.run([str(PROJECT_DIR / "scripts/base-image.sh"), suite, *(["seeded"] if seeded else [])],
                       cwd=PROJECT_DIR, check=True, timeout=SETUP_TIMEOUT)
    return image


def systemd_options() -> list[str]:
    """`docker run` options for systemd as PID 1: the scenarios' platform's, less
    the volumes Molecule fills in from the environment."""
    platform = yaml.safe_load((PROJECT_DIR / ".config/molecule/config.yml").read_text())["platforms"][0]
    options = [f"--cap-add={cap}" for cap in platform["capabilities"]]
    options += [f"--security-opt={opt}" for opt in platform["security_opts"]]
    options += [f"--cgroupns={platform['cgroupns_mode']}"]
    options += [f"--tmpfs={path}" for path in platform["tmpfs"]]
    options += [f"--volume={volume}" for volume in platform["volumes"] if "${" not in volume]
    return options
