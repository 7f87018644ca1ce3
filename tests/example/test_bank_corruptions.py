"""The corruption suite on the example's columns and row rules (UCI Bank Marketing).

Every batch goes the way a real one does: a source file read by the `ingest` stage, whose
snapshot the `validate` stage checks (both entries, in this process). Real windows of the
shipped data must pass: drift between periods is a warning, never a failure.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from testkit.batches import Corruption, setting

SEP = ";"

pytestmark = pytest.mark.example


def decimal_comma(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(
        **{"cons.price.idx": frame["cons.price.idx"].astype(str).str.replace(".", ",")}
    )


def truncated(frame: pd.DataFrame) -> str:
    """The file cut in the middle of a line, as an interrupted copy leaves it."""
    text = frame.to_csv(sep=SEP, index=False)
    lines = text.splitlines()
    return "\n".join([*lines[:2001], SEP.join(lines[2001].split(SEP)[:12])])


def swapped(frame: pd.DataFrame) -> pd.DataFrame:
    """Two columns exchanged upstream: the call's duration lands in `campaign`."""
    return frame.assign(campaign=frame["duration"].clip(lower=1), duration=frame["campaign"])


def label_share(share: float):
    def make(frame: pd.DataFrame) -> pd.DataFrame:
        picked = frame.sample(frac=share, random_state=0).index
        return frame.assign(y=np.where(frame.index.isin(picked), "yes", "no"))

    return make


CORRUPTIONS = {
    "missing-column": Corruption(
        lambda f: f.drop(columns="education"), "column_in_dataframe", "education"
    ),
    "extra-column": Corruption(
        lambda f: f.assign(customer_id=range(len(f))), "column_in_schema", "customer_id"
    ),
    "renamed-column": Corruption(
        lambda f: f.rename(columns={"education": "edu_level"}),
        "schema_change",
        "education, edu_level",
    ),
    "number-as-text": Corruption(decimal_comma, "dtype(", "cons_price_idx"),
    "fraction-in-integer": Corruption(setting("age", 35.5), "dtype(", "age"),
    "null-in-required": Corruption(setting("housing", None, n=80), "not_nullable", "housing"),
    "out-of-range": Corruption(setting("age", 200), "less_than_or_equal_to", "age"),
    "unknown-category": Corruption(setting("contact", "carrier-pigeon"), "isin", "contact"),
    "relabelled-target": Corruption(
        lambda f: f.assign(y=f["y"].map({"yes": 1, "no": 0})), "dtype(", "y"
    ),
    "single-class-target": Corruption(lambda f: f.assign(y="no"), "label_classes", "y"),
    "positive-rate-too-high": Corruption(label_share(0.8), "positive_rate", "y"),
    "many-duplicates": Corruption(
        lambda f: pd.concat([f, f.sample(frac=0.1, random_state=0)]), "duplicate_share", "*"
    ),
    "truncated-file": Corruption(truncated, "not_nullable", "y"),
    "too-few-rows": Corruption(lambda f: f.head(500), "row_count", "*"),
    "all-missing-marker": Corruption(lambda f: f.assign(job="unknown"), "missing_share", "job"),
    "previous-without-poutcome": Corruption(
        setting("poutcome", "success", lambda f: f["previous"] == 0),
        "previous_matches_poutcome",
        "previous, poutcome",
    ),
    "pdays-without-previous": Corruption(
        setting("pdays", 6, lambda f: f["previous"] == 0),
        "pdays_needs_previous",
        "pdays, previous",
    ),
    "zero-duration-success": Corruption(
        setting("duration", 0, lambda f: f["y"] == "yes"), "zero_duration_means_no", "duration, y"
    ),
    "label-copied-into-feature": Corruption(
        lambda f: f.assign(contact=np.where(f["y"] == "yes", "cellular", "telephone")),
        "feature_auc",
        "contact",
    ),
    "duration-swapped-into-feature": Corruption(swapped, "feature_auc", "campaign"),
}


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_corrupted_batch_stops_naming_column_and_check(kind, source_batch, run_stages, tmp_path):
    corruption = CORRUPTIONS[kind]
    bad = corruption.make(source_batch)
    source = tmp_path / "source.csv"
    if isinstance(bad, str):
        source.write_text(bad)
    else:
        bad.to_csv(source, sep=SEP, index=False)
    outcome = run_stages(source)
    assert outcome.error is not None and "nothing was written" in str(outcome.error)
    assert outcome.validated is None
    assert outcome.report["passed"] is False
    finding = outcome.failure(corruption.check, corruption.column)
    assert finding["severity"] == "error" and finding["rule"]
    assert finding["examples"] or finding["check"].startswith("column_in")
    assert outcome.stderr.lstrip().startswith("**Data validation FAILED")
    outcome.table_row(corruption.check, corruption.column)


def test_renamed_column_is_paired_with_the_missing_one(source_batch, run_stages, tmp_path):
    source = tmp_path / "source.csv"
    source_batch.rename(columns={"education": "edu_level"}).to_csv(source, sep=SEP, index=False)
    finding = run_stages(source).failure("schema_change", "education, edu_level")
    assert "probably renamed: education -> edu_level (100% of values fit)" in finding["examples"]


def test_text_in_numbers_shows_the_values_that_are_not_numbers(source_batch, run_stages, tmp_path):
    source = tmp_path / "source.csv"
    decimal_comma(source_batch).to_csv(source, sep=SEP, index=False)
    finding = run_stages(source).failure("dtype(", "cons_price_idx")
    assert finding["failing"] == len(source_batch)
    assert finding["examples"][0] == "found str" and "," in finding["examples"][1]


def test_drop_policy_removes_invalid_rows_and_counts_them(source_batch, run_stages, tmp_path):
    source = tmp_path / "source.csv"
    bad = setting("age", 200, n=7)(setting("contact", "carrier-pigeon", n=3)(source_batch))
    bad.to_csv(source, sep=SEP, index=False)
    outcome = run_stages(source, {"validate": {"invalid_rows": "drop"}})
    assert outcome.error is None, outcome.stderr
    report = outcome.report
    assert report["passed"] and report["rows_dropped"] == 7  # the same rows hold both faults
    assert {(f["column"], f["severity"], f["failing"]) for f in report["dropped"]} == {
        ("age", "dropped", 7),
        ("contact", "dropped", 3),
    }
    assert len(outcome.validated) == len(source_batch) - 7
    assert (outcome.validated["age"] <= 120).all()
    assert "7 invalid rows dropped" in report["verdict"]


def test_drop_policy_still_fails_when_too_many_rows_are_invalid(
    source_batch, run_stages, tmp_path
):
    source = tmp_path / "source.csv"
    setting("age", 200, n=200)(source_batch).to_csv(source, sep=SEP, index=False)
    outcome = run_stages(source, {"validate": {"invalid_rows": "drop"}})
    assert outcome.error is not None and outcome.validated is None
    assert outcome.failure("max_invalid_share", "*")["failing"] == 200
    outcome.failure("less_than_or_equal_to", "age")


def test_the_last_tenth_drifts_and_the_report_says_so(run_stages, root, params):
    outcome = run_stages(root / params.ingest.source, {"ingest": {"start": 37_069}})
    drifted = {(w["check"], w["column"]) for w in outcome.report["warnings"]}
    # The positive rate climbs from about 7% in the training window to 46% at the end.
    assert ("drift_psi", "y") in drifted
    assert ("drift_psi", "euribor3m") in drifted
    assert "drift warning(s), which do not stop the pipeline" in outcome.report["verdict"]
