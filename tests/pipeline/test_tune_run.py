"""`make tune` and `make tune APPLY=1` on the declared data, in a fresh copy of the project.

The copy's pipeline is reproduced and committed first, as main holds it. `make tune` must only
propose (params.yaml and dvc.lock unchanged); `make tune APPLY=1` must leave params.yaml with
the proposal, `dvc status` clean, and metrics that the gate judges against main.
"""

from __future__ import annotations

import json

import pytest
import yaml
from testkit.workspace import Workspace, copy_project

from tabml.params import load_params

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

TRIALS = "8"


@pytest.fixture(scope="module")
def reproduced(root, tmp_path_factory):
    ws = Workspace(copy_project(root, tmp_path_factory.mktemp("tune") / "project"))
    ws.run("dvc", "repro")
    ws.run("git", "add", "--all")
    ws.run("git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "--allow-empty", "-qm",
           "reproduced")  # fmt: skip
    return ws


def summary(ws) -> dict:
    return json.loads((ws.path / "reports/tuning.json").read_text(encoding="utf-8"))


def test_make_tune_proposes_only(reproduced):
    ws = reproduced
    ws.run("make", "tune", f"TRIALS={TRIALS}")
    assert ws.run("git", "status", "--porcelain").stdout == ""  # reports/tuning.* are ignored
    found = summary(ws)
    assert found["trials"]["run"] == int(TRIALS)
    assert found["best"]["value"] >= found["current"]["value"]
    assert found["changed"] == (found["best"]["value"] > found["current"]["value"])


def test_make_tune_apply_writes_the_proposal_and_the_gate_judges_it(reproduced):
    ws = reproduced
    before = load_params(ws.path / "params.yaml")
    ws.run("make", "tune", f"TRIALS={TRIALS}", "APPLY=1")
    found = summary(ws)
    estimator = before.train.estimator
    after = load_params(ws.path / "params.yaml")
    expected = {**getattr(before.train, estimator)}
    if found["changed"]:
        expected |= found["best"]["settings"]
    assert getattr(after.train, estimator) == expected
    assert ws.run("dvc", "status", "--quiet", check=False).returncode == 0
    lock = yaml.safe_load((ws.path / "dvc.lock").read_text(encoding="utf-8"))
    assert lock["stages"]["train"]["params"]["params.yaml"]["train"][estimator] == expected
    gate = ws.run("python", "-m", "tabml.gate", "--base", "HEAD", check=False)
    assert gate.returncode in (0, 1), gate.stderr  # judged: passed, or failed with its reasons
    assert "test.roc_auc" in gate.stdout
    print(f"\ntuning: {found['current']['value']:.4f} -> {found['best']['value']:.4f}; gate:\n"
          f"{gate.stdout}")  # fmt: skip
