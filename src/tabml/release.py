"""Release images with their lineage, and a CycloneDX SBOM of each image's Python environment.

    python -m tabml.release images --bento tabml:<version> [--model-version N] [--model M]
    python -m tabml.release sbom --bento tabml:<version> --out build/sbom
    python -m tabml.release login      # log the engine in to REGISTRY (REGISTRY_AUTH says how)
    python -m tabml.release push

Two images: the serving image (`bentoml containerize` of the bento that pins the model) and the
pipeline image (the top-level Dockerfile). Both carry OCI labels with the commit, the model
(md5 and registry version) and the data (md5 of the source in dvc.lock). The engine is Docker
where a daemon answers, podman otherwise (`CONTAINER_ENGINE` overrides). The image names and
lineage are written to build/release.json, which `make deploy` reads. `login`
(tabml.release_login) hands the engine its token on standard input, never as an argument; `push`
expects the engine to be logged in. `sbom` is tabml.release_sbom.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tabml import cli, commands, lineage
from tabml.engine import engine
from tabml.io import DataError, file_md5, read_json, write_json
from tabml.params import load_params
from tabml.release_login import login
from tabml.release_sbom import sbom

log = logging.getLogger(__name__)

RELEASE_FILE = "build/release.json"
SERVICE_REPO = os.environ.get("SERVICE_IMAGE", "localhost/tabml-service")
PIPELINE_REPO = os.environ.get("PIPELINE_IMAGE", "localhost/tabml-pipeline")


def image_labels(model: str, lock: str, model_version: str | None) -> dict[str, str]:
    """Commit, model and data identity of this release."""
    source = lineage.read_lock(lock)["stages"]["ingest"]["deps"][0]
    return {
        "org.opencontainers.image.revision": lineage.commit(),
        "org.opencontainers.image.source": "tabml",
        "io.tabml.model.md5": file_md5(model),
        "io.tabml.model.version": model_version or "unregistered",
        "io.tabml.data.source": source["path"],
        "io.tabml.data.md5": source["md5"],
    }


def size(tool: str, image: str) -> int:
    return int(commands.output(tool, "image", "inspect", image, "--format", "{{.Size}}"))


def build_service(tool: str, bento: str, labels: dict[str, str]) -> str:
    """`bentoml containerize` the bento; the image tag is the bento's exact version."""
    image = f"{SERVICE_REPO}:{bento.partition(':')[2]}"
    opts = [f"--opt=label={key}={value}" for key, value in labels.items()]
    commands.run(
        "bentoml",
        "containerize",
        bento,
        "--backend",
        tool,
        "-t",
        image,
        "--opt=network=host",
        *opts,
    )
    return image


def build_pipeline(tool: str, labels: dict[str, str], ca_bundle: str | None) -> str:
    """Build the top-level Dockerfile; the tag is the commit."""
    commit = labels["org.opencontainers.image.revision"]
    image = f"{PIPELINE_REPO}:{commit[:12]}"
    secret = [f"--secret=id=ca,src={ca_bundle}"] if ca_bundle else []
    args = {
        "GIT_COMMIT": commit,
        "MODEL_VERSION": labels["io.tabml.model.version"],
        "DATA_MD5": labels["io.tabml.data.md5"],
    }
    commands.run(
        tool,
        "build",
        "--network=host",
        *secret,
        *(f"--build-arg={k}={v}" for k, v in args.items()),
        *(f"--label={k}={v}" for k, v in labels.items()),
        "-t",
        image,
        ".",
    )
    return image


def images(bento: str, model: str, lock: str, model_version: str | None, ca: str | None) -> dict:
    """Build both images; return what build/release.json records."""
    tool, labels = engine(), image_labels(model, lock, model_version)
    built: dict[str, Any] = {"engine": tool, "bento": bento, "labels": labels}
    for name, build in (
        ("service", lambda: build_service(tool, bento, labels)),
        ("pipeline", lambda: build_pipeline(tool, labels, ca)),
    ):
        start = time.perf_counter()
        image = build()
        built[name] = {
            "image": image,
            "build_seconds": round(time.perf_counter() - start, 1),
            "size_mb": round(size(tool, image) / 1e6),
        }
        log.info("built %s in %.0f s", image, built[name]["build_seconds"])
    return built


def push(registry: str) -> dict:
    """Push both images to `registry`; record them in build/release.json by digest."""
    built = read_json(RELEASE_FILE)
    tool = engine()
    for name in ("service", "pipeline"):
        local = built[name]["image"]
        remote = f"{registry.rstrip('/')}/{local.rpartition('/')[2]}"
        commands.run(tool, "tag", local, remote)
        commands.run(tool, "push", remote)
        digest = commands.output(
            tool, "image", "inspect", remote, "--format", "{{index .RepoDigests 0}}"
        )
        built[name].update(image=remote, digest=digest)
    write_json(built, RELEASE_FILE)
    return built


def main(argv: Sequence[str] | None = None) -> None:
    ap = cli.parser(__doc__)
    ap.add_argument("command", choices=["images", "sbom", "login", "push"])
    ap.add_argument("--bento", help="exact bento tag (make bento prints it)")
    ap.add_argument("--registry", default=os.environ.get("REGISTRY") or None)
    ap.add_argument(
        "--auth",
        default=os.environ.get("REGISTRY_AUTH") or None,
        help="github, aws, gcp, password or none (default: github for ghcr.io)",
    )
    ap.add_argument("--model", help="default: paths.model")
    ap.add_argument("--lock", default="dvc.lock")
    ap.add_argument("--model-version", help="registry version of the model, for the labels")
    ap.add_argument("--ca-bundle", default=os.environ.get("CA_BUNDLE") or None)
    ap.add_argument("--out", default="build/sbom")
    args = ap.parse_args(argv)
    if args.command == "login":
        if not args.registry:
            print("No REGISTRY set: nothing to log in to.")
            return
        default = "github" if args.registry.split("/")[0].lower() == "ghcr.io" else "none"
        print(login(args.registry, args.auth or default))
        return
    if args.command == "push":
        if not args.registry:
            print("No REGISTRY set: the images stay in this host's engine.")
            return
        for name, image in push(args.registry).items():
            if isinstance(image, dict) and "digest" in image:
                print(f"pushed {name}: {image['digest']}")
        return
    if not args.bento or args.bento.endswith(":latest") or ":" not in args.bento:
        raise DataError(f"--bento must be an exact tag, not '{args.bento}'")
    if args.command == "sbom":
        for path in sbom(args.bento, Path(args.out)):
            print(path)
        return
    model = args.model or load_params(args.params).paths.model
    built = images(args.bento, model, args.lock, args.model_version, args.ca_bundle)
    write_json(built, RELEASE_FILE)
    print(built["service"]["image"])
    print(built["pipeline"]["image"])


if __name__ == "__main__":
    cli.run(main)
