"""The MLflow model registry: register the pipeline's model and move the environment aliases.

    python -m tabml.registry register [--model M] [--lock dvc.lock]
    python -m tabml.registry promote --alias staging --version 3 [--shadow-report shadow.json]
        [--pushgateway URL]
    python -m tabml.registry rollback --alias production [--pushgateway URL]
    python -m tabml.registry show
    python -m tabml.registry tracked [--model M]   # exit 1: no run logged it

A version is registered once per model file (tag `model_md5`) and carries the lineage of its run:
`git_commit`, the data hashes and `run_id`. Moving alias `A` first copies its old target to
`A-previous`, so the version that served before can always be restored. `--model` defaults to
params.yaml's `paths.model`. A promotion cites the shadow report (`make shadow-report`) when it
compared the promoted version: its figures become the version's tag `<alias>.shadow_report`.
With `--pushgateway`, promote and rollback push `tabml_registry_alias_info{alias, model_tag}`
there, which the alert TabmlModelNotProduction compares with what the service runs
(docs/alerts.md).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from tabml import cli, lineage, pushmetrics, tracking
from tabml.io import DataError, file_md5, read_json
from tabml.params import load_params

ALIASES = ("staging", "production")  # the environments a model version is promoted to

log = logging.getLogger(__name__)

LINEAGE_TAGS = ("git_commit", "git_dirty", "data.train.md5", "data.valid.md5")


def register(model_path: str, lock_path: str, name: str) -> Any:
    """Register the model that `dvc.lock` pins, once; return its model version."""
    from mlflow.tracking import MlflowClient

    md5 = lineage.check_locked(model_path, lock_path)
    uri = tracking.configure()
    client = MlflowClient()
    existing = client.search_model_versions(f"name = '{name}' and tags.model_md5 = '{md5}'")
    if existing:
        version = max(existing, key=lambda v: int(v.version))
        log.info("model %s is already version %s of '%s'", md5, version.version, name)
        return version
    run = tracking.find_run(md5)
    if run is None:
        raise DataError(
            f"no run in {uri} logged model {md5}. Log one with `make track` "
            "(re-runs train and evaluate, which are deterministic, against this tracking store)."
        )
    import mlflow

    tags = {key: run.data.tags[key] for key in LINEAGE_TAGS if key in run.data.tags}
    tags.update(run_id=run.info.run_id, model_md5=md5)
    version = mlflow.register_model(f"runs:/{run.info.run_id}/model", name, tags=tags)
    log.info("registered '%s' version %s from run %s", name, version.version, run.info.run_id)
    return version


def alias_version(client: Any, name: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def promote(name: str, alias: str, version: str) -> str | None:
    """Point `alias` at `version`, keeping the old target as `<alias>-previous`."""
    from mlflow.tracking import MlflowClient

    tracking.configure()
    client = MlflowClient()
    client.get_model_version(name, version)  # fails clearly if there is no such version
    previous = alias_version(client, name, alias)
    if previous == str(version):
        return previous  # already there; keep `<alias>-previous` as it is
    if previous is not None:
        client.set_registered_model_alias(name, lineage.previous(alias), previous)
    client.set_registered_model_alias(name, alias, version)
    log.info("'%s' alias %s: %s -> %s", name, alias, previous, version)
    return previous


def cite_shadow_report(name: str, alias: str, version: str, report: dict[str, Any]) -> bool:
    """Tag `version` with the shadow report's figures if the report compared it."""
    from mlflow.tracking import MlflowClient

    tracking.configure()
    client = MlflowClient()
    md5 = client.get_model_version(name, version).tags.get(tracking.MODEL_HASH_TAG)
    compared = {report["model_version"].partition(":")[2]: "served",
                report["shadow_model_version"].partition(":")[2]: "shadow"}  # fmt: skip
    if md5 not in compared:
        log.warning("the shadow report compared other models; version %s cites none", version)
        return False
    cited = (
        f"the {compared[md5]} model of the shadow report on {report['shadow_scored']} records, "
        f"{report['start']} to {report['stop']}: same decision on {report['agreement']:.1%}, "
        f"score PSI {report['psi']:.3f} ({report['shadow_model_version']} beside "
        f"{report['model_version']})"
    )
    client.set_model_version_tag(name, version, f"{alias}.shadow_report", cited)
    log.info("version %s cites the shadow report: %s", version, cited)
    return True


def rollback(name: str, alias: str) -> str:
    """Point `alias` back at `<alias>-previous`."""
    from mlflow.tracking import MlflowClient

    tracking.configure()
    client = MlflowClient()
    previous = alias_version(client, name, lineage.previous(alias))
    if previous is None:
        raise DataError(f"'{name}' has no alias {lineage.previous(alias)} to roll back to.")
    client.set_registered_model_alias(name, alias, previous)
    client.delete_registered_model_alias(name, lineage.previous(alias))
    return previous


def push_alias(name: str, alias: str, pushgateway: str) -> None:
    """Push the model tag `alias` now points at (`<name>:<model_md5>`, as the service shows it)."""
    from mlflow.tracking import MlflowClient

    version = MlflowClient().get_model_version_by_alias(name, alias)
    tag = f"{name}:{version.tags['model_md5']}"
    metrics = pushmetrics.alias_metrics(alias, tag, str(version.version))
    for line in pushmetrics.publish(metrics, pushmetrics.REGISTRY_JOB, pushgateway=pushgateway,
                                    grouping={"alias": alias}):  # fmt: skip
        log.info("alias %s -> %s %s", alias, tag, line)


def show(name: str) -> dict[str, Any]:
    """The registered model's aliases, and the lineage tags of the versions they point at."""
    from mlflow.tracking import MlflowClient

    tracking.configure()
    model = MlflowClient().get_registered_model(name)
    return {
        alias: {"version": str(v), **MlflowClient().get_model_version(name, v).tags}
        for alias, v in sorted(model.aliases.items())
    }


def main(argv: Sequence[str] | None = None) -> None:
    ap = cli.parser(__doc__)
    ap.add_argument("command", choices=["register", "promote", "rollback", "show", "tracked"])
    ap.add_argument("--model", help="default: paths.model")
    ap.add_argument("--lock", default=lineage.LOCK)
    ap.add_argument("--alias")
    ap.add_argument("--version")
    ap.add_argument("--pushgateway", help="push the alias's model tag there (promote, rollback)")
    ap.add_argument(
        "--shadow-report", help="shadow.json of `make shadow-report`, cited if present"
    )
    args = ap.parse_args(argv)
    params = load_params(args.params)
    args.model = args.model or params.paths.model
    name = lineage.model_name(params)
    if args.command == "register":
        print(register(args.model, args.lock, name).version)
    elif args.command == "promote":
        if not (args.version or "").isdigit():
            raise DataError(
                f"no model version to promote (got {args.version!r}): run `make register` first, "
                "which writes build/model-version."
            )
        if args.alias not in ALIASES:
            raise DataError(f"ENV={args.alias!r}: promote to one of {', '.join(ALIASES)}.")
        promote(name, args.alias, args.version)
        if args.pushgateway:
            push_alias(name, args.alias, args.pushgateway)
        if args.shadow_report:
            cite_shadow_report(name, args.alias, args.version, read_json(args.shadow_report))
    elif args.command == "tracked":
        tracking.configure()
        if tracking.find_run(file_md5(args.model)) is None:
            raise SystemExit(1)
    elif args.command == "rollback":
        print(rollback(name, args.alias))
        if args.pushgateway:
            push_alias(name, args.alias, args.pushgateway)
    else:
        print(json.dumps(show(name), indent=2))


if __name__ == "__main__":
    cli.run(main)
