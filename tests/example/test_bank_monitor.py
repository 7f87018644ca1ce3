"""The example's monitor facts: late 2010 drifts, and the alarm names the features that moved."""

from __future__ import annotations

import pytest

from tabml.io import read_json
from tabml.monitor import EXIT_DRIFT

pytestmark = [pytest.mark.example, pytest.mark.slow]

LATE_2010 = ("poutcome", "pdays", "job")  # the largest PSI in the last tenth (params.yaml)


def monitor(pipeline, out, *args, env=None):
    import subprocess
    import sys

    cmd = [
        sys.executable, "-m", "tabml.monitor", "--model", "models/model.joblib",
        "--reference", "data/reference/profile.json", "--metrics", "reports/metrics.json",
        "--out", str(out), *args,
    ]  # fmt: skip
    return subprocess.run(
        cmd, cwd=pipeline.path, env=env or pipeline.env, capture_output=True, text=True
    )


def test_alarm_names_the_drifted_features_on_late_2010(pipeline, tmp_path):
    output = tmp_path / "github_output"
    env = {**pipeline.env, "GITHUB_OUTPUT": str(output)}
    done = monitor(pipeline, tmp_path / "out", env=env)  # default: the newest rows
    assert done.returncode == EXIT_DRIFT, done.stdout + done.stderr
    assert output.read_text() == "drift=true\n"
    result = read_json(tmp_path / "out/monitor.json")
    assert result["window"]["stop"] == 41188
    assert set(LATE_2010) <= set(result["drifted_features"])
    assert "month" not in [row["feature"] for row in result["features"]]
    assert result["performance"]["roc_auc_drop"] > 0  # the model does worse on late 2010
    report = (tmp_path / "out/monitor.md").read_text()
    for name in LATE_2010:
        assert f"| {name} |" in report and name in done.stdout
    for image in ("feature_psi.png", "scores.png"):
        assert f"]({image})" in report
        assert (tmp_path / "out" / image).read_bytes()[:4] == b"\x89PNG"
    # A workflow that reads `drift=` keeps going.
    again = monitor(pipeline, tmp_path / "again", "--no-fail-on-drift")
    assert again.returncode == 0 and "drift=true" in again.stdout
