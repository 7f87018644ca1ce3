"""The local release rehearsal and the broken-release drill, with real images and containers.

One copy of the trained pipeline goes through what the merge workflow runs (`make release`:
track, register, golden requests, both images, staging, smoke, production, smoke, aliases),
with its own image names, container names and ports. Then a deliberately broken image is
released to production: production must keep serving the old release and the alias must not
move. Needs podman or Docker; without one the tests are skipped and say so.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from containers import remove_ours
from mlflow.tracking import MlflowClient
from testkit.server import free_port

from tabml import smoke
from tabml.io import file_md5

pytestmark = [pytest.mark.slow, pytest.mark.container]

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Rehearsal:
    path: Path
    env: dict[str, str]
    engine: str
    prefix: str
    ports: dict[str, int]
    output: str

    def make(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["make", "--no-print-directory", *args],
            cwd=self.path,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )

    def identity(self, env: str) -> dict:
        status, answer = smoke.call(f"http://127.0.0.1:{self.ports[env]}", "/identity", {})
        assert status == 200, answer
        return answer

    def inspect(self, image: str) -> dict:
        out = subprocess.run(
            [self.engine, "image", "inspect", image], capture_output=True, text=True, check=True
        ).stdout
        return json.loads(out)[0]


@pytest.fixture(scope="module")
def rehearsal(pipeline, bento, engine, tmp_path_factory) -> Iterator[Rehearsal]:
    tool = engine
    path = tmp_path_factory.mktemp("release") / "project"
    shutil.copytree(pipeline.path, path, symlinks=True)
    (path / ".venv").symlink_to(ROOT / ".venv")
    prefix = f"tabmltest{os.getpid()}"
    ports = {"production": free_port(), "staging": free_port()}
    params = yaml.safe_load((path / "params.yaml").read_text())
    params["deploy"].update(
        container_prefix=prefix,
        ports=ports,
        candidate_port_offset=1,
        readiness_seconds=30,
        log_dir=str(tmp_path_factory.mktemp("logs")),
    )
    (path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    subprocess.run(["git", "commit", "-qam", "release settings"], cwd=path, check=True)
    env = {
        **bento.env,
        "MLFLOW_TRACKING_URI": f"sqlite:///{path / 'mlflow.db'}",
        "SERVICE_IMAGE": f"localhost/{prefix}-service",
        "PIPELINE_IMAGE": f"localhost/{prefix}-pipeline",
        "CONTAINER_ENGINE": tool,
    }
    done = subprocess.run(
        ["make", "--no-print-directory", "release"],
        cwd=path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    output = done.stdout + done.stderr
    try:
        assert done.returncode == 0, output[-6000:]
        yield Rehearsal(path, env, tool, prefix, ports, output)
    finally:
        remove_ours(tool, prefix)


def test_rehearsal_ships_the_merged_model_to_both_environments(rehearsal):
    md5 = file_md5(rehearsal.path / "models/model.joblib")
    for env in ("staging", "production"):
        assert rehearsal.identity(env)["model_version"] == md5
        assert f"{env} serves localhost/{rehearsal.prefix}-service:" in rehearsal.output
    assert rehearsal.output.count("FAIL") == 0
    client = MlflowClient(rehearsal.env["MLFLOW_TRACKING_URI"])
    aliases = client.get_registered_model("tabml").aliases
    assert aliases == {"staging": aliases["production"], "production": aliases["production"]}
    version = client.get_model_version("tabml", aliases["production"])
    assert version.tags["model_md5"] == md5


def test_images_carry_the_lineage(rehearsal):
    built = json.loads((rehearsal.path / "build/release.json").read_text())
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=rehearsal.path, capture_output=True, text=True
    ).stdout.strip()
    lock = yaml.safe_load((rehearsal.path / "dvc.lock").read_text())
    source_md5 = lock["stages"]["ingest"]["deps"][0]["md5"]
    md5 = file_md5(rehearsal.path / "models/model.joblib")
    version = (rehearsal.path / "build/model-version").read_text().strip()
    for name in ("service", "pipeline"):
        config = rehearsal.inspect(built[name]["image"])["Config"]
        labels = config["Labels"]
        assert labels["org.opencontainers.image.revision"] == commit, name
        assert labels["io.tabml.model.md5"] == md5, name
        assert labels["io.tabml.model.version"] == version, name
        assert labels["io.tabml.data.md5"] == source_md5, name
        assert config.get("User") not in (None, "", "0", "root"), f"{name} runs as root"
    # The serving image is tagged with the bento's exact version, never `latest`.
    assert built["service"]["image"].endswith(":" + built["bento"].partition(":")[2])
    sizes = {name: built[name]["size_mb"] for name in ("service", "pipeline")}
    seconds = {name: built[name]["build_seconds"] for name in ("service", "pipeline")}
    print(f"\nimage sizes (MB): {sizes}; build seconds: {seconds}")


def test_a_broken_release_never_takes_production_traffic(rehearsal, tmp_path):
    before = rehearsal.identity("production")
    client = MlflowClient(rehearsal.env["MLFLOW_TRACKING_URI"])
    aliases_before = client.get_registered_model("tabml").aliases
    good = json.loads((rehearsal.path / "build/release.json").read_text())["service"]["image"]
    broken = f"localhost/{rehearsal.prefix}-service:never-ready"
    (tmp_path / "Containerfile").write_text(
        f'FROM {good}\nENTRYPOINT ["python3", "-c", "import time; time.sleep(3600)"]\n'
    )
    subprocess.run(
        [rehearsal.engine, "build", "--network=host", "-t", broken, str(tmp_path)],
        capture_output=True,
        check=True,
    )

    done = rehearsal.make("deploy", "promote", "ENV=production", f"IMAGE={broken}")

    assert done.returncode != 0
    assert "failed its smoke test as a candidate (ready" in done.stderr, done.stderr[-3000:]
    assert f"production still serves {good}" in done.stderr
    assert "alias production" not in done.stdout + done.stderr  # promote never ran
    assert rehearsal.identity("production") == before
    assert client.get_registered_model("tabml").aliases == aliases_before
    gold = json.loads((rehearsal.path / "build/golden.json").read_text())
    url = f"http://127.0.0.1:{rehearsal.ports['production']}"
    assert not [o.check for o in smoke.check(url, gold, 250, 10) if not o.passed]


def test_rollback_restores_the_previous_container_and_alias(rehearsal, monkeypatch):
    # MLflow resolves a new version's source through the default store: make it this one.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", rehearsal.env["MLFLOW_TRACKING_URI"])
    client = MlflowClient(rehearsal.env["MLFLOW_TRACKING_URI"])
    first = client.get_registered_model("tabml").aliases["production"]
    # The next release: the image deployed again, and a second model version promoted.
    assert rehearsal.make("deploy", "ENV=production").returncode == 0
    source = client.get_model_version("tabml", first)
    second = str(client.create_model_version("tabml", source.source, run_id=source.run_id).version)
    version_file = rehearsal.path / "build/model-version"
    version_file.write_text(second)
    assert rehearsal.make("promote", "ENV=production").returncode == 0
    assert client.get_registered_model("tabml").aliases["production-previous"] == int(first)

    def container_id(name: str) -> str:
        done = subprocess.run(
            [rehearsal.engine, "container", "inspect", name, "--format", "{{.Id}}"],
            capture_output=True,
            text=True,
            check=False,
        )
        return done.stdout.strip()

    previous = container_id(f"{rehearsal.prefix}-production-previous")
    assert previous
    done = rehearsal.make("rollback", "ENV=production")

    assert done.returncode == 0, done.stderr[-3000:]
    assert container_id(f"{rehearsal.prefix}-production") == previous
    assert container_id(f"{rehearsal.prefix}-production-previous") == ""
    aliases = client.get_registered_model("tabml").aliases
    assert str(aliases["production"]) == str(first) and "production-previous" not in aliases
    md5 = file_md5(rehearsal.path / "models/model.joblib")
    assert rehearsal.identity("production")["model_version"] == md5
