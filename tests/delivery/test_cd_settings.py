"""What cd.yml's jobs need before they start: the preflight, the registry login, the job layout.

The preflight runs as cd.yml runs it (`make preflight JOB=...`, the system Python and src/), with
a clean environment of the settings each case gives; the workflow checks read cd.yml itself.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tabml import release
from tabml.io import DataError

ROOT = Path(__file__).resolve().parents[2]
CD = ROOT / ".github/workflows/cd.yml"
WHERE = "Settings -> Secrets and variables -> Actions -> Variables"
SERVER = "https://mlflow.example.org"
HOSTED = {"RUNNER_ENVIRONMENT": "github-hosted"}
SELF_HOSTED = {"RUNNER_ENVIRONMENT": "self-hosted"}


def preflight(job: str, settings: dict[str, str], home: Path) -> subprocess.CompletedProcess:
    """`make preflight JOB=job` with only `settings` (and PATH, HOME) in the environment."""
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "PYTHON": sys.executable, **settings}
    return subprocess.run(
        ["make", "--no-print-directory", "-s", "preflight", f"JOB={job}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def errors(done: subprocess.CompletedProcess) -> list[str]:
    return [line for line in done.stderr.splitlines() if line.startswith("ERROR: ")]


# fmt: off
MISSING = [
    # Nothing set at all, on GitHub's runners: tracking server, and the local target's host.
    ("build", HOSTED, ["MLFLOW_TRACKING_URI", "DEPLOY_RUNS_ON"]),
    ("staging", HOSTED, ["MLFLOW_TRACKING_URI", "DEPLOY_RUNS_ON"]),
    ("production", HOSTED, ["MLFLOW_TRACKING_URI", "DEPLOY_RUNS_ON"]),
    # A local SQLite store dies with a hosted runner.
    ("staging", {**HOSTED, "MLFLOW_TRACKING_URI": "sqlite:///mlflow.db"}, [
        "MLFLOW_TRACKING_URI", "DEPLOY_RUNS_ON"]),
    # k8s: the cluster pulls from a registry; the deploy jobs need a kubectl context.
    ("build", {**HOSTED, "MLFLOW_TRACKING_URI": SERVER, "DEPLOY_TARGET": "k8s"}, ["REGISTRY"]),
    ("staging", {**HOSTED, "MLFLOW_TRACKING_URI": SERVER, "DEPLOY_TARGET": "k8s"}, [
        "REGISTRY", "KUBECONFIG"]),
    # A registry other than ghcr.io must say how to log in, and that way's settings.
    ("build", {**HOSTED, "MLFLOW_TRACKING_URI": SERVER, "DEPLOY_TARGET": "k8s",
               "REGISTRY": "123.dkr.ecr.eu-west-1.amazonaws.com/tabml"}, ["REGISTRY_AUTH"]),
    ("build", {**HOSTED, "MLFLOW_TRACKING_URI": SERVER, "DEPLOY_TARGET": "k8s",
               "REGISTRY": "123.dkr.ecr.eu-west-1.amazonaws.com/tabml",
               "REGISTRY_AUTH": "aws"}, ["AWS_ROLE_ARN", "AWS_REGION"]),
    ("build", {**HOSTED, "MLFLOW_TRACKING_URI": SERVER, "DEPLOY_TARGET": "k8s",
               "REGISTRY": "europe-docker.pkg.dev/p/r", "REGISTRY_AUTH": "gcp"},
     ["GCP_WORKLOAD_IDENTITY_PROVIDER", "GCP_SERVICE_ACCOUNT"]),
    ("build", {**SELF_HOSTED, "MLFLOW_TRACKING_URI": SERVER,
               "REGISTRY": "registry.internal/tabml", "REGISTRY_AUTH": "password"},
     ["REGISTRY_USER", "REGISTRY_TOKEN"]),
    ("build", {**HOSTED, "MLFLOW_TRACKING_URI": SERVER, "DEPLOY_TARGET": "k8s",
               "REGISTRY": "quay.io/tabml", "REGISTRY_AUTH": "github"}, ["REGISTRY_AUTH"]),
    ("build", {**SELF_HOSTED, "MLFLOW_TRACKING_URI": SERVER, "DEPLOY_TARGET": "cloud"},
     ["DEPLOY_TARGET"]),
]
# fmt: on


@pytest.mark.parametrize(("job", "settings", "missing"), MISSING)
def test_preflight_names_each_missing_setting_on_one_line(job, settings, missing, tmp_path):
    done = preflight(job, settings, tmp_path)
    assert done.returncode != 0, done.stdout
    lines = errors(done)
    assert [line.split()[1] for line in lines] == missing, done.stderr
    for line in lines:
        assert "Settings -> " in line or "runner's environment" in line, line
    assert "Traceback" not in done.stderr


# fmt: off
PRESENT = [
    # local on one self-hosted runner: no registry needed, a local store outlives the job.
    ("build", {**SELF_HOSTED, "MLFLOW_TRACKING_URI": "sqlite:////srv/mlflow/mlflow.db"}),
    ("staging", {**SELF_HOSTED, "MLFLOW_TRACKING_URI": SERVER}),
    # ghcr.io logs in with the job's GITHUB_TOKEN: nothing more to set.
    ("build", {**HOSTED, "MLFLOW_TRACKING_URI": SERVER, "DEPLOY_TARGET": "k8s",
               "REGISTRY": "ghcr.io/tabml"}),
    ("build", {**HOSTED, "MLFLOW_TRACKING_URI": SERVER, "DEPLOY_TARGET": "k8s",
               "REGISTRY": "123.dkr.ecr.eu-west-1.amazonaws.com/tabml", "REGISTRY_AUTH": "aws",
               "AWS_ROLE_ARN": "arn:aws:iam::123:role/push", "AWS_REGION": "eu-west-1"}),
    ("production", {**SELF_HOSTED, "MLFLOW_TRACKING_URI": SERVER, "DEPLOY_TARGET": "k8s",
                    "REGISTRY": "ghcr.io/tabml", "KUBECONFIG": "/etc/kube/config"}),
    # Under act (no RUNNER_ENVIRONMENT) as test_cd.py runs it: params.yaml's target, local.
    ("build", {"MLFLOW_TRACKING_URI": "http://127.0.0.1:5000"}),
]
# fmt: on


@pytest.mark.parametrize(("job", "settings"), PRESENT)
def test_preflight_passes_with_the_settings_present(job, settings, tmp_path):
    done = preflight(job, settings, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"preflight {job}: target "), done.stdout
    assert not errors(done)


def test_a_kubeconfig_in_the_home_directory_is_a_cluster_context(tmp_path):
    settings = {**SELF_HOSTED, "MLFLOW_TRACKING_URI": SERVER, "DEPLOY_TARGET": "k8s"}
    settings["REGISTRY"] = "ghcr.io/tabml"
    assert "KUBECONFIG" in preflight("staging", settings, tmp_path).stderr
    (tmp_path / ".kube").mkdir()
    (tmp_path / ".kube/config").write_text("apiVersion: v1\n")
    assert preflight("staging", settings, tmp_path).returncode == 0


# --- the registry login: the token goes through standard input, never the command line -----


@pytest.fixture
def fake_engine(tmp_path, monkeypatch) -> Path:
    """An engine that records its arguments and standard input."""
    record = tmp_path / "calls"
    script = tmp_path / "engine"
    script.write_text(f'#!/bin/sh\necho "$@" >> {record}\ncat >> {record}\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("CONTAINER_ENGINE", str(script))
    return record


def test_github_login_sends_the_token_on_stdin(fake_engine, monkeypatch):
    monkeypatch.setenv("GITHUB_ACTOR", "octocat")
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_secret_value")
    assert "ghcr.io" in release.login("ghcr.io/tabml", "github")
    argv, stdin = fake_engine.read_text().splitlines()
    assert argv == "login ghcr.io --username octocat --password-stdin"
    assert stdin == "ghs_secret_value"


def test_gcp_login_uses_the_access_token_of_the_auth_step(fake_engine, monkeypatch):
    monkeypatch.setenv("GCP_ACCESS_TOKEN", "ya29.token")
    release.login("europe-docker.pkg.dev/p/r", "gcp")
    argv, stdin = fake_engine.read_text().splitlines()
    assert argv == "login europe-docker.pkg.dev --username oauth2accesstoken --password-stdin"
    assert stdin == "ya29.token"


def test_a_missing_token_is_one_line_naming_it(fake_engine, monkeypatch):
    monkeypatch.delenv("REGISTRY_TOKEN", raising=False)
    monkeypatch.setenv("REGISTRY_USER", "ci")
    with pytest.raises(DataError, match=r"^REGISTRY_TOKEN is empty: REGISTRY_AUTH=password"):
        release.login("registry.internal/tabml", "password")
    assert not fake_engine.exists()


# --- cd.yml: preflight first, one push job, ordered, main only ------------------------------


@pytest.fixture(scope="module")
def cd() -> dict:
    return yaml.safe_load(CD.read_text(encoding="utf-8"))


def test_each_job_runs_its_preflight_before_anything_else(cd):
    for name, job in cd["jobs"].items():
        runs = [step["run"].strip() for step in job["steps"] if "run" in step]
        assert runs[0] == f"make preflight JOB={name}", name


def test_only_the_pushing_job_may_write_packages_and_request_oidc_tokens(cd):
    for name, job in cd["jobs"].items():
        grants = job["permissions"]
        pushes = any(step.get("run") == "make push" for step in job["steps"])
        assert (grants.get("packages") == "write") == pushes, name
        # Only the cloud registry logins use an OIDC token, and they sit in the pushing job.
        clouds = ("aws-actions/", "google-github-actions/")
        oidc = any(step.get("uses", "").startswith(clouds) for step in job["steps"])
        assert (grants.get("id-token") == "write") == oidc, name
    assert sum(job["permissions"].get("packages") == "write" for job in cd["jobs"].values()) == 1


def test_one_ordered_never_cancelled_group_and_deploys_only_from_main(cd):
    assert cd["concurrency"]["cancel-in-progress"] is False
    assert "github.ref" not in cd["concurrency"]["group"]  # every branch shares the one group
    for name, job in cd["jobs"].items():
        assert "concurrency" not in job, f"{name}: a job group lets an older run deploy last"
    for name in ("staging", "production"):
        assert cd["jobs"][name]["if"] == "${{ github.ref == 'refs/heads/main' }}", name
        assert cd["jobs"][name]["environment"] == name


def test_the_login_runs_before_the_push_and_only_with_a_registry(cd):
    steps = cd["jobs"]["build"]["steps"]
    runs = [step.get("run") for step in steps]
    assert runs.index("make registry-login") < runs.index("make push")
    login = steps[runs.index("make registry-login")]
    assert login["if"] == "${{ vars.REGISTRY != '' }}"
    assert login["env"]["GITHUB_TOKEN"] == "${{ github.token }}"
    for step in steps:
        if "uses" in step and ("aws-actions" in step["uses"] or "google-github" in step["uses"]):
            assert "vars.REGISTRY_AUTH ==" in step["if"], step["name"]
