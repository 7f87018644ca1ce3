"""MLflow settings: where runs go, and finding the run that logged a model.

Settings come from the environment, with local defaults: `MLFLOW_TRACKING_URI` (default: a
SQLite file `mlflow.db` in the working directory) and `MLFLOW_EXPERIMENT_NAME` (default `tabml`).
Nothing is configured at import time.
"""

from __future__ import annotations

import math
import os
import urllib.error
import urllib.request
from typing import TYPE_CHECKING

from tabml.io import DataError
from tabml.params import TrackingParams

if TYPE_CHECKING:
    import mlflow

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
DEFAULT_EXPERIMENT = "tabml"
MODEL_HASH_TAG = "model_md5"


def tracking_uri() -> str:
    # An empty value (an unset repository variable in a workflow) means the default.
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def unanswered(uri: str, settings: TrackingParams) -> str | None:
    """Why the tracking server at `uri` is unusable, or None: a local store always is usable.

    MLflow's own client waits 120 s per request and retries 7 times; a server that does not
    answer its /health within `tracking.timeout_seconds` is reported at once instead."""
    if not uri.startswith(("http://", "https://")):
        return None
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=settings.timeout_seconds):
            return None
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):  # answers, behind authentication: MLflow's client handles it
            return None
        return f"answers HTTP {exc.code} on /health"
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"does not answer within {settings.timeout_seconds:g} s ({reason})"


def limit_requests(settings: TrackingParams) -> None:
    """Give MLflow's later requests `tracking.timeout_seconds` and `tracking.max_retries`
    (the MLFLOW_HTTP_REQUEST_* variables, when set, win)."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(math.ceil(settings.timeout_seconds)))
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", str(settings.max_retries))


def configure(settings: TrackingParams | None = None) -> str:
    """Point MLflow at the configured store and experiment; return the tracking URI.

    A tracking server that does not answer stops here, in one line, before anything is logged.
    """
    import mlflow

    uri = tracking_uri()
    limit_requests(settings or TrackingParams())
    problem = unanswered(uri, settings or TrackingParams())
    if problem:
        raise DataError(
            f"the MLflow tracking server {uri} (MLFLOW_TRACKING_URI) {problem}: start it, or "
            "unset MLFLOW_TRACKING_URI to use the local store (sqlite:///mlflow.db)."
        )
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
