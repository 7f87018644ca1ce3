"""`make serve` logs predictions where `make monitor PREDICTION_LOG=logs/predictions` reads them:
serve.prediction_log in the project, not the bento's own directory in the BentoML store."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import httpx
import joblib
import pandas as pd
import pytest
from testkit.server import free_port, running

from tabml.io import read_json
from tabml.params import load_params
from tabml.serving.predlog import read_log

pytestmark = pytest.mark.slow


def test_make_serve_logs_where_make_monitor_reads(pipeline, bento, tmp_path):
    # The copy runs in this environment: `make setup` has nothing to do there.
    (pipeline.path / ".venv").mkdir(exist_ok=True)
    (pipeline.path / ".venv/.synced").touch()
    params = load_params(pipeline.path / "params.yaml")
    features = list(joblib.load(pipeline.path / "models/model.joblib").feature_names_in_)
    test = pd.read_parquet(pipeline.path / "data/processed/test.parquet")
    rows = json.loads(test[features].head(params.monitor.min_rows + 50).to_json(orient="records"))
    # A BentoML home of its own: a server clears the Prometheus files of its home when it
    # starts, which would reset the counters of the session's service. The model is copied in.
    home = tmp_path / "bentoml"
    shutil.copytree(Path(bento.env["BENTOML_HOME"]) / "models", home / "models")
    env = {k: v for k, v in bento.env.items() if k != "TABML_PREDICTION_LOG"}
    env["BENTOML_HOME"] = str(home)
    env["TABML_PREDICTION_LOG_ROTATE_SECONDS"] = "1"  # closed (readable) files within seconds
    default = pipeline.path / params.serve.prediction_log
    port = free_port()
    cmd = ["make", "--no-print-directory", "serve", f"PORT={port}"]
    with (
        running(cmd, port, tmp_path / "serve.log", env=env, cwd=pipeline.path, timeout=600) as up,
        httpx.Client(base_url=up.url, timeout=60) as client,
    ):
        answer = client.post("/score_batch", json={"records": rows})
        assert answer.status_code == 200, answer.text
        deadline = time.monotonic() + 60
        while default.is_dir() and len(read_log(default)) < len(rows):
            assert time.monotonic() < deadline, "no closed log file in serve.prediction_log"
            time.sleep(0.5)
        assert default.is_dir(), up.log()[-3000:]
    assert f"Prediction log: {default.resolve()}" in up.log()
    out = tmp_path / "monitor"
    pipeline.run(
        "make", "--no-print-directory", "monitor", f"PREDICTION_LOG={params.serve.prediction_log}",
        f"MONITOR_OUT={out}", "FAIL_ON_DRIFT=false",
    )  # fmt: skip
    window = read_json(out / "monitor.json")["window"]
    assert window["kind"] == "prediction log" and window["rows"] == len(rows)
    assert window["model_version"] == bento.model_tag
