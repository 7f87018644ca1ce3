"""Configure a fork's GitHub repository for the workflows: `make github-setup`.

Creates the `staging` and `production` environments (production behind REVIEWERS; both deploy
from `main` only), sets the repository variables the workflows read (their names come from
`vars.NAME` in `.github/workflows/*.yml`, their values from the environment or a
`github-setup.env` file), lets the workflow token open pull requests while staying read-only
by default, and protects `main` (the `all-green` check, up to date, and a reviewed pull
request). Every call is idempotent; `--dry-run` prints them and sends nothing. This module is
the plan (which calls, in which order); `tabml.github_api` sends them. See docs/github.md.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import urllib.parse
from pathlib import Path
from typing import Any

from tabml.commands import CommandError, output
from tabml.github_api import DEFAULT_API, GitHub, SetupError, find_token

ENVIRONMENTS = ("staging", "production")
BRANCH = "main"
REQUIRED_CHECK = "all-green"
MAX_REVIEWERS = 6  # GitHub's limit for an environment's required reviewers
VARS = re.compile(r"\bvars\.([A-Za-z_][A-Za-z0-9_]*)")
REPO_NAME = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
REMOTE = re.compile(r"github\.com[:/]([A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+?)(?:\.git)?/?$")
ENV_LINE = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")


def workflow_variables(workflow_dir: Path) -> list[str]:
    """Every `vars.NAME` the workflows read, sorted."""
    files = sorted([*workflow_dir.glob("*.yml"), *workflow_dir.glob("*.yaml")])
    if not files:
        raise SetupError(f"no workflows in {workflow_dir}: run from the repository root")
    return sorted({name for f in files for name in VARS.findall(f.read_text(encoding="utf-8"))})


def has_required_job(workflow_dir: Path) -> bool:
    """Whether a workflow defines the job that branch protection will require."""
    job = re.compile(
        rf"^\s+(?:{REQUIRED_CHECK}:\s*$|name:\s*['\"]?{REQUIRED_CHECK}['\"]?\s*$)", re.M
    )
    return any(job.search(f.read_text(encoding="utf-8")) for f in workflow_dir.glob("*.y*ml"))


def read_env_file(path: Path) -> dict[str, str]:
    """NAME=value lines (comments, blank lines, `export` and quotes allowed)."""
    values = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = ENV_LINE.match(line)
        if not match:
            raise SetupError(f"{path}:{number}: expected NAME=value, got {line!r}")
        name, value = match.groups()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[name] = value
    return values


def repo_from_remote() -> str:
    """owner/name of the `origin` remote on GitHub."""
    try:
        url = output("git", "remote", "get-url", "origin")
    except (OSError, CommandError):
        raise SetupError("no git remote `origin`: name the repository, REPO=owner/name") from None
    match = REMOTE.search(url)
    if not match:
        raise SetupError(f"origin ({url}) is not on github.com: set REPO=owner/name")
    return match.group(1)


def setup(
    gh: GitHub,
    repo: str,
    reviewers: list[str],
    values: dict[str, str],
    names: list[str],
    approvals: int,
) -> None:
    """Apply every setting to `repo`, in an order where each step's prerequisites exist."""
    out, base = gh.out, f"/repos/{repo}"
    ids = []
    for login in reviewers:
        user = gh.call("GET", f"/users/{urllib.parse.quote(login)}")
        ids.append(user["id"] if user else f"<id of {login}>")
    if not reviewers:
        out(
            "No REVIEWERS given: production gets no required reviewers and deploys without "
            "approval; set REVIEWERS=user1,user2 to require one."
        )
    main_only = {"protected_branches": False, "custom_branch_policies": True}
    for env in ENVIRONMENTS:
        body: dict[str, Any] = {"deployment_branch_policy": main_only}
        if env == "production":  # the list replaces the previous one, also when empty
            body["reviewers"] = [{"type": "User", "id": id_} for id_ in ids]
        gh.call("PUT", f"{base}/environments/{env}", body)
        policies = f"{base}/environments/{env}/deployment-branch-policies"
        listed = gh.call("GET", f"{policies}?per_page=100")
        existing = (listed or {}).get("branch_policies", [])
        if not any(_is_main(policy) for policy in existing):
            main = {"name": BRANCH, "type": "branch"}
            gh.call("POST", policies, main, ok=(303,), when=f"unless the list has {BRANCH}")
        for policy in [p for p in existing if not _is_main(p)]:
            gh.call("DELETE", f"{policies}/{policy['id']}")
        if gh.dry_run:
            gh.call("DELETE", f"{policies}/{{branch_policy_id}}", when="each other policy listed")
    for name in names:
        if not values.get(name):
            out(f"skip {name}: not set (optional; set it in github-setup.env or the environment)")
            continue
        body = {"name": name, "value": values[name]}
        path = f"{base}/actions/variables/{name}"
        exists = gh.call("GET", path, ok=(404,)) is not None
        if gh.dry_run or not exists:
            gh.call("POST", f"{base}/actions/variables", body, when="if the GET answers 404")
        if gh.dry_run or exists:
            gh.call("PATCH", path, body, when="if the GET answers 200")
    gh.call(
        "PUT",
        f"{base}/actions/permissions/workflow",
        {"default_workflow_permissions": "read", "can_approve_pull_request_reviews": True},
    )
    gh.call(
        "PUT",
        f"{base}/branches/{BRANCH}/protection",
        {
            "required_status_checks": {"strict": True, "contexts": [REQUIRED_CHECK]},
            "enforce_admins": True,
            "required_pull_request_reviews": {
                "dismiss_stale_reviews": True,
                "required_approving_review_count": approvals,
            },
            "restrictions": None,
            "allow_force_pushes": False,
            "allow_deletions": False,
        },
    )


def _is_main(policy: dict) -> bool:
    return policy.get("name") == BRANCH and policy.get("type", "branch") == "branch"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", help="owner/name (default: the origin remote)")
    parser.add_argument("--reviewers", default="", help="user1,user2: production's reviewers")
    parser.add_argument("--approvals", type=int, default=1, help="approvals a pull request needs")
    parser.add_argument("--env-file", type=Path, help="NAME=value file (default github-setup.env)")
    parser.add_argument("--workflows", type=Path, default=Path(".github/workflows"))
    parser.add_argument("--dry-run", action="store_true", help="print the calls, send nothing")
    args = parser.parse_args(argv)
    try:
        repo = args.repo or repo_from_remote()
        if not REPO_NAME.match(repo):
            raise SetupError(f"REPO={repo!r} is not owner/name")
        reviewers = [login.strip() for login in args.reviewers.split(",") if login.strip()]
        if len(reviewers) > MAX_REVIEWERS:
            raise SetupError(f"REVIEWERS names {len(reviewers)} users; GitHub allows 6")
        if not 0 <= args.approvals <= MAX_REVIEWERS:
            raise SetupError(f"APPROVALS={args.approvals}: use 0 to 6")
        names = workflow_variables(args.workflows)
        if not has_required_job(args.workflows):
            raise SetupError(
                f"no workflow job `{REQUIRED_CHECK}`: main would require a check that never runs"
            )
        env_file = args.env_file or Path("github-setup.env")
        if env_file.is_file():
            from_file = read_env_file(env_file)
        elif args.env_file:
            raise SetupError(f"{env_file} not found: create it (NAME=value lines) or unset it")
        else:
            from_file = {}
        values = {name: os.environ.get(name) or from_file.get(name, "") for name in names}
        api = os.environ.get("GITHUB_API_URL") or DEFAULT_API
        token = None if args.dry_run else find_token()
        print(f"Repository {repo} at {api}; variables read by the workflows: {', '.join(names)}")
        setup(GitHub(api, token, args.dry_run), repo, reviewers, values, names, args.approvals)
    except SetupError as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return 1
    print("Dry run: nothing was sent." if args.dry_run else f"{repo} is set up.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
