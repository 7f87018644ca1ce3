"""Deploy a serving image to an environment, smoke-test it, and roll back if it fails.

    python -m tabml.deploy --env staging|production [--image IMAGE] [--target local|k8s]

`local` (the default, and what the tests use) runs the image under podman or Docker with the
host network on the environment's 127.0.0.1 port. The release first runs as a candidate on a
side port; only if its smoke test passes does it replace the running container, which is kept
stopped as `<prefix>-<env>-previous`. If the swapped-in release then fails its smoke test, the
previous container resumes. Either way a failed release exits non-zero, so the registry alias
never moves (`make promote` runs only after `make deploy` succeeds).

`k8s` applies the kustomize overlay of the environment with the image pinned. Staging rolls out
and is undone (`kubectl rollout undo`) if the smoke test fails. Production goes through the
canary Deployment first: smoke-tested alone, then serving its share of traffic for
`deploy.canary_seconds` and smoke-tested again, then promoted to the stable Deployment; a
failure at any step scales the canary back to zero and leaves stable as it was.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import yaml

from tabml import cli, release, smoke
from tabml.io import DataError, read_json
from tabml.params import DeployParams, load_params

log = logging.getLogger(__name__)

MANIFESTS = Path("deploy/k8s")


class ReleaseError(DataError):
    """The release did not pass its smoke test; what serves now is said in the message."""


def run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise DataError(f"`{' '.join(cmd)}` failed: {done.stderr.strip()[-2000:]}")
    return done


def smoke_test(url: str, gold: dict, cfg: DeployParams) -> list[smoke.Outcome]:
    outcomes = smoke.check(url, gold, cfg.latency_budget_ms, cfg.readiness_seconds)
    print(smoke.to_text(url, outcomes), flush=True)
    return [o for o in outcomes if not o.passed]


# Local: podman or Docker on this host ---------------------------------------------------------


def container_image(tool: str, name: str) -> str | None:
    done = run(tool, "container", "inspect", name, "--format", "{{.Config.Image}}", check=False)
    return done.stdout.strip() if done.returncode == 0 else None


def start(tool: str, name: str, image: str, env: str, port: int, logs: Path) -> None:
    run(tool, "rm", "-f", "-t", "0", name, check=False)
    run(
        tool,
        "run",
        "-d",
        "--init",
        "--network=host",
        "--name",
        name,
        "--label",
        f"io.tabml.env={env}",
        "-e",
        "TABML_PREDICTION_LOG=/logs",
        "-v",
        f"{logs.resolve()}:/logs",
        image,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    )


def check_engine(tool: str, image: str, name: str) -> None:
    """Fail before anything starts or stops when the engine cannot run `image` as deploy does.

    podman's `--init` needs its init binary (catatonit), which installs only as a recommended
    package; creating and preparing a container (`podman container init`) finds it missing
    without running anything.
    """
    if run(tool, "image", "inspect", image, check=False).returncode != 0:
        raise DataError(f"image '{image}' is not in {tool}'s store: run `make image` first.")
    if Path(tool).name != "podman":
        return  # Docker ships its init (docker-init) with the daemon
    probe = f"{name}-preflight"
    run(tool, "rm", "-f", "-t", "0", probe, check=False)
    try:
        done = run(tool, "create", "--init", "--network=host", "--name", probe, image, check=False)
        if done.returncode == 0:
            done = run(tool, "container", "init", probe, check=False)
    finally:
        run(tool, "rm", "-f", "-t", "0", probe, check=False)
    if done.returncode != 0 and "init binary" in done.stderr:
        raise DataError(
            "podman cannot start containers with --init: its init binary is missing; "
            "install catatonit (apt-get install catatonit) and deploy again."
        )
    if done.returncode != 0:
        raise DataError(f"podman cannot prepare a container of {image}: {done.stderr.strip()}")


def deploy_local(env: str, image: str, gold: dict, cfg: DeployParams) -> str:
    """Candidate on a side port, smoke, swap, smoke again; roll back on any failure."""
    tool, port = release.engine(), cfg.ports[env]
    name = f"{cfg.container_prefix}-{env}"
    check_engine(tool, image, name)
    candidate, previous = f"{name}-candidate", f"{name}-previous"
    logs = Path(cfg.log_dir) / env
    logs.mkdir(parents=True, exist_ok=True)
    logs.chmod(0o777)  # the service runs as its own user inside the container
    current = container_image(tool, name)
    start(tool, candidate, image, env, port + cfg.candidate_port_offset, logs)
    try:
        failed = smoke_test(f"http://127.0.0.1:{port + cfg.candidate_port_offset}", gold, cfg)
    finally:
        run(tool, "rm", "-f", "-t", "0", candidate, check=False)
    if failed:
        checks = ", ".join(o.check for o in failed)
        raise ReleaseError(
            f"{image} failed its smoke test as a candidate ({checks}); "
            f"{env} still serves {current or 'nothing'} on port {port}."
        )
    if current:
        run(tool, "rm", "-f", "-t", "0", previous, check=False)
        run(tool, "stop", "-t", "10", name)
        run(tool, "rename", name, previous)
    start(tool, name, image, env, port, logs)
    if failed := smoke_test(f"http://127.0.0.1:{port}", gold, cfg):
        run(tool, "rm", "-f", "-t", "0", name, check=False)
        if current:
            run(tool, "rename", previous, name)
            run(tool, "start", name)
            smoke.wait_ready(f"http://127.0.0.1:{port}", cfg.readiness_seconds)
        raise ReleaseError(
            f"{image} failed its smoke test on port {port}; rolled back: {env} serves "
            f"{current or 'nothing'} again."
        )
    return f"{env} serves {image} on http://127.0.0.1:{port} (previous: {current or 'none'})"


def rollback_local(env: str, cfg: DeployParams) -> str:
    """Put the previous release of `env` back in service."""
    tool, name = release.engine(), f"{cfg.container_prefix}-{env}"
    previous = f"{name}-previous"
    image = container_image(tool, previous)
    if image is None:
        raise DataError(f"{env} has no previous release to roll back to.")
    run(tool, "rm", "-f", "-t", "0", name, check=False)
    run(tool, "rename", previous, name)
    run(tool, "start", name)
    smoke.wait_ready(f"http://127.0.0.1:{cfg.ports[env]}", cfg.readiness_seconds)
    return f"{env} serves {image} again"


# Kubernetes -----------------------------------------------------------------------------------


def render(env: str, image: str, stable_image: str | None = None) -> list[dict]:
    """The overlay of `env` with the image pinned (production: stable keeps `stable_image`)."""
    name, _, tag = image.rpartition(":")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "k8s"
        shutil.copytree(MANIFESTS, root)
        (root / "release").mkdir()
        (root / "release/kustomization.yaml").write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "kustomize.config.k8s.io/v1beta1",
                    "kind": "Kustomization",
                    "resources": [f"../overlays/{env}"],
                    "images": [{"name": "tabml-service", "newName": name, "newTag": tag}],
                }
            )
        )
        docs = list(yaml.safe_load_all(run("kubectl", "kustomize", str(root / "release")).stdout))
    for doc in docs:
        if doc["kind"] == "Deployment" and doc["metadata"]["name"] == "tabml" and stable_image:
            doc["spec"]["template"]["spec"]["containers"][0]["image"] = stable_image
    return docs


@contextlib.contextmanager
def forwarded(namespace: str, service: str, port: int) -> Iterator[str]:
    """A local URL for a Service, through `kubectl port-forward`."""
    proc = subprocess.Popen(
        ["kubectl", "-n", namespace, "port-forward", f"svc/{service}", f"{port}:80"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def deploy_k8s(env: str, image: str, gold: dict, cfg: DeployParams) -> str:
    ns, port = f"{cfg.namespace_prefix}{env}", cfg.ports[env]
    kubectl = ("kubectl", "-n", ns)
    stable = run(
        *kubectl,
        "get",
        "deploy/tabml",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
        check=False,
    ).stdout.strip()
    canary = env == "production" and bool(stable)
    docs = render(env, image, stable if canary else None)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as fh:
        yaml.safe_dump_all(docs, fh)
        run(*kubectl, "apply", "-f", fh.name)
    if not canary:
        run(*kubectl, "rollout", "status", "deploy/tabml", f"--timeout={cfg.readiness_seconds}s")
        with forwarded(ns, "tabml", port) as url:
            failed = smoke_test(url, gold, cfg)
        if failed:
            run(*kubectl, "rollout", "undo", "deploy/tabml")
            raise ReleaseError(f"{image} failed its smoke test; {env} rolled back.")
        return f"{env} serves {image}"
    for step, replicas in enumerate(cfg.canary_replicas):
        run(*kubectl, "scale", "deploy/tabml-canary", f"--replicas={replicas}")
        run(
            *kubectl,
            "rollout",
            "status",
            "deploy/tabml-canary",
            f"--timeout={cfg.readiness_seconds}s",
        )
        if step:
            time.sleep(cfg.canary_seconds)  # serving its share of traffic before the next check
        with forwarded(ns, "tabml-canary", port) as url:
            failed = smoke_test(url, gold, cfg)
        if failed:
            run(*kubectl, "scale", "deploy/tabml-canary", "--replicas=0")
            raise ReleaseError(
                f"canary {image} failed its smoke test; production still serves {stable}."
            )
    run(*kubectl, "set", "image", "deploy/tabml", f"service={image}")
    run(*kubectl, "rollout", "status", "deploy/tabml", f"--timeout={cfg.readiness_seconds}s")
    run(*kubectl, "scale", "deploy/tabml-canary", "--replicas=0")
    return f"production serves {image} (previous: {stable})"


def main(argv: Sequence[str] | None = None) -> None:
    ap = cli.parser(__doc__)
    ap.add_argument("--env", required=True, choices=["staging", "production"])
    ap.add_argument("--image", help="serving image (default: the one build/release.json names)")
    ap.add_argument("--target", choices=["local", "k8s"], help="default: deploy.target")
    ap.add_argument("--golden", default="build/golden.json")
    ap.add_argument("--rollback", action="store_true", help="restore the previous local release")
    args = ap.parse_args(argv)
    cfg = load_params(args.params).deploy
    if args.rollback:
        print(rollback_local(args.env, cfg))
        return
    image = args.image or read_json(release.RELEASE_FILE)["service"]["image"]
    if image.endswith(":latest") or ":" not in image.rpartition("/")[2]:
        raise DataError(f"deploy needs an exact image tag, not '{image}'")
    target = args.target or cfg.target
    deploy = deploy_local if target == "local" else deploy_k8s
    print(deploy(args.env, image, read_json(args.golden), cfg))


if __name__ == "__main__":
    cli.run(main)
