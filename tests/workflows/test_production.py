"""The report next to the model behind the MLflow `production` alias, on a real server."""

from __future__ import annotations

import json

import pytest

from tabml import report

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def production(mlflow_server, root) -> dict:
    """A registered model version with alias `production`, whose run logged known metrics."""
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    committed = json.loads((root / "reports/metrics.json").read_text())
    logged = {f"{s}_{k}": v - 0.02 for s, values in committed.items() for k, v in values.items()}
    client = MlflowClient(mlflow_server)
    experiment = client.create_experiment("tabml")
    run = client.create_run(experiment)
    client.log_batch(run.info.run_id, metrics=[Metric(k, v, 0, 0) for k, v in logged.items()])
    client.create_registered_model("bank")
    # The report reads only the version's run: the model files themselves are not needed here.
    version = client.create_model_version(
        "bank", f"runs:/{run.info.run_id}/model", run_id=run.info.run_id
    )
    client.set_registered_model_alias("bank", "production", version.version)
    return {"metrics": committed, "version": version.version}


def test_report_compares_with_the_production_model(production, mlflow_server, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    text = report.production_section(production["metrics"], "bank")
    assert f"Model `bank` version {production['version']} (alias `production`" in text
    roc = production["metrics"]["test"]["roc_auc"]
    row = next(line for line in text.splitlines() if line.startswith("| test.roc_auc |"))
    assert row == f"| test.roc_auc | {roc - 0.02:.4f} | {roc:.4f} | +0.0200 |"


def test_a_missing_model_or_alias_is_reported_not_raised(production, mlflow_server, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    text = report.production_section(production["metrics"], "no-such-model")
    assert text.startswith(f"No comparison with `no-such-model@production` at {mlflow_server}:")
