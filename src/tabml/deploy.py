"""Deploy a serving image to an environment, smoke-test it, and roll back if it fails.

    python -m tabml.deploy --env staging|production [--image IMAGE] [--target local|k8s]

`local` (the default, and what the tests use; tabml.deploy_local) runs the image under podman
or Docker on this host, as a candidate on a side port first. `k8s` (tabml.deploy_kube) applies
the kustomize overlay of the environment, production through a canary. Either target
smoke-tests the release, judges it by live metrics when deploy.prometheus_url is set
(tabml.canary), and rolls back on failure; a failed release exits non-zero, so the registry
alias never moves (`make promote` runs only after `make deploy` succeeds). Every deploy writes
its record (image, previous release, outcome, the canary analysis's queries, values and
verdict) to `--record`, default build/deploy-<env>.json.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence

from tabml import cli, release
from tabml.commands import CommandError
from tabml.deploy_kube import deploy_k8s, render
from tabml.deploy_local import deploy_local, rollback_local
from tabml.io import DataError, read_json, write_json
from tabml.params import load_params
from tabml.smoke import ReleaseError

# What callers and tests reach through this module, wherever it is defined.
__all__ = ["ReleaseError", "deploy_k8s", "deploy_local", "main", "render", "rollback_local"]

log = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> None:
    ap = cli.parser(__doc__)
    ap.add_argument("--env", required=True, choices=["staging", "production"])
    ap.add_argument("--image", help="serving image (default: the one build/release.json names)")
    ap.add_argument("--target", choices=["local", "k8s"], help="default: deploy.target")
    ap.add_argument("--golden", default="build/golden.json")
    ap.add_argument("--rollback", action="store_true", help="restore the previous local release")
    ap.add_argument("--prometheus-url", help="judge the canary there (deploy.prometheus_url)")
    ap.add_argument("--record", help="deploy record to write (default: build/deploy-<env>.json)")
    args = ap.parse_args(argv)
    cfg = load_params(args.params).deploy
    if args.prometheus_url is not None:
        cfg = dataclasses.replace(cfg, prometheus_url=args.prometheus_url)
    if args.rollback:
        print(rollback_local(args.env, cfg))
        return
    image = args.image or read_json(release.RELEASE_FILE)["service"]["image"]
    if image.endswith(":latest") or ":" not in image.rpartition("/")[2]:
        raise DataError(f"deploy needs an exact image tag, not '{image}'")
    target = args.target or cfg.target
    deploy = deploy_local if target == "local" else deploy_k8s
    path = args.record or f"build/deploy-{args.env}.json"
    record = {"env": args.env, "target": target, "image": image, "started": time.time()}
    try:
        message = deploy(args.env, image, read_json(args.golden), cfg, record)
    except CommandError as exc:
        record |= {"outcome": "failed", "message": str(exc)}
        raise
    else:
        record |= {"outcome": "deployed", "message": message}
        print(message)
    finally:
        if "outcome" in record:  # an unexpected error leaves the last record as it was
            write_json(record | {"finished": time.time()}, path)
            print(f"deploy record: {path}", flush=True)


if __name__ == "__main__":
    cli.run(main)
