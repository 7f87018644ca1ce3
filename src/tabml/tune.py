"""`make tune`: search the estimator's hyperparameters on forward folds of the training window.

    python -m tabml.tune --train TRAIN.parquet --out reports [--storage build/tune/optuna.db] \
        [--trials N] [--seconds S] [--workers W] [--apply]

The space, the folds and the objective are `tabml.tune_space`'s. params.yaml's settings are
scored on the same folds; only a trial that beats them is proposed. The sampler
(TPE, seeded by `base.seed`) is asked `tune.batch` trials at a time; worker processes run them,
reporting each fold to Optuna's storage, where the median pruner stops a trial below the median
of the trials of earlier batches. The search is therefore the same for any number of workers;
only a `tune.seconds` budget that runs out (checked between batches) can shorten it. One MLflow
run holds the search, with a child run per trial; the summary goes to `<out>/tuning.{json,md,png}`.
`--apply` writes the best settings into params.yaml (comments kept): `make tune APPLY=1` then
runs `dvc repro`, so the gate and the report judge the result.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import nullcontext
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
from optuna.trial import TrialState
from threadpoolctl import threadpool_limits

from tabml import cli, lineage, tracking, tune_report
from tabml.io import DataError, atomic_open, read_parquet
from tabml.params import Params, load_params
from tabml.retrain import github_output, set_param
from tabml.train import ESTIMATORS
from tabml.tune_space import check_settings, distributions, fold_scores, forward_folds

log = logging.getLogger(__name__)

STUDY = "tabml-tune"
SIGNIFICANT = 3  # digits kept of a sampled float: what params.yaml gets is what was scored
_worker: dict[str, Any] = {}  # each process's frame, folds, params and study


def tidy(value: Any) -> Any:
    return float(f"{value:.{SIGNIFICANT}g}") if isinstance(value, float) else value


def current_settings(params: Params, space: dict[str, Any]) -> dict[str, Any]:
    """params.yaml's value of each parameter of the space (else the estimator's default)."""
    defaults = ESTIMATORS[params.train.estimator]().get_params()
    settings = getattr(params.train, params.train.estimator)
    return {key: settings.get(key, defaults[key]) for key in space}


def _start(frame: pd.DataFrame, params: Params, storage: str) -> None:
    """Set up a worker: one thread per fit, so that processes, not threads, use the cores."""
    threadpool_limits(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=STUDY, storage=rdb(storage), pruner=pruner(params))
    _worker.update(frame=frame, params=params, folds=forward_folds(frame, params), study=study)


def _run_trial(job: tuple[int | None, dict[str, Any]]) -> dict[str, Any]:
    """Score one trial's settings (no trial id: params.yaml's, never pruned) on the folds."""
    trial_id, settings = job
    pruned: list[bool] = []
    stop = None
    if trial_id is not None:
        # Optuna's own Trial, attached by id: reports and prune checks go through the storage.
        trial = optuna.trial.Trial(_worker["study"], trial_id)

        def stop(step: int, mean: float) -> bool:
            trial.report(mean, step)
            pruned.append(trial.should_prune())
            return pruned[-1]

    start = time.perf_counter()
    scores = fold_scores(_worker["frame"], _worker["folds"], _worker["params"], settings, stop)
    return {"scores": scores, "pruned": any(pruned), "seconds": time.perf_counter() - start}


def pruner(params: Params) -> optuna.pruners.BasePruner:
    return optuna.pruners.MedianPruner(n_startup_trials=params.tune.pruner_startup)


def rdb(url: str) -> optuna.storages.RDBStorage:
    # Workers write fold reports side by side: wait for SQLite's lock rather than fail.
    return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 300}})


def search(
    frame: pd.DataFrame, params: Params, storage: Path, trials: int, seconds: float, workers: int
) -> optuna.Study:
    """Run the search on a fresh study in `storage`; each batch is logged as it ends."""
    space = distributions(params)
    forward_folds(frame, params)  # a window that cannot be folded stops here, not in a worker
    storage.parent.mkdir(parents=True, exist_ok=True)
    storage.unlink(missing_ok=True)
    url = f"sqlite:///{storage.resolve()}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        storage=rdb(url),
        study_name=STUDY,
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=params.base.seed),
        pruner=pruner(params),
    )
    start = time.monotonic()
    pool: Executor | None = None
    if workers > 1:
        # Forked, a worker starts with the modules and the frame already loaded; it opens its
        # own storage connection and never touches the parent's MLflow run.
        pool = ProcessPoolExecutor(workers, get_context("fork"), _start, (frame, params, url))
    else:
        _start(frame, params, url)
    with pool or nullcontext(), threadpool_limits(1):
        while len(study.trials) < trials and time.monotonic() - start < seconds:
            size = min(params.tune.batch, trials - len(study.trials))
            asked = [study.ask(space) for _ in range(size)]
            jobs = [(t._trial_id, {k: tidy(v) for k, v in t.params.items()}) for t in asked]
            if "current" not in study.user_attrs:  # params.yaml's settings, on the same folds
                jobs.insert(0, (None, {}))
            results = list((pool.map if pool else map)(_run_trial, jobs))
            if jobs[0][0] is None:
                jobs.pop(0)
                current = results.pop(0)
                study.set_user_attr(
                    "current", {**current, "settings": current_settings(params, space)}
                )
            for trial, (_, settings), result in zip(asked, jobs, results, strict=True):
                trial.set_user_attr("settings", settings)
                trial.set_user_attr("fold_scores", result["scores"])
                trial.set_user_attr("seconds", result["seconds"])
                state = TrialState.PRUNED if result["pruned"] else TrialState.COMPLETE
                mean = sum(result["scores"]) / len(result["scores"])
                study.tell(trial, None if result["pruned"] else mean, state=state)
            log.info("%d trials done, best %.4f", len(study.trials), study.best_value)
    return study


def log_trials(summary: dict[str, Any]) -> None:
    """One child MLflow run per trial, and one for params.yaml's settings: settings, fold
    scores, mean, time."""
    import mlflow

    for trial in [summary["current"], *summary["history"]]:
        name = "params.yaml" if trial["trial"] is None else f"trial {trial['trial']}"
        tags = {"tune.state": trial["state"], "tune.trial": name}
        with mlflow.start_run(run_name=name, nested=True, tags=tags):
            mlflow.log_params(trial["settings"])
            metrics = {f"fold_{k}": v for k, v in enumerate(trial["fold_scores"])}
            metrics["seconds"] = trial["seconds"] or 0.0
            if trial["value"] is not None:
                metrics["value"] = trial["value"]
            mlflow.log_metrics(metrics)


def apply(params_path: str, params: Params, settings: dict[str, Any]) -> None:
    """Write `settings` into params.yaml's block of the estimator, comments kept."""
    section = f"train.{params.train.estimator}"
    text = Path(params_path).read_text(encoding="utf-8")
    for key, value in settings.items():
        text = set_param(text, section, key, value, add=True)
    with atomic_open(params_path) as fh:
        fh.write(text)
    written = getattr(load_params(params_path).train, params.train.estimator)
    if any(written.get(k) != v for k, v in settings.items()):
        raise DataError(f"{params_path}: {section} reads back as {written}, not {settings}.")


def main(argv: Sequence[str] | None = None) -> None:
    ap = cli.parser(__doc__)
    ap.add_argument("--train", help="the training window; default: paths.train")
    ap.add_argument("--out", default="reports", help="directory of tuning.{json,md,png}")
    ap.add_argument("--storage", default="build/tune/optuna.db", help="Optuna's SQLite file")
    ap.add_argument("--trials", type=int, help="default: tune.trials")
    ap.add_argument("--seconds", type=float, help="default: tune.seconds")
    ap.add_argument("--workers", type=int, help="default: tune.workers (0: one per core)")
    ap.add_argument("--apply", action="store_true", help="write the best settings to params")
    args = ap.parse_args(argv)
    params = load_params(args.params)
    check_settings(params)
    distributions(params)  # a bad space stops here, before any data is read
    frame = read_parquet(args.train or params.paths.train)
    cfg = params.tune
    trials = args.trials if args.trials is not None else cfg.trials
    seconds = args.seconds if args.seconds is not None else cfg.seconds
    workers = args.workers if args.workers is not None else cfg.workers
    workers = workers or len(os.sched_getaffinity(0))
    if trials < 1 or seconds <= 0 or workers < 1:
        raise DataError("--trials, --seconds and --workers must be positive.")
    import mlflow

    tracking.configure()
    budget = {"trials": trials, "seconds": seconds, "workers": workers}
    with mlflow.start_run(run_name="tune", tags={**lineage.git_tags(), "tune": "search"}) as run:
        mlflow.log_params({**budget, "metric": cfg.metric, "folds": cfg.folds,
                           "batch": cfg.batch, "seed": params.base.seed,
                           "estimator": params.train.estimator})  # fmt: skip
        started = time.perf_counter()
        study = search(frame, params, Path(args.storage), trials, seconds, workers)
        summary = tune_report.summarize(study, frame, params, forward_folds(frame, params))
        summary.update(budget=budget, seconds=time.perf_counter() - started)
        summary["mlflow_run_id"] = run.info.run_id
        log_trials(summary)
        mlflow.log_metrics({"best_value": summary["best"]["value"],
                            "current_value": summary["current"]["value"]})  # fmt: skip
        paths = tune_report.write(summary, Path(args.out))
        for path in paths:
            mlflow.log_artifact(str(path), artifact_path="tuning")
    log.info("best %s: %s; wrote %s", cfg.metric, summary["best"]["value"], paths)
    if args.apply and summary["changed"]:
        apply(args.params, params, summary["best"]["settings"])
        log.info(
            "params.yaml: train.%s now %s", params.train.estimator, summary["best"]["settings"]
        )
    github_output(changed=str(summary["changed"]).lower())


if __name__ == "__main__":
    cli.run(main)
