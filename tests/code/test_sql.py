"""SQL sources on DuckDB, the embedded default: the query's rows, and one line per mistake."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sqlalchemy
import yaml

from tabml import ingest
from tabml.ingest import read_source
from tabml.io import DataError


def table() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    rows = 50
    frame = pd.DataFrame({
        "Amount": rng.uniform(0, 9, rows).round(2),
        "kind": rng.choice(["a", "b"], rows),
        "called_at": pd.date_range("2024-03-01", periods=rows, freq="h"),
        "y": rng.choice(["no", "yes"], rows),
    })  # fmt: skip
    frame.loc[::5, "Amount"] = np.nan
    return frame


@pytest.fixture
def duckdb_source(tmp_path):
    """A DuckDB file holding `table()` as `calls`, a query file, and the URL."""
    url = f"duckdb:///{tmp_path / 'source.duckdb'}"
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as conn:
        table().to_sql("calls", conn, index=False)
    engine.dispose()
    query = tmp_path / "calls.sql"
    query.write_text("SELECT * FROM calls ORDER BY called_at;\n")
    return query, url


def test_the_query_gives_its_rows_with_gaps_and_timestamps_as_text(duckdb_source):
    query, url = duckdb_source
    frame = read_source(str(query), ",", url)
    expected = table()
    assert list(frame.columns) == list(expected.columns)
    assert frame["Amount"].isna().sum() == expected["Amount"].isna().sum() > 0
    np.testing.assert_allclose(frame["Amount"].fillna(-1), expected["Amount"].fillna(-1))
    assert frame["called_at"].tolist() == [t.isoformat() for t in expected["called_at"]]
    assert frame["y"].tolist() == expected["y"].tolist()


def test_the_ingest_stage_snapshots_the_query(duckdb_source, tmp_path):
    query, url = duckdb_source
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({
        "base": {"seed": 1, "target": "y", "positive_label": "yes", "time_column": "seq",
                 "threshold": 0.5},
        "ingest": {"source": str(query), "database": url, "start": 10, "stop": 30},
        "validate": {}, "split": {}, "train": {}, "evaluate": {},
    }))  # fmt: skip
    out = tmp_path / "interim.parquet"
    ingest.main(["--params", str(params), "--source", str(query), "--out", str(out)])
    frame = pd.read_parquet(out)
    assert frame["seq"].tolist() == list(range(10, 30))
    assert list(frame.columns) == ["seq", "amount", "kind", "called_at", "y"]
    assert frame["y"].tolist() == table()["y"].iloc[10:30].tolist()


@pytest.mark.parametrize(
    ("query", "database", "message"),
    [
        (None, "duckdb", "the query file (ingest.source) does not exist"),
        ("  \n", "duckdb", "the query file (ingest.source) is empty"),
        ("SELECT * FROM no_such_table", "duckdb", "the query failed on duckdb:///"),
        ("SELECT * FROM calls WHERE 1 = 0", "duckdb", "the query returned no rows"),
        ("SELECT 1", "nosuchdialect://x/y", "no driver for it"),
        ("SELECT 1", "not a url", "is no SQLAlchemy URL"),
        ("SELECT 1", "postgresql+psycopg://u:hunter2@127.0.0.1/db", "holds a password"),
        ("SELECT 1", "env:TABML_TEST_UNSET_URL", "the variable TABML_TEST_UNSET_URL is not set"),
    ],
    ids=["missing", "empty", "bad-sql", "no-rows", "driver", "not-a-url", "password", "env"],
)
def test_each_mistake_is_one_line_naming_it(duckdb_source, tmp_path, query, database, message):
    path, url = duckdb_source
    if query is None:
        path = tmp_path / "absent.sql"
    else:
        path.write_text(query)
    with pytest.raises(DataError) as info:
        read_source(str(path), ",", url if database == "duckdb" else database)
    text = str(info.value)
    assert message in text and "\n" not in text
    assert "hunter2" not in text


def test_a_password_from_the_environment_is_allowed_and_never_shown(monkeypatch, tmp_path):
    monkeypatch.setenv("TABML_TEST_URL", "postgresql+psycopg://u:hunter2@127.0.0.1:1/db")
    path = tmp_path / "q.sql"
    path.write_text("SELECT 1")
    with pytest.raises(DataError) as info:  # nothing listens on port 1
        read_source(str(path), ",", "env:TABML_TEST_URL")
    assert "127.0.0.1" in str(info.value) and "hunter2" not in str(info.value)


@pytest.mark.parametrize(
    ("write", "kind"),
    [
        (lambda p: pd.DataFrame({"a": [1], "b": [2]}).to_parquet(p), None),
        (lambda p: p.write_bytes(b"PK\x03\x04" + b"\0" * 40), "an Excel file"),
        (lambda p: p.write_text('[{"a": 1, "b": 2}]'), "a JSON file"),
    ],
    ids=["parquet", "excel", "json"],
)
def test_a_file_of_another_format_is_read_or_named(tmp_path, write, kind):
    path = tmp_path / "source.csv"
    write(path)
    if kind is None:
        assert read_source(str(path), ";").to_dict("list") == {"a": [1], "b": [2]}
        return
    with pytest.raises(DataError, match=f"this is {kind}; ingest reads delimited text"):
        read_source(str(path), ";")
