"""Helpers of the batch tests (template and example): corrupting a batch, and running the
validate entry or reading its report."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd


@dataclass(frozen=True)
class Corruption:
    make: Callable[[pd.DataFrame], pd.DataFrame | str]  # a frame to write, or the file's text
    check: str  # what the failing check's name starts with
    column: str  # the column the failure must name


def rows(frame: pd.DataFrame, where: pd.Series, n: int = 5) -> pd.Index:
    return frame.index[where][:n]


def setting(column: str, value, where=None, n: int = 5):
    """Set `column` to `value` on n rows (those where `where` holds, if given)."""

    def make(frame: pd.DataFrame) -> pd.DataFrame:
        bad = frame.copy()
        bad[column] = bad[column].astype(object)  # any value, as a text file can hold it
        mask = where(bad) if where else pd.Series(True, index=bad.index)
        bad.loc[rows(bad, mask, n), column] = value
        return bad

    return make


def with_validate(params, **changes):
    return replace(params, validate=replace(params.validate, **changes))


def failing(report, key="failures"):
    """The report's failures (or `key`), by (column, check)."""
    return {(row["column"], row["check"]): row for row in report[key]}


def run_validate(root: Path, data: Path, tmp_path: Path, *extra: str):
    """`python -m tabml.validate` on `data`: the process, the output path, the report or None."""
    out, report = tmp_path / "out.parquet", tmp_path / "validation.json"
    done = subprocess.run(
        [
            sys.executable, "-m", "tabml.validate",
            "--params", str(root / "params.yaml"),
            "--data", str(data),
            "--out", str(out),
            "--report", str(report),
            "--summary", str(tmp_path / "validation.md"),
            *extra,
        ],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    return done, out, json.loads(report.read_text()) if report.exists() else None
