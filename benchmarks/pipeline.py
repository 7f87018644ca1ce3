"""Benchmark: the DVC pipeline against the same stage code run in one bare Python process.

    python benchmarks/pipeline.py [--repeats N]

Each measurement runs in a fresh copy of the project (fresh DVC cache and MLflow store), so both
sides do the same work: read, validate, split, train, log to MLflow, evaluate. The ratio
pipeline / bare is the cost of running stages as separate processes under DVC (goal: <= 1.3).
The no-op `dvc repro` (nothing changed) is what a developer waits for on every call (goal: < 3 s).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from record import recorded

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from testkit.workspace import copy_project  # noqa: E402

# Runs every stage's entry point, in dvc.yaml's order, in this one process.
BARE = """
import functools, importlib, re, shlex, yaml
from tabml import cli
stages = yaml.safe_load(open("dvc.yaml"))["stages"]
params = yaml.safe_load(open("params.yaml"))
lookup = lambda m: str(functools.reduce(lambda d, k: d[k], m.group(1).split("."), params))
for stage in stages.values():
    argv = shlex.split(re.sub(r"\\$\\{([\\w.]+)\\}", lookup, stage["cmd"]))
    assert argv[:2] == ["python", "-m"], argv
    cli.run(importlib.import_module(argv[2]).main, argv[3:])
"""


def timed(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, env=environment(cwd))
    return time.perf_counter() - start


def environment(cwd: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{cwd / 'mlflow.db'}"
    return env


def stage_count() -> int:
    with (ROOT / "dvc.yaml").open() as fh:
        return len(yaml.safe_load(fh)["stages"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    repeats = ap.parse_args().repeats
    pipeline, bare, noop = [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        for i in range(repeats):
            # Alternate the order so that neither side always runs on a warmer machine.
            for side in ("bare", "dvc") if i % 2 else ("dvc", "bare"):
                work = copy_project(ROOT, Path(tmp) / f"{side}{i}")
                if side == "dvc":
                    pipeline.append(timed(["dvc", "repro"], work))
                    noop.append(timed(["dvc", "repro"], work))
                else:
                    bare.append(timed([sys.executable, "-c", BARE], work))
    p, b, n = (statistics.median(x) for x in (pipeline, bare, noop))
    print(f"pipeline benchmark: {stage_count()} stages, median of {repeats} runs each\n")
    print("| measurement | seconds | ratio | goal |")
    print("|---|---:|---:|---|")
    print(f"| bare Python process (baseline) | {b:.2f} | 1.00 | |")
    print(f"| dvc repro, full pipeline | {p:.2f} | {p / b:.2f} | <= 1.3 |")
    print(f"| dvc repro, nothing changed | {n:.2f} | {n / b:.2f} | < 3 s |")
    print(
        f"\nruns (s): dvc {[round(x, 2) for x in pipeline]}, bare {[round(x, 2) for x in bare]}, "
        f"no-op {[round(x, 2) for x in noop]}"
    )


if __name__ == "__main__":
    with recorded("pipeline", "make bench"):
        main()
