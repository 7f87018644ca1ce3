"""Throw-away copies of the project, as a fresh clone would have them (tests and benchmarks)."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


def project_files(root: Path) -> list[str]:
    """Files a fresh clone of the working tree would hold: tracked and new, minus ignored."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [name for name in listed.split("\0") if name and (root / name).is_file()]


def git(repo: Path, *args: str) -> str:
    """Run git in `repo` with a fixed identity; return its standard output."""
    identity = ["-c", "user.name=tabml", "-c", "user.email=tabml@localhost"]
    done = subprocess.run(
        ["git", *identity, *args], cwd=repo, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def copy_project(root: Path, dest: Path) -> Path:
    """Copy the project's files into `dest` and commit them there as branch `main`."""
    for name in project_files(root):
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, target)
    git(dest, "init", "--quiet", "--initial-branch=main")
    git(dest, "add", "--all")
    git(dest, "commit", "--quiet", "--message=copy of the project")
    return dest


@dataclass
class Workspace:
    """A copy of the project, committed to its own git repository."""

    path: Path

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "MLFLOW_TRACKING_URI": self.tracking_uri}

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{self.path / 'mlflow.db'}"

    def run(self, *cmd: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
        done = subprocess.run(
            cmd,
            cwd=self.path,
            env=kwargs.pop("env", self.env),
            capture_output=True,
            text=True,
            **kwargs,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"{cmd} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
            )
        return done
