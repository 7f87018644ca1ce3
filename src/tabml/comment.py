"""Post a pull request's report as one comment, updated in place, with CML.

    python -m tabml.comment --report-dir DIR --head-sha SHA [--pr-numbers "12"] [--publish]

Run by the `pr-report` workflow, which has write access to pull requests. The report comes from
the pull request's own run, which a fork controls, so the report directory is data and nothing
else: only `report.md`, `pr.json` and the PNG images the report shows are read, each checked
(a regular file with a plain name, within a size limit, UTF-8 text or a real PNG) and copied
into a fresh directory of this module's own; every other link is kept as text. CML runs from
that directory, told the driver and the repository, with the token in its environment only.
The pull request the artifact names must have the tested commit at its head. Standard library
only: the posting job runs it with the runner's Python and installs nothing of ours.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
import urllib.request
import zlib
from collections.abc import Sequence
from pathlib import Path

COMMENT_LIMIT = 65_536
MARGIN = 1_024
WATERMARK = "tabml report"
TEXT_LIMIT = 4 * COMMENT_LIMIT  # bytes: the report generator writes at most COMMENT_LIMIT chars
PR_LIMIT = 4_096
IMAGE_LIMIT = 5 * 2**20
IMAGES = 32
PIXELS = 16_384  # largest width or height taken for a plot
IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)")
# One to three plain path parts, a PNG at the end: no dot files, `..`, absolute paths or URLs.
PART = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}"
IMAGE_NAME = re.compile(rf"(?:{PART}/){{0,2}}{PART}\.png")
# Where markdown starts a link, an image or a reference definition (`](`, `][`, `]:`), an
# autolink (`<scheme:` or `<a@b>`) or raw HTML (`<tag`, `</`, `<!`, `<?`); existing escapes are
# matched first so that they stay. Escaping keeps the text and leaves nothing to upload or follow.
CLOSER = re.compile(r"\\[!-/:-@\[-`{-~]|\](?=[(\[:])|<(?=[A-Za-z/!?]|[^\s<>]*@)")
PLACEHOLDER = re.compile("\ue000(\\d+)\ue001")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NOFOLLOW = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


class CommentError(Exception):
    """The report cannot be posted; the message says why."""


def read_plain(root: Path, name: str, limit: int) -> bytes:
    """The bytes of `root/name`, a regular file reached without following any symlink."""
    parts = name.split("/")
    fds: list[int] = []
    try:
        fds.append(os.open(root, NOFOLLOW | os.O_DIRECTORY))
        for part in parts[:-1]:
            fds.append(os.open(part, NOFOLLOW | os.O_DIRECTORY, dir_fd=fds[-1]))
        fds.append(os.open(parts[-1], NOFOLLOW, dir_fd=fds[-1]))
        info = os.fstat(fds[-1])
        if not stat.S_ISREG(info.st_mode):
            raise CommentError(f"`{name}` is not a regular file")
        if info.st_size > limit:
            raise CommentError(f"`{name}` has {info.st_size} bytes, more than {limit}")
        with os.fdopen(fds.pop(), "rb") as fh:
            data = fh.read(limit + 1)
        if len(data) > limit:
            raise CommentError(f"`{name}` is larger than {limit} bytes")
        return data
    except OSError as exc:
        raise CommentError(f"`{name}` cannot be read as a plain file ({exc.strerror})") from None
    finally:
        for fd in fds:
            os.close(fd)


def check_png(data: bytes) -> None:
    """Raise unless `data` starts like a PNG: signature, then a sound IHDR chunk."""
    if not data.startswith(PNG_MAGIC) or len(data) < 33:
        raise CommentError("not a PNG image")
    length, kind = struct.unpack(">I4s", data[8:16])
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    (crc,) = struct.unpack(">I", data[29:33])
    if length != 13 or kind != b"IHDR" or zlib.crc32(data[12:29]) != crc:
        raise CommentError("not a PNG image (no valid IHDR header)")
    if not (0 < width <= PIXELS and 0 < height <= PIXELS) or colour not in (0, 2, 3, 4, 6):
        raise CommentError(f"not a plausible PNG image ({width}x{height}, colour {colour})")
    if depth not in (1, 2, 4, 8, 16):
        raise CommentError(f"not a plausible PNG image (bit depth {depth})")


def collect(report_dir: Path, copy: Path, report: str) -> dict[str, str]:
    """Copy the images the report shows into `copy`; the ones left out, with the reason."""
    left_out: dict[str, str] = {}
    targets = list(dict.fromkeys(target for _, target in IMAGE.findall(report)))
    for count, target in enumerate(targets):
        try:
            if not IMAGE_NAME.fullmatch(target) or ".." in target:  # opened part by part
                raise CommentError("not a file name inside the report")
            if count >= IMAGES:
                raise CommentError(f"more than {IMAGES} images")
            data = read_plain(report_dir, target, IMAGE_LIMIT)
            check_png(data)
        except CommentError as exc:
            left_out[target] = str(exc)
            continue
        (copy / target).parent.mkdir(parents=True, exist_ok=True)
        (copy / target).write_bytes(data)
    return left_out


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
        claimed = json.loads(read_plain(report_dir, "pr.json", PR_LIMIT).decode("utf-8"))
        claimed = claimed["number"]
    except (CommentError, ValueError, KeyError, TypeError) as exc:
        raise CommentError(
            f"no pull request number in the event or the artifact ({exc})"
        ) from None
    if not isinstance(claimed, int) or isinstance(claimed, bool) or claimed <= 0:
        raise CommentError(f"the artifact names an invalid pull request: {claimed!r}")
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
    except CommentError as exc:
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
