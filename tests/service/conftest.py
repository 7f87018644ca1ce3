"""One bento per session, built from the session's trained pipeline and served on 127.0.0.1."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tabml.io import file_md5
from tabml.serving.server import Server, free_port, running

# What `make bento` runs.
BENTO_CMD = shlex.split(
    "python -m tabml.bento --model models/model.joblib --train data/processed/train.parquet "
    "--valid data/processed/valid.parquet --test data/processed/test.parquet "
    "--metrics reports/metrics.json"
)


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
