"""Post a pull request's report as one comment, updated in place, with CML.

    python -m tabml.comment --report-dir DIR --head-sha SHA [--pr-numbers "12"] [--publish]

Run by the `pr-report` workflow, which has write access to pull requests. The report comes from
the pull request's own run, so it is untrusted text: this module only reads it, never runs it,
checks that the pull request it names really has the tested commit at its head, and rejects
images outside the report. Standard library only: the posting job installs nothing of ours.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import urllib.request
from collections.abc import Sequence
from pathlib import Path

COMMENT_LIMIT = 65_536
MARGIN = 1_024
WATERMARK = "tabml report"
IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)")


class CommentError(Exception):
    """The report cannot be posted; the message says why."""


def pr_head_sha(number: int, repo: str, api_url: str, token: str) -> str:
    """The head commit of pull request `number`, from the GitHub API."""
    request = urllib.request.Request(
        f"{api_url}/repos/{repo}/pulls/{number}",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.load(answer)["head"]["sha"]


def resolve_pr(args: argparse.Namespace, report_dir: Path) -> int:
    """The pull request to comment on.

    GitHub lists the pull requests of a same-repository run in the event; for a fork it lists
    none, and the number comes from the artifact, so it must match the tested head commit.
    """
    listed = [int(n) for n in args.pr_numbers.split() if n.isdigit()]
    if listed:
        return listed[0]
    try:
        claimed = json.loads((report_dir / "pr.json").read_text(encoding="utf-8"))["number"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CommentError(
            f"no pull request number in the event or the artifact ({exc})"
        ) from None
    if not isinstance(claimed, int) or claimed <= 0:
        raise CommentError(f"the artifact names an invalid pull request: {claimed!r}")
    head = pr_head_sha(claimed, args.repo, args.api_url, os.environ.get(args.token_env, ""))
    if head != args.head_sha:
        raise CommentError(
            f"pull request #{claimed} has head {head}, not the tested commit {args.head_sha}"
        )
    return claimed


def comment_body(report: str, report_dir: Path, publish: bool, run_url: str) -> str:
    """The comment: local images kept (to be uploaded) or replaced by a link to the run."""

    def image(match: re.Match[str]) -> str:
        alt, target = match.group(1), match.group(2)
        path = (report_dir / target).resolve()
        if target.startswith(("http://", "https://")):
            return match.group(0)
        if not path.is_relative_to(report_dir.resolve()) or not path.is_file():
            return f"_{alt}: image `{target}` is not part of the report, left out._"
        if publish:
            return match.group(0)
        return f"[{alt} (image in the `report` artifact)]({run_url})" if run_url else alt

    body = IMAGE.sub(image, report)
    if len(body) > COMMENT_LIMIT - MARGIN:
        pointer = f"_Truncated: the full report is in the `report` artifact of {run_url}._"
        body = body[: COMMENT_LIMIT - MARGIN - len(pointer) - 2] + "\n\n" + pointer
    return body


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--report-dir", required=True)
    ap.add_argument("--head-sha", required=True, help="commit the pull request's run tested")
    ap.add_argument("--pr-numbers", default="", help="pull requests listed by the event")
    ap.add_argument("--repo", default=os.environ.get("GITHUB_REPOSITORY", ""))
    ap.add_argument("--api-url", default=os.environ.get("GITHUB_API_URL", ""))
    ap.add_argument("--token-env", default="REPO_TOKEN", help="variable holding the token")
    ap.add_argument("--run-url", default="", help="page of the run that holds the artifact")
    ap.add_argument("--publish", action="store_true", help="let CML upload the images")
    ap.add_argument("--cml", default="cml", help="CML command line")
    args = ap.parse_args(argv)
    report_dir = Path(args.report_dir)
    try:
        number = resolve_pr(args, report_dir)
        report = (report_dir / "report.md").read_text(encoding="utf-8")
    except (CommentError, OSError) as exc:
        print(f"ERROR: cannot post the report: {exc}", file=sys.stderr)
        sys.exit(1)
    body = report_dir / "comment.md"
    body.write_text(comment_body(report, report_dir, args.publish, args.run_url), "utf-8")
    cmd = [
        *shlex.split(args.cml),
        "comment",
        "update",
        f"--target=pr/{number}",
        f"--watermark-title={WATERMARK}",
        f"--publish={str(args.publish).lower()}",
        body.name,
    ]
    print("+", " ".join(cmd), flush=True)
    # CML resolves image paths next to the markdown file: run it from the report directory.
    sys.exit(subprocess.run(cmd, cwd=report_dir, check=False).returncode)


if __name__ == "__main__":
    main()
