"""A host whose podman cannot start containers with --init is told so before anything moves.

podman's `--init` needs catatonit, which podman only recommends: on a host installed with
`--no-install-recommends` every deploy would fail with podman's own message. Pointing podman's
`init_path` at a file that does not exist reproduces that host exactly.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.container]

ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = "docker.io/library/python:3.11-slim"


@pytest.fixture
def no_init(engine: str, tmp_path: Path) -> dict[str, str]:
    """The environment of a host whose podman has no init binary."""
    if engine != "podman":
        pytest.skip("the missing init binary is podman's case; Docker ships docker-init")
    conf = (ROOT / "deploy/podman/containers.conf").read_text(encoding="utf-8")
    missing = tmp_path / "absent-init"
    conf = conf.replace("[containers]\n", f'[containers]\ninit_path = "{missing}"\n', 1)
    (tmp_path / "containers.conf").write_text(conf, encoding="utf-8")
    return {**os.environ, "CONTAINERS_CONF": str(tmp_path / "containers.conf")}


def containers(engine: str, prefix: str = "tabml-staging") -> list[str]:
    """The containers of the staging deploy (others may come and go on a shared engine)."""
    listed = [engine, "ps", "-a", "--format", "{{.Names}}"]
    names = subprocess.run(listed, capture_output=True, text=True, check=True).stdout.split()
    return sorted(name for name in names if name.startswith(prefix))


def make(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    cmd = ["make", "--no-print-directory", *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)


def test_deploy_names_the_missing_package_in_one_line_and_touches_no_container(
    engine, no_init, tmp_path
):
    (tmp_path / "golden.json").write_text(json.dumps({}), encoding="utf-8")
    before = containers(engine)
    done = make("deploy", "ENV=staging", f"IMAGE={BASE_IMAGE}", f"BUILD={tmp_path}", env=no_init)
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1, done.stderr
    assert "install catatonit" in errors[0], errors[0]
    assert "Traceback" not in done.stderr
    assert containers(engine) == before


def test_check_tools_names_the_missing_package(no_init):
    done = make("check-tools", env=no_init)
    assert done.returncode != 0
    missing = [line for line in done.stderr.splitlines() if line.startswith("MISSING")]
    assert len(missing) == 1 and "install catatonit" in missing[0], done.stderr


def test_check_tools_passes_with_a_working_engine(engine):
    done = make("check-tools", env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    assert f"{engine} (with --init)" in done.stdout
