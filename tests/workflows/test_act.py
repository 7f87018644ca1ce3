"""The real pull-request workflow, run with `act` (see harness.py and conftest.py).

One throw-away repository plays GitHub: main is pushed first (its DVC cache is every pull
request's warm start), then pull requests that change a parameter, corrupt the data, or change
only the README, then the workflow that posts the report. `act -j gate` runs `gate` and the jobs
it needs (pipeline, report). The `tests` job is never run here, because it runs `make test`,
which runs this file; `all-green` needs it, so its make target is tested on its own
(test_workflow_files.py). The `lint` job runs on its own.
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
from dataclasses import dataclass

import pytest
from harness import (
    ActRepo,
    ActRun,
    pull_request_event,
    push_event,
    workflow_run_event,
)
from testkit.declared import bounded_feature, category_feature, unknown_category

from tabml.ingest import normalize_name, read_source
from tabml.params import load_params

# Seven act runs in the runner image (about 25 minutes on 2 busy cores) set up the first test.
pytestmark = [pytest.mark.slow, pytest.mark.container, pytest.mark.timeout(3000)]

TRAINED = "Running stage 'train'"
TRAIN_FROM_CACHE = "Stage 'train' is cached - skipping run, checking out outputs"
LOCK_STEP = "Check dvc.lock and reports are committed"


@dataclass
class Runs:
    lint: ActRun
    main: ActRun
    stale: ActRun
    tuned: ActRun
    corrupt: ActRun
    readme: ActRun
    comment: ActRun
    broken: tuple[str, str]  # the columns corrupt_source broke


def branch(repo: ActRepo, name: str) -> None:
    repo.git("checkout", "--quiet", "-B", name, "main")


def corrupt_source(repo: ActRepo) -> tuple[str, str]:
    """Values past a declared bound and an unknown category: what a broken extract looks like.
    Returns the two columns."""
    params = load_params(repo.path / "params.yaml")
    bounded, (category, known) = bounded_feature(params), category_feature(params)
    source = repo.path / params.ingest.source
    frame = read_source(str(source), params.ingest.sep)
    names = {normalize_name(str(c)): c for c in frame.columns}
    frame.loc[:2, names[bounded.name]] = bounded.high + 30
    frame.loc[10:11, names[category]] = unknown_category(known)
    opener = gzip.open if source.suffix == ".gz" else open
    with opener(source, "wt", encoding="utf-8") as fh:
        frame.to_csv(fh, sep=params.ingest.sep, index=False)
    return bounded.name, category


@pytest.fixture(scope="module")
def runs(act_repo: ActRepo) -> Runs:
    repo = act_repo
    main = repo.sha("main")
    committed = repo.git("ls-files", "dvc.lock", "params.yaml", "dvc.yaml").split()
    assert len(committed) == 3, f"the copy of the project lacks files: it holds {committed}"
    lint = repo.act("push", push_event("0" * 40, main), "ci.yml", "lint")
    first = repo.act("push", push_event("0" * 40, main), "ci.yml", "pipeline")

    # A parameter change committed without `dvc repro`: the lock check must fail...
    branch(repo, "tune")
    params = repo.path / "params.yaml"
    params.write_text(params.read_text().replace("learning_rate: 0.05", "learning_rate: 0.04"))
    head = repo.commit("Lower the learning rate")
    stale = repo.act("pull_request", pull_request_event(1, head, "tune", main), "ci.yml", "gate")
    # ... and committing the lock and reports it reproduced (its artifact) fixes it.
    produced = stale.artifact("pipeline")
    shutil.copy2(produced / "dvc.lock", repo.path / "dvc.lock")
    shutil.copytree(produced / "reports", repo.path / "reports", dirs_exist_ok=True)
    head = repo.commit("Reproduce the pipeline")
    tuned = repo.act("pull_request", pull_request_event(1, head, "tune", main), "ci.yml", "gate")

    branch(repo, "bad-data")
    broken = corrupt_source(repo)
    head = repo.commit("A broken extract")
    corrupt = repo.act(
        "pull_request", pull_request_event(2, head, "bad-data", main), "ci.yml", "gate"
    )

    branch(repo, "docs")
    readme = repo.path / "README.md"
    readme.write_text(readme.read_text() + "\nOne more sentence.\n")
    head = repo.commit("Docs only")
    docs = repo.act("pull_request", pull_request_event(3, head, "docs", main), "ci.yml", "gate")

    # The posting workflow runs from the default branch, on the tuned pull request's artifacts.
    repo.git("checkout", "--quiet", "main")
    tuned_head = repo.sha("tune")
    comment = repo.act(
        "workflow_run",
        workflow_run_event(tuned_head, [1], "success"),
        "pr-report.yml",
        "comment",
        artifacts=tuned.artifacts,
    )
    timings = {
        "lint": lint.seconds,
        "main, cold cache": first.seconds,
        "parameter change, stale lock": stale.seconds,
        "parameter change, lock committed": tuned.seconds,
        "corrupted data": corrupt.seconds,
        "README only": docs.seconds,
        "post the comment": comment.seconds,
    }
    print("\nact run times (s):", json.dumps({k: round(v, 1) for k, v in timings.items()}))
    return Runs(lint, first, stale, tuned, corrupt, docs, comment, broken)


def report(run: ActRun) -> str:
    return (run.artifact("report") / "report.md").read_text(encoding="utf-8")


def section(text: str, title: str) -> str:
    return text.split(f"### {title}\n", 1)[1].split("\n### ", 1)[0]


def test_lint_job_passes(runs):
    assert runs.lint.returncode == 0, runs.lint.job_log("lint")[-3000:]
    assert "Lint the workflows" in runs.lint.job_log("lint")


def test_main_push_reproduces_the_pipeline_and_fills_the_cache(runs, act_repo):
    assert runs.main.returncode == 0, runs.main.failure("pipeline")
    log = runs.main.job_log("pipeline")
    assert TRAINED in log and "cache miss" in log
    assert any(act_repo.cache.iterdir()), "the pipeline job saved no DVC cache"


def test_stale_lock_fails_with_what_to_run(runs):
    run = runs.stale
    assert run.returncode != 0
    assert run.failed_steps("pipeline") == [LOCK_STEP]
    assert "Run 'make repro' and commit dvc.lock and reports/" in run.job_log("pipeline")
    assert run.job_result("gate") == "not run"
    # The report still says what happened.
    assert "Pipeline (validate, reproduce, lock check): **failure**" in report(run)


def test_parameter_change_report_shows_params_and_metric_deltas(runs):
    run = runs.tuned
    assert run.returncode == 0, run.output[-4000:]
    assert [run.job_result(job) for job in ("pipeline", "report", "gate")] == ["success"] * 3
    text = report(run)
    params = section(text, "Parameters")
    assert re.search(
        r"train\.hist_gradient_boosting\.learning_rate\s*\|\s*0\.05\s*\|\s*0\.04", params
    )
    metrics = section(text, "Metrics")
    row = next(line for line in metrics.splitlines() if "| test.roc_auc " in line)
    change = float(row.strip(" |").split("|")[-1])
    assert change != 0 and abs(change) < 0.01
    assert "**Gate passed**" in text and "Gate: **passed**" in text
    assert "no comparison with the production model" in text
    for image in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text):
        assert (run.artifact("report") / image).stat().st_size > 1000, image


def test_committed_lock_gets_an_exact_cache_hit(runs):
    log = runs.tuned.job_log("pipeline")
    assert TRAIN_FROM_CACHE in log and TRAINED not in log


def test_corrupted_data_fails_at_validation_and_the_report_lists_the_checks(runs):
    run = runs.corrupt
    assert run.returncode != 0
    assert run.failed_steps("pipeline") == ["Validate the data"]
    assert TRAINED not in run.output
    assert run.job_result("report") == "success"
    assert run.job_result("gate") == "not run"
    assert "- Gate: **not run** (the pipeline did not finish)" in report(run)
    validation = section(report(run), "Data validation")
    assert "**Data validation failed**" in validation
    # The failing checks, read from reports/validation.json, then its markdown verbatim.
    assert all(f"`{column}`: `" in validation for column in runs.broken)
    summary = (run.artifact("pipeline") / "reports/validation.md").read_text(encoding="utf-8")
    assert summary.strip() in validation


def test_readme_only_change_does_not_retrain(runs):
    run = runs.readme
    assert run.returncode == 0, run.output[-3000:]
    log = run.job_log("pipeline")
    assert "restored .dvc/cache from key" in log
    assert TRAIN_FROM_CACHE in log and TRAINED not in log
    text = report(run)
    assert "No metric changed." in text and "No parameter changed." in text


def test_comment_workflow_posts_the_report_once_without_uploading_images(runs):
    run = runs.comment
    assert run.returncode == 0, run.output[-3000:]
    command, body = run.comment.read_text(encoding="utf-8").split("\n---\n", 1)
    assert "--target=pr/1" in command.split()
    assert "--publish=false" in command.split()
    assert "--watermark-title=tabml report" in command
    posted = report(runs.tuned)
    assert body.splitlines()[:8] == posted.splitlines()[:8]
    assert "![" not in body, "no local image may reach the comment when images are not published"
    assert (
        "(image in the `report` artifact)](https://github.com/tabml/tabml/actions/runs/1)" in body
    )
    assert len(body) < 65_536
