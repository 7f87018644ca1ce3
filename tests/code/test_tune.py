"""`make tune`'s parts on small frames of the declared data: the forward folds, the search space
and its errors, the search itself (seeded, the same for any batch run order), MLflow's runs,
and writing the best settings into params.yaml."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import mlflow
import numpy as np
import pytest
import yaml

from tabml import tune
from tabml.io import DataError, write_parquet
from tabml.params import load_params, parse_params
from tabml.retrain import set_param
from tabml.tune_space import distributions, fold_scores, forward_folds, with_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def window(data, params):
    """The oldest 3,000 rows, shuffled: the folds must put them back in time order."""
    oldest = data.sort_values(params.base.time_column).head(3000)
    return oldest.sample(frac=1, random_state=0).reset_index(drop=True)


def tuned(params, **changes):
    return replace(params, tune=replace(params.tune, **changes))


def with_space(params, space):
    return tuned(params, **{params.train.estimator: space})


@pytest.mark.parametrize("folds", [2, 4])
def test_no_fold_scores_rows_earlier_than_its_training_rows(window, params, folds):
    time = window[params.base.time_column].to_numpy()
    found = forward_folds(window, tuned(params, folds=folds))
    assert len(found) == folds
    scored_before = -np.inf
    for fit_rows, scored_rows in found:
        assert len(fit_rows) and len(scored_rows)
        assert not set(fit_rows) & set(scored_rows)
        assert time[fit_rows].max() <= time[scored_rows].min()
        assert time[scored_rows].min() > scored_before  # each fold scores later rows
        scored_before = time[scored_rows].max()
    # Each fold trains on every row before the rows it scores: the window chains forward.
    for fit_rows, scored_rows in found:
        assert set(fit_rows) == set(np.flatnonzero(time < time[scored_rows].min()))


def test_a_fold_of_one_label_is_refused(window, params):
    one_label = window[window[params.base.target] != params.base.positive_label]
    with pytest.raises(DataError, match=r"one label only; lower tune\.folds"):
        forward_folds(one_label, params)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"no_such_arg": {"type": "int", "low": 1, "high": 3}}, r"\.no_such_arg: .* has no arg"),
        ({"random_state": {"type": "int", "low": 1, "high": 3}}, r"\.random_state: .* has no "),
        ({"max_iter": {"type": "int", "low": 9, "high": 3}}, r"\.max_iter: low 9 is above high 3"),
        ({"max_iter": {"type": "normal", "low": 1, "high": 3}}, r"type 'normal' is no distrib"),
        ({"max_iter": {"low": 1, "high": 3}}, r"type 'None' is no distribution"),
        ({"max_iter": {"type": "int", "low": 1}}, r"\.max_iter: a int needs \['high'\]"),
        ({"max_iter": {"type": "int", "low": 1, "high": 3, "mean": 2}}, r"unknown key\(s\)"),
        ({"max_iter": {"type": "int", "low": 1.5, "high": 3}}, r"must be int numbers"),
        ({"max_iter": {"type": "int", "low": 0, "high": 3, "log": True}}, r"\.max_iter: "),
        ({"max_iter": {"type": "categorical", "choices": []}}, r"non-empty list"),
        ({"max_iter": 3}, r"\.max_iter must be a mapping"),
        ({}, r"declares no parameter to search"),
    ],
)
def test_a_bad_search_space_is_one_line_naming_the_key(params, spec, message):
    estimator = params.train.estimator
    with pytest.raises(DataError, match=message) as caught:
        distributions(with_space(params, spec))
    text = str(caught.value)
    assert "\n" not in text and f"tune.{estimator}" in text


def test_the_declared_spaces_are_valid_for_each_estimator(params):
    for name in ("hist_gradient_boosting", "logistic_regression"):
        cfg = replace(params, train=replace(params.train, estimator=name))
        assert set(distributions(cfg)) == set(getattr(params.tune, name))


def test_the_command_reports_a_bad_space_in_one_line_without_traceback(tmp_path, params):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    raw["tune"][params.train.estimator] = {"max_iter": {"type": "int", "low": 9, "high": 3}}
    bad = tmp_path / "params.yaml"
    bad.write_text(yaml.safe_dump(raw), encoding="utf-8")
    parse_params(raw)  # the file itself is well formed: the space is what is wrong
    done = subprocess.run(
        [sys.executable, "-m", "tabml.tune", "--params", str(bad), "--train", "missing.parquet"],
        capture_output=True, text=True, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and "max_iter: low 9 is above high 3" in errors[0], done.stderr


def test_settings_replace_only_the_named_arguments(params):
    estimator = params.train.estimator
    key = next(iter(getattr(params.train, estimator)))
    changed = getattr(with_settings(params, {key: 7}).train, estimator)
    assert changed == {**getattr(params.train, estimator), key: 7}


def test_fold_scores_are_deterministic_and_stop_when_asked(window, params):
    folds = forward_folds(window, params)
    first = fold_scores(window, folds, params, {})
    assert first == fold_scores(window, folds, params, {})
    assert len(first) == len(folds) and all(0 <= s <= 1 for s in first)
    steps = []
    stopped = fold_scores(window, folds, params, {}, lambda step, mean: steps.append(mean) or 1)
    assert stopped == first[:1] and steps == [first[0]]


def test_search_is_seeded_and_keeps_params_yaml_settings_as_the_reference(
    window, params, tmp_path
):
    cfg = tuned(params, folds=2, batch=2, pruner_startup=2)
    runs = [tune.search(window, cfg, tmp_path / f"s{i}.db", 4, 600, 1) for i in (1, 2)]
    histories = [[(t.user_attrs["settings"], t.value) for t in s.trials] for s in runs]
    assert histories[0] == histories[1]
    assert len(histories[0]) == 4
    assert len({str(settings) for settings, _ in histories[0]}) == 4  # four distinct candidates
    current = runs[0].user_attrs["current"]
    assert current["settings"] == tune.current_settings(cfg, distributions(cfg))
    folds = forward_folds(window, cfg)
    assert current["scores"] == fold_scores(window, folds, cfg, {})
    other = tune.search(window, replace(cfg, base=replace(cfg.base, seed=cfg.base.seed + 1)),
                        tmp_path / "s3.db", 4, 600, 1)  # fmt: skip
    assert [t.user_attrs["settings"] for t in other.trials] != [s for s, _ in histories[0]]


def test_the_command_reads_only_the_training_window_and_logs_parent_and_child_runs(
    window, params, tmp_path, monkeypatch
):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    write_parquet(window, tmp_path / "train.parquet")
    # The other splits do not exist: reading either one fails the command.
    raw["paths"] |= {"train": "train.parquet", "valid": "no-valid", "test": "no-test"}
    raw["tune"] |= {"folds": 2, "batch": 2, "pruner_startup": 2}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.delenv("GITHUB_OUTPUT", raising=False)
    read = []
    real = tune.read_parquet
    monkeypatch.setattr(tune, "read_parquet", lambda path: read.append(path) or real(path))
    tune.main(["--trials", "3", "--workers", "1", "--out", "out"])
    assert read == ["train.parquet"]
    summary = yaml.safe_load((tmp_path / "out/tuning.json").read_text(encoding="utf-8"))
    assert summary["best"]["value"] >= summary["current"]["value"]
    assert summary["trials"]["run"] == 3 and len(summary["folds"]) == 2
    assert (tmp_path / "out/tuning.png").stat().st_size > 1000
    md = (tmp_path / "out/tuning.md").read_text(encoding="utf-8")
    assert f"{summary['current']['value']:,.4f} ± {summary['current']['std']:,.4f}" in md
    runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
    (parent,) = [r for r in runs if r.data.tags.get("tune") == "search"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(r.info.run_name for r in children) == [
        "params.yaml", "trial 0", "trial 1", "trial 2"
    ]  # fmt: skip
    (reference,) = [r for r in children if r.info.run_name == "params.yaml"]
    assert {"fold_0", "fold_1", "seconds", "value"} <= set(reference.data.metrics)
    assert reference.data.metrics["value"] == pytest.approx(summary["current"]["value"])
    assert parent.data.metrics["best_value"] == pytest.approx(summary["best"]["value"])
    assert yaml.safe_load((tmp_path / "params.yaml").read_text()) == raw  # proposes only


def test_apply_writes_the_settings_and_keeps_the_comments(tmp_path, params):
    path = tmp_path / "params.yaml"
    text = (ROOT / "params.yaml").read_text(encoding="utf-8")
    path.write_text(text, encoding="utf-8")
    estimator = params.train.estimator
    settings = {"brand_new": 1.0e-6, **dict.fromkeys(getattr(params.train, estimator), 3)}
    tune.apply(str(path), params, settings)
    written = path.read_text(encoding="utf-8")
    assert getattr(load_params(path).train, estimator) == settings
    comments = [line for line in text.splitlines() if line.lstrip().startswith("#")]
    assert comments == [line for line in written.splitlines() if line.lstrip().startswith("#")]
    assert "brand_new: 1.0e-06" in written


def test_set_param_refuses_a_missing_key_unless_asked_to_add_it():
    text = "a:\n  b:\n    c: 1  # why\n"
    with pytest.raises(DataError, match=r"no key 'd' in section 'a\.b'"):
        set_param(text, "a.b", "d", 2)
    assert set_param(text, "a.b", "c", 0.5) == "a:\n  b:\n    c: 0.5  # why\n"
    assert yaml.safe_load(set_param(text, "a.b", "d", 2e-7, add=True))["a"]["b"]["d"] == 2e-7
