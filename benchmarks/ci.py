"""Benchmark: the pull-request workflow under `act`, with and without a DVC cache hit.

    python benchmarks/ci.py

Runs the real `ci.yml` (jobs pipeline, report and gate, as `act -j gate` does) on a throw-away
copy of the project, with the local stand-in actions of tests/workflows. The baseline is a pull
request that changes only the README after main's run saved its DVC cache (exact hit: nothing
retrains); it is compared with the same pull request on an empty cache (every stage runs), and
with main's own first run. Times include `uv sync` into a fresh venv per job from uv's cache.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "workflows"), str(ROOT / "tests")]  # harness, testkit

from harness import ActRepo, pull_request_event, push_event  # noqa: E402
from record import recorded  # noqa: E402


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-ci-") as tmp:
        repo = ActRepo(ROOT, Path(tmp))
        base = repo.sha("main")
        first = repo.act("push", push_event("0" * 40, base), "ci.yml", "pipeline")
        repo.git("checkout", "--quiet", "-b", "docs")
        readme = repo.path / "README.md"
        readme.write_text(readme.read_text() + "\nOne more sentence.\n")
        head = repo.commit("Docs only")
        event = pull_request_event(1, head, "docs", base)
        hit = repo.act("pull_request", event, "ci.yml", "gate")
        repo.cache = Path(tmp) / "empty-cache"  # a repository with no saved cache
        miss = repo.act("pull_request", event, "ci.yml", "gate")
    for name, run in (("main", first), ("hit", hit), ("miss", miss)):
        if run.returncode != 0:
            raise SystemExit(f"the {name} run failed:\n{run.output[-3000:]}")
    print("pull-request workflow under act (jobs pipeline, report, gate), one run each\n")
    print("| run | seconds | ratio | stages run |")
    print("|---|---:|---:|---|")
    for name, run in (
        ("README-only PR, DVC cache hit (baseline)", hit),
        ("README-only PR, empty DVC cache", miss),
        ("push to main, empty DVC cache (pipeline job only)", first),
    ):
        stages = [s for s in ("ingest", "validate", "split", "train", "evaluate")
                  if f"Running stage '{s}'" in run.output]  # fmt: skip
        print(f"| {name} | {run.seconds:.1f} | {run.seconds / hit.seconds:.2f} | {stages} |")


if __name__ == "__main__":
    with recorded("ci", "make bench-ci"):
        main()
