"""The `k8s` deploy target: the kustomize overlay of the environment with the image pinned.

Staging rolls out and is undone (`kubectl rollout undo`) if the smoke test fails. Production goes
through the canary Deployment first: smoke-tested alone, then serving its share of traffic for
`deploy.canary_seconds` and smoke-tested again, then promoted to the stable Deployment; a failure
at any step scales the canary back to zero and leaves stable as it was.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import yaml

from tabml import smoke
from tabml.commands import output, run
from tabml.params import DeployParams
from tabml.smoke import ReleaseError

MANIFESTS = Path("deploy/k8s")


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
        docs = list(yaml.safe_load_all(output("kubectl", "kustomize", str(root / "release"))))
    for doc in docs:
        if doc["kind"] == "Deployment" and doc["metadata"]["name"] == "tabml" and stable_image:
            doc["spec"]["template"]["spec"]["containers"][0]["image"] = stable_image
    return docs


@contextlib.contextmanager
def forwarded(namespace: str, service: str, port: int) -> Iterator[str]:
    """A local URL for a Service, through `kubectl port-forward` (it runs until we stop it)."""
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
    """Apply the overlay; staging is undone on a failed smoke test, production goes by canary."""
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
            failed = smoke.failures(url, gold, cfg)
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
            failed = smoke.failures(url, gold, cfg)
        if failed:
            run(*kubectl, "scale", "deploy/tabml-canary", "--replicas=0")
            raise ReleaseError(
                f"canary {image} failed its smoke test; production still serves {stable}."
            )
    run(*kubectl, "set", "image", "deploy/tabml", f"service={image}")
    run(*kubectl, "rollout", "status", "deploy/tabml", f"--timeout={cfg.readiness_seconds}s")
    run(*kubectl, "scale", "deploy/tabml-canary", "--replicas=0")
    return f"production serves {image} (previous: {stable})"
