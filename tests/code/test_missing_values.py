"""Missing values end to end: both estimators train and score with gaps, the compiled graph is
used only where it scores gaps as the pipeline does, and the contract takes null exactly where
the schema allows it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pytest
from pydantic import TypeAdapter, ValidationError

from tabml.dataset import feature_columns
from tabml.predict import labels
from tabml.serving.contract import request_model
from tabml.serving.inference import TOLERANCE, export, load_scorer, with_gaps
from tabml.train import ESTIMATORS, build_pipeline


def gappy(frame: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    """`frame` with a different tenth of each feature missing."""
    out = frame.copy()
    for i, column in enumerate(features):
        out.loc[out.index[i % 10 :: 10], column] = None
    return out


def as_requests(frame: pd.DataFrame) -> dict[str, list]:
    """Columns as JSON requests carry them: a missing value is None (null)."""
    return {c: [None if pd.isna(v) else v for v in frame[c]] for c in frame.columns}


@pytest.mark.parametrize("estimator", sorted(ESTIMATORS))
def test_both_estimators_train_and_score_with_gaps(params, tiny, estimator):
    train = dataclasses.replace(params.train, estimator=estimator)
    params = dataclasses.replace(params, train=train)
    features = feature_columns(params)
    frame = gappy(tiny, features)
    assert frame[features].isna().any().all()
    model = build_pipeline(frame, params).fit(frame[features], labels(frame, params))
    proba = model.predict_proba(frame[features])[:, 1]
    assert np.isfinite(proba).all() and ((proba > 0) & (proba < 1)).all()


def test_served_scores_of_gaps_equal_the_pipeline(params, tiny, tmp_path):
    features = feature_columns(params)
    frame = gappy(tiny, features)
    model = build_pipeline(frame, params).fit(frame[features], labels(frame, params))
    facts = export(model, tiny[features], tmp_path, nullable=features)
    assert facts["runtime"] in {"onnx", "sklearn"}
    scorer = load_scorer(tmp_path, facts["runtime"])
    probe = with_gaps(tiny[features], features)
    assert len(probe) == 2 * len(tiny) and probe[features].isna().any().all()
    expected = model.predict_proba(probe)[:, 1]
    got = scorer.score(as_requests(probe))
    assert np.abs(got - expected).max() <= TOLERANCE


def test_no_gap_probe_without_nullable_features(tiny):
    assert with_gaps(tiny, []) is tiny


def test_request_takes_null_exactly_for_nullable_columns():
    schema = pa.DataFrameSchema({
        "gap": pa.Column(float, pa.Check.ge(0), nullable=True),
        "kind": pa.Column(str, pa.Check.isin(["a", "b"]), nullable=True),
        "full": pa.Column(float),
    })  # fmt: skip
    adapter = TypeAdapter(request_model(["gap", "kind", "full"], schema))
    adapter.validate_python({"gap": None, "kind": None, "full": 1.0})
    adapter.validate_json('{"gap": null, "kind": "a", "full": 2.5}')
    with pytest.raises(ValidationError) as caught:
        adapter.validate_python({"gap": 1.0, "kind": "a", "full": None})
    assert caught.value.errors()[0]["loc"] == ("full",)
    with pytest.raises(ValidationError):
        adapter.validate_python({"gap": -1.0, "kind": None, "full": 1.0})  # range still holds
    with pytest.raises(ValidationError):
        adapter.validate_python({"gap": None, "kind": "c", "full": 1.0})  # categories too
