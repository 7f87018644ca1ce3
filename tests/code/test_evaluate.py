from dataclasses import replace

import numpy as np
import pytest

from tabml.evaluate import GRID, compute_metrics, curves, evaluate, profit
from tabml.params import EvaluateParams
from tabml.train import train


def test_profit_of_acting_on_the_top_share(params):
    y = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 0])
    proba = np.array([0.9, 0.8, 0.1, 0.2, 0.3, 0.0, 0.0, 0.0, 0.0, 0.0])
    assert profit(y, proba, replace(params, evaluate=EvaluateParams(value_per_positive=0))) == {}
    params = replace(params, evaluate=EvaluateParams(top_k=0.2, cost_per_action=5.0,
                                                     value_per_positive=50.0))  # fmt: skip
    result = profit(y, proba, params)
    cfg = params.evaluate
    calls = int(np.ceil(cfg.top_k * 10))
    hits = int(y[np.argsort(-proba, kind="stable")[:calls]].sum())
    assert result["profit_top_k"] == pytest.approx(
        cfg.value_per_positive * hits - cfg.cost_per_action * calls
    )
    assert result["profit_random_k"] == pytest.approx(
        calls * (0.2 * cfg.value_per_positive - cfg.cost_per_action)
    )


def test_perfect_scores_give_perfect_ranking_metrics(params):
    y = np.array([0, 0, 0, 1, 1])
    metrics = compute_metrics(y, np.array([0.01, 0.02, 0.03, 0.98, 0.99]), params)
    assert metrics["roc_auc"] == 1.0 and metrics["pr_auc"] == 1.0
    assert metrics["precision"] == metrics["recall"] == metrics["f1"] == 1.0
    assert metrics["brier"] < 0.001 and metrics["positive_rate"] == 0.4


def test_curves_are_sampled_on_the_grid(params):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    plots = curves(y, np.clip(y * 0.3 + rng.random(500) * 0.7, 0, 1))
    assert len(plots["roc"]) == len(GRID) == len(plots["gain"])
    assert plots["roc"][0]["fpr"] == 0.0 and plots["roc"][-1]["tpr"] == 1.0
    assert plots["gain"][-1]["share_positives_found"] == 1.0
    assert all(0 <= row["fraction_positive"] <= 1 for row in plots["calibration"])


def test_evaluate_reports_every_split_and_plot(tiny, params):
    model, _ = train(tiny, tiny, params)
    metrics, plots = evaluate(model, {"valid": tiny, "test": tiny}, params)
    assert set(metrics) == {"valid", "test"}
    expected = {"roc", "precision_recall", "calibration", "gain"}
    assert {f"{kind}_{split}" for kind in expected for split in metrics} | {
        "confusion_test",
        "importance_test",
    } == set(plots)
    assert len(plots["confusion_test"]) == len(tiny)
    assert {row["feature"] for row in plots["importance_test"]} == set(model.feature_names_in_)
