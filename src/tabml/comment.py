"""Post a pull request's report as one comment, updated in place, with CML.

    python -m tabml.comment --report-dir DIR --head-sha SHA [--pr-numbers "12"] [--publish]

Run by the `pr-report` workflow, which has write access to pull requests. The report comes from
the pull request's own run, which a fork controls, so the report directory is data and nothing
else: only `report.md`, `pr.json` and the PNG images the report shows are read, each checked
by `tabml.artifact` (a regular file with a plain name, within a size limit, UTF-8 text or a real
PNG) and copied into a fresh directory of this module's own; every other link is kept as text.
CML runs from that directory, told the driver and the repository, with the token in its
environment only. The pull request the artifact names must have the tested commit at its head.
Standard library only: the posting job runs it with the runner's Python and installs nothing of
ours. CML's output goes straight to the job's log, so it runs through `subprocess`, not
`tabml.commands` (which captures what a program prints).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from tabml.artifact import IMAGE, IMAGE_NAME, ArtifactError, claimed_pr, collect, read_plain

COMMENT_LIMIT = 65_536
MARGIN = 1_024
WATERMARK = "tabml report"
TEXT_LIMIT = 4 * COMMENT_LIMIT  # bytes: the report generator writes at most COMMENT_LIMIT chars
# Where markdown starts a link, an image or a reference definition (`](`, `][`, `]:`), an
# autolink (`<scheme:` or `<a@b>`) or raw HTML (`<tag`, `</`, `<!`, `<?`); existing escapes are
# matched first so that they stay. Escaping keeps the text and leaves nothing to upload or follow.
CLOSER = re.compile(r"\\[!-/:-@\[-`{-~]|\](?=[(\[:])|<(?=[A-Za-z/!?]|[^\s<>]*@)")
PLACEHOLDER = re.compile("\ue000(\\d+)\ue001")


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
        claimed = claimed_pr(report_dir)
    except ArtifactError as exc:
        raise CommentError(str(exc)) from None
    try:
        head = pr_head_sha(claimed, args.repo, args.api_url, os.environ.get(args.token_env, ""))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CommentError(
            f"cannot look up pull request #{claimed} at {args.api_url or '(no GITHUB_API_URL)'}"
            f": {exc}"
        ) from None
    if head != args.head_sha:
        raise CommentError(
            f"pull request #{claimed} has head {head}, not the tested commit {args.head_sha}"
        )
    return claimed


def neutralise(text: str) -> str:
    """Escape what would start a link, image, definition or autolink; escapes stay as they are."""
    return CLOSER.sub(lambda m: m.group(0) if len(m.group(0)) == 2 else "\\" + m.group(0), text)


def comment_body(report: str, left_out: dict[str, str], publish: bool, run_url: str) -> str:
    """The comment: images of the copied PNGs kept (to be uploaded) or linked to the run."""
    if not re.fullmatch(r"https?://[^\s()<>\[\]]+", run_url):
        run_url = ""
    images: list[tuple[str, str]] = []

    def hold(match: re.Match[str]) -> str:
        alt = re.sub(r"\s+", " ", re.sub(r"[\[\]\\<>`]", "", match.group(1))).strip()
        target = match.group(2)
        if target in left_out or not IMAGE_NAME.fullmatch(target):
            why = left_out.get(target, "not a file name inside the report")
            return f"_{alt}: image `{target}` is not part of the report ({why})._"
        images.append((alt, target))
        return f"\ue000{len(images) - 1}\ue001"

    def show(match: re.Match[str]) -> str:
        alt, target = images[int(match.group(1))]
        if publish:
            return f"![{alt}]({target})"
        return f"[{alt} (image in the `report` artifact)]({run_url})" if run_url else alt

    text = IMAGE.sub(hold, report.replace("\ue000", "").replace("\ue001", ""))
    body = PLACEHOLDER.sub(show, neutralise(text))
    if len(body) > COMMENT_LIMIT - MARGIN:
        pointer = f"_Truncated: the full report is in the `report` artifact of {run_url}._"
        body = body[: COMMENT_LIMIT - MARGIN - len(pointer) - 2] + "\n\n" + pointer
    return body


def cml_command(args: argparse.Namespace, number: int, markdown: Path) -> list[str]:
    """CML's command line: the driver and repository given, never taken from a directory."""
    server = args.server_url.rstrip("/")
    program, *options = shlex.split(args.cml) or [""]
    # CML runs from another directory: a relative path must still name the same program.
    found = shutil.which(str(Path(program).absolute()) if "/" in program else program)
    if not found:
        raise CommentError(
            f"no CML at {program!r}: run `make install-cml` first, or set CML to its command"
        )
    return [
        found,
        *options,
        "comment",
        "update",
        "--driver=github",
        f"--repo={server}/{args.repo}",
        f"--target=pr/{number}",
        f"--watermark-title={WATERMARK}",
        f"--publish={str(args.publish).lower()}",
        *([f"--publish-url={args.publish_url}"] if args.publish and args.publish_url else []),
        str(markdown),
    ]


def post(args: argparse.Namespace) -> int:
    """Check and copy the report, then run CML on the copy; CML's exit status."""
    report_dir = Path(args.report_dir)
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", args.repo, re.ASCII):
        raise CommentError(f"--repo (GITHUB_REPOSITORY) is not owner/name: {args.repo!r}")
    if not re.fullmatch(r"https?://[\w.-]+(:\d+)?/?", args.server_url, re.ASCII):
        raise CommentError(f"--server-url (GITHUB_SERVER_URL) is not a URL: {args.server_url!r}")
    try:
        report = read_plain(report_dir, "report.md", TEXT_LIMIT).decode("utf-8")
        report = report.replace("\ue000", "").replace("\ue001", "")  # the body's placeholders
    except UnicodeDecodeError as exc:
        raise CommentError(
            f"`report.md` in {report_dir} is not UTF-8 text ({exc.reason})"
        ) from None
    except ArtifactError as exc:
        raise CommentError(f"{exc} in {report_dir} (the `report` artifact)") from None
    number = resolve_pr(args, report_dir)
    with tempfile.TemporaryDirectory(prefix="tabml-comment-") as work:
        copy = Path(work) / "report"
        copy.mkdir()
        left_out = collect(report_dir, copy, report)
        markdown = copy / "comment.md"
        markdown.write_text(comment_body(report, left_out, args.publish, args.run_url), "utf-8")
        cmd = cml_command(args, number, markdown)
        print("+", " ".join(cmd), flush=True)
        env = dict(os.environ, ITERATIVE_DO_NOT_TRACK="1")  # no usage report to a third host
        env["REPO_TOKEN"] = os.environ.get(args.token_env, "")
        return subprocess.run(cmd, cwd=work, env=env, check=False).returncode


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--report-dir", required=True)
    ap.add_argument("--head-sha", required=True, help="commit the pull request's run tested")
    ap.add_argument("--pr-numbers", default="", help="pull requests listed by the event")
    ap.add_argument("--repo", default=os.environ.get("GITHUB_REPOSITORY", ""))
    ap.add_argument("--server-url", default=os.environ.get("GITHUB_SERVER_URL", ""))
    ap.add_argument("--api-url", default=os.environ.get("GITHUB_API_URL", ""))
    ap.add_argument("--token-env", default="REPO_TOKEN", help="variable holding the token")
    ap.add_argument("--run-url", default="", help="page of the run that holds the artifact")
    ap.add_argument("--publish", action="store_true", help="let CML upload the images")
    ap.add_argument("--publish-url", default="", help="image server (CML's default if empty)")
    ap.add_argument("--cml", default="cml", help="CML command line")
    args = ap.parse_args(argv)
    args.server_url = args.server_url or "https://github.com"
    try:
        sys.exit(post(args))
    except CommentError as exc:
        print(f"ERROR: cannot post the report: {exc}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
