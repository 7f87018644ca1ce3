"""Run a batch through the stage entries `ingest` then `validate`, as `dvc repro` would.

Fixtures for the data tests (template and example): conftest modules import them."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from tabml import ingest, validate
from tabml.ingest import read_source
from tabml.io import DataError
from tabml.params import Params


@dataclass
class Outcome:
    """What the stages left behind: the error they stopped with, stderr, the report, outputs."""

    error: DataError | None
    stderr: str
    report: dict[str, Any] | None
    validated: pd.DataFrame | None

    def failure(self, check: str, column: str) -> dict[str, Any]:
        """The report's error whose check starts with `check`, on `column`."""
        assert self.report is not None, f"validate did not run: {self.error}"
        found = [
            f
            for f in self.report["failures"]
            if f["check"].startswith(check) and f["column"] == column
        ]
        assert found, f"no {check} on {column}: {self.report['failures']}"
        return found[0]

    def table_row(self, check: str, column: str) -> str:
        """The line of the markdown table printed on stderr for that (check, column)."""
        rows = [
            line
            for line in self.stderr.splitlines()
            if line.startswith(f"| {check}") and f"| {column} | error |" in line
        ]
        assert rows, f"no table row for {check} on {column} in stderr:\n{self.stderr}"
        return rows[0]


@pytest.fixture(scope="session")
def source_batch(root: Path, params: Params) -> pd.DataFrame:
    """A real batch as the source file holds it (source column names, no time column): the
    fourth tenth of the source rows."""
    raw = read_source(str(root / params.ingest.source), params.ingest.sep)
    return raw.iloc[len(raw) * 3 // 10 : len(raw) * 4 // 10].reset_index(drop=True)


@pytest.fixture
def run_stages(
    tmp_path: Path, root: Path, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Outcome]:
    """Run `ingest` and `validate` (their `main`, in this process) on a source file."""

    def run(
        source: Path,
        overrides: dict[str, dict[str, Any]] | None = None,
        snapshot: Path | None = None,
    ) -> Outcome:
        raw = yaml.safe_load((root / "params.yaml").read_text())
        raw["ingest"]["source"] = str(source)
        for section, values in (overrides or {}).items():
            raw[section].update(values)
        params = tmp_path / "params.yaml"
        params.write_text(yaml.safe_dump(raw))
        interim = snapshot or tmp_path / "interim.parquet"
        out, report = tmp_path / "validated.parquet", tmp_path / "validation.json"
        capsys.readouterr()
        error = None
        try:
            if snapshot is None:
                ingest.main(
                    ["--params", str(params), "--source", str(source), "--out", str(interim)]
                )
            validate.main(
                [
                    "--params", str(params),
                    "--data", str(interim),
                    "--reference", str(root / "data/reference/profile.json"),
                    "--out", str(out),
                    "--report", str(report),
                    "--summary", str(tmp_path / "validation.md"),
                ]
            )  # fmt: skip
        except DataError as exc:
            error = exc
        return Outcome(
            error=error,
            stderr=capsys.readouterr().err,
            report=json.loads(report.read_text()) if report.exists() else None,
            validated=pd.read_parquet(out) if out.exists() else None,
        )

    return run
