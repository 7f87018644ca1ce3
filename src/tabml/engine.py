"""The container engine every delivery step drives: the one that answers on this host."""

from __future__ import annotations

import os
import shutil

from tabml import commands
from tabml.io import DataError


def engine() -> str:
    """The container engine: CONTAINER_ENGINE, else docker with a daemon, else podman."""
    if chosen := os.environ.get("CONTAINER_ENGINE"):
        return chosen
    if shutil.which("docker") and commands.run("docker", "info", check=False).returncode == 0:
        return "docker"
    if shutil.which("podman"):
        return "podman"
    # A missing tool is a setting of this host; the container tests skip on it (tests/delivery).
    raise DataError("no container engine: install Docker or podman (see README, Delivery).")
