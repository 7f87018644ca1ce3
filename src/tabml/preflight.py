"""`make preflight JOB=build|staging|production`: the settings a job of cd.yml needs, up front.

    python -m tabml.preflight --job build|staging|production [--params params.yaml]

Prints one line per missing or unusable setting, naming it and where to set it, and exits 1;
otherwise prints what the job will use. It runs before `make setup`, so it imports nothing but
the standard library. Which settings a job needs depends on the deploy target (docs/delivery.md):

- every job: MLFLOW_TRACKING_URI, a server all jobs share (a local store only on a self-hosted
  runner, where it outlives the job);
- `local`: every job on one self-hosted runner (DEPLOY_RUNS_ON); the deploy jobs find the images
  the build job built there, so REGISTRY is optional;
- `k8s`: REGISTRY, where the cluster pulls the image from, and a way to log in to it
  (REGISTRY_AUTH); the deploy jobs need Kubernetes credentials on their runner.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

JOBS = ("build", "staging", "production")
TARGETS = ("local", "k8s")
VARIABLES = "Settings -> Secrets and variables -> Actions -> Variables"
# No secret reaches the workflows: a user and token live on a self-hosted runner, if anywhere.
RUNNER_ENV = "the self-hosted runner's environment, its .env file"
SHARED_STORES = ("http://", "https://", "databricks")
# How the build job logs in to REGISTRY, and the settings each way needs: (name, where).
AUTH_SETTINGS: dict[str, list[tuple[str, str]]] = {
    "github": [],  # the job's GITHUB_TOKEN, granted `packages: write`
    "aws": [("AWS_ROLE_ARN", VARIABLES), ("AWS_REGION", VARIABLES)],
    "gcp": [("GCP_WORKLOAD_IDENTITY_PROVIDER", VARIABLES), ("GCP_SERVICE_ACCOUNT", VARIABLES)],
    "password": [("REGISTRY_USER", RUNNER_ENV), ("REGISTRY_TOKEN", RUNNER_ENV)],
    "none": [],  # the runner is logged in already, or the registry is open
}
EXIT_MISSING = 1


def default_target(params: Path) -> str:
    """`deploy.target` of params.yaml, read without PyYAML (no environment exists yet)."""
    in_deploy = False
    for line in params.read_text(encoding="utf-8").splitlines():
        if re.match(r"^\S", line):
            in_deploy = line.startswith("deploy:")
        elif in_deploy and (found := re.match(r"^\s+target:\s*([\w-]+)", line)):
            return found.group(1)
    return "local"


def registry_host(registry: str) -> str:
    return registry.split("/")[0].lower()


def default_auth(registry: str) -> str:
    """GITHUB_TOKEN for ghcr.io; any other registry says how (REGISTRY_AUTH)."""
    return "github" if registry_host(registry) == "ghcr.io" else ""


def tracking_problems(env: Mapping[str, str], hosted: bool) -> list[str]:
    uri = env.get("MLFLOW_TRACKING_URI", "").strip()
    if not uri:
        return [
            "MLFLOW_TRACKING_URI is not set: set it to the shared MLflow tracking server "
            f"({VARIABLES}); without it each job registers into its own empty SQLite file."
        ]
    if hosted and not uri.startswith(SHARED_STORES):
        return [
            f"MLFLOW_TRACKING_URI is '{uri}', a local store that a GitHub-hosted runner deletes "
            f"when the job ends: set it to the shared tracking server's http(s) URL ({VARIABLES})."
        ]
    return []


def registry_problems(env: Mapping[str, str], target: str) -> list[str]:
    registry = env.get("REGISTRY", "").strip()
    if not registry:
        if target == "k8s":
            return [
                "REGISTRY is not set: DEPLOY_TARGET=k8s pulls the serving image from a registry; "
                f"set REGISTRY, for example ghcr.io/<owner> ({VARIABLES})."
            ]
        return []
    auth = env.get("REGISTRY_AUTH", "").strip() or default_auth(registry)
    if not auth:
        return [
            f"REGISTRY_AUTH is not set: say how the build job logs in to {registry_host(registry)}"
            f" ({', '.join(AUTH_SETTINGS)}) ({VARIABLES})."
        ]
    if auth not in AUTH_SETTINGS:
        return [f"REGISTRY_AUTH is '{auth}': set it to one of {', '.join(AUTH_SETTINGS)} "
                f"({VARIABLES})."]  # fmt: skip
    if auth == "github" and registry_host(registry) != "ghcr.io":
        return [
            f"REGISTRY_AUTH is github, but REGISTRY is {registry}: the job's GITHUB_TOKEN logs in "
            f"to ghcr.io only; set REGISTRY to ghcr.io/<owner> or choose another REGISTRY_AUTH "
            f"({VARIABLES})."
        ]
    return [
        f"{name} is not set: REGISTRY_AUTH={auth} needs it ({where})."
        for name, where in AUTH_SETTINGS[auth]
        if not env.get(name, "").strip()
    ]


def cluster_problems(env: Mapping[str, str], home: Path) -> list[str]:
    if env.get("KUBECONFIG", "").strip() or (home / ".kube/config").exists():
        return []
    return [
        "KUBECONFIG is not set and ~/.kube/config does not exist: DEPLOY_TARGET=k8s applies to "
        "the runner's kubectl context; run the deploy jobs on a self-hosted runner that has one "
        f"(DEPLOY_RUNS_ON, {VARIABLES}) or set KUBECONFIG in its environment."
    ]


def problems(job: str, env: Mapping[str, str], target_default: str, home: Path) -> list[str]:
    """One line per setting that `job` lacks, naming it and where to set it."""
    target = env.get("DEPLOY_TARGET", "").strip() or target_default
    if target not in TARGETS:
        return [f"DEPLOY_TARGET is '{target}': set it to local or k8s ({VARIABLES})."]
    # RUNNER_ENVIRONMENT is github-hosted or self-hosted on GitHub; a runner that does not set
    # it (act, a developer's shell) is a machine that outlives the job.
    hosted = env.get("RUNNER_ENVIRONMENT", "") == "github-hosted"
    found = tracking_problems(env, hosted)
    if target == "local" and hosted:
        found.append(
            "DEPLOY_RUNS_ON is not set: DEPLOY_TARGET=local runs the service on the runner "
            "itself, and a GitHub-hosted runner is deleted after the job; set DEPLOY_RUNS_ON to "
            f"the label of one self-hosted runner, or DEPLOY_TARGET=k8s ({VARIABLES})."
        )
    if job == "build":
        found += registry_problems(env, target)
    elif target == "k8s":
        if not env.get("REGISTRY", "").strip():
            found += registry_problems(env, target)
        found += cluster_problems(env, home)
    return found


def summary(job: str, env: Mapping[str, str], target_default: str) -> str:
    target = env.get("DEPLOY_TARGET", "").strip() or target_default
    registry = env.get("REGISTRY", "").strip()
    auth = (env.get("REGISTRY_AUTH", "").strip() or default_auth(registry)) if registry else ""
    where = f"{registry} (login: {auth})" if registry else "none, images stay on this runner"
    return (
        f"preflight {job}: target {target}, registry {where}, "
        f"tracking {env.get('MLFLOW_TRACKING_URI', '').strip()}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("--job", required=True, choices=JOBS)
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args(argv)
    target_default = default_target(Path(args.params))
    found = problems(args.job, os.environ, target_default, Path.home())
    for line in found:
        print(f"ERROR: {line}", file=sys.stderr)
    if found:
        sys.exit(EXIT_MISSING)
    print(summary(args.job, os.environ, target_default))


if __name__ == "__main__":
    main()
