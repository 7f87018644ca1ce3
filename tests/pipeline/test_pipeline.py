"""The pipeline end to end with `dvc repro`, in a fresh copy of the project."""

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import joblib
import pandas as pd
import pytest
import yaml
from testkit.dvcfile import resolve_templates

from tabml.dataset import feature_columns
from tabml.evaluate import compute_metrics
from tabml.ingest import normalize_name
from tabml.params import load_params

pytestmark = pytest.mark.slow


def test_outputs_of_every_stage_exist(pipeline):
    dvc = yaml.safe_load(resolve_templates(pipeline.path))
    for stage in dvc["stages"].values():
        for out in stage.get("outs", []) + stage.get("metrics", []) + stage.get("plots", []):
            path = next(iter(out)) if isinstance(out, dict) else out
            assert (pipeline.path / path).exists(), path
    for plot in dvc["plots"]:
        (definition,) = plot.values()
        for path in definition["y"]:
            assert json.loads((pipeline.path / path).read_text()), path


def test_metrics_hold_every_metric_for_both_splits(pipeline, params):
    metrics = json.loads((pipeline.path / "reports/metrics.json").read_text())
    expected = set(
        compute_metrics(pd.Series([0, 1]).to_numpy(), pd.Series([0.2, 0.8]).to_numpy(), params)
    )
    assert set(metrics) == {"valid", "test"}
    for split in metrics.values():
        assert set(split) == expected


def test_fresh_clone_reproduces_the_committed_lock_and_metrics(pipeline, root):
    # The copy was committed before `dvc repro`: any difference is a change repro made.
    diff = pipeline.run("git", "diff", "--stat", "--", "dvc.lock", "reports").stdout
    assert diff == "", f"dvc repro changed committed files; run `dvc repro` and commit:\n{diff}"
    assert "up to date" in pipeline.run("dvc", "status").stdout


def test_second_repro_does_nothing(pipeline):
    done = pipeline.run("dvc", "repro")
    assert "Running stage" not in done.stdout
    assert "Data and pipelines are up to date" in done.stdout


def test_mlflow_run_holds_model_signature_metrics_and_lineage(pipeline):
    import mlflow
    from mlflow.tracking import MlflowClient

    client = MlflowClient(pipeline.tracking_uri)
    (run,) = client.search_runs(
        [client.get_experiment_by_name("tabml").experiment_id], max_results=10
    )
    head = pipeline.run("git", "rev-parse", "HEAD").stdout.strip()
    assert run.data.tags["git_commit"] == head
    lock = yaml.safe_load((pipeline.path / "dvc.lock").read_text())
    train_deps = {d["path"]: d["md5"] for d in lock["stages"]["train"]["deps"]}
    assert run.data.tags["data.train.md5"] == train_deps["data/processed/train.parquet"]
    # In a fresh clone, train rebuilds the identical model and DVC skips evaluate (its committed
    # outputs already match): the run holds train's metrics, reports/metrics.json the rest.
    metrics = json.loads((pipeline.path / "reports/metrics.json").read_text())
    assert run.data.metrics["valid_roc_auc"] == pytest.approx(metrics["valid"]["roc_auc"])
    assert run.data.params["train.estimator"] == "hist_gradient_boosting"

    mlflow.set_tracking_uri(pipeline.tracking_uri)
    model_uri = f"runs:/{run.info.run_id}/model"
    info = mlflow.models.get_model_info(model_uri)
    assert info.signature is not None
    inputs = info.signature.inputs.input_names()
    assert inputs == feature_columns(load_params(pipeline.path / "params.yaml"))
    assert not set(inputs) & set(load_params(pipeline.path / "params.yaml").train.drop_columns)
    loaded = mlflow.sklearn.load_model(model_uri)
    test = pd.read_parquet(pipeline.path / "data/processed/test.parquet")
    local = joblib.load(pipeline.path / "models/model.joblib")
    features = list(local.feature_names_in_)
    pd.testing.assert_frame_equal(
        pd.DataFrame(loaded.predict_proba(test[features])),
        pd.DataFrame(local.predict_proba(test[features])),
    )


def test_bad_source_stops_before_train_and_writes_nothing(workspace, params):
    source = workspace.path / params.ingest.source
    frame = pd.read_csv(source, sep=params.ingest.sep)
    dropped = next(c for c in frame.columns if normalize_name(c) in feature_columns(params))
    frame.drop(columns=dropped).to_csv(source, sep=params.ingest.sep, index=False)
    done = workspace.run("dvc", "repro", check=False)
    assert done.returncode != 0
    assert normalize_name(dropped) in done.stderr and "column_in_dataframe" in done.stderr
    assert "failed to reproduce 'validate'" in done.stderr
    for path in (
        "data/validated/data.parquet",
        "data/processed/train.parquet",
        "models/model.joblib",
    ):
        assert not (workspace.path / path).exists(), path
    report = json.loads((workspace.path / "reports/validation.json").read_text())
    assert report["passed"] is False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def mlflow_server(tmp_path):
    """A real `mlflow server` on 127.0.0.1, stopped after the test."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{tmp_path / 'server.db'}",
            "--artifacts-destination",
            str(tmp_path / "artifacts"),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("mlflow server did not start") from None
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_train_and_evaluate_log_to_a_real_tracking_server(pipeline, mlflow_server, tmp_path):
    from mlflow.tracking import MlflowClient

    env = {**pipeline.env, "MLFLOW_TRACKING_URI": mlflow_server}
    model = tmp_path / "model.joblib"
    data = pipeline.path / "data/processed"
    pipeline.run(
        sys.executable,
        "-m",
        "tabml.train",
        "--train",
        str(data / "train.parquet"),
        "--valid",
        str(data / "valid.parquet"),
        "--model",
        str(model),
        env=env,
    )
    pipeline.run(
        sys.executable,
        "-m",
        "tabml.evaluate",
        "--model",
        str(model),
        "--valid",
        str(data / "valid.parquet"),
        "--test",
        str(data / "test.parquet"),
        "--metrics",
        str(tmp_path / "metrics.json"),
        "--plots",
        str(tmp_path / "plots"),
        env=env,
    )
    client = MlflowClient(mlflow_server)
    runs = client.search_runs([client.get_experiment_by_name("tabml").experiment_id])
    assert len(runs) == 1, "evaluate must add to the run that train started"
    (run,) = runs
    assert {"valid_roc_auc", "test_roc_auc", "test_profit_top_k"} <= set(run.data.metrics)
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"metrics.json", "plots"} <= artifacts
    assert Path(model).exists()
