"""The model in production before retraining changes anything (`make production-model`).

The MLflow model `serve.model_name` at alias `production` when `MLFLOW_TRACKING_URI` names a
store that has one, otherwise the model the checked-out `dvc.lock` records, restored from the DVC
cache or reproduced (`dvc repro train`: the pipeline is deterministic) and checked against the
lock's md5. `python -m tabml.retrain production` is the entry.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

import joblib

from tabml import commands, lineage
from tabml.ingest import read_source
from tabml.io import DataError, file_md5, write_json
from tabml.params import Params

log = logging.getLogger(__name__)

OUTPUT_TAIL = 2000  # how much of each of `dvc repro`'s outputs a failure shows


def training_rows(start: int, rows: int, params: Params) -> tuple[int, int]:
    """Source rows the time split trains on, within a window of `rows` rows from `start`."""
    if params.split.strategy != "time":
        return start, start + rows  # a random split trains on rows from the whole window
    cfg = params.split
    return start, start + rows - round(rows * cfg.valid_size) - round(rows * cfg.test_size)


def from_registry(name: str, out: Path) -> dict[str, Any] | None:
    """The model at alias `production` of the MLflow registry, if the store has one."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from tabml import tracking

    tracking.configure()
    try:
        version = mlflow.MlflowClient().get_model_version_by_alias(name, lineage.PRODUCTION)
    except MlflowException as exc:
        log.info("no MLflow model %s@%s (%s); using dvc.lock's", name, lineage.PRODUCTION, exc)
        return None
    model = mlflow.sklearn.load_model(f"models:/{name}@{lineage.PRODUCTION}")
    joblib.dump(model, out / "model.joblib")
    return {"source": f"MLflow model {name}@{lineage.PRODUCTION} (version {version.version})",
            "train_rows": None}  # fmt: skip


def from_lock(params: Params, out: Path) -> dict[str, Any]:
    """The model the checked-out dvc.lock records: from the DVC cache, or reproduced."""
    model = params.paths.model
    expected = lineage.locked_md5(model)
    # `dvc repro train` checks the model out of the cache when it is there, trains otherwise.
    done = commands.run("dvc", "repro", "train", check=False)
    if done.returncode != 0:
        raise DataError(
            f"`dvc repro train` failed:\n{done.stdout[-OUTPUT_TAIL:]}{done.stderr[-OUTPUT_TAIL:]}"
        )
    got = file_md5(model)
    if got != expected:
        raise DataError(
            f"reproducing the committed model gave md5 {got}; dvc.lock records {expected}. "
            "The production model cannot be rebuilt exactly: fix the pipeline first."
        )
    shutil.copy2(model, out / "model.joblib")
    cached = "is cached" in done.stdout
    rows = len(read_source(params.ingest.source, params.ingest.sep, params.ingest.database))
    start = params.ingest.start
    stop = min(rows, params.ingest.stop or rows)
    return {
        "source": f"the model dvc.lock records at commit {lineage.commit()[:12]} "
        f"({'restored from the DVC cache' if cached else 'reproduced, md5 checked'})",
        "train_rows": training_rows(start, stop - start, params),
    }


def fetch(params: Params, out: Path) -> dict[str, Any]:
    """Write the production model to `out/model.joblib` and what it is to `production.json`."""
    out.mkdir(parents=True, exist_ok=True)
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        # An unset repository variable arrives as an empty string: use the local default.
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    name = lineage.model_name(params)
    info = (from_registry(name, out) if os.environ.get("MLFLOW_TRACKING_URI") else None) or (
        from_lock(params, out)
    )
    info["md5"] = file_md5(out / "model.joblib")
    write_json(info, out / "production.json")
    return info
