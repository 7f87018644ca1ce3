import json
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from testkit.batches import failing, run_validate, with_validate
from testkit.declared import (
    bounded_feature,
    category_feature,
    category_features,
    negative_label,
    numeric_feature,
    unknown_category,
)

from tabml.checks import (
    drift,
    duplicate_share,
    leaked_feature,
    schema_changes,
    single_feature_auc,
)
from tabml.dataset import dataset_labels, record_schema
from tabml.drift import build_profile, psi
from tabml.findings import markdown_table
from tabml.io import DataError, write_parquet
from tabml.reference import main as reference_main
from tabml.validate import main as validate_main
from tabml.validate import to_markdown, validate


@pytest.fixture
def small(params):
    """The project's params, with a row minimum that the 300-row `tiny` frame meets."""
    return with_validate(params, min_rows=100)


def test_real_rows_pass(tiny, small):
    validated, report = validate(tiny, small)
    assert report["passed"], report["failures"]
    assert len(validated) == len(tiny)
    columns = len(tiny.columns)
    assert report["verdict"] == f"Data validation passed: 300 rows x {columns} columns."


def test_every_failure_is_reported_at_once_with_examples(tiny, small, params):
    num = bounded_feature(params)
    cat, categories = category_feature(params)
    stray = unknown_category(categories)
    bad = tiny.copy()
    bad.loc[[1, 2, 3], num.name] = [num.low - 1, num.high + 80, num.low - 5]
    bad.loc[7, cat] = stray
    _, report = validate(bad, small)
    assert not report["passed"]
    rows = failing(report)
    low = rows[(num.name, f"greater_than_or_equal_to({num.low})")]
    assert low["failing"] == 2 and set(low["examples"]) == {str(num.low - 1), str(num.low - 5)}
    assert low["severity"] == "error" and low["rule"] == "value >= the bound"
    high = rows[(num.name, f"less_than_or_equal_to({num.high})")]
    assert high["examples"] == [str(num.high + 80)]
    found = next(row for (column, _), row in rows.items() if column == cat)
    assert found["examples"] == [stray] and found["check"].startswith("isin")


def test_batch_checks_measure_rows_and_labels(tiny, small, params):
    target, positive = params.base.target, params.base.positive_label
    other = negative_label(params)
    rows = failing(validate(tiny.head(10), small)[1])
    assert rows[("*", "row_count")]["examples"] == ["10 rows"]
    one_class = failing(validate(tiny.assign(**{target: other}), small)[1])
    assert one_class[(target, "label_classes")]["examples"] == [f"only [{other!r}]"]
    assert one_class[(target, "positive_rate")]["examples"] == [f"0.0% {positive!r}"]


def test_nulls_are_reported_once_not_by_every_rule_that_reads_the_column(tiny, small, params):
    name = bounded_feature(params).name
    bad = tiny.copy()
    bad[name] = bad[name].astype(float)
    bad.loc[5, name] = np.nan
    checks = {(r["column"], r["check"]) for r in validate(bad, small)[1]["failures"]}
    assert checks == {(name, "dtype('int64')")}


def test_wrong_type_names_the_values_that_do_not_fit(tiny, small, params):
    name = bounded_feature(params).name
    bad = tiny.assign(**{name: tiny[name].astype(str)})
    bad.loc[[3, 4], name] = ["three", "n/a"]
    rows = failing(validate(bad, small)[1])
    assert set(rows) == {(name, "dtype('int64')")}  # no repeats from range checks
    row = rows[(name, "dtype('int64')")]
    assert row["failing"] == 2 and row["examples"] == ["found str", "three", "n/a"]


def test_time_order_is_checked(tiny, small, params):
    time = params.base.time_column
    bad = tiny.copy()
    bad.loc[[10, 11], time] = bad.loc[[11, 10], time].to_numpy()
    row = failing(validate(bad, small)[1])[(time, "time_order")]
    assert row["failing"] == 1 and row["examples"][0].endswith("(row 11)")


def test_drop_policy_drops_invalid_rows_and_reports_them(tiny, params):
    cfg = with_validate(params, min_rows=100, invalid_rows="drop", max_invalid_share=0.02)
    num = bounded_feature(params)
    cat, categories = category_feature(params)
    stray, above = unknown_category(categories), num.high + 380
    bad = tiny.copy()
    bad.loc[[4, 5], num.name] = above
    bad.loc[[5, 6], cat] = stray
    validated, report = validate(bad, cfg)
    assert report["passed"] and report["rows_dropped"] == 3
    assert len(validated) == 297 and validated[num.name].max() <= num.high
    assert {r["severity"] for r in report["dropped"]} == {"dropped"}
    assert "3 invalid rows dropped" in report["verdict"]
    text = to_markdown(report)
    assert f"| less_than_or_equal_to({num.high}) | {num.name} | dropped | 2 | `{above}` |" in text


def test_drop_policy_refuses_to_drop_too_much_and_column_faults(tiny, params):
    cfg = with_validate(params, min_rows=100, invalid_rows="drop", max_invalid_share=0.01)
    num = bounded_feature(params)
    bad = tiny.copy()
    bad.loc[:9, num.name] = num.high + 380
    rows = failing(validate(bad, cfg)[1])
    assert rows[("*", "max_invalid_share")]["failing"] == 10
    no_column = validate(tiny.drop(columns=num.name), cfg)[1]
    assert not no_column["passed"] and no_column["rows_dropped"] == 0


def test_unknown_policy_is_an_error(tiny, params):
    with pytest.raises(DataError, match="invalid_rows is 'skip'"):
        validate(tiny, with_validate(params, invalid_rows="skip"))


def test_drift_is_a_warning_with_the_shares_that_moved(tiny, small, params):
    cat = category_feature(params, drifting=True)[0]
    num = numeric_feature(params, drifting=True)
    kept = next(n for n, _ in category_features(params, drifting=True) if n not in (cat, num))
    value = tiny[cat].mode()[0]
    spread = float(tiny[num].max() - tiny[num].min()) + 1
    # Excluded columns move too: they must still raise no warning.
    moved = {name: tiny[name].iloc[0] for name in params.drift.exclude if name in tiny}
    shifted = tiny.assign(**moved, **{cat: value, num: tiny[num] + 10 * spread})
    reference = {
        "source": "x",
        "start": 0,
        "stop": 300,
        "rows": 300,
        "columns": build_profile(shifted, [params.base.time_column]),
    }
    validated, report = validate(tiny, small, reference)
    assert report["passed"] and len(validated) == len(tiny)
    warned = failing(report, "warnings")
    found = warned[(cat, "drift_psi")]
    assert found["severity"] == "warning" and found["examples"][0].startswith("PSI ")
    assert any(e.startswith(f"{value}: ") and "(reference 100.0%)" in e for e in found["examples"])
    assert warned[(num, "drift_psi")]["examples"][1].startswith("median ")
    assert (kept, "drift_psi") not in warned
    assert not {(name, "drift_psi") for name in params.drift.exclude} & set(warned)
    assert "drift warning(s), which do not stop the pipeline" in report["verdict"]
    assert "Drift reference: rows [0, 300) of `x`" in to_markdown(report)


def test_markdown_puts_the_verdict_first_then_the_table(tiny, small, params):
    cat, categories = category_feature(params)
    stray = unknown_category(categories)
    bad = tiny.assign(**{cat: tiny[cat].where(tiny.index > 2, stray)})
    text = to_markdown(validate(bad, small)[1])
    columns = len(tiny.columns)
    assert text.startswith(
        f"**Data validation FAILED: 1 error(s) in 300 rows x {columns} columns."
    )
    assert "| check | column | severity | failing rows | examples | rule |" in text
    assert f"| {cat} | error | 3 | `{stray}` | value in the allowed set |" in text


def test_markdown_cells_cannot_break_the_table():
    finding = {
        "check": "isin",
        "column": "colour",
        "severity": "error",
        "failing": 1,
        "examples": ["a|b", "x" * 300, "back`tick"],
        "rule": "",
    }
    (row,) = markdown_table([finding])[2:]
    assert row.count(" | ") == 5 and "a\\|b" in row and "back'tick" in row
    assert "x" * 97 + "..." in row and "x" * 98 not in row


def test_single_feature_auc_matches_scikit_learn():
    rng = np.random.default_rng(0)
    y = pd.Series(rng.random(2000) < 0.3)
    numeric = pd.Series(rng.integers(0, 20, 2000) + 5 * y)  # ties, as real columns have
    expected = roc_auc_score(y, numeric)
    assert single_feature_auc(numeric, y) == pytest.approx(max(expected, 1 - expected))
    category = pd.Series(np.where(y, "a", "b"))
    category[:100] = "c"
    encoded = category.map(y.groupby(category).mean())
    assert single_feature_auc(category, y) == pytest.approx(roc_auc_score(y, encoded))
    assert single_feature_auc(numeric, pd.Series(False, index=y.index)) is None


def test_duplicate_share_ignores_the_time_column(tiny, params):
    time = params.base.time_column
    twice = pd.concat([tiny, tiny.head(30)], ignore_index=True)
    twice[time] = range(len(twice))
    measured = duplicate_share(twice, exclude=[time])
    assert measured.failing == 30 and measured.value == pytest.approx(30 / 330)
    assert measured.examples[0] == "row 300"


def test_psi_and_drift_are_zero_on_the_reference_itself(tiny, params):
    num, cat = numeric_feature(params), category_feature(params)[0]
    profile = build_profile(tiny, [params.base.time_column])
    assert psi(np.array([0.5, 0.5]), np.array([0.5, 0.5])) == 0
    assert drift(tiny, num, profile[num]).value == pytest.approx(0, abs=1e-9)
    assert drift(tiny, cat, profile[cat]).value == pytest.approx(0, abs=1e-9)
    spread = float(tiny[num].max() - tiny[num].min()) + 1
    assert drift(tiny.assign(**{num: tiny[num] + 10 * spread}), num, profile[num]).value > 1


def test_rename_goes_to_the_missing_column_whose_values_fit(tiny, params):
    columns = record_schema().columns
    cat = category_feature(params)[0]
    renamed = tiny.rename(columns={cat: f"{cat}_renamed"})
    examples = schema_changes(renamed, columns).examples
    assert f"probably renamed: {cat} -> {cat}_renamed (100% of values fit)" in examples
    num = bounded_feature(params)
    spread = (num.high - num.low + 1) * 1000
    unrelated = tiny.drop(columns=num.name).assign(score=tiny[num.name] + spread)
    assert not any("renamed" in e for e in schema_changes(unrelated, columns).examples)


def test_leakage_guard_names_a_post_outcome_feature(tiny, params):
    target, positive = params.base.target, params.base.positive_label
    if not params.validate.known_after_outcome:
        pytest.skip("params.yaml declares no column in validate.known_after_outcome")
    late = params.validate.known_after_outcome[0]
    other = next(name for name in tiny.columns if name not in (late, target))
    leaked = leaked_feature(tiny, late, [other, late], target, positive)
    assert leaked.value == 1 and f"'{late}' is a model feature" in leaked.examples[0]
    assert leaked_feature(tiny, late, [other], target, positive).value == 0


def test_entry_writes_the_report_but_no_data_on_failure(tmp_path, data, root, params):
    name = bounded_feature(params).name
    head = data.head(2000)
    path = tmp_path / "in.parquet"
    write_parquet(head.assign(**{name: head[name].astype(str)}), path)
    done, out, report = run_validate(root, path, tmp_path)
    assert done.returncode == 1
    assert f"| dtype('int64') | {name} | error | 2,000 | `found str`" in done.stderr
    assert f"nothing was written to {out}" in done.stderr
    assert not out.exists()
    assert report["passed"] is False and report["data"] == str(path)
    assert (tmp_path / "validation.md").read_text().startswith("**Data validation FAILED")


def test_entry_passes_and_needs_its_reference(tmp_path, data: pd.DataFrame, root):
    path = tmp_path / "in.parquet"
    write_parquet(data.tail(2000), path)
    profile = root / "data/reference/profile.json"
    done, out, report = run_validate(root, path, tmp_path, "--reference", str(profile))
    assert done.returncode == 0, done.stderr
    assert report["passed"] and out.exists()
    assert report["reference"]["rows"] == json.loads(profile.read_text())["rows"]
    argv = ["--params", str(root / "params.yaml"), "--data", str(path), "--out", str(out)]
    argv += ["--report", str(tmp_path / "r.json"), "--summary", str(tmp_path / "r.md")]
    with pytest.raises(DataError, match="make reference-profile"):
        validate_main([*argv, "--reference", str(tmp_path / "nowhere.json")])


def test_a_reference_of_another_window_is_refused_in_one_line(tmp_path, data, root, params):
    path = tmp_path / "in.parquet"
    write_parquet(data.tail(2000), path)
    profile = json.loads((root / "data/reference/profile.json").read_text())
    moved = tmp_path / "profile.json"
    moved.write_text(json.dumps({**profile, "start": 100}))
    done, out, _ = run_validate(root, path, tmp_path, "--reference", str(moved))
    assert done.returncode == 1 and not out.exists()
    error = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
    window = f"[{params.drift.reference_start}, {params.drift.reference_stop})"
    assert len(error) == 1 and f"drift.reference_start/stop declare {window}" in error[0]
    assert "Traceback" not in done.stderr


def test_reference_profile_written_by_its_entry(tmp_path, root, monkeypatch, params):
    monkeypatch.chdir(root)  # ingest.source is relative to the project
    out = tmp_path / "profile.json"
    reference_main(["--out", str(out)])
    profile = json.loads(out.read_text())
    start, stop = params.drift.reference_start, params.drift.reference_stop
    assert profile["start"] == start and profile["stop"] == stop
    assert profile["rows"] == stop - start
    target = profile["columns"][params.base.target]
    assert set(target["shares"]) <= {str(label) for label in dataset_labels(params)}
    assert params.base.time_column not in profile["columns"]


def test_whole_numbers_in_a_float_column_are_valid_and_fractions_in_an_int_one_are_not(
    tiny, small
):
    schema = record_schema()
    floats = [n for n, c in schema.columns.items() if str(c.dtype).startswith("float")]
    ints = [n for n, c in schema.columns.items() if str(c.dtype).startswith("int")]
    if not floats or not ints:
        pytest.skip("the declared dataset needs a float and an int column for this test")
    low, high = tiny[floats[0]].min(), tiny[floats[0]].max()
    value = math.ceil(low)
    if value > high:
        pytest.skip(f"no whole number between the smallest and largest {floats[0]} of the data")
    whole = tiny.assign(**{floats[0]: pd.Series(value, index=tiny.index, dtype="int64")})
    _, report = validate(whole, small)
    assert not [row for row in report["failures"] if row["column"] == floats[0]], report
    fraction = tiny.assign(**{ints[0]: tiny[ints[0]] + 0.5})
    _, report = validate(fraction, small)
    checks = [row["check"] for row in report["failures"] if row["column"] == ints[0]]
    assert any("dtype" in check for check in checks), checks
