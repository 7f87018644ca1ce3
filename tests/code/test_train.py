from dataclasses import replace

import numpy as np
import pytest

from tabml.dataset import feature_columns
from tabml.io import DataError
from tabml.predict import score
from tabml.train import build_pipeline, flatten, train


def with_estimator(params, name):
    return replace(params, train=replace(params.train, estimator=name))


def test_features_exclude_the_dropped_and_the_bookkeeping_columns(params):
    features = feature_columns(params)
    assert not set(params.train.drop_columns) & set(features)
    assert params.base.target not in features and params.base.time_column not in features


@pytest.mark.parametrize("estimator", ["hist_gradient_boosting", "logistic_regression"])
def test_both_estimators_fit_and_score(tiny, params, estimator):
    cfg = with_estimator(params, estimator)
    model, metrics = train(tiny, tiny, cfg)
    assert type(model.named_steps["classifier"]).__name__ in {
        "HistGradientBoostingClassifier",
        "LogisticRegression",
    }
    assert list(model.feature_names_in_) == feature_columns(cfg)
    proba = score(model, tiny)
    assert proba.shape == (len(tiny),) and ((proba >= 0) & (proba <= 1)).all()
    assert 0.5 < metrics["train_roc_auc"] <= 1.0


def test_training_is_deterministic(tiny, params):
    first, _ = train(tiny, tiny, params)
    second, _ = train(tiny, tiny, params)
    np.testing.assert_array_equal(score(first, tiny), score(second, tiny))


def test_unknown_estimator_is_named(tiny, params):
    with pytest.raises(DataError, match="'xgboost'"):
        build_pipeline(tiny, with_estimator(params, "xgboost"))


def test_flatten_names_nested_estimator_settings(params):
    flat = flatten(params)
    assert (
        flat["train.hist_gradient_boosting.max_depth"]
        == params.train.hist_gradient_boosting["max_depth"]
    )
    assert flat["split.strategy"] == params.split.strategy
