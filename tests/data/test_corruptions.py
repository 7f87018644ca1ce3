"""The corruption suite: bad batches made from real rows must stop, naming column and check.

Every batch goes the way a real one does: a source file read by the `ingest` stage, whose
snapshot the `validate` stage checks (both entries, in this process). Real windows of the
declared data must pass: drift between periods is a warning, never a failure.
"""

from __future__ import annotations

import gzip
import json

import numpy as np
import pandas as pd
import pytest
from testkit.batches import Corruption, setting
from testkit.declared import (
    bounded_feature,
    category_feature,
    negative_label,
    unknown_category,
)

from tabml.dataset import dataset_labels
from tabml.ingest import ingest, normalize_name, read_source
from tabml.io import read_json
from tabml.reference import reference_profile


def decimal_comma(column: str):
    """Numbers written with a decimal comma, as a spreadsheet of another locale does."""

    def make(frame: pd.DataFrame) -> pd.DataFrame:
        text = frame[column].astype(float).map(lambda v: f"{v:.2f}".replace(".", ","))
        return frame.assign(**{column: text})

    return make


def truncated(frame: pd.DataFrame, sep: str) -> str:
    """The file cut in the middle of a line, as an interrupted copy leaves it."""
    text = frame.to_csv(sep=sep, index=False)
    lines = text.splitlines()
    return "\n".join([*lines[:2001], sep.join(lines[2001].split(sep)[:1])])


def label_share(target: str, positive, other, share: float):
    def make(frame: pd.DataFrame) -> pd.DataFrame:
        picked = frame.sample(frac=share, random_state=0).index
        return frame.assign(**{target: np.where(frame.index.isin(picked), positive, other)})

    return make


KINDS = [
    "missing-column", "extra-column", "renamed-column", "number-as-text", "fraction-in-integer",
    "null-in-required", "out-of-range", "unknown-category", "relabelled-target",
    "single-class-target", "positive-rate-too-high", "many-duplicates", "truncated-file",
    "too-few-rows", "all-missing-marker", "label-copied-into-category",
    "label-copied-into-number",
]  # fmt: skip


def corruption(kind: str, params, source: dict[str, str]) -> Corruption:
    """The corruption `kind` on the declared dataset; `source` maps schema to source names."""
    target, positive = params.base.target, params.base.positive_label
    other = negative_label(params)
    num = bounded_feature(params)
    cat, categories = category_feature(params)
    src_num, src_cat, src_target = source[num.name], source[cat], source[target]
    cfg = params.validate
    if kind == "missing-column":
        return Corruption(lambda f: f.drop(columns=src_cat), "column_in_dataframe", cat)
    if kind == "extra-column":
        return Corruption(
            lambda f: f.assign(extra_id=range(len(f))), "column_in_schema", "extra_id"
        )
    if kind == "renamed-column":
        renamed = f"{cat}_renamed"
        return Corruption(
            lambda f: f.rename(columns={src_cat: renamed}), "schema_change", f"{cat}, {renamed}"
        )
    if kind == "number-as-text":
        return Corruption(decimal_comma(src_num), "dtype(", num.name)
    if kind == "fraction-in-integer":
        return Corruption(setting(src_num, num.low + 0.5), "dtype(", num.name)
    if kind == "null-in-required":
        return Corruption(setting(src_cat, None, n=80), "not_nullable", cat)
    if kind == "out-of-range":
        return Corruption(setting(src_num, num.high + 80), "less_than_or_equal_to", num.name)
    if kind == "unknown-category":
        return Corruption(setting(src_cat, unknown_category(categories)), "isin", cat)
    if kind == "relabelled-target":
        if not isinstance(positive, str):
            pytest.skip("the labels are not text: numbers are no relabelling")
        codes = {label: i for i, label in enumerate(dataset_labels(params))}
        return Corruption(lambda f: f.assign(**{src_target: f[src_target].map(codes)}),
                          "dtype(", target)  # fmt: skip
    if kind == "single-class-target":
        return Corruption(lambda f: f.assign(**{src_target: other}), "label_classes", target)
    if kind == "positive-rate-too-high":
        share = min(1.0, cfg.max_positive_rate + 0.1)
        return Corruption(label_share(src_target, positive, other, share), "positive_rate", target)
    if kind == "many-duplicates":
        share = min(1.0, cfg.max_duplicate_share * 10)
        return Corruption(
            lambda f: pd.concat([f, f.sample(frac=share, random_state=0)]), "duplicate_share", "*"
        )
    if kind == "truncated-file":
        if next(iter(source.values())) == src_target:
            pytest.skip("the label is the first column: a cut line keeps it")
        return Corruption(lambda f: truncated(f, params.ingest.sep), "not_nullable", target)
    if kind == "too-few-rows":
        return Corruption(lambda f: f.head(cfg.min_rows // 2), "row_count", "*")
    if kind == "all-missing-marker":
        if not cfg.missing_values:
            pytest.skip("params.yaml declares no validate.missing_values marker")
        marker = cfg.missing_values[0]
        return Corruption(lambda f: f.assign(**{src_cat: marker}), "missing_share", cat)
    if kind == "label-copied-into-category":
        if len(categories) < 2:
            pytest.skip(f"'{cat}' has one category")
        first, second = categories[:2]

        def copied(f):
            return f.assign(**{src_cat: np.where(f[src_target] == positive, first, second)})

        return Corruption(copied, "feature_auc", cat)
    if kind == "label-copied-into-number":

        def copied_number(f):
            values = np.where(f[src_target] == positive, num.high, num.low)
            return f.assign(**{src_num: values})

        return Corruption(copied_number, "feature_auc", num.name)
    raise AssertionError(kind)


@pytest.fixture
def source_names(source_batch) -> dict[str, str]:
    """Schema column name -> the source file's name for it."""
    return {normalize_name(name): name for name in source_batch.columns}


@pytest.mark.parametrize("kind", KINDS)
def test_corrupted_batch_stops_naming_column_and_check(
    kind, source_batch, source_names, run_stages, tmp_path, params
):
    found = corruption(kind, params, source_names)
    bad = found.make(source_batch)
    source = tmp_path / "source.csv"
    if isinstance(bad, str):
        source.write_text(bad)
    else:
        bad.to_csv(source, sep=params.ingest.sep, index=False)
    outcome = run_stages(source)
    clock = params.ingest.order_by
    if kind == "truncated-file" and clock and clock != next(iter(source_names)):
        # The cut line has no time: ingest, which orders the rows by it, stops first.
        assert f"ingest.order_by '{clock}': 1 rows have no time" in str(outcome.error)
        assert outcome.validated is None
        return
    assert outcome.error is not None and "nothing was written" in str(outcome.error)
    assert outcome.validated is None
    assert outcome.report["passed"] is False
    finding = outcome.failure(found.check, found.column)
    assert finding["severity"] == "error" and finding["rule"]
    assert finding["examples"] or finding["check"].startswith("column_in")
    assert outcome.stderr.lstrip().startswith("**Data validation FAILED")
    outcome.table_row(found.check, found.column)


def test_renamed_column_is_paired_with_the_missing_one(
    source_batch, source_names, run_stages, tmp_path, params
):
    cat = category_feature(params)[0]
    source = tmp_path / "source.csv"
    renamed = source_batch.rename(columns={source_names[cat]: f"{cat}_renamed"})
    renamed.to_csv(source, sep=params.ingest.sep, index=False)
    finding = run_stages(source).failure("schema_change", f"{cat}, {cat}_renamed")
    expected = f"probably renamed: {cat} -> {cat}_renamed (100% of values fit)"
    assert expected in finding["examples"]


def test_text_in_numbers_shows_the_values_that_are_not_numbers(
    source_batch, source_names, run_stages, tmp_path, params
):
    name = bounded_feature(params).name
    source = tmp_path / "source.csv"
    decimal_comma(source_names[name])(source_batch).to_csv(
        source, sep=params.ingest.sep, index=False
    )
    finding = run_stages(source).failure("dtype(", name)
    assert finding["failing"] == len(source_batch)
    assert finding["examples"][0] == "found str" and "," in finding["examples"][1]


@pytest.mark.parametrize(
    ("kind", "content", "message"),
    [
        ("empty-file", b"", "the file is empty"),
        ("header-only", None, "header but no data rows"),
        ("wrong-delimiter", None, "-separated"),
        ("truncated-gzip", None, "cannot read the file"),
    ],
)
def test_unreadable_file_stops_at_ingest(
    kind, content, message, source_batch, run_stages, tmp_path, params
):
    sep = params.ingest.sep
    source = tmp_path / ("source.csv.gz" if kind == "truncated-gzip" else "source.csv")
    if kind == "wrong-delimiter":
        source_batch.to_csv(source, sep="|" if sep != "|" else ";", index=False)
    elif kind == "header-only":
        source_batch.head(0).to_csv(source, sep=sep, index=False)
    elif kind == "truncated-gzip":
        packed = gzip.compress(source_batch.to_csv(sep=sep, index=False).encode())
        source.write_bytes(packed[: len(packed) // 2])
    else:
        source.write_bytes(content)
    outcome = run_stages(source)
    assert outcome.error is not None and message in str(outcome.error)
    assert str(source) in str(outcome.error)
    assert outcome.report is None and outcome.validated is None


def test_rows_out_of_time_order_stop_the_batch(source_batch, run_stages, tmp_path, params):
    time = params.base.time_column
    snapshot = tmp_path / "snapshot.parquet"
    frame = ingest(source_batch, params.ingest, time)
    frame.iloc[::-1].to_parquet(snapshot, index=False)
    outcome = run_stages(tmp_path / "unused.csv", snapshot=snapshot)
    finding = outcome.failure("time_order", time)
    assert finding["failing"] == len(frame) - 1
    outcome.table_row("time_order", time)


def test_drop_policy_removes_invalid_rows_and_counts_them(
    source_batch, source_names, run_stages, tmp_path, params
):
    num = bounded_feature(params)
    cat, categories = category_feature(params)
    source = tmp_path / "source.csv"
    bad = setting(source_names[num.name], num.high + 80, n=7)(
        setting(source_names[cat], unknown_category(categories), n=3)(source_batch)
    )
    bad.to_csv(source, sep=params.ingest.sep, index=False)
    outcome = run_stages(source, {"validate": {"invalid_rows": "drop"}})
    assert outcome.error is None, outcome.stderr
    report = outcome.report
    assert report["passed"] and report["rows_dropped"] == 7  # the same rows hold both faults
    assert {(f["column"], f["severity"], f["failing"]) for f in report["dropped"]} == {
        (num.name, "dropped", 7),
        (cat, "dropped", 3),
    }
    assert len(outcome.validated) == len(source_batch) - 7
    assert (outcome.validated[num.name] <= num.high).all()
    assert "7 invalid rows dropped" in report["verdict"]


def test_drop_policy_still_fails_when_too_many_rows_are_invalid(
    source_batch, source_names, run_stages, tmp_path, params
):
    num = bounded_feature(params)
    source = tmp_path / "source.csv"
    too_many = int(len(source_batch) * params.validate.max_invalid_share) + 1
    bad = setting(source_names[num.name], num.high + 80, n=too_many)(source_batch)
    bad.to_csv(source, sep=params.ingest.sep, index=False)
    outcome = run_stages(source, {"validate": {"invalid_rows": "drop"}})
    assert outcome.error is not None and outcome.validated is None
    assert outcome.failure("max_invalid_share", "*")["failing"] == too_many
    outcome.failure("less_than_or_equal_to", num.name)


@pytest.mark.parametrize("tenth", range(10))
def test_every_real_tenth_passes_with_drift_as_warnings_only(tenth, run_stages, root, params):
    n = len(read_source(str(root / params.ingest.source), params.ingest.sep))
    start, stop = tenth * n // 10, (tenth + 1) * n // 10
    if stop - start < params.validate.min_rows:
        pytest.skip(f"a tenth of {n:,} rows is below validate.min_rows")
    outcome = run_stages(root / params.ingest.source, {"ingest": {"start": start, "stop": stop}})
    assert outcome.error is None, outcome.stderr
    report = outcome.report
    assert report["passed"] and report["failures"] == [], report["failures"]
    assert len(outcome.validated) == stop - start
    assert outcome.validated[params.base.time_column].iloc[0] == start
    assert all(w["severity"] == "warning" for w in report["warnings"])
    assert report["verdict"].startswith("Data validation passed")


def test_committed_reference_profile_is_in_step_with_params_and_code(root, params, monkeypatch):
    monkeypatch.chdir(root)  # ingest.source is relative to the project
    committed = read_json(root / "data/reference/profile.json")
    fresh = json.loads(json.dumps(reference_profile(params)))
    assert committed == fresh, "stale reference: run `make reference-profile` and commit it"
    assert committed["rows"] == params.drift.reference_stop - params.drift.reference_start


def test_shipped_source_passes_end_to_end(run_stages, root, params):
    outcome = run_stages(root / params.ingest.source)
    assert outcome.error is None and outcome.report["passed"], outcome.stderr
    source = read_source(str(root / params.ingest.source), params.ingest.sep)
    assert len(outcome.validated) == len(source)
