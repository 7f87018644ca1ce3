"""The `k8s` deploy target: the kustomize overlay of the environment with the image pinned.

Staging rolls out and is undone (`kubectl rollout undo`) if the smoke test fails. Production goes
through the canary Deployment first: smoke-tested alone, then serving its share of traffic for
`deploy.canary_seconds` and smoke-tested again, then, when deploy.prometheus_url is set, judged
against the stable pods over that interval by tabml.canary's queries (on the pods' `track`
label), then promoted to the stable Deployment; a failure at any step scales the canary back to
zero and leaves stable as it was.
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

from tabml import canary, smoke
from tabml.commands import CommandError, output, run
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


def judge_canary(namespace: str, cfg: DeployParams) -> dict | None:
    """The canary analysis of the last `canary_seconds`, by the pods' `track` label."""
    if not cfg.prometheus_url:
        print("canary analysis skipped: deploy.prometheus_url is empty", flush=True)
        return None
    selectors = {t: canary.selector(namespace=namespace, track=t) for t in canary.TRACKS}
    analysis = canary.analyse(cfg.prometheus_url.rstrip("/"), selectors, cfg.canary_seconds, cfg)
    print(canary.summary(analysis), flush=True)
    return analysis


def deploy_k8s(
    env: str, image: str, gold: dict, cfg: DeployParams, record: dict | None = None
) -> str:
    """Apply the overlay; staging is undone on a failed smoke test, production goes by canary.
    `record` receives the canary analysis, for the deploy record."""
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
    by_canary = env == "production" and bool(stable)
    record = {} if record is None else record
    record["previous"] = stable or None
    docs = render(env, image, stable if by_canary else None)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as fh:
        yaml.safe_dump_all(docs, fh)
        run(*kubectl, "apply", "-f", fh.name)
    if not by_canary:
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
    try:
        analysis = judge_canary(ns, cfg)
    except CommandError:  # Prometheus did not answer: no verdict is no promotion
        run(*kubectl, "scale", "deploy/tabml-canary", "--replicas=0")
        raise
    record["analysis"] = analysis
    if analysis and analysis["verdict"] == "roll back":
        run(*kubectl, "scale", "deploy/tabml-canary", "--replicas=0")
        raise ReleaseError(
            f"canary analysis rolled back {image}: {analysis['failed']}; "
            f"production still serves {stable}."
        )
    run(*kubectl, "set", "image", "deploy/tabml", f"service={image}")
    run(*kubectl, "rollout", "status", "deploy/tabml", f"--timeout={cfg.readiness_seconds}s")
    run(*kubectl, "scale", "deploy/tabml-canary", "--replicas=0")
    return f"production serves {image} (previous: {stable})"
