"""`make bento`: import the pipeline's model into the BentoML store, then build the bento.

python -m tabml.bento --model models/model.joblib --train TRAIN --valid VALID --test TEST \
    --metrics reports/metrics.json [--no-build]

The model tag is `serve.model_name:<md5 of the model file>`: the hash `dvc.lock` records and
MLflow's `model_md5` tag, so the tag is exact, reproducible and leads back to the run. The
stored model carries its lineage (run id, commit, data hashes, metrics) for `/identity`.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import joblib

from tabml import cli, tracking
from tabml.io import DataError, file_md5, read_json, read_parquet
from tabml.params import Params, load_params
from tabml.serving.inference import export

log = logging.getLogger(__name__)

BENTOFILE = "bentofile.yaml"
BUILD_CONTEXT = "src"  # the bento's source root: `tabml` imports as in the project


def lineage(model_md5: str, data: dict[str, str], metrics_path: str | None) -> dict[str, Any]:
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


def import_model(args: Any, params: Params) -> str:
    """Put the model in the BentoML store (once per content hash); return its exact tag."""
    import bentoml
    from bentoml.exceptions import NotFound

    model_md5 = file_md5(args.model)
    tag = f"{params.serve.model_name}:{model_md5}"
    try:
        bentoml.models.get(tag)
        log.info("model %s is already in the BentoML store", tag)
        return tag
    except NotFound:
        pass
    pipeline = joblib.load(args.model)
    holdout = read_parquet(args.test)
    data = {
        f"data.{name}.md5": file_md5(getattr(args, name)) for name in ("train", "valid", "test")
    }
    meta = {
        "features": list(pipeline.feature_names_in_),
        "threshold": params.base.threshold,
        "positive_label": params.base.positive_label,
        "model_md5": model_md5,
        **lineage(model_md5, data, args.metrics),
    }
    with tempfile.TemporaryDirectory() as tmp:
        facts = export(pipeline, holdout, Path(tmp))
        with bentoml.models.create(tag, metadata={**meta, **facts}) as model:
            for path in Path(tmp).iterdir():
                (Path(model.path) / path.name).write_bytes(path.read_bytes())
    log.info("imported %s (runtime %s)", tag, facts["runtime"])
    return tag


def bento_args(tag: str, params: Params) -> list[str]:
    """`--arg` options of `bentoml build/serve`: the model tag and the `serve` section."""
    settings = {k: v for k, v in asdict(params.serve).items() if k != "model_name"}
    return [f"--arg=model_tag={tag}", *(f"--arg={k}={v}" for k, v in settings.items())]


def build(tag: str, params: Params) -> str:
    """`bentoml build` with the exact model tag; return the bento tag."""
    cmd = [
        "bentoml",
        "build",
        BUILD_CONTEXT,
        "-f",
        BENTOFILE,
        "-o",
        "tag",
        *bento_args(tag, params),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise DataError(f"bentoml build failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout.strip().rpartition("__tag__:")[2].strip()


def main(argv: Sequence[str] | None = None) -> None:
    ap = cli.parser(__doc__)
    for name in ("model", "train", "valid", "test"):
        ap.add_argument(f"--{name}", required=True)
    ap.add_argument("--metrics", help="evaluation metrics JSON (reports/metrics.json)")
    ap.add_argument("--no-build", action="store_true", help="import the model only")
    args = ap.parse_args(argv)
    params = load_params(args.params)
    if not Path(args.model).exists():
        raise DataError(f"{args.model}: no trained model; run `make repro` first.")
    tag = import_model(args, params)
    print(f"model: {tag}")
    if not args.no_build:
        print(f"bento: {build(tag, params)}")
    sys.stdout.flush()


if __name__ == "__main__":
    cli.run(main)
