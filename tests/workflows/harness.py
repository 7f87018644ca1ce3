"""Run the project's real GitHub workflows with `act`, on a throw-away repository.

Two modes. With a `Runner` (runner_image.py), `act` runs each job in a container of the
ubuntu-24.04 stand-in image through podman's Docker API, as GitHub runs it on a fresh VM: no
Python 3.11 and no uv until the workflow's setup actions install them. Without one (host mode,
`-P ubuntu-latest=-self-hosted`), the `run:` steps run on this machine. Actions that cannot be
fetched here are replaced, by their pinned `owner/repo@sha`, with the composite actions under
`actions/`, which keep the real inputs (test_upstream_actions.py) and do the same job locally:
checkout copies the event's commit from the throw-away repository, setup-python and setup-uv
install into the tool cache, cache and artifacts are directories. The CML command is `bin/cml`,
which writes what it would post to a file (and, for a pull request, pushes its branch to the
throw-away repository); `bin/gh` records the workflows it would start. Any workflow test
(pull requests, merges, schedules) can use `ActRepo` with its own events.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner_image import Runner
from testkit.workspace import copy_project, git

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
ACTIONS = HERE / "actions"
CML = HERE / "bin" / "cml"
GH = HERE / "bin" / "gh"
STAND_INS = {
    "actions/checkout": "checkout",
    "actions/setup-python": "setup-python",
    "astral-sh/setup-uv": "setup-uv",
    "actions/cache": "cache",
    "actions/upload-artifact": "upload-artifact",
    "actions/download-artifact": "download-artifact",
    # cd.yml's cloud registry logins: skipped unless REGISTRY_AUTH names the cloud.
    "aws-actions/configure-aws-credentials": "configure-aws-credentials",
    "google-github-actions/auth": "gcp-auth",
}
USES = re.compile(r"^\s*(?:-\s+)?uses:\s*([\w.-]+/[\w.-]+)(?:/[\w./-]+)?@([0-9a-f]{40})\b", re.M)
ACT_TIMEOUT = 1200  # seconds; one act run reproduces the whole pipeline at most
LEAKY_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "VIRTUAL_ENV", "MAKEFLAGS", "MFLAGS")
# Where the job container sees the source repository: act makes the workspace at the host path.
CONTAINER_SOURCE = "/var/lib/tabml-act/source"
REPOSITORY = {"full_name": "tabml/tabml", "name": "tabml", "owner": {"login": "tabml"}}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def local_repositories(workflow_dir: Path) -> list[str]:
    """`--local-repository` mappings for every pinned action the workflows use."""
    mappings = set()
    for workflow in sorted(workflow_dir.glob("*.yml")):
        for repo, sha in USES.findall(workflow.read_text(encoding="utf-8")):
            if repo not in STAND_INS:
                raise KeyError(f"{workflow.name}: no local stand-in for {repo}; add one")
            mappings.add(f"{repo}@{sha}={ACTIONS / STAND_INS[repo]}")
    return sorted(mappings)


@dataclass
class ActRun:
    """One `act` invocation: its exit status, its log, and the artifacts its jobs stored."""

    returncode: int
    output: str
    seconds: float
    artifacts: Path
    comment: Path

    def job_log(self, job: str) -> str:
        prefix = re.compile(rf"^\[[^/\]]+/{re.escape(job)}\s*\]")
        return "\n".join(line for line in self.output.splitlines() if prefix.match(line))

    def job_result(self, job: str) -> str:
        log = self.job_log(job)
        if "Job succeeded" in log:
            return "success"
        return "failure" if "Job failed" in log else "not run"

    def failed_steps(self, job: str) -> list[str]:
        pattern = re.compile(r"❌\s+Failure - Main (.+?) \[")
        return pattern.findall(self.job_log(job))

    def failure(self, job: str, lines: int = 60) -> str:
        """Each failed step of `job` with the log lines before its failure mark."""
        log = self.job_log(job).splitlines()
        marks = [i for i, line in enumerate(log) if "❌" in line]
        if not marks:
            return "\n".join(log[-lines:])
        return "\n...\n".join("\n".join(log[max(0, i - lines) : i + 1]) for i in marks)

    def artifact(self, name: str) -> Path:
        return self.artifacts / name


def cleanup_only(output: str) -> bool:
    """Whether act failed only in cleaning up after jobs that all succeeded."""
    results = re.findall(r"🏁\s+Job (succeeded|failed)", output)
    errors = [line for line in output.splitlines() if line.startswith("Error: ")]
    return (
        bool(results)
        and set(results) == {"succeeded"}
        and bool(errors)
        and all(e.startswith("Error: Error occurred running finally") for e in errors)
    )


class ActRepo:
    """A copy of the project committed to its own repository, and `act` runs on its commits."""

    def __init__(self, root: Path, tmp: Path, runner: Runner | None = None) -> None:
        self.path = copy_project(root, tmp / "repo")
        self.runner = runner  # None: jobs run on this machine (host mode)
        self.store = tmp / "store"
        self.cache = self.store / "cache"  # shared by every run, like a repository's caches
        self.runs: list[ActRun] = []
        # Jobs share uv's cache on this machine, as setup-uv's cache does on GitHub.
        uv = [shutil.which("uv") or sys.executable, *([] if shutil.which("uv") else ["-m", "uv"])]
        done = subprocess.run([*uv, "cache", "dir"], capture_output=True, text=True, check=False)
        self.uv_cache = done.stdout.strip()

    def git(self, *args: str) -> str:
        return git(self.path, *args)

    def sha(self, ref: str = "HEAD") -> str:
        return self.git("rev-parse", ref)

    def commit(self, message: str) -> str:
        self.git("add", "--all")
        self.git("commit", "--quiet", f"--message={message}")
        return self.sha()

    def act(
        self,
        event_name: str,
        event: dict[str, Any],
        workflow: str,
        job: str,
        artifacts: Path | None = None,
        extra: Sequence[str] = (),
        host: bool = False,
        mounts: Sequence[Path] = (),
    ) -> ActRun:
        """Run `job` (and the jobs it needs) of `workflow` for `event` at the current HEAD.

        Jobs run in the runner image when the repository has a runner, unless `host`; `mounts`
        are more host directories the job container must see at their host paths.
        `extra`: more `act` arguments, such as `--var NAME=value` for repository variables.
        """
        runner = None if host else self.runner
        run_dir = self.store / f"run-{len(self.runs) + 1}-{event_name}-{job}"
        run_dir.mkdir(parents=True)
        artifacts = artifacts or run_dir / "artifacts"
        (run_dir / "event.json").write_text(json.dumps(event), encoding="utf-8")
        cmd = [
            "act", event_name, "--eventpath", str(run_dir / "event.json"),
            "--workflows", f".github/workflows/{workflow}", "--job", job,
            "--no-skip-checkout", "--no-cache-server",
            "--env", f"TABML_ACT_CACHE={self.cache}",
            "--env", f"TABML_ACT_ARTIFACTS={artifacts}", "--env", f"CML={CML}",
            "--env", f"TABML_ACT_CML_OUT={run_dir / 'comment.md'}", "--env", f"GH={GH}",
            "--env", f"TABML_ACT_GH_OUT={run_dir / 'gh.txt'}",
        ]  # fmt: skip
        if runner:
            cmd += self.container_args(runner, artifacts, mounts)
        else:
            cmd += ["--platform", "ubuntu-latest=-self-hosted"]
            cmd += ["--env", f"TABML_ACT_SOURCE={self.path}"]
        for mapping in local_repositories(self.path / ".github/workflows"):
            cmd += ["--local-repository", mapping]
        cmd += list(extra)
        # The runner starts clean: no tracking server or venv of the calling shell leaks in.
        env = {k: v for k, v in os.environ.items() if k not in LEAKY_ENV}
        env |= {
            # act keeps its job directories under the cache home: keep them with the test's.
            "XDG_CACHE_HOME": str(self.store / "xdg-cache"),
        }
        if self.uv_cache:
            env["UV_CACHE_DIR"] = self.uv_cache
        if runner:
            env["DOCKER_HOST"] = f"unix://{runner.socket}"
        start = time.perf_counter()
        done = subprocess.run(
            cmd,
            cwd=self.path,
            env=env,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=ACT_TIMEOUT,
        )
        output = done.stdout + done.stderr
        (run_dir / "act.log").write_text(output, encoding="utf-8")
        returncode = done.returncode
        if returncode and cleanup_only(output):
            # Every job succeeded; only act's removal of its containers and volumes through
            # podman's socket timed out (a loaded machine). GitHub reports the jobs' results.
            print(f"\nact {workflow} {job}: jobs succeeded, cleanup failed; counted a success")
            returncode = 0
        run = ActRun(
            returncode, output, time.perf_counter() - start, artifacts, run_dir / "comment.md"
        )
        self.runs.append(run)
        if runner:
            print(f"\nact {workflow} {job} in {runner.image}: {run.seconds:.0f} s")
        return run

    def container_args(
        self, runner: Runner, artifacts: Path, mounts: Sequence[Path] = ()
    ) -> list[str]:
        """`act` arguments that run the jobs in the runner image through podman's socket.

        The paths the stand-ins read and write are bind-mounted at their host paths; the
        source repository elsewhere, because act puts the job's workspace at the host path.
        uv's cache is this machine's, as setup-uv's `enable-cache` restores it on GitHub.
        """
        # All of tests/workflows: the CML stand-in reads CML's options from upstream/.
        shared = {self.store, artifacts, HERE, runner.python_dist, runner.uv_dist, *mounts}
        if self.uv_cache:
            shared.add(Path(self.uv_cache))
        # The open-files limit podman's compatible API would set is above what this kernel allows.
        volumes = [
            "--ulimit nofile=1024:20000 --ulimit nproc=4096:4096",
            f"-v {self.path}:{CONTAINER_SOURCE}",
        ]
        volumes += [f"-v {path}:{path}" for path in sorted(shared)]
        args = [
            "--platform", f"ubuntu-latest={runner.image}", "--pull=false", "--network", "host",
            "--container-daemon-socket", f"unix://{runner.socket}",
            "--container-options", " ".join(volumes),
            "--env", f"TABML_ACT_SOURCE={CONTAINER_SOURCE}",
            # For jobs a workflow sends to a self-hosted runner (this machine) instead.
            "--env", f"TABML_ACT_HOST_SOURCE={self.path}",
            "--env", f"TABML_ACT_PYTHON_DIST={runner.python_dist}",
            "--env", f"TABML_ACT_UV_DIST={runner.uv_dist}",
        ]  # fmt: skip
        if self.uv_cache:
            args += ["--env", f"UV_CACHE_DIR={self.uv_cache}"]
        return args


def pull_request_event(number: int, head: str, head_ref: str, base: str) -> dict[str, Any]:
    return {
        "action": "synchronize",
        "number": number,
        "pull_request": {
            "number": number,
            "head": {"sha": head, "ref": head_ref},
            "base": {"sha": base, "ref": "main"},
        },
        "repository": REPOSITORY,
    }


def push_event(before: str, after: str, ref: str = "refs/heads/main") -> dict[str, Any]:
    return {"ref": ref, "before": before, "after": after, "repository": REPOSITORY}


def workflow_run_event(head: str, numbers: list[int], conclusion: str) -> dict[str, Any]:
    return {
        "action": "completed",
        "workflow_run": {
            "id": 1,
            "name": "ci",
            "event": "pull_request",
            "conclusion": conclusion,
            "head_sha": head,
            "html_url": "https://github.com/tabml/tabml/actions/runs/1",
            "pull_requests": [{"number": n} for n in numbers],
        },
        "repository": REPOSITORY,
    }
