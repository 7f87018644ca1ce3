"""The numbers behind the default split and feature set in params.yaml.

    python benchmarks/splits.py

Trains the project's pipeline (tabml.train) on the shipped data under each choice and prints
the validation and test ROC AUC.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from record import recorded
from sklearn.metrics import roc_auc_score

from tabml.ingest import ingest, read_source
from tabml.params import Params, load_params
from tabml.predict import labels, score
from tabml.split import split
from tabml.train import train

ROOT = Path(__file__).resolve().parents[1]
MACRO = ("emp_var_rate", "cons_price_idx", "cons_conf_idx", "euribor3m", "nr_employed")
HGB_DEFAULTS = {"learning_rate": 0.1, "max_iter": 100}


def variant(params: Params, strategy: str, drop: tuple[str, ...], **train_changes) -> Params:
    return replace(
        params,
        split=replace(params.split, strategy=strategy),
        train=replace(params.train, drop_columns=drop, **train_changes),
    )


def main() -> None:
    params = load_params(ROOT / "params.yaml")
    raw = read_source(str(ROOT / params.ingest.source), params.ingest.sep)
    frame = ingest(raw, params.ingest, params.base.time_column)
    default = params.train.hist_gradient_boosting
    untuned = {"hist_gradient_boosting": HGB_DEFAULTS}
    choices = {
        "stratified, all but duration (HGB defaults)": variant(
            params, "stratified", ("duration",), **untuned
        ),
        "time, all but duration (HGB defaults)": variant(params, "time", ("duration",), **untuned),
        "time, no duration, no macro (HGB defaults)": variant(
            params, "time", ("duration", *MACRO), **untuned
        ),
        "time, no duration, no macro (params.yaml)": variant(
            params, "time", ("duration", *MACRO), hist_gradient_boosting=default
        ),
        "time, no duration, no macro, LogisticRegression": variant(
            params, "time", ("duration", *MACRO), estimator="logistic_regression"
        ),
        "stratified, no duration, no macro (params.yaml)": variant(
            params, "stratified", ("duration", *MACRO)
        ),
    }
    print("| split and features | valid ROC AUC | test ROC AUC |\n|---|---:|---:|")
    for name, cfg in choices.items():
        train_part, valid, test = split(frame, cfg)
        model, metrics = train(train_part, valid, cfg)
        test_auc = roc_auc_score(labels(test, cfg), score(model, test))
        print(f"| {name} | {metrics['valid_roc_auc']:.3f} | {test_auc:.3f} |")


if __name__ == "__main__":
    with recorded("splits"):
        main()
