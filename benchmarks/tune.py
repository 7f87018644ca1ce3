"""Benchmark: `make tune`'s search with 1 worker against the same search with 2.

    python benchmarks/tune.py [--trials 20]

Runs `python -m tabml.tune` on the shipped training split twice, same seed and same trials,
each with its own Optuna storage and MLflow store, and prints the wall time of each and the
speed-up against the 1-worker baseline. The search does not depend on the worker count: the
script also checks that both runs tried the same settings and scored them the same.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from record import recorded

ROOT = Path(__file__).resolve().parents[1]
WORKERS = (1, 2)


def run(workers: int, trials: int, work: Path) -> tuple[float, dict]:
    out = work / f"workers-{workers}"
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{out / 'mlflow.db'}")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    out.mkdir(parents=True)
    cmd = [sys.executable, "-m", "tabml.tune", "--out", str(out), "--trials", str(trials),
           "--workers", str(workers), "--storage", str(out / "optuna.db")]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True)
    seconds = time.perf_counter() - start
    return seconds, json.loads((out / "tuning.json").read_text(encoding="utf-8"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=20)
    trials = ap.parse_args().trials
    subprocess.run(["dvc", "repro", "split"], cwd=ROOT, check=True, capture_output=True)
    with tempfile.TemporaryDirectory(prefix="bench-tune-") as tmp:
        runs = {w: run(w, trials, Path(tmp)) for w in WORKERS}
    base = runs[WORKERS[0]][0]
    print(f"tune benchmark: {trials} trials, {os.cpu_count()} cores, one run each\n")
    print("| workers | seconds | speed-up | complete | pruned | best value |")
    print("|---:|---:|---:|---:|---:|---:|")
    for workers, (seconds, summary) in runs.items():
        t = summary["trials"]
        print(f"| {workers} | {seconds:.1f} | {base / seconds:.2f} | {t['complete']} | "
              f"{t['pruned']} | {summary['best']['value']:.4f} |")  # fmt: skip
    histories = [
        [(h["settings"], h["state"], h["value"]) for h in summary["history"]]
        for _, summary in runs.values()
    ]
    same = all(h == histories[0] for h in histories)
    print(f"\nSame settings tried and the same values with {' and '.join(map(str, WORKERS))} "
          f"workers: {'yes' if same else 'NO'}.")  # fmt: skip
    if not same:
        raise SystemExit("the search depends on the worker count")


if __name__ == "__main__":
    with recorded("tune", "make bench-tune"):
        main()
