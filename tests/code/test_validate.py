import json
import subprocess
import sys
from dataclasses import replace

import pytest

from tabml.io import write_parquet
from tabml.validate import to_markdown, validate


@pytest.fixture
def small(params):
    """The project's params, with a row minimum that the 300-row `tiny` frame meets."""
    return replace(params, validate=replace(params.validate, min_rows=100))


def failing(report):
    return {(row["column"], row["check"]): row for row in report["failures"]}


def test_real_rows_pass(tiny, small):
    validated, report = validate(tiny, small)
    assert report["passed"], report["failures"]
    assert len(validated) == len(tiny)


def test_every_failure_is_reported_at_once_with_examples(tiny, small):
    bad = tiny.copy()
    bad.loc[[1, 2, 3], "age"] = [-1, 200, -5]
    bad.loc[7, "job"] = "astronaut"
    _, report = validate(bad, small)
    assert not report["passed"]
    rows = failing(report)
    age = rows[("age", "greater_than_or_equal_to(16)")]
    assert age["failing"] == 2 and set(age["examples"]) == {"-1", "-5"}
    assert rows[("age", "less_than_or_equal_to(120)")]["examples"] == ["200"]
    job = next(row for (column, _), row in rows.items() if column == "job")
    assert job["examples"] == ["astronaut"] and job["check"].startswith("isin")


def test_dataset_checks_count_rows_and_labels(tiny, small):
    _, report = validate(tiny.head(10), small)
    checks = {row["check"] for row in report["failures"]}
    assert f">= {small.validate.min_rows} rows" in checks
    one_class = tiny.assign(y="no")
    assert any("both labels" in row["check"] for row in validate(one_class, small)[1]["failures"])


def test_markdown_table_lists_column_check_count_and_examples(tiny, small):
    bad = tiny.assign(marital=tiny["marital"].where(tiny.index > 2, "widowed"))
    text = to_markdown(validate(bad, small)[1])
    assert text.startswith("Data validation FAILED")
    assert "| marital | isin(" in text and "| 3 | `widowed` |" in text


def test_entry_writes_the_report_but_no_data_on_failure(tmp_path, bank, root):
    tiny = bank.head(2000)
    data = tmp_path / "in.parquet"
    write_parquet(tiny.assign(age=tiny["age"].astype(str)), data)
    out, report = tmp_path / "out.parquet", tmp_path / "validation.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tabml.validate",
            "--params",
            str(root / "params.yaml"),
            "--data",
            str(data),
            "--out",
            str(out),
            "--report",
            str(report),
            "--summary",
            str(tmp_path / "validation.md"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "| age | dtype('int64')" in done.stderr
    assert f"nothing was written to {out}" in done.stderr
    assert not out.exists()
    assert json.loads(report.read_text())["passed"] is False
