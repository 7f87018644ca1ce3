"""Fixtures for the delivery tests: a container engine and the base image, or a plain skip."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tabml import release
from tabml.io import DataError

ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = "docker.io/library/python:3.11-slim"
# The act harness lives with the workflow tests.
sys.path.insert(0, str(ROOT / "tests/workflows"))
os.environ.setdefault("CONTAINERS_CONF", str(ROOT / "deploy/podman/containers.conf"))


@pytest.fixture(scope="session")
def engine() -> str:
    """podman or docker, working, with python:3.11-slim present (pulled or built here).

    No engine at all skips the container tests; an engine that cannot start a container as
    deploy does (`--init`) fails them, with the reason.
    """
    try:
        tool = release.engine()
    except DataError as exc:
        pytest.skip(f"container tests skipped: {exc}")
    probe = subprocess.run([tool, "info"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"container tests skipped: `{tool} info` failed: {probe.stderr.strip()}")
    have = [tool, "image", "inspect", BASE_IMAGE]
    if subprocess.run(have, capture_output=True, check=False).returncode != 0:
        pulled = subprocess.run([tool, "pull", BASE_IMAGE], capture_output=True, check=False)
        if pulled.returncode != 0:
            # No registry reachable: build it as `make base-image` does.
            subprocess.run(["make", "--no-print-directory", "base-image"], cwd=ROOT, check=True)
    # Every deployed container runs with --init: a host that cannot is broken, not exempt.
    init = [tool, "run", "--rm", "--init", "--network=host", BASE_IMAGE, "true"]
    started = subprocess.run(init, capture_output=True, text=True, check=False)
    if started.returncode != 0:
        pytest.fail(
            f"`{' '.join(init)}` fails ({started.stderr.strip()}); `make check-tools` says "
            "what to install.",
            pytrace=False,
        )
    return tool
