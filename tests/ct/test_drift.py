"""Drift measures, the monitor's bad-input errors and the retraining decisions, on small data."""

from __future__ import annotations

import dataclasses
import json
import math

import joblib
import numpy as np
import pandas as pd
import pytest
from testkit.declared import category_feature, numeric_feature

from tabml import lineage, monitor, retrain
from tabml.dataset import feature_columns
from tabml.drift import build_profile, column_psi
from tabml.io import DataError
from tabml.monitoring import assess, headline, reference_from, score_profile
from tabml.predict import labels
from tabml.split import split
from tabml.train import build_pipeline


@pytest.fixture
def features(params):
    return [name for name in feature_columns(params) if name not in params.drift.exclude]


def category(shares, missing=0.0):
    return {"kind": "categorical", "shares": shares, "missing": missing}


def test_category_psi_is_zero_on_equal_shares_and_matches_the_formula():
    values = pd.Series(["a"] * 5 + ["b"] * 5)
    assert column_psi(values, category({"a": 0.5, "b": 0.5})) == pytest.approx(0.0)
    expected = (0.5 - 0.9) * math.log(0.5 / 0.9) + (0.5 - 0.1) * math.log(0.5 / 0.1)
    assert column_psi(values, category({"a": 0.9, "b": 0.1})) == pytest.approx(expected)
    # A category the reference never saw counts as a shift.
    assert column_psi(pd.Series(["a", "c"]), category({"a": 1.0})) > 1


def test_a_new_share_of_missing_values_is_drift_in_numbers_and_categories():
    sizes = pd.Series(np.arange(100, dtype=float))
    reference = build_profile(pd.DataFrame({"size": sizes, "colour": ["a", "b"] * 50}))
    assert reference["size"]["missing"] == 0.0
    gaps = pd.DataFrame({"size": sizes.where(sizes % 3 > 0), "colour": ["a", None] * 50})
    assert column_psi(gaps["size"], reference["size"]) > 0.25
    assert column_psi(gaps["colour"], reference["colour"]) > 0.25
    assert column_psi(sizes, reference["size"]) == pytest.approx(0, abs=1e-12)


def test_coarse_scores_do_not_drift_from_their_own_reference():
    # A model with few distinct scores puts many rows exactly on a decile edge: the profile,
    # kept as JSON, must bin them as it did when it was built.
    rng = np.random.default_rng(0)
    scores = rng.choice(np.arange(1, 24) / 69, size=5000)
    profile = json.loads(json.dumps(score_profile(scores)))
    assert len(np.unique(scores)) == 23
    assert column_psi(pd.Series(scores), profile) == pytest.approx(0, abs=1e-12)


def small_params(params, **monitor):
    return dataclasses.replace(
        params, monitor=dataclasses.replace(params.monitor, min_rows=10, **monitor)
    )


def test_no_drift_on_the_reference_itself_and_drift_named_on_a_shifted_copy(params, tiny):
    features = feature_columns(params)
    scores = np.linspace(0.01, 0.5, len(tiny))
    ref = reference_from(tiny, scores, features)
    cfg = small_params(params)
    same = assess(tiny, scores, None, ref, features, cfg)
    assert same["drift"] is False and same["reasons"] == []
    assert all(row["psi"] == pytest.approx(0, abs=1e-9) for row in same["features"])
    cat, num = category_feature(params, drifting=True)[0], numeric_feature(params, drifting=True)
    spread = float(tiny[num].max() - tiny[num].min()) + 1
    # Excluded columns move too: they must not be measured.
    moved = {name: tiny[name].iloc[0] for name in params.drift.exclude if name in tiny}
    shifted = tiny.assign(**moved, **{cat: tiny[cat].mode()[0], num: tiny[num] + 10 * spread})
    result = assess(shifted, scores, None, ref, features, cfg)
    assert result["drift"] is True
    assert set(result["drifted_features"]) == {cat, num}
    assert cat in headline(result) and num in headline(result)
    measured = {row["feature"] for row in result["features"]}
    assert not measured & set(params.drift.exclude)  # drift.exclude


def test_score_drift_and_performance_drop_are_reasons(params, tiny):
    features = feature_columns(params)
    rng = np.random.default_rng(0)
    scores = rng.uniform(0, 0.2, len(tiny))
    y = labels(tiny, params).to_numpy()
    ref = dataclasses.replace(reference_from(tiny, scores, features), roc_auc=0.9)
    result = assess(tiny, scores + 0.5, y, ref, features, small_params(params))
    assert result["drifted_features"] == []
    assert any(r.startswith("score PSI") for r in result["reasons"])
    assert result["performance"]["roc_auc_drop"] > 0.3  # random scores against 0.9
    assert any(r.startswith("ROC AUC") for r in result["reasons"])


def lacking(f, features):
    return f.drop(columns=features[-2:])


def as_text(f, features):
    return f.assign(**{features[0]: f[features[0]].astype(str)})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lacking, "lacks the model feature column(s)"),
        (lambda f, _: f.iloc[:0], "holds 0 rows"),
        (lambda f, _: f.iloc[:5], "holds 5 rows"),
        (as_text, "column '{numeric}' of the window holds"),
    ],
)
def test_bad_windows_are_refused_with_what_is_wrong(params, tiny, change, message):
    numeric = numeric_feature(params, drifting=True)
    features = [numeric, *(name for name in feature_columns(params) if name != numeric)]
    message = message.format(numeric=numeric)
    scores = np.full(len(tiny), 0.1)
    ref = reference_from(tiny, scores, features)
    window = change(tiny, features)
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        assess(window, scores[: len(window)], None, ref, features, small_params(params))


@pytest.fixture
def tiny_model(tmp_path, params, tiny):
    model = build_pipeline(tiny, params).fit(tiny[feature_columns(params)], labels(tiny, params))
    path = tmp_path / "model.joblib"
    joblib.dump(model, path)
    return model, path


def run_monitor(root, model_path, tmp_path, *args):
    argv = ["--params", str(root / "params.yaml"), "--model", str(model_path),
            "--reference", str(root / "data/reference/profile.json"),
            "--out", str(tmp_path / "out"), *args]  # fmt: skip
    from tabml import cli

    try:
        cli.run(monitor.main, argv)
    except SystemExit as stop:
        return stop.code
    return 0


def served_log(frame, model_path, params, log_dir):
    """A prediction log as the service writes it: `frame` in one closed file."""
    log_dir.mkdir()
    frame.assign(
        time=pd.Timestamp.now(tz="UTC"),
        model_version=lineage.model_tag(params, model_path),
        probability=0.1,
    ).to_parquet(log_dir / "predictions-1.parquet")
    return log_dir


def test_monitor_refuses_a_log_without_feature_columns(
    root, tmp_path, tiny_model, tiny, params, capsys, monkeypatch
):
    monkeypatch.chdir(root)
    _model, path = tiny_model
    name = next(n for n in feature_columns(params) if n not in params.drift.exclude)
    log_dir = served_log(tiny.drop(columns=[name]), path, params, tmp_path / "log")
    assert run_monitor(root, path, tmp_path, "--log", str(log_dir)) == 1
    assert f"lacks the model feature column(s) [{name!r}]" in capsys.readouterr().err
    assert run_monitor(root, path, tmp_path, "--log", str(log_dir), "--since", "2999-01-01") == 1
    assert "no record at or after 2999-01-01T00:00:00+00:00" in capsys.readouterr().err
    assert run_monitor(root, path, tmp_path, "--log", str(log_dir), "--since", "soon") == 1
    assert "--since 'soon' is not an ISO 8601 time" in capsys.readouterr().err
    (log_dir / "predictions-1.parquet").unlink()
    assert run_monitor(root, path, tmp_path, "--log", str(log_dir)) == 1
    assert "holds no closed file" in capsys.readouterr().err


def test_monitor_skips_unreadable_log_files_and_names_them(
    root, tmp_path, tiny_model, tiny, params, capsys, monkeypatch
):
    monkeypatch.chdir(root)
    _model, path = tiny_model
    log_dir = served_log(tiny, path, params, tmp_path / "log")
    whole = (log_dir / "predictions-1.parquet").read_bytes()
    (log_dir / "predictions-2.parquet").write_bytes(whole[: len(whole) // 2])  # cut short
    (log_dir / "predictions-3.parquet").write_bytes(b"")
    assert run_monitor(root, path, tmp_path, "--log", str(log_dir), "--no-fail-on-drift") == 0
    result = json.loads((tmp_path / "out/monitor.json").read_text())
    assert result["window"]["rows"] == len(tiny)
    assert result["window"]["skipped_files"] == 2
    assert sorted(result["window"]["unreadable_files"]) == [
        "predictions-2.parquet",
        "predictions-3.parquet",
    ]
    report = (tmp_path / "out/monitor.md").read_text()
    assert "Skipped 2 unreadable log file(s)" in report and "`predictions-3.parquet`" in report
    (log_dir / "predictions-1.parquet").unlink()
    assert run_monitor(root, path, tmp_path, "--log", str(log_dir)) == 1
    assert "none of its 2 log file(s) can be read" in capsys.readouterr().err
    assert run_monitor(root, path, tmp_path, "--log", str(tmp_path / "nowhere")) == 1
    assert f"directory {tmp_path / 'nowhere'} does not exist" in capsys.readouterr().err
    assert run_monitor(root, path, tmp_path, "--log", str(log_dir / "predictions-2.parquet")) == 1
    assert "predictions-2.parquet is not a directory" in capsys.readouterr().err


def test_monitor_refuses_a_log_of_another_model(root, tmp_path, tiny_model, tiny, capsys,
                                                monkeypatch):  # fmt: skip
    monkeypatch.chdir(root)
    log_dir = tmp_path / "log"
    log_dir.mkdir()
    tiny.assign(time=pd.Timestamp.now(tz="UTC"), model_version="tabml:0123", probability=0.1)\
        .to_parquet(log_dir / "predictions-1.parquet")  # fmt: skip
    assert run_monitor(root, tiny_model[1], tmp_path, "--log", str(log_dir)) == 1
    assert "no prediction of model tabml:" in capsys.readouterr().err


def test_set_param_changes_one_key_and_keeps_comments():
    text = "a:\n  start: 0  # first row\n  stop: null\nb:\n  start: 5\n"
    out = retrain.set_param(text, "a", "start", 26188)
    assert out == "a:\n  start: 26188  # first row\n  stop: null\nb:\n  start: 5\n"
    assert retrain.set_param(out, "b", "start", None).endswith("b:\n  start: null\n")
    with pytest.raises(DataError, match="no key 'end' in section 'a'"):
        retrain.set_param(text, "a", "end", 1)


def test_set_param_names_a_missing_section_in_one_line():
    with pytest.raises(DataError) as caught:
        retrain.set_param("a:\n  start: 0\n", "ingest", "start", 1)
    assert str(caught.value) == "params.yaml has no key 'start' in section 'ingest'."


def test_set_param_on_the_project_params_changes_only_that_line(root, params):
    text = (root / "params.yaml").read_text(encoding="utf-8")
    start = params.ingest.start + 123
    out = retrain.set_param(text, "ingest", "start", start)
    pairs = zip(text.splitlines(), out.splitlines(), strict=True)  # no line added or lost
    changed = [(old, new) for old, new in pairs if old != new]
    assert len(changed) == 1 and changed[0][1].startswith(f"  start: {start}")


@pytest.mark.parametrize("rows", [41188, 15000, 1001])  # sizes of a source, not its facts
def test_newest_window_reference_is_what_the_time_split_trains_on(params, rows):
    window = retrain.newest_window(rows, params)
    start = window["start"]
    size = params.retrain.window_rows
    assert start == (0 if size is None else max(0, rows - size))  # None: every row
    frame = pd.DataFrame({params.base.time_column: range(start, rows), params.base.target: "no"})
    train, _, _ = split(frame, params)
    assert window["reference"] == (start, start + len(train))
    assert train[params.base.time_column].max() == window["reference"][1] - 1


def test_compare_opens_a_pull_request_only_on_gain_or_drift(params, tiny, tiny_model):
    model, _ = tiny_model
    info = {"source": "test", "train_rows": [0, 10]}
    tied = retrain.compare(model, model, tiny, params, info, drift=False)
    assert tied["gain"] == 0 and tied["open_pr"] is False
    assert "no gain" in retrain.to_markdown(tied, None, "")
    assert "Shadow on staging" not in retrain.to_markdown(tied, None, "")
    tied["candidate"] = {"model_tag": "tabml:0123", "path": "models/model.joblib"}
    body = retrain.to_markdown(tied, None, "")
    assert "`tabml:0123`" in body
    assert "make image deploy ENV=staging SHADOW=build/shadow/candidate.joblib" in body
    assert "dvc get . models/model.joblib --rev <this pull request's branch>" in body
    tied["candidate"]["branch"] = "retrain/20261201-120000"
    body = retrain.to_markdown(tied, None, "")
    assert "--rev retrain/20261201-120000 -o build/shadow/candidate.joblib" in body
    drifted = retrain.compare(model, model, tiny, params, info, drift=True)
    assert drifted["open_pr"] is True and drifted["reasons"] == ["the monitor found drift"]
    # A production model fitted on shuffled labels loses to the one fitted on the real ones.
    shuffled = np.random.default_rng(0).permutation(labels(tiny, params).to_numpy())
    noise = build_pipeline(tiny, params).fit(tiny[feature_columns(params)], shuffled)
    better = retrain.compare(noise, model, tiny, params, info, drift=False)
    assert better["gain"] >= params.retrain.min_gain and better["open_pr"] is True
    time = params.base.time_column
    overlap = int(((tiny[time] >= 0) & (tiny[time] < 10)).sum())
    assert better["holdout"]["overlap_with_production_training"] == overlap
