"""Where the retraining's production model comes from: the MLflow alias, when there is one."""

from __future__ import annotations

import joblib
import numpy as np
import pytest

from tabml import production_model, retrain
from tabml.dataset import feature_columns
from tabml.io import read_json
from tabml.predict import labels, score
from tabml.train import SKOPS_TRUSTED_TYPES, build_pipeline

pytestmark = pytest.mark.slow  # an MLflow store with a model registry


def test_production_model_is_the_mlflow_alias_when_the_store_has_one(
    root, params, tiny, tmp_path, monkeypatch
):
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)  # the store's artifacts land here
    model = build_pipeline(tiny, params).fit(tiny[feature_columns(params)], labels(tiny, params))
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("tabml")  # not an experiment another test left active in this process
    with mlflow.start_run():
        mlflow.sklearn.log_model(
            model, name="model", registered_model_name="tabml",
            skops_trusted_types=SKOPS_TRUSTED_TYPES,
        )  # fmt: skip
    assert production_model.from_registry("tabml", tmp_path) is None, "no alias yet"
    mlflow.MlflowClient().set_registered_model_alias("tabml", "production", "1")
    retrain.main(["--params", str(root / "params.yaml"), "production", "--out", "prod"])
    info = read_json(tmp_path / "prod/production.json")
    assert info["source"] == "MLflow model tabml@production (version 1)"
    assert info["train_rows"] is None  # unknown: the pull request body says so
    fetched = joblib.load(tmp_path / "prod/model.joblib")
    np.testing.assert_allclose(score(fetched, tiny), score(model, tiny))
