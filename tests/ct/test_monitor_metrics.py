"""`make monitor`'s figures as Prometheus metrics: a node-exporter textfile and a real
Pushgateway (Debian's package, started on 127.0.0.1), and one line when the Pushgateway does
not answer."""

from __future__ import annotations

import subprocess
import sys
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families
from testkit import prometheus
from testkit.server import free_port

from tabml.io import read_json
from tabml.lineage import model_tag
from tabml.monitor import EXIT_DRIFT

pytestmark = pytest.mark.slow


def monitor(pipeline, out, *args):
    # The newest rows of the source, monitor.window_rows of them, as `make monitor` judges.
    cmd = [sys.executable, "-m", "tabml.monitor", "--out", str(out), "--no-fail-on-drift", *args]
    return subprocess.run(cmd, cwd=pipeline.path, env=pipeline.env, capture_output=True,
                          text=True)  # fmt: skip


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def check_figures(found: dict[tuple[str, tuple], float], result: dict, pipeline, params) -> None:
    def value(name: str, **labels: str) -> float:
        keys = [k for k in found if k[0] == name and set(labels.items()) <= set(k[1])]
        assert len(keys) == 1, (name, labels, keys)
        return found[keys[0]]

    assert value("tabml_drift_score_psi") == pytest.approx(result["score"]["psi"])
    assert value("tabml_drift_score_psi_limit") == params.drift.max_score_psi
    assert value("tabml_drift_feature_psi_limit") == params.drift.max_feature_psi
    for row in result["features"]:
        assert value("tabml_drift_feature_psi", feature=row["feature"]) == pytest.approx(
            row["psi"]
        )
    assert value("tabml_monitor_drift") == float(result["drift"])
    assert value("tabml_monitor_rows") == result["rows"]
    assert value("tabml_monitor_last_run_timestamp_seconds") > 1.7e9
    tag = model_tag(params, pipeline.path / "models/model.joblib")
    assert value("tabml_monitor_info", model_tag=tag) == 1


def test_the_figures_go_to_a_textfile(pipeline, params, tmp_path):
    target = tmp_path / "textfiles/tabml_monitor.prom"
    done = monitor(pipeline, tmp_path / "out", "--metrics-file", str(target))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Metrics written to {target}." in done.stdout
    result = read_json(tmp_path / "out/monitor.json")
    check_figures(samples(target.read_text()), result, pipeline, params)
    assert [p.name for p in target.parent.iterdir()] == [target.name], "no temporary file left"


def test_a_textfile_not_named_prom_is_refused(pipeline, tmp_path):
    done = monitor(pipeline, tmp_path / "out", "--metrics-file", str(tmp_path / "drift.txt"))
    assert done.returncode == 1
    assert "reads *.prom files only" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.skipif(bool(prometheus.missing()), reason="make system-packages installs them")
def test_the_figures_go_to_a_real_pushgateway(pipeline, params, tmp_path):
    with prometheus.pushgateway() as gateway:
        done = monitor(pipeline, tmp_path / "out", "--pushgateway", gateway.url)
        assert done.returncode in (0, EXIT_DRIFT), done.stdout + done.stderr
        with urllib.request.urlopen(f"{gateway.url}/metrics", timeout=10) as answer:
            found = samples(answer.read().decode())
    pushed = {k: v for k, v in found.items() if ("job", "tabml_monitor") in k[1]}
    check_figures(pushed, read_json(tmp_path / "out/monitor.json"), pipeline, params)


def test_a_pushgateway_that_does_not_answer_is_one_line(pipeline, tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    done = monitor(pipeline, tmp_path / "out", "--pushgateway", url)
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1, done.stderr
    assert url in errors[0] and "PUSHGATEWAY=" in errors[0]
    assert "Traceback" not in done.stderr
    # The report is written before the push: the verdict is not lost with the metrics.
    assert (tmp_path / "out/monitor.json").is_file()
