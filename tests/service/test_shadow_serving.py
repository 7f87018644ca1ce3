"""A shadow model over real HTTP: a bento built with `--shadow`, its scores in the log beside the
served model's, `make shadow-report` on that log; and a full shadow queue that drops and counts
without failing a request."""

from __future__ import annotations

import json
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

import httpx
import joblib
import pandas as pd
import pytest
from testkit.server import free_port, running

from tabml.io import file_md5, read_json, read_parquet
from tabml.params import load_params
from tabml.serving.predlog import read_log
from tabml.train import train

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shadow_file(pipeline, tmp_path_factory) -> Path:
    """A different model on the same splits: the other estimator, trained here."""
    params = load_params(pipeline.path / "params.yaml")
    other = "logistic_regression" if params.train.estimator != "logistic_regression" else (
        "hist_gradient_boosting")  # fmt: skip
    params = replace(params, train=replace(params.train, estimator=other))
    model, _ = train(
        read_parquet(pipeline.path / params.paths.train),
        read_parquet(pipeline.path / params.paths.valid),
        params,
    )
    path = tmp_path_factory.mktemp("shadow") / "shadow.joblib"
    joblib.dump(model, path)
    return path


def own_home(bento, where: Path) -> dict[str, str]:
    """A BentoML home of its own (a server clears the Prometheus files of its home at start),
    holding the session's model."""
    shutil.copytree(Path(bento.env["BENTOML_HOME"]) / "models", where / "models")
    return {**bento.env, "BENTOML_HOME": str(where), "TABML_PREDICTION_LOG_ROTATE_SECONDS": "1"}


def rows(pipeline, n: int, start: int = 0) -> list[dict]:
    features = list(joblib.load(pipeline.path / "models/model.joblib").feature_names_in_)
    test = pd.read_parquet(pipeline.path / "data/processed/test.parquet")
    return json.loads(test[features].iloc[start : start + n].to_json(orient="records"))


def metric(client: httpx.Client, name: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(f"{name} ") or line.startswith(f"{name}{{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def wait_for(log_dir: Path, n: int) -> pd.DataFrame:
    deadline = time.monotonic() + 30
    while len(log := read_log(log_dir)) < n:
        assert time.monotonic() < deadline, f"{len(log)} of {n} records in the log"
        time.sleep(0.3)
    return log


def test_a_shadow_bento_logs_both_models_and_the_report_compares_them(
    pipeline, bento, shadow_file, tmp_path
):
    env = own_home(bento, tmp_path / "bentoml")
    built = pipeline.run(sys.executable, "-m", "tabml.bento", "--shadow", str(shadow_file),
                         env=env).stdout  # fmt: skip
    lines = dict(line.split(": ", 1) for line in built.splitlines() if ": " in line)
    shadow_tag = f"tabml:{file_md5(shadow_file)}"
    assert (lines["model"], lines["shadow"]) == (bento.model_tag, shadow_tag)
    log_dir = tmp_path / "log"
    port = free_port()
    cmd = ["bentoml", "serve", lines["bento"], "--host", "127.0.0.1", "--port", str(port)]
    batch = rows(pipeline, 300)
    with (
        running(cmd, port, tmp_path / "server.log", env={**env, "TABML_PREDICTION_LOG":
                str(log_dir)}, cwd=pipeline.path) as server,
        httpx.Client(base_url=server.url, timeout=60) as client,
    ):  # fmt: skip
        assert client.post("/identity").json()["shadow_model_tag"] == shadow_tag
        for record in batch[:20]:
            answer = client.post("/score", json={"client": record})
            assert answer.status_code == 200 and answer.json()["model_version"] == bento.model_tag
        assert client.post("/score_batch", json={"records": batch[20:]}).status_code == 200
        log = wait_for(log_dir, len(batch))
        assert metric(client, "tabml_shadow_scored_total") == len(batch)
        assert metric(client, "tabml_shadow_dropped_total") == 0
        assert metric(client, "tabml_shadow_latency_seconds_count") > 0
    assert set(log["model_version"]) == {bento.model_tag}
    assert set(log["shadow_model_version"]) == {shadow_tag}
    assert log["shadow_probability"].between(0, 1).all()
    assert (log["shadow_probability"] != log["probability"]).any()  # a different model
    expected = joblib.load(shadow_file).predict_proba(pd.DataFrame(batch))[:, 1]
    assert sorted(log["shadow_probability"]) == pytest.approx(sorted(expected), abs=1e-6)
    assert log["shadow_latency_ms"].gt(0).all() and log["latency_ms"].gt(0).all()
    (pipeline.path / ".venv").mkdir(exist_ok=True)
    (pipeline.path / ".venv/.synced").touch()  # the copy runs in this environment
    out = tmp_path / "report"
    done = pipeline.run("make", "--no-print-directory", "shadow-report",
                        f"PREDICTION_LOG={log_dir}", f"SHADOW_OUT={out}")  # fmt: skip
    report = read_json(out / "shadow.json")
    assert report["shadow_scored"] == len(batch)
    assert (report["model_version"], report["shadow_model_version"]) == (
        bento.model_tag,
        shadow_tag,
    )
    agree = (log["decision"] == log["shadow_decision"].astype(bool)).mean()
    assert report["agreement"] == pytest.approx(agree)
    assert f"{agree:.1%}" in done.stdout


def test_a_full_shadow_queue_drops_and_counts_without_failing_requests(
    pipeline, bento, shadow_file, tmp_path
):
    env = own_home(bento, tmp_path / "bentoml")
    imported = pipeline.run(sys.executable, "-m", "tabml.bento", "--shadow", str(shadow_file),
                            "--no-build", env=env).stdout  # fmt: skip
    shadow_tag = imported.split("shadow: ")[1].strip()
    log_dir = tmp_path / "log"
    port = free_port()
    # The service from source, with a queue of one record: a batch of more never fits.
    cmd = ["bentoml", "serve", "tabml.service:Scorer", "--host", "127.0.0.1", "--port", str(port),
           f"--arg=model_tag={bento.model_tag}", f"--arg=shadow_model_tag={shadow_tag}",
           "--arg=shadow_queue=1", "--arg=workers=1"]  # fmt: skip
    batch = rows(pipeline, 40, start=500)
    with (
        running(cmd, port, tmp_path / "server.log", env={**env, "TABML_PREDICTION_LOG":
                str(log_dir)}, cwd=pipeline.path / "src") as server,
        httpx.Client(base_url=server.url, timeout=60) as client,
    ):  # fmt: skip
        for start in range(0, 40, 4):
            answer = client.post("/score_batch", json={"records": batch[start : start + 4]})
            assert answer.status_code == 200, answer.text
            assert len(answer.json()["probabilities"]) == 4
        assert client.post("/score", json={"client": batch[0]}).status_code == 200
        log = wait_for(log_dir, 41)
        assert metric(client, "tabml_shadow_dropped_total") == 40
        assert metric(client, "tabml_shadow_scored_total") == 1
    dropped = log[log["shadow_probability"].isna()]
    assert len(dropped) == 40 and set(dropped["shadow_model_version"]) == {shadow_tag}
    assert log["probability"].notna().all()  # every record answered and logged
