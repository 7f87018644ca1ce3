"""The continuous-training workflows, run with `act` (see harness.py and conftest.py).

A throw-away repository plays GitHub with main as shipped. `monitor.yml` finds the drift of the
newest rows and starts the retraining (the `gh` stand-in records the call). A manual dispatch of
`retrain.yml` runs `retrain` (production model from main's dvc.lock, reproduced since the cache
is empty; monitor; newest window; validate; repro; compare) and then `pull-request`, whose CML
stand-in commits and pushes the branch that would become the pull request.
"""

from __future__ import annotations

import json
import re

import pytest
import yaml
from harness import REPOSITORY, ActRepo

from tabml.ingest import read_source

pytestmark = [pytest.mark.slow, pytest.mark.container, pytest.mark.timeout(2400)]

CHANGED = {"params.yaml", "dvc.lock", "reports/metrics.json", "data/reference/profile.json"}


@pytest.fixture(scope="module")
def repo(root, tmp_path_factory, act_runner):
    return ActRepo(root, tmp_path_factory.mktemp("act-ct"), act_runner)


@pytest.fixture(scope="module")
def monitored(repo):
    event = {"ref": "refs/heads/main", "repository": {**REPOSITORY, "default_branch": "main"}}
    run = repo.act("workflow_dispatch", event, "monitor.yml", "trigger")
    print(f"\nact monitor run: {run.seconds:.0f} s")
    return run


@pytest.fixture(scope="module")
def retrain(repo):
    event = {"inputs": {"drift": "false"}, "ref": "refs/heads/main", "repository": REPOSITORY}
    run = repo.act("workflow_dispatch", event, "retrain.yml", "pull-request")
    print(f"\nact retrain run: {run.seconds:.0f} s")
    return repo, run


@pytest.fixture(scope="module")
def proposal(retrain):
    repo, run = retrain
    assert run.returncode == 0, run.output[-5000:]
    branches = repo.git("branch", "--list", "--format=%(refname:short)", "retrain/*").split()
    assert len(branches) == 1, branches
    return branches[0]


def test_monitor_finds_drift_and_starts_the_retraining(monitored, params):
    # The newest rows of the declared data drift (the shipped example's do, strongly).
    run = monitored
    assert run.returncode == 0, run.output[-5000:]
    assert [run.job_result(job) for job in ("monitor", "trigger")] == ["success"] * 2
    assert "drift=true" in run.job_log("monitor")
    started = (run.comment.parent / "gh.txt").read_text(encoding="utf-8")
    assert started == "gh workflow run retrain.yml --ref main -f drift=true\n"
    report = (run.artifact("monitor") / "monitor.md").read_text(encoding="utf-8")
    assert f"**DRIFT in {params.monitor.window_rows:,} rows" in report
    assert re.search(r"^\| \w+ \| (categorical|numeric) \|", report, re.M)


def show(repo: ActRepo, ref: str, path: str) -> str:
    return repo.git("show", f"{ref}:{path}")


def test_both_jobs_succeed_and_only_the_pull_request_job_writes(retrain, proposal):
    _repo, run = retrain
    assert [run.job_result(job) for job in ("retrain", "pull-request")] == ["success"] * 2
    assert "Running stage 'train'" in run.job_log("retrain")
    assert "cml stand-in: pushed" in run.job_log("pull-request")


def test_the_branch_is_one_commit_on_main_with_params_lock_reference_and_metrics(
    retrain, proposal
):
    repo, _ = retrain
    assert repo.git("rev-parse", f"{proposal}~1") == repo.sha("main")
    changed = set(repo.git("diff", "--name-only", "main", proposal).split())
    assert changed >= CHANGED, changed
    assert all(name in CHANGED or name.startswith("reports/") for name in changed), (
        f"only params, lock, reference and reports: {changed}"
    )
    assert repo.git("log", "-1", "--format=%s", proposal) == "Retrain on the newest data"


def test_the_window_moved_to_the_newest_rows_and_the_lock_follows(retrain, proposal):
    repo, _ = retrain
    params = yaml.safe_load(show(repo, proposal, "params.yaml"))
    before = yaml.safe_load(show(repo, "main", "params.yaml"))
    rows = len(read_source(str(repo.path / params["ingest"]["source"]), params["ingest"]["sep"]))
    assert before["ingest"]["start"] == 0
    assert params["ingest"]["start"] == rows - params["retrain"]["window_rows"]
    assert params["drift"]["reference_start"] == params["ingest"]["start"]
    lock = yaml.safe_load(show(repo, proposal, "dvc.lock"))
    assert lock["stages"]["ingest"]["params"]["params.yaml"]["ingest"] == params["ingest"]
    profile = json.loads(show(repo, proposal, "data/reference/profile.json"))
    assert [profile["start"], profile["stop"]] == [
        params["drift"]["reference_start"],
        params["drift"]["reference_stop"],
    ]
    old = json.loads(show(repo, "main", "reports/metrics.json"))
    new = json.loads(show(repo, proposal, "reports/metrics.json"))
    assert new["test"]["rows"] < old["test"]["rows"]


def test_the_body_compares_both_models_on_the_new_holdout(retrain, proposal):
    repo, run = retrain
    head, body = run.comment.read_text(encoding="utf-8").split("\n---\n", 1)
    assert f"branch: {proposal}" in head
    assert f"commit: {repo.sha(proposal)}" in head
    comparison = json.loads(
        (run.artifact("retrain") / "build/retrain/comparison.json").read_text()
    )
    metrics = json.loads(show(repo, proposal, "reports/metrics.json"))
    # The holdout is the new test split: the retrained model's score there is its evaluation.
    assert comparison["metrics"]["retrained"]["roc_auc"] == pytest.approx(
        metrics["test"]["roc_auc"]
    )
    assert comparison["holdout"]["overlap_with_production_training"] == 0
    assert comparison["open_pr"] is True
    production = comparison["metrics"]["production"]["roc_auc"]
    retrained = metrics["test"]["roc_auc"]
    assert f"| roc_auc | {production:.4f} | {retrained:.4f} |" in body
    assert "Nothing is deployed" in body
    assert "### Drift of the newest data" in body and "![" not in body
    assert "the model dvc.lock records at commit" in body
    # The shadow instructions name the branch the pull request was opened from.
    assert f"--rev {proposal} -o build/shadow/candidate.joblib" in body
