"""The trained model of the pipeline: thresholds against baselines, and behaviour."""

import json

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from tabml.params import load_params
from tabml.predict import labels, score

pytestmark = [pytest.mark.example, pytest.mark.slow]

# "A clear margin" over a model with no information (ROC AUC 0.5 for any constant score, such
# as the prior positive rate): forward in time on this data, good models reach about 0.6-0.68.
MIN_ROC_AUC = 0.60


@pytest.fixture(scope="module")
def trained(pipeline):
    params = load_params(pipeline.path / "params.yaml")
    model = joblib.load(pipeline.path / "models/model.joblib")
    test = pd.read_parquet(pipeline.path / "data/processed/test.parquet")
    return params, model, test


def test_beats_the_prior_rate_baseline_by_a_clear_margin(pipeline, trained):
    params, model, test = trained
    y = labels(test, params)
    prior = np.full(len(test), y.mean())
    assert roc_auc_score(y, prior) == 0.5
    metrics = json.loads((pipeline.path / "reports/metrics.json").read_text())
    for split in ("valid", "test"):
        assert metrics[split]["roc_auc"] >= MIN_ROC_AUC, (split, metrics[split]["roc_auc"])
    assert roc_auc_score(y, score(model, test)) == pytest.approx(metrics["test"]["roc_auc"])


def test_better_log_loss_than_the_training_prior(pipeline, trained):
    params, _, _ = trained
    train = pd.read_parquet(pipeline.path / "data/processed/train.parquet")
    valid = pd.read_parquet(pipeline.path / "data/processed/valid.parquet")
    rate, y = labels(train, params).mean(), labels(valid, params)
    prior_loss = -(y * np.log(rate) + (1 - y) * np.log(1 - rate)).mean()
    metrics = json.loads((pipeline.path / "reports/metrics.json").read_text())
    assert metrics["valid"]["log_loss"] < prior_loss


def test_call_duration_cannot_change_a_score(trained):
    _, model, test = trained
    assert "duration" not in model.feature_names_in_
    longer = test.assign(duration=test["duration"] * 10 + 600)
    np.testing.assert_array_equal(score(model, test), score(model, longer))


def relative_change(model, before, after) -> float:
    return float(score(model, after).mean() / score(model, before).mean())


def test_cellular_contact_scores_higher_than_telephone(trained):
    """Directional: calls to mobiles succeed about three times as often in the data."""
    _, model, test = trained
    phone = test[test["contact"] == "telephone"]
    assert relative_change(model, phone, phone.assign(contact="cellular")) > 1.05


def test_older_clients_score_higher_than_middle_aged(trained):
    """Directional: retired clients subscribe far more often than those aged 30-50."""
    _, model, test = trained
    middle = test[test["age"].between(30, 50)]
    assert relative_change(model, middle, middle.assign(age=70)) > 1.2


@pytest.mark.xfail(
    strict=True,
    reason="known limit: the training window (2008-2009) holds 50 clients with a previous "
    "success, fewer than min_samples_leaf=100; lowering it to learn them costs 0.06 test ROC AUC",
)
def test_previous_success_raises_the_score(trained):
    _, model, test = trained
    never = test[test["poutcome"] == "nonexistent"]
    assert (
        relative_change(model, never, never.assign(poutcome="success", previous=1, pdays=6)) > 1.2
    )


def test_scores_are_probabilities_and_rank_by_row(trained):
    _, model, test = trained
    proba = score(model, test)
    assert ((proba > 0) & (proba < 1)).all()
    shuffled = test.sample(frac=1.0, random_state=1)
    np.testing.assert_allclose(score(model, shuffled), proba[shuffled.index])
