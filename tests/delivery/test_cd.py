"""The merge workflow (cd.yml) under `act`: build, staging and production.

With TABML_ACT_RUNNER=host (`make test-host`) the jobs run on this machine (act's self-hosted
mode); by default as follows.

A throw-away repository plays GitHub (see tests/workflows/harness.py) and its jobs run in the
ubuntu-24.04 stand-in image; a real `mlflow server` plays the shared tracking server (repository
variable MLFLOW_TRACKING_URI); the deploy target is `local`, with this test's own container
names, image names and ports. `build` runs in the runner image and builds the images with the
image's Docker client, through the podman socket act mounts at /var/run/docker.sock, into the
runner world's podman store. `staging` and `production` run on a self-hosted runner (this
machine, DEPLOY_RUNS_ON), with podman on the same store: through podman's Docker-compatible
API a `docker run` that names no open-files limit gets one this kernel refuses, and deploying
to the `local` target means running the service on the machine that hosts it anyway.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from containers import remove_ours
from harness import ActRepo, ActRun, push_event
from mlflow.tracking import MlflowClient
from runner_image import Runner, act_in_image, copy_image, runner_or_fail, storage_conf
from testkit.server import free_port

from tabml import smoke

# The three jobs in containers take about 9 minutes alone here, more on busy cores.
pytestmark = [pytest.mark.slow, pytest.mark.container, pytest.mark.timeout(2400)]

ROOT = Path(__file__).resolve().parents[2]
MODEL_NAME = "tabml-cd"
BASE_IMAGE = "docker.io/library/python:3.11-slim"  # what the Dockerfiles start from


@dataclass
class Delivery:
    repo: ActRepo
    run: ActRun
    tracking_uri: str
    ports: dict[str, int]


@pytest.fixture(scope="module")
def runner(engine, tmp_path_factory) -> Iterator[Runner]:
    """The runner-like image and its engine socket (tests/workflows/runner_image.py)."""
    with runner_or_fail(tmp_path_factory.mktemp("cd-runner")) as ready:
        yield ready


@pytest.fixture(scope="module")
def delivery(engine, mlflow_server, tmp_path_factory, request) -> Iterator[Delivery]:
    runner = request.getfixturevalue("runner") if act_in_image() else None
    repo = ActRepo(ROOT, tmp_path_factory.mktemp("cd"), runner)
    prefix = f"tabmlcd{os.getpid()}"
    ports = {"production": free_port(), "staging": free_port()}
    params_file = repo.path / "params.yaml"
    params = yaml.safe_load(params_file.read_text())
    logs = tmp_path_factory.mktemp("cd-logs")
    params["deploy"].update(
        container_prefix=prefix,
        ports=ports,
        candidate_port_offset=1,
        log_dir=str(logs),
    )
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    head = repo.commit("Deploy settings of this test")
    settings = {
        "SERVICE_IMAGE": f"localhost/{prefix}-service",
        "PIPELINE_IMAGE": f"localhost/{prefix}-pipeline",
        "BENTOML_HOME": str(tmp_path_factory.mktemp("cd-bentoml")),
        "MLFLOW_REGISTERED_MODEL_NAME": MODEL_NAME,
        "MLFLOW_EXPERIMENT_NAME": "cd",
    }
    extra = ["--var", f"MLFLOW_TRACKING_URI={mlflow_server}"]
    saved = os.environ.get("CONTAINERS_STORAGE_CONF")
    if runner:
        settings |= {
            # No engine named: in the container `docker info` answers through the mounted
            # socket (DOCKER_HOST empty means that socket); on this machine it does not, so
            # podman is used.
            "DOCKER_HOST": "",
            # The classic builder: podman builds the Dockerfile (BuildKit is not on its API).
            "DOCKER_BUILDKIT": "0",
        }
        extra += ["--var", "DEPLOY_RUNS_ON=tabml-deploy"]
        extra += ["--platform", "tabml-deploy=-self-hosted"]
        # The jobs' engine is the runner world's podman store: it needs the base image, and
        # this module's own podman commands (cleaning up) must look there too.
        copy_image(BASE_IMAGE)
        os.environ["CONTAINERS_STORAGE_CONF"] = str(storage_conf())
    else:
        settings["CONTAINER_ENGINE"] = engine
    for name, value in settings.items():
        extra += ["--env", f"{name}={value}"]
    try:
        run = repo.act("push", push_event("0" * 40, head), "cd.yml", "production", extra=extra)
        yield Delivery(repo, run, mlflow_server, ports)
    finally:
        remove_ours(engine, prefix)
        if saved is None:
            os.environ.pop("CONTAINERS_STORAGE_CONF", None)
        else:
            os.environ["CONTAINERS_STORAGE_CONF"] = saved


def test_merge_ships_through_staging_to_production(delivery):
    run = delivery.run
    assert run.returncode == 0, run.output[-6000:]
    assert [run.job_result(job) for job in ("build", "staging", "production")] == ["success"] * 3
    print(f"\ncd.yml under act: {run.seconds:.0f} s")


def test_aliases_follow_the_rollout_and_lead_back_to_the_commit(delivery):
    client = MlflowClient(delivery.tracking_uri)
    aliases = client.get_registered_model(MODEL_NAME).aliases
    assert set(aliases) == {"staging", "production"}
    assert aliases["staging"] == aliases["production"]
    version = client.get_model_version(MODEL_NAME, aliases["production"])
    assert version.tags["git_commit"] == delivery.repo.sha()
    assert (
        client.get_run(version.tags["run_id"]).data.tags["model_md5"] == version.tags["model_md5"]
    )
    for env, port in delivery.ports.items():
        status, identity = smoke.call(f"http://127.0.0.1:{port}", "/identity", {})
        assert status == 200, (env, identity)
        assert identity["model_version"] == version.tags["model_md5"], env
        assert identity["git_commit"] == delivery.repo.sha(), env


def test_the_alias_moves_only_after_the_smoke_test(delivery):
    for env in ("staging", "production"):
        log = delivery.run.job_log(env)
        smoke_passed = log.index(f"{env} serves ")
        moved = log.index(f"alias {env}: None -> ")
        assert smoke_passed < moved, env


def test_the_release_artifact_holds_what_was_shipped(delivery):
    built = delivery.run.artifact("release")
    release = json.loads((built / "release.json").read_text())
    golden = json.loads((built / "golden.json").read_text())
    assert release["labels"]["io.tabml.model.md5"] == golden["model_md5"]
    assert (built / "model-version").read_text().strip() == release["labels"][
        "io.tabml.model.version"
    ]
    for name in ("service", "pipeline"):
        sbom = json.loads((built / f"sbom/{name}.cdx.json").read_text())
        components = {c["name"].lower() for c in sbom["components"]}
        assert {"scikit-learn", "pandas"} <= components, name
