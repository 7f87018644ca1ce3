"""The served bento over real HTTP: answers, parity with the pipeline, identity, observability."""

from __future__ import annotations

import json
import time

import joblib
import mlflow
import numpy as np
import pandas as pd
import pytest

from tabml.io import file_md5
from tabml.params import load_params
from tabml.serving.inference import TOLERANCE
from tabml.serving.predlog import RESERVED, read_log

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(pipeline):
    model = joblib.load(pipeline.path / "models/model.joblib")
    test = pd.read_parquet(pipeline.path / "data/processed/test.parquet")
    return model, test, list(model.feature_names_in_), load_params(pipeline.path / "params.yaml")


def example(test: pd.DataFrame, features: list[str]) -> dict:
    """A real record to score: the first of the test split, its features only."""
    return records(test.head(1), features)[0]


def records(frame: pd.DataFrame, features: list[str]) -> list[dict]:
    return json.loads(frame[features].to_json(orient="records"))


def test_scores_one_client(service, trained):
    _, test, features, params = trained
    response = service.post("/score", json={"client": example(test, features)})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert set(answer) == {"probability", "decision", "model_version", "threshold"}
    assert 0 < answer["probability"] < 1
    assert answer["decision"] == (answer["probability"] >= params.base.threshold)
    assert answer["model_version"] == service.bento.model_tag
    assert answer["threshold"] == params.base.threshold


def test_batch_equals_the_pipeline_on_the_whole_test_split(service, trained):
    model, test, features, params = trained
    expected = model.predict_proba(test[features])[:, 1]
    got, decisions = [], []
    for start in range(0, len(test), params.serve.max_batch):
        chunk = records(test.iloc[start : start + params.serve.max_batch], features)
        response = service.post("/score_batch", json={"records": chunk})
        assert response.status_code == 200, response.text[:500]
        body = response.json()
        assert body["model_version"] == service.bento.model_tag
        assert len(body["probabilities"]) == len(body["decisions"]) == len(chunk)
        got += body["probabilities"]
        decisions += body["decisions"]
    got = np.array(got)
    assert len(got) == len(test)
    assert np.abs(got - expected).max() <= TOLERANCE
    clear = np.abs(expected - params.base.threshold) > TOLERANCE  # ties within float error
    np.testing.assert_array_equal(
        np.array(decisions)[clear], (expected >= params.base.threshold)[clear]
    )


def test_identity_names_model_run_commit_data_and_metrics(service, pipeline, trained):
    identity = service.post("/identity").json()
    md5 = file_md5(pipeline.path / "models/model.joblib")
    assert identity["model_tag"] == service.bento.model_tag == f"tabml:{md5}"
    assert identity["model_version"] == md5
    assert identity["runtime"] == "onnx"
    assert identity["features"] == trained[2]
    mlflow.set_tracking_uri(pipeline.tracking_uri)
    run = mlflow.search_runs(
        experiment_names=["tabml"], filter_string=f"tags.model_md5 = '{md5}'", output_format="list"
    )[0]
    assert identity["mlflow_run_id"] == run.info.run_id
    assert (
        identity["git_commit"]
        == run.data.tags["git_commit"]
        == pipeline.run("git", "rev-parse", "HEAD").stdout.strip()
    )
    for split in ("train", "valid", "test"):
        path = pipeline.path / f"data/processed/{split}.parquet"
        assert identity["data"][f"data.{split}.md5"] == file_md5(path)
    metrics = json.loads((pipeline.path / "reports/metrics.json").read_text())
    assert identity["metrics"]["test_roc_auc"] == pytest.approx(metrics["test"]["roc_auc"])
    assert identity["metrics"]["train_roc_auc"] == pytest.approx(run.data.metrics["train_roc_auc"])


def test_health_endpoints_and_metrics(service, trained):
    for path in ("/livez", "/readyz", "/healthz"):
        assert service.client.get(path).status_code == 200, path
    service.post("/score", json={"client": example(trained[1], trained[2])})
    text = service.client.get("/metrics").text
    assert 'tabml_predictions_total{decision="' in text
    assert "tabml_score_bucket" in text
    assert f'model_tag="{service.bento.model_tag}"' in text
    assert "bentoml_service_request_total" in text


def metric(service, name: str, label: str) -> float:
    for line in service.client.get("/metrics").text.splitlines():
        if line.startswith(f"{name}{{") and label in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_prediction_log_holds_each_scored_record(service, trained):
    _, test, features, _ = trained
    rows = records(test.iloc[100:125], features)
    answer = service.post("/score_batch", json={"records": rows}).json()
    wanted = set(answer["probabilities"])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        log = read_log(service.log_dir)
        if wanted <= set(log["probability"]):
            break
        time.sleep(0.5)
    logged = log[log["probability"].isin(wanted)]
    assert len(logged) >= len(rows)
    assert set(logged["model_version"]) == {service.bento.model_tag}
    assert list(logged.columns) == [*RESERVED, *features]
    assert logged["latency_ms"].gt(0).all()
    assert logged["shadow_model_version"].isna().all()  # the session's bento has no shadow
    assert logged["shadow_probability"].isna().all()
    assert str(logged["time"].dtype) == "datetime64[us, UTC]"
    logged_rows = json.loads(logged[features].to_json(orient="records"))
    assert all(row in logged_rows for row in rows)


def test_openapi_example_is_the_first_record_of_the_test_split(service, trained):
    _, test, features, _ = trained

    def examples(node):
        if isinstance(node, dict):
            if isinstance(node.get("example"), dict):
                yield node["example"]
            for value in node.values():
                yield from examples(value)
        elif isinstance(node, list):
            for value in node:
                yield from examples(value)

    document = service.client.get("/docs.json").json()
    expected = records(test.head(1), features)[0]
    assert expected in list(examples(document))
