"""Shared fixtures: the shipped data, small frames cut from it, one trained pipeline a session."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from tabml.ingest import ingest, read_source
from tabml.params import Params, load_params
from tabml.workspace import copy_project

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


@dataclass
class Workspace:
    """A copy of the project, committed to its own git repository."""

    path: Path

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "MLFLOW_TRACKING_URI": self.tracking_uri}

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{self.path / 'mlflow.db'}"

    def run(self, *cmd: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
        done = subprocess.run(
            cmd,
            cwd=self.path,
            env=kwargs.pop("env", self.env),
            capture_output=True,
            text=True,
            **kwargs,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"{cmd} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
            )
        return done


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def params() -> Params:
    return load_params(ROOT / "params.yaml")


@pytest.fixture(scope="session")
def bank(params: Params) -> pd.DataFrame:
    """The whole shipped data set, as `ingest` delivers it."""
    raw = read_source(str(ROOT / params.ingest.source), params.ingest.sep)
    return ingest(raw, params.ingest, params.base.time_column)


@pytest.fixture
def tiny(bank: pd.DataFrame) -> pd.DataFrame:
    """300 real rows spread over the whole period, both labels present."""
    return bank.iloc[:: len(bank) // 300].head(300).reset_index(drop=True).copy()


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
