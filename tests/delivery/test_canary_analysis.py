"""The canary analysis of the local target, with real containers and a real Prometheus.

One copy of the trained pipeline builds its serving image and deploys it to production (no
Prometheus yet: the analysis is skipped, saying so). Then a Prometheus started by the test
scrapes production (track stable) and its candidate port (track canary), labelled as
deploy/prometheus/local.yml labels them, and deploy.prometheus_url points at it. A healthy
release is promoted; a release that answers half its scoring requests with 503 once past its
first requests (TABML_FAULTS=error_ratio=0.5,after=40: its 22-request smoke test passes, the
replayed traffic does not) is rolled back by the analysis, with production still answering
with the previous release. The deploy record holds the queries, values and verdict of each.
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
from testkit import prometheus as prom
from testkit.server import free_port

from tabml import smoke

pytestmark = [pytest.mark.slow, pytest.mark.container]

ROOT = Path(__file__).resolve().parents[2]
CANARY_SECONDS = 12


@dataclass
class Project:
    path: Path
    env: dict[str, str]
    engine: str
    prefix: str
    port: int
    image: str

    def make(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["make", "--no-print-directory", *args],
            cwd=self.path,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )

    def set_deploy(self, **settings) -> None:
        params = yaml.safe_load((self.path / "params.yaml").read_text())
        params["deploy"].update(settings)
        (self.path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    def record(self) -> dict:
        return json.loads((self.path / "build/deploy-production.json").read_text())

    def identity(self) -> dict:
        status, answer = smoke.call(f"http://127.0.0.1:{self.port}", "/identity", {})
        assert status == 200, answer
        return answer

    def serving_image(self) -> str:
        name = f"{self.prefix}-production"
        return subprocess.run(
            [self.engine, "container", "inspect", name, "--format", "{{.Config.Image}}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()


@pytest.fixture(scope="module")
def project(pipeline, bento, engine, tmp_path_factory) -> Iterator[Project]:
    if missing := prom.missing():
        pytest.skip(f"no {', '.join(missing)} (make system-packages installs them)")
    path = tmp_path_factory.mktemp("canary") / "project"
    shutil.copytree(pipeline.path, path, symlinks=True)
    (path / ".venv").symlink_to(ROOT / ".venv")
    prefix = f"tabmlcanary{os.getpid()}"
    port = free_port()
    env = {
        **bento.env,
        "MLFLOW_TRACKING_URI": f"sqlite:///{path / 'mlflow.db'}",
        "SERVICE_IMAGE": f"localhost/{prefix}-service",
        "PIPELINE_IMAGE": f"localhost/{prefix}-pipeline",
        "CONTAINER_ENGINE": engine,
    }
    ready = Project(path, env, engine, prefix, port, "")
    ready.set_deploy(
        container_prefix=prefix,
        ports={"production": port, "staging": free_port()},
        candidate_port_offset=1,
        readiness_seconds=60,
        log_dir=str(tmp_path_factory.mktemp("canary-logs")),
        canary_seconds=CANARY_SECONDS,
        canary_rate=20,
        canary_min_requests=50,
    )
    try:
        done = ready.make("golden", "image")
        assert done.returncode == 0, (done.stdout + done.stderr)[-6000:]
        ready.image = json.loads((path / "build/release.json").read_text())["service"]["image"]
        first = ready.make("deploy", "ENV=production")
        assert first.returncode == 0, first.stderr[-3000:]
        assert "canary analysis skipped: " in first.stdout
        scrape = {"stable": [f"127.0.0.1:{port}"], "canary": [f"127.0.0.1:{port + 1}"]}
        labels = {track: {"env": "production", "track": track} for track in scrape}
        with prom.prometheus(scrape, labels=labels) as server:
            ready.set_deploy(prometheus_url=server.url)
            yield ready
    finally:
        remove_ours(engine, prefix)


def test_a_healthy_canary_is_promoted_and_the_record_holds_the_values(project):
    done = project.make("deploy", "ENV=production")

    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert "deploy record: build/deploy-production.json" in done.stdout
    record = project.record()
    analysis = record["analysis"]
    assert record["outcome"] == "deployed" and analysis["verdict"] == "promote"
    assert analysis["window"] == f"{CANARY_SECONDS}s"
    assert analysis["replayed"] == "the golden records" or "records of" in analysis["replayed"]
    for track in ("canary", "stable"):
        got = analysis["values"][track]
        assert got["requests"] >= 50, analysis
        assert got["error_ratio"] == 0, analysis
        assert 0 < got["p99_seconds"] < 1, analysis
        assert f'track="{track}"' in analysis["queries"]["error_ratio"][track]
        assert analysis["answered"][track] == {"200": 20 * CANARY_SECONDS}
    assert [c["name"] for c in analysis["checks"] if c["passed"]] == [
        "requests",
        "error_ratio",
        "p99_ms",
    ]
    print(f"\ncanary analysis values: {analysis['values']}")


def test_a_canary_answering_5xx_is_rolled_back_and_production_keeps_serving(project, tmp_path):
    before, image_before = project.identity(), project.serving_image()
    faulty = f"localhost/{project.prefix}-service:faulty"
    (tmp_path / "Containerfile").write_text(
        f"FROM {project.image}\nENV TABML_FAULTS=error_ratio=0.5,after=40\n"
    )
    subprocess.run(
        [project.engine, "build", "--network=host", "-t", faulty, str(tmp_path)],
        capture_output=True,
        check=True,
    )

    done = project.make("deploy", "ENV=production", f"IMAGE={faulty}")

    assert done.returncode != 0
    assert "FAIL" not in done.stdout.split("canary analysis:")[0]  # the smoke test passed
    errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1, done.stderr[-3000:]
    assert f"canary analysis rolled back {faulty}: error_ratio: canary " in errors[0]
    assert f"production still serves {image_before}" in errors[0]
    assert project.identity() == before and project.serving_image() == image_before
    record = project.record()
    analysis = record["analysis"]
    assert record["outcome"] == "failed" and analysis["verdict"] == "roll back"
    (errors_check,) = [c for c in analysis["checks"] if c["name"] == "error_ratio"]
    assert not errors_check["passed"] and errors_check["canary"] > 0.2, analysis
    assert errors_check["stable"] == 0 and errors_check["limit"] == pytest.approx(0.01)
    assert analysis["answered"]["canary"].get("503", 0) > 0.2 * 20 * CANARY_SECONDS
    print(f"\nrolled-back canary: {analysis['values']}")
