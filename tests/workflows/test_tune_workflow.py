"""The tuning workflow, run with `act` (see harness.py and conftest.py).

A throw-away repository plays GitHub. Its main branch trains a constant model (leaves larger
than the data: no split, a ROC AUC of 0.5 on every fold), so that the search finds better
settings on any data with a signal. A manual dispatch of `tune.yml` runs `tune` (search, apply,
`dvc repro`) with a read-only token and then `pull-request`, whose CML stand-in commits and
pushes the branch that would become the pull request, with the summary as its body.
"""

from __future__ import annotations

import json

import pytest
import yaml
from harness import REPOSITORY, ActRepo

from tabml.retrain import set_param

pytestmark = [pytest.mark.slow, pytest.mark.container, pytest.mark.timeout(2400)]

TRIALS = 8
CONSTANT = {"max_iter": 1, "min_samples_leaf": 10**9}


@pytest.fixture(scope="module")
def tuned(root, tmp_path_factory, act_runner):
    repo = ActRepo(root, tmp_path_factory.mktemp("act-tune"), act_runner)
    params = repo.path / "params.yaml"
    text = params.read_text(encoding="utf-8")
    estimator = yaml.safe_load(text)["train"]["estimator"]
    for key, value in CONSTANT.items():
        text = set_param(text, f"train.{estimator}", key, value, add=True)
    params.write_text(text, encoding="utf-8")
    repo.commit("A constant model: any search beats it")
    event = {"inputs": {"trials": str(TRIALS)}, "ref": "refs/heads/main", "repository": REPOSITORY}
    run = repo.act("workflow_dispatch", event, "tune.yml", "pull-request")
    print(f"\nact tune run: {run.seconds:.0f} s")
    assert run.returncode == 0, run.output[-5000:]
    branches = repo.git("branch", "--list", "--format=%(refname:short)", "tune/*").split()
    assert len(branches) == 1, branches
    return repo, run, branches[0], estimator


def show(repo: ActRepo, ref: str, path: str) -> str:
    return repo.git("show", f"{ref}:{path}")


def test_both_jobs_succeed_and_only_the_pull_request_job_writes(tuned):
    _repo, run, _branch, _ = tuned
    assert [run.job_result(job) for job in ("tune", "pull-request")] == ["success"] * 2
    assert "changed=true" in run.job_log("tune")
    assert "Running stage 'train'" in run.job_log("tune")
    assert "cml stand-in: pushed" in run.job_log("pull-request")
    assert "cml stand-in: pushed" not in run.job_log("tune")


def test_the_branch_holds_the_best_settings_and_the_lock_that_follows_them(tuned):
    repo, run, branch, estimator = tuned
    assert repo.git("rev-parse", f"{branch}~1") == repo.sha("main")
    changed = set(repo.git("diff", "--name-only", "main", branch).split())
    assert {"params.yaml", "dvc.lock", "reports/metrics.json"} <= changed
    assert all(n in {"params.yaml", "dvc.lock"} or n.startswith("reports/") for n in changed)
    summary = json.loads((run.artifact("tune") / "reports/tuning.json").read_text())
    assert summary["trials"]["run"] == TRIALS
    assert summary["best"]["value"] > summary["current"]["value"]
    before, after = (yaml.safe_load(show(repo, ref, "params.yaml")) for ref in ("main", branch))
    assert after["train"][estimator] == {
        **before["train"][estimator],
        **summary["best"]["settings"],
    }
    assert {k: v for k, v in after.items() if k != "train"} == {
        k: v for k, v in before.items() if k != "train"
    }  # fmt: skip
    lock = yaml.safe_load(show(repo, branch, "dvc.lock"))
    assert lock["stages"]["train"]["params"]["params.yaml"]["train"] == after["train"]


def test_the_body_is_the_summary(tuned):
    repo, run, branch, _ = tuned
    head, body = run.comment.read_text(encoding="utf-8").split("\n---\n", 1)
    assert f"branch: {branch}" in head and f"commit: {repo.sha(branch)}" in head
    summary = (run.artifact("tune") / "reports/tuning.md").read_text(encoding="utf-8")
    assert body.strip() == summary.strip()
    assert body.startswith("## Hyperparameter search") and "forward folds" in body
