"""The service's parts without a server: request contract, prediction log, settings, bento pins."""

from __future__ import annotations

import importlib.metadata
import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandera.pandas as pa
import pytest
import yaml
from pydantic import TypeAdapter, ValidationError
from testkit.declared import bounded_feature, category_feature, category_features, unknown_category

from tabml import bento as tabml_bento
from tabml.dataset import feature_columns, record_schema
from tabml.io import DataError
from tabml.serving.contract import describe, reason, refused_request, refused_value, request_model
from tabml.serving.observe import field_name
from tabml.serving.predlog import PredictionLog, read_log
from tabml.serving.runtime import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def features(params):
    return feature_columns(params)


@pytest.fixture
def adapter(features):
    return TypeAdapter(request_model(features))


def test_request_model_accepts_exactly_what_the_schema_accepts(adapter, features, tiny, params):
    for record in tiny[features].to_dict(orient="records"):
        adapter.validate_python(record)
    num = bounded_feature(params)
    bad = [(num.name, num.high + 80), (num.name, num.low - 1)]
    bad += [(name, unknown_category(values)) for name, values in category_features(params)]
    for column, value in bad:
        frame = tiny[features].head(1).assign(**{column: value})
        with pytest.raises(pa.errors.SchemaError):
            record_schema().select_columns(features).validate(frame)
        with pytest.raises(ValidationError) as caught:
            adapter.validate_python(frame.to_dict(orient="records")[0])
        assert caught.value.errors()[0]["loc"] == (column,)


def test_request_model_is_strict_and_closed(adapter, features, tiny, params):
    good = json.loads(tiny[features].head(1).to_json(orient="records"))[0]
    adapter.validate_json(json.dumps(good))
    num, cat = bounded_feature(params).name, category_feature(params)[0]
    extra = params.base.target  # a column of the schema, but no feature
    changes = ({num: str(good[num])}, {num: good[num] + 0.5}, {cat: None}, {extra: 1})
    for change in changes:
        with pytest.raises(ValidationError):
            adapter.validate_python({**good, **change})
    with pytest.raises(ValidationError):
        adapter.validate_python({k: v for k, v in good.items() if k != num})


def test_request_model_refuses_checks_it_cannot_enforce():
    schema = pa.DataFrameSchema({"x": pa.Column(int, pa.Check(lambda s: s > 0, name="custom"))})
    with pytest.raises(ValueError, match="check 'custom'"):
        request_model(["x"], schema)
    ranged = request_model(
        ["x"], pa.DataFrameSchema({"x": pa.Column(float, pa.Check.in_range(0, 1))})
    )
    TypeAdapter(ranged).validate_python({"x": 0.5})
    for value in (1.5, float("nan"), float("inf")):
        with pytest.raises(ValidationError):
            TypeAdapter(ranged).validate_python({"x": value})


def test_errors_become_reasons_and_one_readable_line():
    errors = [
        {"type": "missing", "loc": ("client", "age"), "msg": "Field required"},
        {"type": "literal_error", "loc": ("client", "job"), "msg": "Input should be 'a' or 'b'"},
    ]
    assert [reason(e["type"]) for e in errors] == ["missing_field", "unknown_category"]
    assert reason("int_type") == "wrong_type"
    assert reason("less_than_equal") == "out_of_range"
    assert reason("too_long") == "batch_too_large"
    line = describe(errors)
    assert line.startswith("invalid request (2 problems)")
    assert "client.age: Field required" in line and "client.job: Input should be" in line


def scored(n: int, start: int = 0):
    columns = {"a": list(range(start, start + n)), "b": ["x"] * n}
    probabilities = np.linspace(0.0, 1.0, n)
    return columns, probabilities, probabilities >= 0.5


def test_prediction_log_rotates_closes_and_reads_back(tmp_path):
    log = PredictionLog(tmp_path, ["a", "b"], rotate_seconds=0.2)
    for i in range(3):
        log.write(*scored(4, start=4 * i), "m:1")
        time.sleep(0.3)
    log.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) >= 2 and all(name.endswith(".parquet") for name in names)
    frame = read_log(tmp_path)
    assert frame["a"].tolist() == list(range(12))
    assert frame["time"].is_monotonic_increasing
    assert set(frame["model_version"]) == {"m:1"}
    assert frame["decision"].tolist() == (frame["probability"] >= 0.5).tolist()


def test_prediction_log_drops_and_counts_when_the_writer_is_behind(tmp_path):
    dropped = []
    log = PredictionLog(
        tmp_path, ["a", "b"], max_pending=10, flush_seconds=60, on_drop=dropped.append
    )
    log.write(*scored(8), "m:1")
    log.write(*scored(8), "m:1")  # 16 > 10 waiting: dropped
    log.close()
    assert dropped == [8]
    assert len(read_log(tmp_path)) == 8


def test_prediction_log_refuses_features_named_like_its_own_columns(tmp_path):
    with pytest.raises(ValueError, match="clash"):
        PredictionLog(tmp_path, ["age", "probability"])


@pytest.mark.parametrize("tag", ["tabml", "tabml:latest", ":abc", "tabml:"])
def test_settings_want_an_exact_model_tag(tag):
    with pytest.raises(ValidationError, match="exact"):
        Settings(model_tag=tag)


def test_bentofile_names_packages_and_the_lock_pins_them():
    names = yaml.safe_load((ROOT / "bentofile.yaml").read_text())["python"]["packages"]
    assert names and all("=" not in name for name in names), names
    locked = tabml_bento.locked_versions(ROOT / "uv.lock")
    pins = tabml_bento.pin(names, locked, "uv.lock")
    for name, pinned in zip(names, pins, strict=True):
        # The lock is what the tests run on: the installed environment is uv.lock's.
        assert pinned == f"{name}=={importlib.metadata.version(name)}", pinned


@pytest.mark.parametrize(
    ("names", "message"),
    [(["numpy==1.0"], "name the package only"), (["not-locked-pkg"], "run `uv lock`")],
)
def test_bentofile_packages_must_be_bare_locked_names(names, message):
    with pytest.raises(DataError, match=message):
        tabml_bento.pin(names, {"numpy": {"2.0"}}, "uv.lock")


def test_a_lock_with_two_versions_of_a_package_is_refused():
    with pytest.raises(DataError, match="one version"):
        tabml_bento.pin(["numpy"], {"numpy": {"1.26.4", "2.0.0"}}, "uv.lock")


@pytest.mark.slow
def test_the_built_bento_requires_the_locked_versions(bento, pipeline):
    """The bento `make bento` built installs exactly uv.lock's versions of what it names."""
    done = subprocess.run(
        ["bentoml", "get", bento.bento_tag, "-o", "path"],
        capture_output=True,
        text=True,
        check=True,
        env=bento.env,
        cwd=pipeline.path,
    )
    reqs = Path(done.stdout.strip()) / "env/python/requirements.txt"
    required = {
        tabml_bento.normalise(name): version
        for name, _, version in (
            line.strip().partition("==") for line in reqs.read_text().splitlines()
        )
        if version
    }
    names = yaml.safe_load((ROOT / "bentofile.yaml").read_text())["python"]["packages"]
    locked = tabml_bento.locked_versions(ROOT / "uv.lock")
    for name in names:
        assert {required.get(tabml_bento.normalise(name))} == locked[
            tabml_bento.normalise(name)
        ], name


@pytest.mark.parametrize(
    ("column", "value", "why"),
    [
        (pa.Column(str, pa.Check.isin(["a", "b"])), "not-a-category", "unknown category"),
        (pa.Column(int, pa.Check.ge(0)), -1, "below the range"),
        (pa.Column(float, pa.Check.gt(0.5)), -0.5, "below the range"),
        (pa.Column(int, pa.Check.le(9)), 10, "above the range"),
        (pa.Column(float, pa.Check.in_range(2, 3)), 1, "below the range"),
        (pa.Column(float), "not-a-number", "wrong type"),
        (pa.Column(str), 12345, "wrong type"),
    ],
)
def test_refused_value_is_refused_by_the_request_model(column, value, why):
    schema = pa.DataFrameSchema({"x": column})
    assert refused_value(schema.columns["x"]) == (value, why)
    with pytest.raises(ValidationError) as caught:
        TypeAdapter(request_model(["x"], schema)).validate_python({"x": value})
    assert caught.value.errors()[0]["loc"] == ("x",)


def test_refused_request_prefers_a_checked_field_of_a_real_record(features, tiny, adapter):
    record = json.loads(tiny[features].head(1).to_json(orient="records"))[0]
    refused = refused_request(record)
    field = refused["field"]
    assert record_schema().columns[field].checks
    assert refused["record"] == {**record, field: refused["value"]}
    with pytest.raises(ValidationError) as caught:
        adapter.validate_python(refused["record"])
    assert caught.value.errors()[0]["loc"] == (field,)


def test_openapi_example_is_the_record_stored_with_the_model(features, tiny):
    record = json.loads(tiny[features].head(1).to_json(orient="records"))[0]
    model = request_model(features, example=record)
    assert TypeAdapter(model).json_schema()["example"] == record
    TypeAdapter(model).validate_python(record)


def test_only_server_errors_keep_bentomls_traceback_record():
    from bentoml.exceptions import InternalServerError, InvalidArgument

    from tabml.serving.observe import ClientErrorFilter

    def record(exc: Exception) -> logging.LogRecord:
        try:
            raise exc
        except Exception:
            info = sys.exc_info()
        return logging.LogRecord("bentoml", logging.ERROR, __file__, 1, "Exception", (), info)

    with pytest.raises(ValidationError) as caught:
        TypeAdapter(int).validate_python("secret")
    keep = ClientErrorFilter().filter
    assert not keep(record(caught.value))
    assert not keep(record(InvalidArgument("bad input")))
    assert keep(record(InternalServerError("broken")))
    assert keep(record(RuntimeError("a bug")))


@pytest.mark.parametrize(
    ("loc", "name"),
    [(("client", "age"), "client.age"), (("records", 3, "job"), "records.3.job"),
     (("client", "a\nb"), "client.?"), (("client", "x" * 100), "client.?"), ((), "")],
)  # fmt: skip
def test_the_log_names_a_field_only_when_it_looks_like_a_name(loc, name):
    assert field_name(loc) == name
