"""The summary of a search (`make tune`): `tuning.json`, `tuning.md` (the pull request's body)
and `tuning.png` (each trial's value, the best so far, and params.yaml's settings)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from tabml.io import atomic_open, atomic_path, write_json
from tabml.params import Params
from tabml.tune_space import Folds


def _spread(scores: list[float]) -> dict[str, Any]:
    return {
        "value": float(np.mean(scores)),
        "std": float(np.std(scores, ddof=1)) if len(scores) > 1 else None,
        "fold_scores": scores,
    }


def record(trial: FrozenTrial) -> dict[str, Any]:
    """A trial's settings, state and scores; a pruned trial's value is its last mean."""
    return {
        "trial": trial.number,
        "state": trial.state.name,
        "settings": trial.user_attrs.get("settings", {}),
        **_spread(trial.user_attrs.get("fold_scores", [])),
        "value": trial.value,
        "seconds": trial.user_attrs.get("seconds"),
    }


def importances(study: optuna.Study, seed: int) -> dict[str, float]:
    """fANOVA importance of each parameter over the complete trials; none when too few."""
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=seed)
    try:
        found = optuna.importance.get_param_importances(study, evaluator=evaluator)
    except (ValueError, RuntimeError):
        return {}
    return {key: round(float(value), 4) for key, value in found.items()}


def summarize(study: optuna.Study, frame: pd.DataFrame, params: Params, folds: Folds) -> dict:
    """Best and current settings on the same folds, the trials, the folds, the importances."""
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    found = study.user_attrs["current"]
    current = {"trial": None, "state": "CURRENT", "settings": found["settings"],
               **_spread(found["scores"]), "seconds": found["seconds"]}  # fmt: skip
    best = current
    if complete:
        top = record(max(complete, key=lambda t: (t.value, -t.number)))  # ties: the earlier
        best = top if top["value"] > current["value"] else current
    time = frame[params.base.time_column].to_numpy()
    return {
        "metric": params.tune.metric,
        "estimator": params.train.estimator,
        "seed": params.base.seed,
        "batch": params.tune.batch,
        "best": best,
        "current": current,
        "gain": best["value"] - current["value"],
        "changed": best is not current,
        "trials": {
            "run": len(study.trials),
            "complete": len(complete),
            "pruned": sum(t.state == TrialState.PRUNED for t in study.trials),
        },
        "folds": [
            {
                "train_rows": len(fit),
                "scored_rows": len(scored),
                "train_time": [time[fit].min().item(), time[fit].max().item()],
                "scored_time": [time[scored].min().item(), time[scored].max().item()],
            }
            for fit, scored in folds
        ],
        "importances": importances(study, params.base.seed) if len(complete) > 1 else {},
        "history": [record(t) for t in study.trials],
    }


def _value(value: Any, digits: int) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def to_markdown(summary: dict[str, Any]) -> str:
    best, current, trials = summary["best"], summary["current"], summary["trials"]
    metric, digits = summary["metric"], 0 if summary["metric"].startswith("profit") else 4
    verdict = (
        f"{metric} {_value(best['value'], digits)} ± {_value(best['std'], digits)} over "
        f"{len(summary['folds'])} forward folds, against {_value(current['value'], digits)} ± "
        f"{_value(current['std'], digits)} for the settings in params.yaml "
        f"({summary['gain']:+,.{digits}f})"
    )
    head = "Best" if summary["changed"] else "No better settings found"
    budget = summary["budget"]
    lines = [
        "## Hyperparameter search", "",
        f"**{head} in {trials['run']} trials ({trials['complete']} complete, {trials['pruned']} "
        f"pruned): {verdict}.**", "",
        f"Estimator `{summary['estimator']}`; TPE sampler seeded {summary['seed']}, asked "
        f"{summary['batch']} trials at a time; median pruning. Budget {budget['trials']} trials "
        f"or {budget['seconds']:.0f} s, {budget['workers']} worker(s): "
        f"{summary['seconds']:.0f} s. MLflow run `{summary.get('mlflow_run_id')}` holds one "
        "child run per trial.", "",
        "| parameter | params.yaml | best | importance |", "|---|---:|---:|---:|",
    ]  # fmt: skip
    for key, value in best["settings"].items():
        importance = summary["importances"].get(key)
        lines.append(
            f"| {key} | {current['settings'].get(key, '-')} | {value} | "
            f"{'-' if importance is None else f'{importance:.2f}'} |"
        )
    lines += ["", "| fold | trains on rows (time) | scores rows (time) | best | params.yaml |",
              "|---:|---|---|---:|---:|"]  # fmt: skip
    for k, fold in enumerate(summary["folds"]):
        scores = [
            _value(t["fold_scores"][k] if k < len(t["fold_scores"]) else None, digits)
            for t in (best, current)
        ]
        lines.append(
            f"| {k + 1} | {fold['train_rows']:,} ({fold['train_time'][0]} to "
            f"{fold['train_time'][1]}) | {fold['scored_rows']:,} ({fold['scored_time'][0]} to "
            f"{fold['scored_time'][1]}) | {scores[0]} | {scores[1]} |"
        )
    lines += [
        "",
        "The folds chain forward through the training split only: each trains on earlier rows "
        "and scores later ones; the validation and test splits are never read. `make tune` "
        "proposes; `make tune APPLY=1` writes the best settings into params.yaml and runs "
        "`dvc repro`, and the pull request's gate and report judge the model it trains.",
    ]
    return "\n".join(lines) + "\n"


def plot(summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    history = summary["history"]
    fig, ax = plt.subplots(figsize=(7, 4))
    for state, marker in (("COMPLETE", "o"), ("PRUNED", "x")):
        shown = [t for t in history if t["state"] == state and t["value"] is not None]
        ax.scatter([t["trial"] for t in shown], [t["value"] for t in shown], marker=marker,
                   label=f"{state.lower()} trial")  # fmt: skip
    complete = [t for t in history if t["state"] == "COMPLETE"]
    best = np.maximum.accumulate([t["value"] for t in complete])
    ax.step([t["trial"] for t in complete], best, where="post", label="best so far")
    ax.axhline(summary["current"]["value"], linestyle="--", color="grey", label="params.yaml")
    ax.set(xlabel="trial", ylabel=f"{summary['metric']} (mean of forward folds)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def write(summary: dict[str, Any], out: Path) -> list[Path]:
    """Write tuning.json, tuning.md and tuning.png into `out`; return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "tuning.json", out / "tuning.md", out / "tuning.png"]
    write_json(summary, paths[0])
    with atomic_open(paths[1]) as fh:
        fh.write(to_markdown(summary))
    plot(summary, paths[2])
    return paths
