"""Facts of the shipped data (UCI Bank Marketing): its size, columns, settings and row rules."""

import pytest

from tabml.ingest import read_source
from tabml.io import read_json
from tabml.validate import validate

pytestmark = pytest.mark.example


def test_shipped_data_passes_every_check_on_all_its_rows(data, params, root):
    reference = read_json(root / "data/reference/profile.json")
    validated, report = validate(data, params, reference)
    assert report["passed"], report["failures"]
    assert report["rows"] == len(validated) == 41188


def test_shipped_data_has_21_source_columns_plus_the_time_column(data):
    assert len(data.columns) == 22


def test_shipped_settings(params):
    assert params.ingest.sep == ";"
    assert params.base.target == "y" and params.base.positive_label == "yes"
    assert params.base.time_column == "seq"
    # The leakage guard: `duration` is measured during the call that decides the label.
    assert "duration" in params.validate.known_after_outcome
    assert "duration" in params.train.drop_columns


def test_reads_gzip_and_fsspec_urls_of_the_shipped_file(root, params):
    path = root / params.ingest.source
    frame = read_source(f"file://{path}", ";")
    assert frame.shape == (41188, 21)


def test_real_data_facts_behind_the_row_rules(data):
    never = data["previous"] == 0
    assert (never == (data["poutcome"] == "nonexistent")).all()
    assert (data.loc[data["pdays"] != 999, "previous"] > 0).all()
    assert (data.loc[data["duration"] == 0, "y"] == "no").all()
    assert data.drop(columns="seq").duplicated().sum() == 12
