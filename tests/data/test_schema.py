"""The schema on the shipped data: every check passes, and the schema matches the columns."""

from tabml.dataset import batch_rules, feature_columns, record_schema
from tabml.io import read_json
from tabml.validate import validate


def test_shipped_data_passes_every_check(bank, params, root):
    reference = read_json(root / "data/reference/profile.json")
    validated, report = validate(bank, params, reference)
    assert report["passed"], report["failures"]
    assert report["rows"] == len(validated) == 41188
    assert report["rows_dropped"] == 0


def test_schema_covers_every_source_column(bank):
    assert set(record_schema().columns) == set(bank.columns)
    assert len(bank.columns) == 22  # 21 source columns plus the time column


def test_features_are_what_is_known_before_the_call(params):
    bookkeeping = {"seq", "duration", "y"}
    assert set(feature_columns(params)) == set(record_schema().columns) - bookkeeping - set(
        params.train.drop_columns
    )


def test_no_column_known_after_the_outcome_is_a_feature(params):
    # The leakage guard: `duration` is measured during the call that decides the label.
    assert "duration" in params.validate.known_after_outcome
    assert not set(params.validate.known_after_outcome) & set(feature_columns(params))
    guarded = {r.column for r in batch_rules(params) if r.name == "known_after_outcome"}
    assert guarded == set(params.validate.known_after_outcome)


def test_real_data_facts_behind_the_row_rules(bank):
    never = bank["previous"] == 0
    assert (never == (bank["poutcome"] == "nonexistent")).all()
    assert (bank.loc[bank["pdays"] != 999, "previous"] > 0).all()
    assert (bank.loc[bank["duration"] == 0, "y"] == "no").all()
    assert bank.drop(columns="seq").duplicated().sum() == 12
