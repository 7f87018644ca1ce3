"""The example's client record (tests/example/bank_client.py) fits the schema and the contract."""

import pandas as pd
import pytest
from bank_client import EXAMPLE_CLIENT
from pydantic import TypeAdapter, ValidationError

from tabml.dataset import feature_columns, record_schema
from tabml.serving.contract import request_model

pytestmark = pytest.mark.example


def test_example_client_passes_the_pandera_schema():
    record_schema().select_columns(list(EXAMPLE_CLIENT)).validate(pd.DataFrame([EXAMPLE_CLIENT]))


def test_request_model_is_strict_and_closed_on_the_example_client(params):
    features = feature_columns(params)
    adapter = TypeAdapter(request_model(features))
    good = {name: EXAMPLE_CLIENT[name] for name in features}
    adapter.validate_json(pd.Series(good).to_json())
    for change in ({"age": "31"}, {"age": 31.5}, {"job": None}, {"duration": 1}):
        with pytest.raises(ValidationError):
            adapter.validate_python({**good, **change})
    with pytest.raises(ValidationError):
        adapter.validate_python({k: v for k, v in good.items() if k != "age"})
