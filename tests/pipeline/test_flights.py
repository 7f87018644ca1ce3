"""The second example, NYC flights 2013, adopted with `make init` in a copy of the project and
run through the pipeline, the report, the served model and the monitor with no hand edit."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
import yaml
from testkit.server import free_port, running
from testkit.workspace import Workspace, copy_project

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]

# Known only after departure: they describe the outcome, not the flight as booked.
LEAK = "dep_time,dep_delay,arr_time,arr_delay,air_time"
EVERY = 4  # a quarter of the year's flights, spread over all of it


@pytest.fixture(scope="module")
def flights(tmp_path_factory):
    ws = Workspace(copy_project(ROOT, tmp_path_factory.mktemp("flights") / "project"))
    # The project's environment, not a new one: `-o` below keeps make from syncing it, and
    # PYTHONPATH makes the copy's own code (its rewritten schema) the one that runs.
    (ws.path / ".venv").symlink_to(ROOT / ".venv")
    env = {**ws.env, "PYTHONPATH": str(ws.path / "src")}
    ws.run("python", "examples/nycflights13/prepare.py", "flights.csv.gz", str(EVERY), env=env)
    done = ws.run(
        "make", "-o", ".venv/.synced", "init", "SOURCE=flights.csv.gz", "TARGET=late",
        "POSITIVE=yes", "TIME=time_hour", f"LEAK={LEAK}", env=env,
    )  # fmt: skip
    ws.run("git", "checkout", "-q", "-b", "flights")
    ws.run("git", "add", "-A")
    ws.run("git", "-c", "user.name=t", "-c", "user.email=t@localhost", "commit", "-qm", "adopt")
    return ws, env, done.stdout


def test_init_declares_the_flights_and_the_pipeline_runs(flights):
    ws, _, out = flights
    assert "Review, in order:" in out and "test.roc_auc" in out
    params = yaml.safe_load((ws.path / "params.yaml").read_text())
    assert params["base"]["target"] == "late" and params["base"]["positive_label"] == "yes"
    drop = set(params["train"]["drop_columns"])
    assert set(LEAK.split(",")) | {"time_hour", "tailnum"} <= drop
    schema = (ws.path / "src/tabml/schema.py").read_text()
    gaps = {
        m.group(1)
        for m in re.finditer(r"(\w+): Series\[\w+\] = pa\.Field\([^)]*nullable=True", schema)
    }
    assert {"dep_time", "dep_delay", "arr_time", "arr_delay", "air_time", "tailnum"} <= gaps
    metrics = json.loads((ws.path / "reports/metrics.json").read_text())
    assert metrics["test"]["roc_auc"] > 0.5
    assert not (ws.path / "data/raw/bank-additional-full.csv.gz").exists()
    ws.run("dvc", "status", "--quiet", env=flights[1])  # nothing left to run


def test_report_against_the_example_branch(flights):
    ws, env, _ = flights
    ws.run("make", "-o", ".venv/.synced", "report", "BASE=main", env=env)
    report = (ws.path / "build/report/report.md").read_text()
    assert "roc_auc" in report


def test_served_model_scores_a_flight(flights, tmp_path):
    ws, env, _ = flights
    env = {**env, "BENTOML_HOME": str(tmp_path / "bentoml")}
    done = ws.run(
        "python", "-m", "tabml.bento", "--model", "models/model.joblib",
        "--train", "data/processed/train.parquet", "--valid", "data/processed/valid.parquet",
        "--test", "data/processed/test.parquet", "--metrics", "reports/metrics.json", env=env,
    )  # fmt: skip
    tag = re.search(r"^bento: (\S+)$", done.stdout, re.M).group(1)
    port = free_port()
    cmd = ["bentoml", "serve", tag, "--host", "127.0.0.1", "--port", str(port)]
    env["TABML_PREDICTION_LOG"] = str(tmp_path / "log")
    with running(cmd, port, tmp_path / "server.log", env=env, cwd=ws.path) as server:
        document = httpx.get(f"{server.url}/docs.json").json()
        example = document.get("components", {})
        record = next(
            node["example"] for node in example.get("schemas", {}).values()
            if isinstance(node.get("example"), dict) and "carrier" in node["example"]
        )  # fmt: skip
        answer = httpx.post(f"{server.url}/score", json={"client": record}, timeout=30)
        assert answer.status_code == 200, answer.text
        assert 0 < answer.json()["probability"] < 1
        bad = httpx.post(f"{server.url}/score", json={"client": {**record, "carrier": "ZZ"}})
        assert bad.status_code == 400 and "carrier" in bad.text


def test_monitor_raises_no_alarm_on_the_reference_window(flights):
    ws, env, _ = flights
    params = yaml.safe_load((ws.path / "params.yaml").read_text())
    stop = params["drift"]["reference_stop"]
    ws.run(
        "python", "-m", "tabml.monitor", "--model", "models/model.joblib",
        "--reference", "data/reference/profile.json", "--metrics", "reports/metrics.json",
        "--out", "build/monitor", "--start", "0", "--stop", str(stop), env=env,
    )  # fmt: skip
    result = json.loads((ws.path / "build/monitor/monitor.json").read_text())
    assert not result["drift"], result["headline"]
