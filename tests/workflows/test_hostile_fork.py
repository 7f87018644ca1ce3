"""A fork's pull request builds a hostile `report` artifact; the privileged poster must hold.

The poster (`python -m tabml.comment`, what `make comment` runs in pr-report.yml) gets an
artifact with an `.npmrc` and a `.git/config` pointing at another server, symlinks to the token
file and to /etc/passwd, a path out of the artifact, a 100 MB file, a script behind an image
link, a link, a reference definition and an autolink to another host, and a link to
/proc/self/environ. CML is the stand-in `bin/cml`, parsing its arguments from CML's own option
list and posting to a fake GitHub API on 127.0.0.1; the poster runs under
`strace -f -e trace=connect,openat,chdir,execve`, which records what it opened, where it ran
CML and every connection it made. It must post the honest part of the report, upload nothing
but the report's own PNG, and connect to nothing but that API.
"""

from __future__ import annotations

import base64
import http.server
import importlib.machinery
import importlib.util
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import threading
import zlib
from argparse import Namespace
from pathlib import Path
from typing import ClassVar

import pytest

from tabml import comment

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CML = HERE / "bin" / "cml"
OPTIONS = json.loads((HERE / "upstream/cml/options.json").read_text(encoding="utf-8"))
GITHUB_API = json.loads((HERE / "upstream/cml/github-api.fragment.json").read_text("utf-8"))
TOKEN = "ghs_s3cr3tT0kenOfThePostingJob"
HEAD = "1234567890abcdef1234567890abcdef12345678"
OTHER_HEAD = "fedcba0987654321fedcba0987654321fedcba09"
RUN_URL = "https://github.com/o/r/actions/runs/1"
CONNECT = re.compile(r"connect\(.*sa_family=AF_INET6?, sin6?_port=htons\((\d+)\).*?\"([^\"]+)\"")
OPENED = re.compile(r"openat\(.*\) = \d+<(.+)>$", re.M)
CHDIR = re.compile(r'chdir\("([^"]+)"\) = 0')
EXECVE = re.compile(r'execve\("([^"]+)", \[(.*?)\]')


def load_stand_in():
    loader = importlib.machinery.SourceFileLoader("cml_stand_in", str(CML))
    spec = importlib.util.spec_from_loader("cml_stand_in", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def tiny_png() -> bytes:
    """A valid 1x1 PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0\x80"))
        + chunk(b"IEND", b"")
    )


class FakeGitHub(http.server.BaseHTTPRequestHandler):
    """GitHub's REST API for repository o/r (pulls, issue comments) and an image server."""

    pulls: ClassVar[dict[int, str]] = {7: HEAD, 8: OTHER_HEAD}

    def answer(self, status: int, payload) -> None:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.server.statuses.append(status)
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def handle_any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        server = self.server
        server.requests.append((self.command, self.path, dict(self.headers), body))
        if self.command == "POST" and self.path == "/upload":
            server.uploads.append(body)
            self.answer(200, f"https://assets.example/{len(server.uploads)}".encode())
            return
        if self.headers.get("Authorization") not in (f"token {TOKEN}", f"Bearer {TOKEN}"):
            self.answer(401, {"message": "Bad credentials"})
            return
        route = f"{self.command} {self.path}"
        if m := re.fullmatch(r"GET /repos/o/r/pulls/(\d+)", route):
            number = int(m.group(1))
            if number in self.pulls:
                self.answer(200, {"number": number, "head": {"sha": self.pulls[number]}})
                return
        elif m := re.fullmatch(r"GET /repos/o/r/issues/(\d+)/comments", route):
            self.answer(200, server.comments.get(int(m.group(1)), []))
            return
        elif m := re.fullmatch(r"POST /repos/o/r/issues/(\d+)/comments", route):
            new = {"id": len(server.requests), "body": json.loads(body)["body"]}
            new["html_url"] = f"https://github.com/o/r/pull/{m.group(1)}#{new['id']}"
            server.comments.setdefault(int(m.group(1)), []).append(new)
            self.answer(201, new)
            return
        elif m := re.fullmatch(r"PATCH /repos/o/r/issues/comments/(\d+)", route):
            for old in (c for cs in server.comments.values() for c in cs):
                if old["id"] == int(m.group(1)):
                    old["body"] = json.loads(body)["body"]
                    self.answer(200, old)
                    return
        self.answer(404, {"message": "Not Found"})

    def do_GET(self):
        self.handle_any()

    def do_POST(self):
        self.handle_any()

    def do_PATCH(self):
        self.handle_any()

    def log_message(self, *args):
        pass


def serve(handler):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.requests, server.statuses, server.uploads, server.comments = [], [], [], {}
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def github():
    server = serve(FakeGitHub)
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def elsewhere():
    """The server the artifact's .npmrc and .git/config point at: nobody may call it."""
    server = serve(FakeGitHub)
    yield server
    server.shutdown()
    server.server_close()


def hostile_artifact(tmp: Path, elsewhere_port: int, pr_number: int) -> tuple[Path, dict]:
    """The `report` artifact a fork's workflow can build, and the secrets around it."""
    art = tmp / "runner-temp/pr-report"
    (art / "plots").mkdir(parents=True)
    (art / ".git").mkdir()
    secrets = {"token": tmp / "runner-temp/token", "outside": tmp / "runner-temp/outside.png"}
    secrets["token"].write_text(TOKEN)
    secrets["outside"].write_bytes(tiny_png())
    elsewhere = f"http://127.0.0.1:{elsewhere_port}"
    (art / ".npmrc").write_text(f"registry={elsewhere}/\n")
    (art / ".git/config").write_text(f'[remote "origin"]\n\turl = {elsewhere}/o/r.git\n')
    (art / "plots/roc.png").write_bytes(tiny_png())
    (art / "plots/token.png").symlink_to(secrets["token"])
    (art / "plots/passwd.png").symlink_to("/etc/passwd")
    (art / "report-full.md").symlink_to("/etc/passwd")
    with (art / "plots/huge.png").open("wb") as fh:
        fh.write(tiny_png())
        fh.truncate(100 * 2**20)
    (art / "plots/chart.png").write_text("<script>fetch('https://evil.example')</script>\n")
    (art / "pr.json").write_text(json.dumps({"number": pr_number, "head_sha": HEAD}))
    data_png = base64.b64encode(secrets["token"].read_bytes()).decode()
    (art / "report.md").write_text(
        "## Model report: this change vs base 1a2b3c4\n\n- Gate: **passed**\n\n"
        "| metric | base | this change |\n|---|---:|---:|\n| test.roc_auc | 0.70 | 0.71 |\n\n"
        "![ROC](plots/roc.png)\n![Token](plots/token.png)\n![Passwd](plots/passwd.png)\n"
        "![Up](../outside.png)\n![Huge](plots/huge.png)\n![Chart](plots/chart.png)\n"
        f"![Inline](data:image/png;base64,{data_png})\n"
        "See [details](https://evil.example/x) and [the notes][notes], "
        "[environment](/proc/self/environ), <https://evil.example/auto>.\n\n"
        "[notes]: https://evil.example/collect\n",
        encoding="utf-8",
    )
    return art, secrets


def poster(art: Path, api: int, publish: bool) -> list[str]:
    return [
        sys.executable, "-S", "-m", "tabml.comment", "--report-dir", str(art), "--head-sha", HEAD,
        "--pr-numbers", "", "--repo", "o/r", "--server-url", "https://github.com",
        "--api-url", f"http://127.0.0.1:{api}", "--run-url", RUN_URL, "--cml", str(CML),
        *(["--publish", f"--publish-url=http://127.0.0.1:{api}/upload"] if publish else []),
    ]  # fmt: skip


def environment(api: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TABML_", "CML_"))}
    env |= {
        "PYTHONPATH": str(ROOT / "src"),
        "REPO_TOKEN": TOKEN,
        "GITHUB_SHA": "0" * 40,
        "TABML_CML_GITHUB_API": f"http://127.0.0.1:{api}",
    }
    return env


def documented(method: str, path: str, body: bytes, status: int) -> str:
    """The GitHub operation a request is, checked against GitHub's description; its id."""
    for template, item in GITHUB_API["paths"].items():
        pattern = re.sub(r"\{[^}]+\}", "[^/]+", template)
        operation = item.get(method.lower())
        if operation and re.fullmatch(pattern, path.split("?")[0]):
            schema = operation.get("requestBody", {}).get("schema")
            if schema:
                sent = json.loads(body)
                assert all(isinstance(sent.get(k), str) for k in schema["required"]), sent
            assert str(status) in operation["responses"], (operation["operationId"], status)
            return operation["operationId"]
    raise AssertionError(f"{method} {path} is not an operation of GitHub's API description")


def traced(cmd: list[str], env: dict[str, str], trace: Path) -> subprocess.CompletedProcess:
    if not shutil.which("strace"):
        pytest.skip("strace is not installed (apt-get install strace): connections unrecorded")
    strace = ["strace", "-f", "-qq", "-y", "-s", "256", "-o", str(trace)]
    strace += ["-e", "trace=connect,openat,chdir,execve"]
    done = subprocess.run([*strace, *cmd], env=env, capture_output=True, text=True, timeout=120)
    if done.returncode != 0 and "ptrace" in done.stderr.lower():
        pytest.skip(f"strace cannot trace here: {done.stderr.strip()[:200]}")
    return done


@pytest.mark.parametrize("publish", [False, True], ids=["linked", "published"])
def test_hostile_artifact_gets_only_its_honest_part_posted(tmp_path, github, elsewhere, publish):
    art, secrets = hostile_artifact(tmp_path, elsewhere.server_port, pr_number=7)
    api = github.server_port
    trace = tmp_path / "trace.txt"
    done = traced(poster(art, api, publish), environment(api), trace)
    assert done.returncode == 0, done.stdout + done.stderr
    log = trace.read_text(encoding="utf-8", errors="replace")

    # One comment, on the pull request whose head is the tested commit, with the honest part.
    assert list(github.comments) == [7] and len(github.comments[7]) == 1
    body = github.comments[7][0]["body"]
    assert body.startswith("## Model report: this change vs base 1a2b3c4\n\n- Gate: **passed**")
    assert "| test.roc_auc | 0.70 | 0.71 |" in body
    if publish:
        assert "![ROC](https://assets.example/1?cml=png)" in body
        assert github.uploads == [tiny_png()], "only the report's own PNG may be uploaded"
    else:
        assert f"[ROC (image in the `report` artifact)]({RUN_URL})" in body
        assert github.uploads == []
    for name in ("token", "passwd", "huge", "chart"):
        assert f"image `plots/{name}.png` is not part of the report" in body
    assert "image `../outside.png` is not part of the report" in body
    assert "image `data:image/png;base64," in body
    # The links are text: nothing in the comment points anywhere but the run and the upload.
    targets = load_stand_in().link_targets(body)
    assert set(targets) <= {RUN_URL, "https://assets.example/1?cml=png"}, targets
    assert "[details\\](https://evil.example/x)" in body and "[notes\\]: https://" in body
    assert TOKEN not in body and "root:x:0:0" not in body

    # Nothing but the API it was given: every request and every connection.
    assert elsewhere.requests == []
    operations = []
    for (method, path, headers, sent), status in zip(
        github.requests, github.statuses, strict=True
    ):
        if path == "/upload":
            assert method == "POST" and "Authorization" not in headers
        else:
            assert path.startswith("/repos/o/r/"), path
            operations.append(documented(method, path, sent, status))
    assert operations == ["pulls/get", "issues/list-comments", "issues/create-comment"]
    connections = set(CONNECT.findall(log))
    assert connections == {(str(api), "127.0.0.1")}, connections
    assert TOKEN not in log, "the token must not be on any command line"

    # Nothing outside the validated copy: what was opened, where CML ran, what ran.
    opened = {Path(p) for p in OPENED.findall(log)}
    forbidden = {*secrets.values(), Path("/etc/passwd"), art / ".npmrc", art / ".git/config"}
    assert not opened & forbidden, opened & forbidden
    read_in_artifact = {p.relative_to(art).as_posix() for p in opened if p.is_relative_to(art)}
    assert read_in_artifact <= {".", "plots", "report.md", "pr.json"} | {
        f"plots/{n}.png" for n in ("roc", "huge", "chart")
    }, read_in_artifact
    chdirs = [Path(p) for p in CHDIR.findall(log)]
    assert chdirs and not any(
        p.is_relative_to(art.parent) or p.is_relative_to(ROOT) for p in chdirs
    )
    programs = EXECVE.findall(log)
    assert not [p for p, _ in programs if Path(p).name in ("npx", "npm", "node", "git")]
    (cml_args,) = [args for p, args in programs if p == str(CML)]
    assert '"--driver=github"' in cml_args and '"--repo=https://github.com/o/r"' in cml_args
    (markdown,) = re.findall(r'"([^"]+/comment\.md)"', cml_args)
    assert not Path(markdown).is_relative_to(art.parent), markdown
    assert Path(markdown) in opened

    # The next run updates the same comment in place.
    done = subprocess.run(poster(art, api, publish), env=environment(api), capture_output=True)
    assert done.returncode == 0, done.stderr
    again = body.replace("assets.example/1", "assets.example/2")  # uploaded anew
    assert len(github.comments[7]) == 1 and github.comments[7][0]["body"] == again
    method, path, _, sent = github.requests[-1]
    assert documented(method, path, sent, github.statuses[-1]) == "issues/update-comment"


@pytest.mark.parametrize("pr_json", ["names another pull request", "is a symlink"])
def test_artifact_naming_another_pull_request_posts_nothing(tmp_path, github, elsewhere, pr_json):
    art, _ = hostile_artifact(tmp_path, elsewhere.server_port, pr_number=8)
    if pr_json == "is a symlink":
        (art / "pr.json").unlink()
        (art / "pr.json").symlink_to(tmp_path / "elsewhere.json")
        (tmp_path / "elsewhere.json").write_text(json.dumps({"number": 7}))
    api = github.server_port
    done = subprocess.run(
        poster(art, api, publish=True), env=environment(api), capture_output=True, text=True
    )
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    if pr_json == "is a symlink":
        assert "pr.json` cannot be read as a plain file" in line
    else:
        assert f"pull request #8 has head {OTHER_HEAD}, not the tested commit {HEAD}" in line
    assert github.comments == {} and github.uploads == [] and elsewhere.requests == []
    assert all(m == "GET" and "/pulls/" in p for m, p, _, _ in github.requests)


# --- the stand-in keeps CML's command line --------------------------------------------------


def test_stand_in_options_come_from_the_pinned_cml_release():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    (version,) = re.findall(r"^CML_VERSION \?= (\S+)$", makefile, flags=re.M)
    assert OPTIONS["tag"] == f"v{version}", "re-extract upstream/cml/options.json for the pin"
    update = OPTIONS["commands"]["comment update"]["options"]
    assert {"target", "publish", "publish-url", "watermark-title"} <= set(update)
    assert {"driver", "repo", "driver-token"} <= set(OPTIONS["global_options"])


@pytest.mark.parametrize("publish", [False, True])
def test_every_flag_the_poster_passes_is_a_cml_option(publish):
    args = Namespace(
        cml=str(CML), server_url="https://github.com", repo="o/r", publish=publish,
        publish_url="http://127.0.0.1:1/upload",
    )  # fmt: skip
    cmd = comment.cml_command(args, 7, Path("/tmp/x/comment.md"))
    assert cmd[:3] == [str(CML), "comment", "update"] and cmd[-1] == "/tmp/x/comment.md"
    known = {**OPTIONS["global_options"], **OPTIONS["commands"]["comment update"]["options"]}
    for flag in cmd[3:-1]:
        name, _, value = flag.removeprefix("--").partition("=")
        assert name in known, f"{flag}: not an option of CML {OPTIONS['tag']}"
        if known[name]["type"] == "boolean":
            assert value in ("true", "false")
        assert value in known[name].get("choices", [value])


def test_cml_is_found_from_where_the_poster_starts_or_named_missing(monkeypatch):
    monkeypatch.chdir(ROOT)
    args = Namespace(cml="tests/workflows/bin/cml", server_url="https://x", repo="o/r")
    args.publish, args.publish_url = False, ""
    assert comment.cml_command(args, 1, Path("/c.md"))[0] == str(CML)
    args.cml = "build/nowhere/node_modules/.bin/cml"
    with pytest.raises(comment.CommentError, match="run `make install-cml` first"):
        comment.cml_command(args, 1, Path("/c.md"))


def run_stand_in(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TABML_")} | env
    environ["ITERATIVE_DO_NOT_TRACK"] = "1"
    return subprocess.run(
        [str(CML), *args], cwd=cwd, env=environ, capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("--publish-fast", "Unknown argument: publish-fast"),
        ("--driver=gitea", "Invalid values"),
        ("--commit-sha=abc", "mutually exclusive"),
    ],
)
def test_stand_in_fails_on_what_cml_rejects(tmp_path, flag, message):
    (tmp_path / "c.md").write_text("hello")
    done = run_stand_in(
        "comment", "update", "--target=pr/1", flag, "c.md",
        cwd=tmp_path, TABML_ACT_CML_OUT=str(tmp_path / "out"),
    )  # fmt: skip
    assert done.returncode == 1 and message in done.stderr
    assert not (tmp_path / "out").exists()


def test_stand_in_accepts_cml_spellings(tmp_path):
    (tmp_path / "c.md").write_text("hello")
    done = run_stand_in(
        "comment", "update", "--watermarkTitle", "t", "--no-publish", "--driver", "github",
        "--token=x", "c.md", cwd=tmp_path, TABML_ACT_CML_OUT=str(tmp_path / "out"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out").read_text().endswith("\n---\nhello")
