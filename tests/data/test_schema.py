"""The schema on the declared data: every check passes, and the schema matches the columns."""

from tabml.dataset import batch_rules, feature_columns, record_schema
from tabml.io import read_json
from tabml.schema import ROW_RULES
from tabml.validate import validate


def test_declared_data_passes_every_check(data, params, root):
    reference = read_json(root / "data/reference/profile.json")
    validated, report = validate(data, params, reference)
    assert report["passed"], report["failures"]
    assert report["rows"] == len(validated) == len(data)
    assert report["rows_dropped"] == 0


def test_schema_covers_every_source_column(data, params):
    assert set(record_schema().columns) == set(data.columns)
    assert params.base.time_column in data.columns  # written by ingest, not in the source


def test_features_are_the_columns_but_label_clock_and_dropped_ones(params):
    bookkeeping = {params.base.time_column, params.base.target}
    assert set(feature_columns(params)) == set(record_schema().columns) - bookkeeping - set(
        params.train.drop_columns
    )


def test_no_column_known_after_the_outcome_is_a_feature(params):
    assert not set(params.validate.known_after_outcome) & set(feature_columns(params))
    guarded = {r.column for r in batch_rules(params) if r.name == "known_after_outcome"}
    assert guarded == set(params.validate.known_after_outcome)


def test_every_row_rule_holds_on_every_real_row(data):
    for rule in ROW_RULES:
        assert bool(rule.mask(data).all()), rule.name
