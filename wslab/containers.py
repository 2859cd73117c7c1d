"""Containers that tests start for themselves, from what the project's scripts
provide: the Docker engine (scripts/docker-engine.sh), the base images
(scripts/base-image.sh), and `docker run` options for systemd as PID 1 taken
from the scenarios' own platform (.config/molecule/config.yml), so that a
test's container and a scenario's start alike. The scenario runner
(wslab.scenarios) starts and removes most scenarios' containers with the same
platform, as Molecule's create and destroy steps would.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Mapping
from typing import Any

import yaml
from molecule.interpolation import Interpolator, TemplateWithDefaults

from wslab.layout import PROJECT_DIR

# The pure base images' name; "-seeded" after it names the seeded ones.
IMAGE_PREFIX = os.environ.get("WSLAB_IMAGE_PREFIX", "wslab/debian-systemd")
MOLECULE_CONFIG = PROJECT_DIR / ".config" / "molecule" / "config.yml"

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
    platform = yaml.safe_load(MOLECULE_CONFIG.read_text())["platforms"][0]
    options = [option for key in _SYSTEMD_KEYS for option in _RUN_OPTIONS[key](platform[key])]
    return options + _RUN_OPTIONS["volumes"]([volume for volume in platform["volumes"] if "${" not in volume])


def scenario_platform(scenario: str, env: Mapping[str, str]) -> dict[str, Any]:
    """The scenarios' platform (MOLECULE_CONFIG) for SCENARIO, its ${VARIABLES}
    filled from ENV as Molecule fills them."""
    mapping = {**env, "MOLECULE_SCENARIO_NAME": scenario, "MOLECULE_PROJECT_DIRECTORY": str(PROJECT_DIR)}
    text = Interpolator(TemplateWithDefaults, mapping).interpolate(MOLECULE_CONFIG.read_text())
    return yaml.safe_load(text)["platforms"][0]


# The platform's keys, each as `docker run` takes it; molecule/shared/create.yml
# hands the same keys to community.docker.docker_container (a test compares).
_RUN_OPTIONS = {
    "hostname": lambda value: [f"--hostname={value}"],
    "capabilities": lambda values: [f"--cap-add={value}" for value in values],
    "security_opts": lambda values: [f"--security-opt={value}" for value in values],
    "cgroupns_mode": lambda value: [f"--cgroupns={value}"],
    "tmpfs": lambda values: [f"--tmpfs={value}" for value in values],
    "volumes": lambda values: [f"--volume={value}" for value in values],
    "published_ports": lambda values: [f"--publish={value}" for value in values],
    "env": lambda values: [f"--env={key}={value}" for key, value in values.items()],
}
# The keys that let systemd run as PID 1 (systemd_options).
_SYSTEMD_KEYS = ("capabilities", "security_opts", "cgroupns_mode", "tmpfs")
# Keys for Molecule alone: the image is prebuilt, the groups are the inventory's.
_MOLECULE_ONLY = {"name", "image", "command", "pre_build_image", "groups"}


def platform_run_args(platform: Mapping[str, Any]) -> list[str]:
    """`docker run` arguments that start PLATFORM's container as Molecule's
    create step (molecule/shared/create.yml) starts it."""
    unknown = set(platform) - set(_RUN_OPTIONS) - _MOLECULE_ONLY
    if unknown:
        raise ValueError(f"platform keys without a docker run option here: {sorted(unknown)}")
    args = ["--detach", f"--name={platform['name']}", "--label=owner=molecule"]
    if "hostname" not in platform:
        args.append(f"--hostname={platform['name']}")
    for key, value in platform.items():
        if key in _RUN_OPTIONS:
            args += _RUN_OPTIONS[key](value)
    return [*args, platform["image"], *shlex.split(platform["command"])]


def start_platform(platform: Mapping[str, Any]) -> str:
    """Start PLATFORM's container, replacing one left by an earlier run; its name."""
    remove_platform(platform)
    docker("run", *platform_run_args(platform))
    return platform["name"]


def remove_platform(platform: Mapping[str, Any]) -> None:
    """Remove PLATFORM's container and its anonymous volumes, if there is one
    (molecule/shared/destroy.yml); `docker rm --force` of no container succeeds."""
    docker("rm", "--force", "--volumes", platform["name"])
