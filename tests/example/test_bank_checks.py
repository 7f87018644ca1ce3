"""The batch checks on the example's columns: its ranges, categories, row rules and windows."""

import json

import numpy as np
import pytest
from testkit.batches import failing, run_validate, with_validate

from tabml.checks import leaked_feature, schema_changes
from tabml.dataset import record_schema
from tabml.drift import build_profile
from tabml.io import DataError, write_parquet
from tabml.reference import main as reference_main
from tabml.validate import main as validate_main
from tabml.validate import to_markdown, validate

pytestmark = pytest.mark.example


@pytest.fixture
def small(params):
    """The project's params, with a row minimum that the 300-row `tiny` frame meets."""
    return with_validate(params, min_rows=100)


def test_every_failure_is_reported_at_once_with_examples(tiny, small):
    bad = tiny.copy()
    bad.loc[[1, 2, 3], "age"] = [-1, 200, -5]
    bad.loc[7, "job"] = "astronaut"
    _, report = validate(bad, small)
    assert not report["passed"]
    rows = failing(report)
    age = rows[("age", "greater_than_or_equal_to(16)")]
    assert age["failing"] == 2 and set(age["examples"]) == {"-1", "-5"}
    assert age["severity"] == "error" and age["rule"] == "value >= the bound"
    assert rows[("age", "less_than_or_equal_to(120)")]["examples"] == ["200"]
    job = next(row for (column, _), row in rows.items() if column == "job")
    assert job["examples"] == ["astronaut"] and job["check"].startswith("isin")


def test_batch_checks_measure_rows_and_labels(tiny, small):
    rows = failing(validate(tiny.head(10), small)[1])
    assert rows[("*", "row_count")]["examples"] == ["10 rows"]
    one_class = failing(validate(tiny.assign(y="no"), small)[1])
    assert one_class[("y", "label_classes")]["examples"] == ["only ['no']"]
    assert one_class[("y", "positive_rate")]["examples"] == ["0.0% 'yes'"]


def test_cross_column_rule_counts_rows_and_shows_the_combination(tiny, small):
    bad = tiny.copy()
    never = bad.index[bad["previous"] == 0][:4]
    bad.loc[never, "poutcome"] = "failure"
    row = failing(validate(bad, small)[1])[("previous, poutcome", "previous_matches_poutcome")]
    assert row["failing"] == 4 and row["examples"] == ["previous=0, poutcome=failure"]


def test_nulls_are_reported_once_not_by_every_rule_that_reads_the_column(tiny, small):
    bad = tiny.copy()
    bad["previous"] = bad["previous"].astype(float)
    bad.loc[5, "previous"] = np.nan
    checks = {(r["column"], r["check"]) for r in validate(bad, small)[1]["failures"]}
    assert checks == {("previous", "dtype('int64')")}


def test_wrong_type_names_the_values_that_do_not_fit(tiny, small):
    bad = tiny.assign(campaign=tiny["campaign"].astype(str))
    bad.loc[[3, 4], "campaign"] = ["three", "n/a"]
    rows = failing(validate(bad, small)[1])
    assert set(rows) == {("campaign", "dtype('int64')")}  # no repeats from range checks
    row = rows[("campaign", "dtype('int64')")]
    assert row["failing"] == 2 and row["examples"] == ["found str", "three", "n/a"]


def test_drop_policy_drops_invalid_rows_and_reports_them(tiny, params):
    cfg = with_validate(params, min_rows=100, invalid_rows="drop", max_invalid_share=0.02)
    bad = tiny.copy()
    bad.loc[[4, 5], "age"] = 500
    bad.loc[[5, 6], "marital"] = "widowed"
    validated, report = validate(bad, cfg)
    assert report["passed"] and report["rows_dropped"] == 3
    assert len(validated) == 297 and validated["age"].max() <= 120
    assert {r["severity"] for r in report["dropped"]} == {"dropped"}
    assert "3 invalid rows dropped" in report["verdict"]
    text = to_markdown(report)
    assert "| less_than_or_equal_to(120) | age | dropped | 2 | `500` |" in text


def test_drift_is_a_warning_with_the_shares_that_moved(tiny, small):
    reference = {
        "source": "x",
        "start": 0,
        "stop": 300,
        "rows": 300,
        "columns": build_profile(
            tiny.assign(contact="telephone", month="may", age=tiny["age"] + 30), ["seq"]
        ),
    }
    validated, report = validate(tiny, small, reference)
    assert report["passed"] and len(validated) == len(tiny)
    warned = failing(report, "warnings")
    contact = warned[("contact", "drift_psi")]
    assert contact["severity"] == "warning" and contact["examples"][0].startswith("PSI ")
    assert any(
        e.startswith("telephone: ") and "(reference 100.0%)" in e for e in contact["examples"]
    )
    assert warned[("age", "drift_psi")]["examples"][1].startswith("median ")
    assert ("job", "drift_psi") not in warned
    assert ("month", "drift_psi") not in warned  # drift.exclude
    assert "drift warning(s), which do not stop the pipeline" in report["verdict"]
    assert "Drift reference: rows [0, 300) of `x`" in to_markdown(report)


def test_markdown_puts_the_verdict_first_then_the_table(tiny, small):
    bad = tiny.assign(marital=tiny["marital"].where(tiny.index > 2, "widowed"))
    text = to_markdown(validate(bad, small)[1])
    assert text.startswith("**Data validation FAILED: 1 error(s) in 300 rows x 22 columns.")
    assert "| check | column | severity | failing rows | examples | rule |" in text
    assert "| marital | error | 3 | `widowed` | value in the allowed set |" in text


def test_rename_goes_to_the_missing_column_whose_values_and_name_fit(tiny):
    columns = record_schema().columns
    renamed = tiny.rename(columns={"loan": "loan_flag", "housing": "home"})
    examples = schema_changes(renamed, columns).examples
    # loan and housing share their categories: the names decide.
    assert "probably renamed: loan -> loan_flag (100% of values fit)" in examples
    assert "probably renamed: housing -> home (100% of values fit)" in examples
    unrelated = tiny.drop(columns="age").assign(score=tiny["age"] * 1000)
    assert not any("renamed" in e for e in schema_changes(unrelated, columns).examples)


def test_leakage_guard_names_a_post_outcome_feature(tiny):
    leaked = leaked_feature(tiny, "duration", ["age", "duration"], "y", "yes")
    assert leaked.value == 1 and "'duration' is a model feature" in leaked.examples[0]
    assert leaked_feature(tiny, "duration", ["age"], "y", "yes").value == 0


def test_entry_writes_the_report_but_no_data_on_failure(tmp_path, data, root):
    tiny = data.head(2000)
    path = tmp_path / "in.parquet"
    write_parquet(tiny.assign(age=tiny["age"].astype(str)), path)
    done, out, report = run_validate(root, path, tmp_path)
    assert done.returncode == 1
    assert "| dtype('int64') | age | error | 2,000 | `found str`" in done.stderr
    assert f"nothing was written to {out}" in done.stderr
    assert not out.exists()
    assert report["passed"] is False and report["data"] == str(path)
    assert (tmp_path / "validation.md").read_text().startswith("**Data validation FAILED")


def test_entry_passes_with_warnings_and_needs_its_reference(tmp_path, data, root):
    path = tmp_path / "in.parquet"
    write_parquet(data.tail(2000), path)
    profile = root / "data/reference/profile.json"
    done, out, report = run_validate(root, path, tmp_path, "--reference", str(profile))
    assert done.returncode == 0, done.stderr
    assert report["passed"] and report["warnings"] and out.exists()
    assert report["reference"]["rows"] == json.loads(profile.read_text())["rows"]
    argv = ["--params", str(root / "params.yaml"), "--data", str(path), "--out", str(out)]
    argv += ["--report", str(tmp_path / "r.json"), "--summary", str(tmp_path / "r.md")]
    with pytest.raises(DataError, match="make reference-profile"):
        validate_main([*argv, "--reference", str(tmp_path / "nowhere.json")])


def test_a_reference_of_another_window_is_refused_in_one_line(tmp_path, data, root):
    path = tmp_path / "in.parquet"
    write_parquet(data.tail(2000), path)
    profile = json.loads((root / "data/reference/profile.json").read_text())
    moved = tmp_path / "profile.json"
    moved.write_text(json.dumps({**profile, "start": 100}))
    done, out, _ = run_validate(root, path, tmp_path, "--reference", str(moved))
    assert done.returncode == 1 and not out.exists()
    error = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
    assert len(error) == 1 and "drift.reference_start/stop declare [0, 28832)" in error[0]
    assert "Traceback" not in done.stderr


def test_reference_profile_written_by_its_entry(tmp_path, root, monkeypatch):
    monkeypatch.chdir(root)  # ingest.source is relative to the project
    out = tmp_path / "profile.json"
    reference_main(["--out", str(out)])
    profile = json.loads(out.read_text())
    assert profile["start"] == 0 and profile["rows"] == profile["stop"] == 28832
    assert profile["columns"]["y"]["shares"]["yes"] < 0.1  # the early, low-rate period
    assert "seq" not in profile["columns"]
