"""Shared fixtures: the declared data, small frames cut from it, one trained pipeline, one bento
and one running service a session."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pandas as pd
import pytest
from testkit.server import Server, free_port, running
from testkit.workspace import Workspace, copy_project

from tabml.ingest import ingest, read_source
from tabml.io import file_md5
from tabml.params import Params, load_params

ROOT = Path(__file__).resolve().parents[1]

# Subprocesses (`dvc repro`, `python -m tabml...`) must use this environment's interpreter.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
for name, value in {
    "DVC_NO_ANALYTICS": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "BENTOML_DO_NOT_TRACK": "true",
    "DO_NOT_TRACK": "1",
}.items():
    os.environ.setdefault(name, value)


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def params() -> Params:
    return load_params(ROOT / "params.yaml")


@pytest.fixture(scope="session")
def data(params: Params) -> pd.DataFrame:
    """The whole declared data set (`ingest.source`), as `ingest` delivers it."""
    raw = read_source(str(ROOT / params.ingest.source), params.ingest.sep)
    return ingest(raw, params.ingest, params.base.time_column)


@pytest.fixture
def tiny(data: pd.DataFrame) -> pd.DataFrame:
    """300 real rows spread over the whole period, both labels present."""
    return data.iloc[:: len(data) // 300].head(300).reset_index(drop=True).copy()


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    """A fresh copy of the project for a test that changes files or runs stages."""
    return Workspace(copy_project(ROOT, tmp_path / "project"))


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """A fresh copy of the project after one `dvc repro` (shared: treat it as read-only)."""
    ws = Workspace(copy_project(ROOT, tmp_path_factory.mktemp("pipeline") / "project"))
    ws.run("dvc", "repro")
    return ws


# What `make bento` runs: the model, splits and metrics default to params.yaml's `paths`.
BENTO_CMD = ["python", "-m", "tabml.bento"]


@dataclass
class Bento:
    model_tag: str
    bento_tag: str
    env: dict[str, str]


@dataclass
class Service:
    server: Server
    bento: Bento
    log_dir: Path
    client: httpx.Client

    def post(self, path: str, **kwargs) -> httpx.Response:
        return self.client.post(path, **kwargs)


@pytest.fixture(scope="session")
def bento(pipeline, tmp_path_factory) -> Bento:
    """`python -m tabml.bento` (what `make bento` runs) in the trained copy, own BentoML home."""
    env = {
        **pipeline.env,
        "BENTOML_HOME": str(tmp_path_factory.mktemp("bentoml")),
        "BENTOML_DO_NOT_TRACK": "true",
    }
    done = pipeline.run(*BENTO_CMD, env=env)
    lines = dict(line.split(": ", 1) for line in done.stdout.splitlines() if ": " in line)
    assert lines["model"] == f"tabml:{file_md5(pipeline.path / 'models/model.joblib')}"
    return Bento(lines["model"], lines["bento"], env)


@pytest.fixture(scope="session")
def service(bento, pipeline, tmp_path_factory) -> Service:
    """`bentoml serve <bento>` on a free port of 127.0.0.1, stopped at the end of the session."""
    log_dir = tmp_path_factory.mktemp("predictions")
    port = free_port()
    # Files close (and become readable) after 1 s instead of an hour.
    env = {
        **bento.env,
        "TABML_PREDICTION_LOG": str(log_dir),
        "TABML_PREDICTION_LOG_ROTATE_SECONDS": "1",
    }
    cmd = ["bentoml", "serve", bento.bento_tag, "--host", "127.0.0.1", "--port", str(port)]
    out = tmp_path_factory.mktemp("server") / "server.log"
    with (
        running(cmd, port, out, env=env, cwd=pipeline.path) as server,
        httpx.Client(base_url=server.url, timeout=60) as client,
    ):
        yield Service(server, bento, log_dir, client)
    # A graceful stop closes the open log file: only complete `.parquet` files remain.
    names = [p.name for p in log_dir.iterdir()]
    assert names, "the prediction log is empty after the session"
    assert all(name.endswith(".parquet") for name in names), names


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `mlflow server` on 127.0.0.1 for the session, stopped at its end."""
    tmp = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    cmd = [
        sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
        "--backend-store-uri", f"sqlite:///{tmp / 'server.db'}",
        "--artifacts-destination", str(tmp / "artifacts"), "--workers", "1",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
