"""`make bento`: import the pipeline's model into the BentoML store, then build the bento.

python -m tabml.bento [--model M] [--train T --valid V --test T] [--metrics M] [--no-build] \
    [--tag-out build/bento-tag] [--shadow FILE|TAG]

The model, splits and metrics default to the files params.yaml's `paths` names.
`--shadow` (default: params.yaml's `serve.shadow_model`, empty for none) names a second model
that the service scores off the request path: a model file, imported like the model, or the
exact tag of a model already in the store. The bento holds both and pins both tags.

The bento's Python packages are named in bentofile.yaml and pinned here, at build time, to the
versions uv.lock resolves, so a dependency bump is one reviewed change of the lock.
The model tag is `serve.model_name:<md5 of the model file>`: the hash `dvc.lock` records and
MLflow's `model_md5` tag, so the tag is exact, reproducible and leads back to the run. The
stored model carries its lineage (run id, commit, data hashes, metrics) for `/identity`.
Each build makes a new bento version: `--tag-out` records it for `make image`, `sbom` and
`serve`, which read it instead of building again.
"""

from __future__ import annotations

import logging
import re
import sys
import tempfile
import tomllib
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import joblib
import pandas as pd
import yaml

from tabml import cli, commands, lineage, tracking
from tabml.dataset import nullable_features
from tabml.io import DataError, file_md5, read_json, read_parquet
from tabml.params import Params, load_params
from tabml.serving.inference import export

log = logging.getLogger(__name__)

BENTOFILE = "bentofile.yaml"
LOCKFILE = "uv.lock"
BUILD_CONTEXT = "src"  # the bento's source root: `tabml` imports as in the project
# Arguments that default to the file of the same name in params.yaml's `paths`.
PATH_ARGUMENTS = ("model", "train", "valid", "test", "metrics")


def run_identity(
    model_md5: str, data: dict[str, str], metrics_path: str | Path | None
) -> dict[str, Any]:
    """The MLflow run that logged this model file, its commit and metrics, and the data hashes."""
    tracking.configure()
    run = tracking.find_run(model_md5)
    if run is None:
        log.warning("no MLflow run logged model %s: identity will lack run and commit", model_md5)
    tags = run.data.tags if run else {}
    metrics = {k: float(v) for k, v in (run.data.metrics if run else {}).items()}
    if metrics_path and Path(metrics_path).exists():
        for split, values in read_json(metrics_path).items():
            metrics.update({f"{split}_{k}": float(v) for k, v in values.items()})
    return {
        "mlflow_run_id": run.info.run_id if run else None,
        "git_commit": tags.get("git_commit"),
        "git_dirty": tags.get("git_dirty") == "true" if "git_dirty" in tags else None,
        "data": {**data, **{k: v for k, v in tags.items() if k.startswith("data.")}},
        "metrics": metrics,
    }


def import_model(
    model_path: str | Path,
    splits: dict[str, str | Path],
    metrics_path: str | Path | None,
    params: Params,
) -> str:
    """Put the model in the BentoML store (once per content hash); return its exact tag.

    Args:
        model_path: the trained pipeline.
        splits: the `train`, `valid` and `test` files it came from (`test` gives the example).
        metrics_path: its evaluation, recorded in the stored model's metadata when present.
        params: the parameters.
    """
    import bentoml
    from bentoml.exceptions import NotFound

    model_md5 = file_md5(model_path)
    tag = lineage.model_tag(params, model_path)
    try:
        bentoml.models.get(tag)
        log.info("model %s is already in the BentoML store", tag)
        return tag
    except NotFound:
        pass
    pipeline = joblib.load(model_path)
    holdout = read_parquet(splits["test"])
    data = {f"data.{name}.md5": file_md5(splits[name]) for name in ("train", "valid", "test")}
    features = list(pipeline.feature_names_in_)
    meta = {
        "features": features,
        "example": example_record(holdout[features]),
        "threshold": params.base.threshold,
        "positive_label": params.base.positive_label,
        "model_md5": model_md5,
        **run_identity(model_md5, data, metrics_path),
    }
    # BentoML's metadata holds no null: a model no MLflow run logged (a shadow candidate
    # trained elsewhere) goes in without run and commit.
    meta = {k: v for k, v in meta.items() if v is not None}
    with tempfile.TemporaryDirectory() as tmp:
        facts = export(pipeline, holdout, Path(tmp), nullable_features(features))
        facts = {k: v for k, v in facts.items() if v is not None}
        with bentoml.models.create(tag, metadata={**meta, **facts}) as model:
            for path in Path(tmp).iterdir():
                (Path(model.path) / path.name).write_bytes(path.read_bytes())
    log.info("imported %s (runtime %s)", tag, facts["runtime"])
    return tag


def example_record(frame: pd.DataFrame) -> str:
    """The OpenAPI document's example, as JSON: the first test record with no gap, if any.

    JSON text, because BentoML's model metadata holds no null.
    """
    complete = frame.dropna()
    return (complete if len(complete) else frame).head(1).to_json(orient="records")[1:-1]


def bento_args(tag: str, params: Params, shadow_tag: str = "") -> list[str]:
    """`--arg` options of `bentoml build/serve`: the model tags and the `serve` section."""
    skipped = ("model_name", "shadow_model")  # the tags are passed resolved
    settings = {k: v for k, v in asdict(params.serve).items() if k not in skipped}
    shadow = [f"--arg=shadow_model_tag={shadow_tag}"] if shadow_tag else []
    return [f"--arg=model_tag={tag}", *shadow, *(f"--arg={k}={v}" for k, v in settings.items())]


def shadow_tag(
    shadow: str, splits: dict[str, str | Path], metrics_path: str | Path | None, params: Params
) -> str:
    """The exact tag of the shadow model: a model file is imported, a tag must be in the store."""
    import bentoml
    from bentoml.exceptions import NotFound

    if not shadow:
        return ""
    if Path(shadow).is_file():
        return import_model(shadow, splits, metrics_path, params)
    name, _, version = shadow.partition(":")
    if not name or not version or version == "latest" or "/" in shadow:
        raise DataError(
            f"shadow model '{shadow}' is neither a model file nor an exact 'name:version' tag; "
            "name a trained model file or a tag from `bentoml models list`."
        )
    try:
        bentoml.models.get(shadow)
    except NotFound:
        raise DataError(
            f"shadow model {shadow} is not in the BentoML store; import its file with "
            "`python -m tabml.bento --model FILE --no-build`, or pass the file instead."
        ) from None
    return shadow


def normalise(name: str) -> str:
    """A distribution name as uv.lock spells it (PEP 503: lower case, runs of -_. become -)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_versions(lock_path: str | Path) -> dict[str, set[str]]:
    """The versions uv.lock resolves for each package, by normalised name."""
    with Path(lock_path).open("rb") as fh:
        packages = tomllib.load(fh).get("package", [])
    locked: dict[str, set[str]] = {}
    for package in packages:
        if "version" in package:
            locked.setdefault(normalise(package["name"]), set()).add(package["version"])
    return locked


def pin(names: Sequence[str], locked: dict[str, set[str]], lock_path: str | Path) -> list[str]:
    """`name==version` for each package bentofile.yaml names, at uv.lock's version."""
    pins = []
    for name in names:
        if "=" in name or "<" in name or ">" in name:
            raise DataError(
                f"{BENTOFILE}: '{name}' carries a version; name the package only, uv.lock pins it"
            )
        if normalise(name) not in locked:
            raise DataError(
                f"{BENTOFILE}: '{name}' is not in {lock_path}; add it to pyproject.toml and run "
                "`uv lock`"
            )
        versions = sorted(locked[normalise(name)])
        if len(versions) > 1:
            # A lock split by platform markers: the image must get the one the tests ran.
            raise DataError(
                f"{lock_path} locks {name} at {', '.join(versions)}; constrain it to one version "
                "in pyproject.toml and run `uv lock`"
            )
        pins.append(f"{name}=={versions[0]}")
    return pins


def pinned_bentofile(bentofile: str | Path, lock_path: str | Path) -> dict[str, Any]:
    """bentofile.yaml with its Python packages pinned to uv.lock's versions."""
    with Path(bentofile).open(encoding="utf-8") as fh:
        spec = yaml.safe_load(fh)
    python = spec.setdefault("python", {})
    python["packages"] = pin(python.get("packages") or [], locked_versions(lock_path), lock_path)
    return spec


def build(tag: str, params: Params, shadow: str = "") -> str:
    """`bentoml build` with the exact model tag and uv.lock's versions; return the bento tag."""
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "bentofile.yaml"
        spec.write_text(yaml.safe_dump(pinned_bentofile(BENTOFILE, LOCKFILE), sort_keys=False))
        printed = commands.output(
            "bentoml",
            "build",
            BUILD_CONTEXT,
            "-f",
            str(spec),
            "-o",
            "tag",
            *bento_args(tag, params, shadow),
        )
    return printed.rpartition("__tag__:")[2].strip()


def main(argv: Sequence[str] | None = None) -> None:
    ap = cli.parser(__doc__)
    for name in PATH_ARGUMENTS:
        ap.add_argument(f"--{name}", help=f"default: paths.{name}")
    ap.add_argument("--no-build", action="store_true", help="import the model only")
    ap.add_argument("--tag-out", help="file to write the built bento's tag to")
    ap.add_argument("--shadow", help="model file or exact tag; default: serve.shadow_model")
    args = ap.parse_args(argv)
    params = load_params(args.params)
    model, train, valid, test, metrics = (
        getattr(args, name) or getattr(params.paths, name) for name in PATH_ARGUMENTS
    )
    if not Path(model).exists():
        raise DataError(f"{model}: no trained model; run `make repro` first.")
    splits = {"train": train, "valid": valid, "test": test}
    shadow = args.shadow if args.shadow is not None else params.serve.shadow_model
    shadow = shadow_tag(shadow, splits, None, params)  # before the model: a bad name fails fast
    tag = import_model(model, splits, metrics, params)
    print(f"model: {tag}")
    if shadow:
        print(f"shadow: {shadow}")
    if not args.no_build:
        bento = build(tag, params, shadow)
        print(f"bento: {bento}")
        if args.tag_out:
            Path(args.tag_out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.tag_out).write_text(f"{bento}\n", encoding="utf-8")
    sys.stdout.flush()


if __name__ == "__main__":
    cli.run(main)
