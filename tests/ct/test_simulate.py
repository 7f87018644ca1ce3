"""`make simulate` on the shipped data, with four windows instead of ten to stay quick."""

from __future__ import annotations

import itertools
import re
import subprocess

import pytest

from tabml.io import read_json

pytestmark = pytest.mark.slow

WINDOWS = 4


@pytest.fixture(scope="module")
def simulated(root, tmp_path_factory):
    out = tmp_path_factory.mktemp("simulate")
    done = subprocess.run(
        ["make", "--no-print-directory", "simulate", f"SIMULATE_OUT={out}",
         f"SIMULATE_WINDOWS={WINDOWS}"],
        cwd=root, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout, read_json(out / "simulate.json")


def test_table_shows_drift_and_deployed_and_retrained_performance(simulated):
    table, rows = simulated
    assert "| deployed ROC / PR AUC (trained on) |" in table
    assert "| retrained ROC / PR AUC (trained on) |" in table
    assert [row["window"] for row in rows] == list(range(2, WINDOWS + 1))
    lines = [line for line in table.splitlines() if re.match(r"\| w\d+ \|", line)]
    assert len(lines) == WINDOWS - 1
    assert "Mean ROC AUC over windows 2 to 4" in table
    # The last quarter (mid 2009 to late 2010) drifts from whatever came before.
    assert rows[-1]["drift"] is True and rows[-1]["top"]


def test_every_model_is_scored_only_on_a_later_window(simulated):
    _, rows = simulated
    for row in rows:
        for model in row["models"].values():
            first, stop = model["windows"]
            assert 0 <= first < stop <= row["window"] - 1  # windows are numbered from 1
            assert 0 < model["roc_auc"] < 1 and 0 < model["pr_auc"] < 1


def test_retraining_follows_the_drift_alarms(simulated):
    _, rows = simulated
    for before, after in itertools.pairwise(rows):
        deployed = tuple(after["models"]["deployed"]["windows"])
        if before["drift"]:
            assert deployed[1] == before["window"], "retrained on the window that drifted"
        else:
            assert deployed == tuple(before["models"]["deployed"]["windows"])
