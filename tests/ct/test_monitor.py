"""`make monitor` on the trained pipeline: windows of the declared data, and the prediction log
written by the running service."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import joblib
import numpy as np
import pandas as pd
import pytest
from testkit.declared import category_feature

from tabml.io import read_json
from tabml.monitor import EXIT_DRIFT
from tabml.monitoring import Reference, assess, score_profile
from tabml.serving.predlog import read_log
from tabml.train import score

pytestmark = pytest.mark.slow

REFERENCE = "data/reference/profile.json"


def monitor(pipeline, out, *args, env=None):
    cmd = [
        sys.executable, "-m", "tabml.monitor", "--model", "models/model.joblib",
        "--reference", REFERENCE, "--metrics", "reports/metrics.json", "--out", str(out), *args,
    ]  # fmt: skip
    return subprocess.run(
        cmd, cwd=pipeline.path, env=env or pipeline.env, capture_output=True, text=True
    )


def test_no_alarm_on_the_reference_window_itself(pipeline, params, tmp_path):
    done = monitor(pipeline, tmp_path, "--start", "0", "--stop", str(params.drift.reference_stop))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "drift=false" in done.stdout.splitlines()
    result = read_json(tmp_path / "monitor.json")
    assert result["drift"] is False and result["drifted_features"] == []
    assert max(row["psi"] for row in result["features"]) < 1e-3
    assert result["score"]["psi"] < 1e-3
    # On its own training rows the model does at least as well as on its test split.
    assert result["performance"]["roc_auc_drop"] < 0


def test_no_alarm_on_a_random_sample_of_the_reference(pipeline, params, data):
    model = joblib.load(pipeline.path / "models/model.joblib")
    profile = read_json(pipeline.path / REFERENCE)
    reference_rows = data.iloc[profile["start"] : profile["stop"]]
    ref = Reference(profile["columns"], score_profile(score(model, reference_rows)))
    for seed in range(3):
        sample = reference_rows.sample(2000, random_state=seed)
        result = assess(sample, score(model, sample), None, ref, model.feature_names_in_, params)
        assert result["drift"] is False, result["reasons"]
        assert max(row["psi"] for row in result["features"]) < 0.02


def post_and_wait(service, rows: pd.DataFrame, features: list[str]) -> str:
    """Send `rows` to /score_batch; return the time before, once the log holds them all."""
    since = pd.Timestamp.now(tz="UTC").isoformat()
    records = json.loads(rows[features].to_json(orient="records"))
    response = service.post("/score_batch", json={"records": records})
    assert response.status_code == 200, response.text[:500]
    deadline = time.monotonic() + 60
    while True:  # files close (and become readable) a second after they open
        logged = read_log(service.log_dir)
        if not logged.empty and (logged["time"] >= pd.Timestamp(since)).sum() >= len(rows):
            return since
        assert time.monotonic() < deadline, "the service did not log the records"
        time.sleep(0.5)


def test_monitor_reads_the_prediction_log_of_the_running_service(service, pipeline, data,
                                                                 params, tmp_path):  # fmt: skip
    model = joblib.load(pipeline.path / "models/model.joblib")
    features = list(model.feature_names_in_)
    reference = data.iloc[: params.drift.reference_stop]
    since = post_and_wait(service, reference.sample(2000, random_state=1), features)
    done = monitor(pipeline, tmp_path / "calm", "--log", str(service.log_dir), "--since", since)
    assert done.returncode == 0, done.stdout + done.stderr
    calm = read_json(tmp_path / "calm/monitor.json")
    assert calm["window"]["kind"] == "prediction log" and calm["rows"] == 2000
    assert calm["window"]["model_version"] == service.bento.model_tag
    assert calm["performance"] is None  # the log holds no labels

    # A shifted population: every row takes the reference's rarest category of one feature.
    name, _ = category_feature(params, drifting=True)
    rarest = reference[name].value_counts().index[-1]
    late = reference.sample(3000, random_state=2).assign(**{name: rarest})
    since = post_and_wait(service, late, features)
    done = monitor(pipeline, tmp_path / "late", "--log", str(service.log_dir), "--since", since)
    assert done.returncode == EXIT_DRIFT, done.stdout + done.stderr
    result = read_json(tmp_path / "late/monitor.json")
    assert result["rows"] == len(late)
    assert name in result["drifted_features"]
    # The scores the service logged are the model's.
    logged = read_log(service.log_dir)
    logged = logged[logged["time"] >= pd.Timestamp(since)]
    np.testing.assert_allclose(
        np.sort(logged["probability"]), np.sort(score(model, late)), atol=1e-5
    )
