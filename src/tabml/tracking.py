"""MLflow settings: where runs go, and finding the run that logged a model.

Settings come from the environment, with local defaults: `MLFLOW_TRACKING_URI` (default: a
SQLite file `mlflow.db` in the working directory) and `MLFLOW_EXPERIMENT_NAME` (default `tabml`).
Nothing is configured at import time.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import mlflow

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
DEFAULT_EXPERIMENT = "tabml"
MODEL_HASH_TAG = "model_md5"


def configure() -> str:
    """Point MLflow at the configured store and experiment; return the tracking URI."""
    import mlflow

    # An empty value (an unset repository variable in a workflow) means the default.
    uri = os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT)
    return uri


def find_run(model_md5: str) -> mlflow.entities.Run | None:
    """The newest run that logged the model with this content hash, if any."""
    import mlflow

    runs = mlflow.search_runs(
        filter_string=f"tags.{MODEL_HASH_TAG} = '{model_md5}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
        output_format="list",
    )
    return runs[0] if runs else None
