"""Lineage in one place: the commit, the hashes `dvc.lock` pins, the model's name, tag and aliases.

Whatever records or checks where a model came from (MLflow runs and registry versions, the bento
tag, image labels, the retraining pull request, the monitor) asks this module, so that a rename
in `params.yaml` or a move of an output (`paths`) reaches all of them at once.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tabml.io import DataError, file_md5
from tabml.params import Params

LOCK = "dvc.lock"
# Environment aliases of the registered model; `<alias>-previous` keeps what served before.
STAGING, PRODUCTION = "staging", "production"
ALIASES = (STAGING, PRODUCTION)
# Overrides serve.model_name everywhere at once (a test or a second registry namespace).
MODEL_NAME_VARIABLE = "MLFLOW_REGISTERED_MODEL_NAME"


def git(*args: str) -> str:
    """Output of a git command, or "" when it fails (no repository, no git)."""
    done = subprocess.run(["git", *args], capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else ""


def commit() -> str:
    """The commit checked out, or "unknown" outside a repository."""
    return git("rev-parse", "HEAD") or "unknown"


def dirty() -> bool:
    """Whether tracked files differ from the commit, leaving out what `dvc repro` rewrites."""
    changed = git(
        "status", "--porcelain", "--untracked-files=no", "--", ".",
        f":(exclude){LOCK}", ":(exclude)reports",
    )  # fmt: skip
    return bool(changed)


def git_tags() -> dict[str, str]:
    """The commit the code came from, and whether the working tree differed from it."""
    return {"git_commit": commit(), "git_dirty": str(dirty()).lower()}


def read_lock(lock: str | Path = LOCK) -> dict[str, Any]:
    try:
        with Path(lock).open(encoding="utf-8") as fh:
            return yaml.safe_load(fh) or {}
    except FileNotFoundError:
        raise DataError(f"{lock}: not found; run `dvc repro` first.") from None


def locked_md5(out: str | Path, lock: str | Path = LOCK) -> str:
    """The md5 that `dvc.lock` records for an output or dependency path."""
    base = Path(lock).parent
    for stage in read_lock(lock).get("stages", {}).values():
        for entry in (*stage.get("outs", []), *stage.get("deps", [])):
            if (base / entry["path"]).resolve() == Path(out).resolve() and "md5" in entry:
                return entry["md5"]
    raise DataError(f"{lock} records no file {out}.")


def check_locked(path: str | Path, lock: str | Path = LOCK) -> str:
    """The md5 of `path`, which must be the one `dvc.lock` pins."""
    md5, pinned = file_md5(path), locked_md5(path, lock)
    if md5 != pinned:
        raise DataError(
            f"{path} (md5 {md5}) is not what {lock} pins ({pinned}); "
            "run `dvc checkout` or `dvc repro` first."
        )
    return md5


def model_name(params: Params) -> str:
    """The registered, BentoML and logged model name: `serve.model_name`."""
    return os.environ.get(MODEL_NAME_VARIABLE) or params.serve.model_name


def model_tag(params: Params, model_path: str | Path) -> str:
    """`<model name>:<md5 of the model file>`: exact, and the same wherever it is shown."""
    return f"{model_name(params)}:{file_md5(model_path)}"


def previous(alias: str) -> str:
    """The alias that keeps what `alias` pointed at before its last move."""
    return f"{alias}-previous"
