"""Benchmark: the whole pipeline on the NYC flights 2013 (336,776 rows), adopted with `make init`.

Against a baseline measured in the same run, on the same split files: the compute the model
needs at least, one process that reads the train, validation and test splits, fits the
pipeline and scores validation and test. Prints the ratio of the full `dvc repro` (ingest,
validate, split, train with MLflow, evaluate with plots and importances) to it, and the peak
memory of the largest process of each.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from record import check_block, recorded

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from testkit.workspace import copy_project  # noqa: E402

LEAK = "dep_time,dep_delay,arr_time,arr_delay,air_time"
# Prints the peak resident memory (KB) of the largest process the command started.
PEAK = (
    "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
    "capture_output=True); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)
COMPUTE = """
import pandas as pd
from tabml.dataset import feature_columns
from tabml.params import load_params
from tabml.predict import labels
from tabml.train import build_pipeline
params = load_params()
features = feature_columns(params)
parts = ("train", "valid", "test")
train, valid, test = (pd.read_parquet(f"data/processed/{name}.parquet") for name in parts)
model = build_pipeline(train, params).fit(train[features], labels(train, params))
for part in (valid, test):
    model.predict_proba(part[features])
"""


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Seconds and peak memory (MB) of `cmd`."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", PEAK, *cmd], cwd=cwd, env=env,
                          capture_output=True, text=True, check=True)  # fmt: skip
    return time.perf_counter() - start, int(done.stdout.split()[-1]) / 1024


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-flights-") as tmp:
        work = copy_project(ROOT, Path(tmp) / "project")
        env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "PYTHONPATH": str(work / "src"),
            "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}",
        }
        py = sys.executable
        subprocess.run([py, "examples/nycflights13/prepare.py", "flights.csv.gz"], cwd=work,
                       env=env, check=True, capture_output=True)  # fmt: skip
        init = [py, "-m", "tabml.init", "--source", "flights.csv.gz", "--target", "late",
                "--positive", "yes", "--time", "time_hour", "--leak", LEAK]  # fmt: skip
        init_s, init_mb = run(init, work, env)
        run([py, "-m", "tabml.reference", "--out", "data/reference/profile.json"], work, env)
        repro_s, repro_mb = run(["dvc", "repro"], work, env)
        compute_s, compute_mb = run([py, "-c", COMPUTE], work, env)
    print("flights benchmark: 336,776 flights, one run each\n")
    print("| measurement | seconds | ratio | peak memory (MB) | goal |")
    print("|---|---:|---:|---:|---|")
    print(f"| read splits, fit, score valid and test (baseline) | {compute_s:.1f} | 1.00 | "
          f"{compute_mb:,.0f} | |")  # fmt: skip
    print(f"| dvc repro, full pipeline | {repro_s:.1f} | {repro_s / compute_s:.2f} | "
          f"{repro_mb:,.0f} | ratio <= 2, memory <= 4,096 MB |")  # fmt: skip
    print(f"| make init's inference and writing (before the pipeline) | {init_s:.1f} | "
          f"{init_s / compute_s:.2f} | {init_mb:,.0f} | |")  # fmt: skip


if __name__ == "__main__":
    check_block("flights")
    with recorded("flights", "make bench-flights"):
        main()
