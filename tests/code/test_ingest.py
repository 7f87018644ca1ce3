import gzip
import subprocess
import sys

import pandas as pd
import pytest

from tabml.dataset import record_schema
from tabml.ingest import ingest, normalize_name, read_source
from tabml.io import DataError
from tabml.params import IngestParams


@pytest.mark.parametrize(
    ("name", "expected"),
    [("unit.price", "unit_price"), ("nr.items", "nr_items"), (" Size ", "size")],
)
def test_normalize_name(name, expected):
    assert normalize_name(name) == expected


def test_ingest_keeps_a_window_with_its_source_positions():
    raw = pd.DataFrame({"unit.price": [1.1, 1.2, 1.3, 1.4, 1.5], "y": list("nnyny")})
    out = ingest(raw, IngestParams(source="x", start=1, stop=4), "seq")
    assert list(out.columns) == ["seq", "unit_price", "y"]
    assert out["seq"].tolist() == [1, 2, 3]
    assert out["unit_price"].tolist() == [1.2, 1.3, 1.4]


def test_empty_window_is_an_error():
    raw = pd.DataFrame({"a": [1, 2]})
    with pytest.raises(DataError, match="selects no rows out of 2"):
        ingest(raw, IngestParams(source="x", start=5), "seq")


def test_reads_the_source_by_fsspec_url(root, params):
    path = root / params.ingest.source
    frame = read_source(f"file://{path}", params.ingest.sep)
    assert frame.shape == read_source(str(path), params.ingest.sep).shape
    columns = set(record_schema().columns) - {params.base.time_column}
    assert {normalize_name(name) for name in frame.columns} == columns


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist"),
        (b"", "empty"),
        (b"size;colour;y\n", "header but no data rows"),
        (b"size,colour,y\n30,red,no\n", "looks ','-separated"),
    ],
    ids=["missing", "empty", "header-only", "wrong-delimiter"],
)
def test_unusable_sources_name_the_problem_and_the_file(tmp_path, content, message):
    path = tmp_path / "source.csv"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError, match=message) as info:
        read_source(str(path), ";")
    assert str(path) in str(info.value)


def test_truncated_gzip_is_reported_as_unreadable(tmp_path, root, params):
    path = tmp_path / "source.csv.gz"
    path.write_bytes(gzip.compress((root / params.ingest.source).read_bytes())[:20_000])
    with pytest.raises(DataError, match="cannot read the file") as info:
        read_source(str(path), params.ingest.sep)
    assert str(path) in str(info.value)


def test_entry_fails_with_one_paragraph_and_writes_nothing(tmp_path, root, params):
    source, out = tmp_path / "source.csv", tmp_path / "out" / "data.parquet"
    other = ";" if params.ingest.sep == "," else ","  # not the declared separator
    source.write_text(f"size{other}colour{other}y\n30{other}red{other}no\n")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tabml.ingest",
            "--params",
            str(root / "params.yaml"),
            "--source",
            str(source),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert f"ERROR: {source}: only one column" in done.stderr
    assert "Traceback" not in done.stderr
    assert not out.exists()


def test_order_by_puts_rows_in_time_order_with_ties_in_source_order():
    raw = pd.DataFrame({
        "When": ["2024-03-02 10:00", "2024-03-01 09:00", "2024-03-02 10:00", "2024-02-28"],
        "y": ["a", "b", "c", "d"],
    })  # fmt: skip
    out = ingest(raw, IngestParams(source="x", order_by="when"), "seq")
    assert out["y"].tolist() == ["d", "b", "a", "c"]
    assert out["seq"].tolist() == [0, 1, 2, 3]
    window = ingest(raw, IngestParams(source="x", order_by="when", start=1, stop=3), "seq")
    assert window["y"].tolist() == ["b", "a"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["2024-03-02", None, "2024-03-01"], "ingest.order_by 'when': 1 rows have no time"),
        (["2024-03-02", "2024-03-01", "2024-03-03"], "names 'then', which is no column"),
    ],
)
def test_order_by_mistakes_are_one_line(values, message):
    column = "then" if "names" in message else "when"
    raw = pd.DataFrame({"when": values, "y": ["a", "b", "c"]})
    with pytest.raises(DataError, match=message):
        ingest(raw, IngestParams(source="x", order_by=column), "seq")
