"""`make init`'s parts on small made-up files: schema inference, settings and refusals."""

from __future__ import annotations

import argparse
import importlib
import math

import numpy as np
import pandas as pd
import pytest

from tabml import init
from tabml.ingest import in_time_order
from tabml.io import DataError
from tabml.schema_writer import MAX_CATEGORIES, infer, infer_column, render


def frame(rows: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "Amount ($)": rng.uniform(-5, 50, rows).round(2),
        "count": rng.integers(0, 9, rows),
        "kind": rng.choice(["a", "b", "c"], rows),
        "note": [f"free {i}" for i in range(rows)],
        "outcome": rng.choice(["bad", "good"], rows),
        "when": pd.date_range("2024-01-01", periods=rows, freq="h").astype(str)[::-1],
    })  # fmt: skip


def test_columns_become_typed_lines_with_ranges_categories_and_gaps():
    data = frame(MAX_CATEGORIES + 50).assign(count=lambda f: f["count"].astype(float))
    data.loc[::4, "count"] = np.nan
    data.loc[::5, "kind"] = None
    amount, count, kind, note = (infer_column(c, data[c]) for c in
                                 ("Amount ($)", "count", "kind", "note"))  # fmt: skip
    low, high = data["Amount ($)"].min(), data["Amount ($)"].max()
    assert amount.kind == "float" and "nullable" not in amount.field
    floor = float(amount.field.split("ge=")[1].split(",")[0])
    ceiling = float(amount.field.split("le=")[1].split(")")[0])
    assert floor < low and ceiling > high  # widened by the margin
    assert count.kind == "float" and count.field.startswith("pa.Field(ge=0.0,")  # keeps its floor
    share = data["count"].isna().mean()
    assert "nullable=True" in count.field and f"{share:.1%} missing" in count.note
    assert kind.field == 'pa.Field(isin=("a", "b", "c",), nullable=True)'
    assert note.free_text and "isin" not in note.field
    assert len(data) > MAX_CATEGORIES


def test_the_written_schema_is_python_that_validates_its_data(tmp_path, monkeypatch):
    data = frame()
    data.loc[::3, "Amount ($)"] = np.nan
    data.columns = ["amount", "count", "kind", "note", "outcome", "when"]
    (tmp_path / "written_schema.py").write_text(
        render(infer(data), {"source": "x.csv", "rows": len(data)})
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    written = importlib.import_module("written_schema")
    written.RecordSchema.validate(data)
    assert written.ROW_RULES == ()
    with pytest.raises(Exception, match="kind"):
        written.RecordSchema.validate(data.assign(kind="z"))


def args(source, **given) -> argparse.Namespace:
    values = {"source": str(source), "target": "outcome", "positive": None, "time": None,
              "leak": None, "sep": None, "database": None, "params": "params.yaml",
              **given}  # fmt: skip
    return argparse.Namespace(**values)


@pytest.mark.parametrize(
    ("change", "given", "message"),
    [
        (lambda f: f, {"target": "label"}, "--target label: no such column; the source has:"),
        (lambda f: f, {}, "'outcome' has the labels 'bad', 'good': name the positive one"),
        (lambda f: f, {"positive": "great"}, "--positive 'great' is no label of 'outcome'"),
        (lambda f: f.assign(outcome=f["outcome"].where(f.index % 9 > 0)), {"positive": "good"},
         "'outcome' is missing in 23 rows"),
        (lambda f: f.assign(outcome=range(len(f))), {}, "'outcome' has 200 distinct values"),
        (lambda f: f, {"positive": "good", "leak": "after"}, "'after' is no column of the source"),
    ],
)  # fmt: skip
def test_unusable_input_stops_in_one_line_and_writes_nothing(root, tmp_path, monkeypatch, change,
                                                               given, message):  # fmt: skip
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text((root / "params.yaml").read_text())
    change(frame()).to_csv(tmp_path / "mine.csv", sep=";", index=False)
    with pytest.raises(DataError) as caught:
        init.adopt(args(tmp_path / "mine.csv", **given))
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.csv", "params.yaml"]


def test_settings_follow_the_data(params):
    data = frame(1000)
    values = init.settings(data, "outcome", "good", ["when"], [], "x.csv.gz", "seq", params)
    rate = (data["outcome"] == "good").mean()
    assert values[("base", "positive_label")] == "good"
    assert math.isclose(values[("base", "threshold")], round(rate, 2))
    low, high = (
        values[("validate", "min_positive_rate")],
        values[("validate", "max_positive_rate")],
    )
    assert low < rate < high
    held_out = round(1000 * params.split.valid_size) + round(1000 * params.split.test_size)
    assert values[("drift", "reference_stop")] == 1000 - held_out  # the time split's training part
    assert values[("drift", "exclude")] == ["when"]


def test_time_orders_the_rows_and_separators_are_found(tmp_path):
    data = frame()
    path = tmp_path / "mine.tsv"
    data.to_csv(path, sep="\t", index=False)
    assert init.sniff_sep(str(path)) == "\t"
    ordered = in_time_order(init.read(str(path), None), "when")
    assert ordered["when"].is_monotonic_increasing
    assert ordered["when"].tolist() == sorted(data["when"])
