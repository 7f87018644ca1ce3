"""`make github-setup` against a local stand-in for GitHub's REST API.

The stand-in keeps the state GitHub keeps (environments, deployment branch policies, variables,
the Actions token setting, branch protection) and answers as GitHub's description documents
(201 on creating a variable, 204 on updating it, 200 with the policy on creating a branch
policy, 303 for one that exists...). Every call the module makes is checked against the trimmed
description in upstream/github-rest/ (the method and path template exist, the JSON body
validates against the request schema), and so is every answer the stand-in gives (a documented
status code, a body that validates against the documented response schema).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest

from tabml.github_setup import REQUIRED_CHECK, read_env_file, repo_from_remote, workflow_variables

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
UPSTREAM = HERE / "upstream" / "github-rest"
FRAGMENT = json.loads((UPSTREAM / "api.github.com.fragment.json").read_text(encoding="utf-8"))
REPO = "acme/tabml"
TOKEN = "test-token"
USERS = {"alice": 101, "bob": 102}
STAMP = "2026-01-01T00:00:00Z"
# GitHub answers 404 for any resource that does not exist; the description lists it for some
# operations only. The module relies on it here, to tell "create" from "update".
UNDOCUMENTED_404 = {("get", "/repos/{owner}/{repo}/actions/variables/{name}")}
CALL_LINE = re.compile(r"^(GET|POST|PUT|PATCH|DELETE) (\S+) -> (\d{3})$", re.M)


@dataclass
class Call:
    method: str
    path: str
    body: Any
    status: int
    answer: Any


@dataclass
class StandIn:
    """GitHub's state for one repository, and the calls that changed or read it."""

    environments: dict[str, dict] = field(default_factory=dict)
    policies: dict[str, list[dict]] = field(default_factory=dict)
    variables: dict[str, str] = field(default_factory=dict)
    workflow_permissions: dict | None = None
    protection: dict | None = None
    fail: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    next_id: int = 1000

    def answer(self, method: str, path: str, body: Any, auth: str) -> tuple[int, Any]:
        if auth != f"Bearer {TOKEN}":
            return 401, {"message": "Bad credentials"}
        if (method, path) in self.fail:
            status, message = self.fail[method, path]
            return status, {"message": message, "documentation_url": "https://docs.github.com"}
        base = f"/repos/{REPO}"
        if match := re.fullmatch(r"/users/([^/]+)", path):
            login = match.group(1)
            if login not in USERS:
                return 404, {"message": "Not Found"}
            return 200, {"login": login, "id": USERS[login], "type": "User"}
        if match := re.fullmatch(rf"{base}/environments/([^/]+)", path):
            return self._environment(match.group(1), body or {})
        if match := re.fullmatch(rf"{base}/environments/([^/]+)/deployment-branch-policies", path):
            return self._policies(method, match.group(1), body)
        if match := re.fullmatch(
            rf"{base}/environments/([^/]+)/deployment-branch-policies/(\d+)", path
        ):
            env, id_ = match.group(1), int(match.group(2))
            self.policies[env] = [p for p in self.policies.get(env, []) if p["id"] != id_]
            return 204, None
        if path == f"{base}/actions/variables" and method == "POST":
            if body["name"] in self.variables:
                return 409, {"message": "Already exists"}
            self.variables[body["name"]] = body["value"]
            return 201, {}
        if match := re.fullmatch(rf"{base}/actions/variables/([^/]+)", path):
            name = match.group(1)
            if name not in self.variables:
                return 404, {"message": "Not Found"}
            if method == "PATCH":
                self.variables[name] = body["value"]
                return 204, None
            value = self.variables[name]
            return 200, {"name": name, "value": value, "created_at": STAMP, "updated_at": STAMP}
        if path == f"{base}/actions/permissions/workflow":
            self.workflow_permissions = body
            return 204, None
        if path == f"{base}/branches/main/protection":
            self.protection = body
            return 200, {"url": f"https://api.github.com{path}", **body}
        return 404, {"message": "Not Found"}

    def _environment(self, name: str, body: dict) -> tuple[int, Any]:
        self.environments[name] = body
        rules = []
        if body.get("reviewers"):
            reviewers = [
                {"type": r["type"], "reviewer": {"id": r["id"]}} for r in body["reviewers"]
            ]
            rules.append({"id": 1, "node_id": "GA1", "type": "required_reviewers",
                          "prevent_self_review": False, "reviewers": reviewers})  # fmt: skip
        if body.get("deployment_branch_policy"):
            rules.append({"id": 2, "node_id": "GA2", "type": "branch_policy"})
        url = f"https://api.github.com/repos/{REPO}/environments/{name}"
        return 200, {
            "id": 1, "node_id": "EN1", "name": name, "url": url,
            "html_url": f"https://github.com/{REPO}/deployments/activity_log", "created_at": STAMP,
            "updated_at": STAMP, "protection_rules": rules,
            "deployment_branch_policy": body.get("deployment_branch_policy"),
        }  # fmt: skip

    def _policies(self, method: str, env: str, body: Any) -> tuple[int, Any]:
        if env not in self.environments:
            return 404, {"message": "Not Found"}
        listed = self.policies.setdefault(env, [])
        if method == "GET":
            return 200, {"total_count": len(listed), "branch_policies": listed}
        branch_policy = self.environments[env].get("deployment_branch_policy") or {}
        if not branch_policy.get("custom_branch_policies"):
            return 404, {"message": "Not Found"}
        kind = body.get("type", "branch")
        if any(p["name"] == body["name"] and p["type"] == kind for p in listed):
            return 303, None
        self.next_id += 1
        listed.append({"id": self.next_id, "node_id": f"BP{self.next_id}", "name": body["name"],
                       "type": kind})  # fmt: skip
        return 200, listed[-1]


class Handler(BaseHTTPRequestHandler):
    def _serve(self) -> None:
        stand_in: StandIn = self.server.stand_in  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        path = urlsplit(self.path).path
        status, answer = stand_in.answer(
            self.command, path, body, self.headers.get("Authorization", "")
        )
        stand_in.calls.append(Call(self.command, self.path, body, status, answer))
        payload = b"" if answer is None else json.dumps(answer).encode()
        self.send_response(status)
        if status == 303:
            self.send_header("Location", f"http://{self.headers['Host']}{path}")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve  # noqa: N815

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def github():
    """A stand-in GitHub API on 127.0.0.1, stopped after the test."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.stand_in = StandIn()  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def api_url(server: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any token or workflow variable, plus `extra`."""
    names = set(workflow_variables(ROOT / ".github" / "workflows"))
    drop = names | {"GH_TOKEN", "GITHUB_TOKEN", "GITHUB_API_URL", "MAKEFLAGS", "MFLAGS"}
    drop |= {"REPO", "REVIEWERS", "APPROVALS", "DRY_RUN", "GITHUB_SETUP_ENV"}
    return {**{k: v for k, v in os.environ.items() if k not in drop}, **extra}


def run(*cmd: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def module(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return run(sys.executable, "-m", "tabml.github_setup", *args, env=env)


def as_json_schema(node: Any) -> Any:
    """An OpenAPI 3.0 schema as JSON Schema: `nullable` becomes a null type (and enum value)."""
    if isinstance(node, list):
        return [as_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {
        key: (
            {name: as_json_schema(value) for name, value in schema.items()}
            if key == "properties"
            else as_json_schema(schema)
        )
        for key, schema in node.items()
        if key != "nullable"
    }
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


def operation(method: str, path: str) -> tuple[str, dict] | None:
    """The path template and operation of GitHub's description that a call matches."""
    for template, methods in FRAGMENT["paths"].items():
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, urlsplit(path).path) and method.lower() in methods:
            return template, methods[method.lower()]
    return None


def check_contract(calls: list[Call]) -> None:
    """Every call exists in GitHub's description with a valid body; every answer is documented."""
    assert calls, "no call reached the stand-in"
    for call in calls:
        found = operation(call.method, call.path)
        assert found, f"{call.method} {call.path}: no such operation in GitHub's description"
        template, op = found
        request = op.get("requestBody")
        if call.body is not None:
            assert request and "schema" in request, f"{call.method} {template} takes no body"
            jsonschema.validate(call.body, as_json_schema(request["schema"]))
        else:
            assert not (request and request["required"]), f"{call.method} {template}: no body"
        documented = op["responses"]
        status = str(call.status)
        assert status in documented or (
            call.status == 404 and (call.method.lower(), template) in UNDOCUMENTED_404
        ), f"{call.method} {template}: {status} is not a documented answer ({sorted(documented)})"
        schema = documented.get(status, {}).get("schema")
        if schema is not None and call.answer is not None:
            jsonschema.validate(call.answer, as_json_schema(schema))
        if status == "204":
            assert call.answer is None


def env_file(tmp_path: Path, values: dict[str, str]) -> Path:
    path = tmp_path / "github-setup.env"
    lines = ["# values for make github-setup", *(f"{k}={v}" for k, v in values.items())]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def names() -> list[str]:
    found = workflow_variables(ROOT / ".github" / "workflows")
    assert len(found) >= 2, "the test sets one variable from the environment, one from the file"
    return found


def test_make_github_setup_configures_the_repository(github, names, tmp_path):
    from_env, from_file, *unset = names
    env = clean_env(GITHUB_API_URL=api_url(github), GH_TOKEN=TOKEN, **{from_env: "env-value"})
    settings = env_file(tmp_path, {from_file: "file-value", from_env: "loses-to-the-environment"})
    done = run(
        "make", "--no-print-directory", "github-setup", f"REPO={REPO}", "REVIEWERS=alice,bob",
        f"GITHUB_SETUP_ENV={settings}", env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    state: StandIn = github.stand_in
    check_contract(state.calls)

    assert set(state.environments) == {"staging", "production"}
    assert [r["id"] for r in state.environments["production"]["reviewers"]] == [101, 102]
    assert "reviewers" not in state.environments["staging"]
    for env_name in ("staging", "production"):
        policy = state.environments[env_name]["deployment_branch_policy"]
        assert policy == {"protected_branches": False, "custom_branch_policies": True}
        assert [(p["name"], p["type"]) for p in state.policies[env_name]] == [("main", "branch")]
    assert state.variables == {from_env: "env-value", from_file: "file-value"}
    for name in unset:
        assert f"skip {name}: not set" in done.stdout
    assert state.workflow_permissions == {
        "default_workflow_permissions": "read",
        "can_approve_pull_request_reviews": True,
    }
    checks = state.protection["required_status_checks"]
    assert checks["strict"] is True and checks["contexts"] == [REQUIRED_CHECK]
    assert (
        state.protection["required_pull_request_reviews"]["required_approving_review_count"] == 1
    )
    # One line per call, with its status.
    printed = [(m, p, int(s)) for m, p, s in CALL_LINE.findall(done.stdout)]
    assert printed == [(c.method, c.path, c.status) for c in state.calls]


def test_second_run_updates_and_creates_nothing(github, names, tmp_path):
    env = clean_env(GITHUB_API_URL=api_url(github), GH_TOKEN=TOKEN, **{names[0]: "one"})
    args = ("--repo", REPO, "--reviewers", "alice", "--env-file", str(env_file(tmp_path, {})))
    first = module(*args, env=env)
    assert first.returncode == 0, first.stderr
    state: StandIn = github.stand_in
    after_first = (dict(state.environments), json.dumps(state.policies), dict(state.variables))
    count = len(state.calls)

    second = module(*args, env=env)
    assert second.returncode == 0, second.stderr
    check_contract(state.calls)
    again = state.calls[count:]
    assert not [c for c in again if c.method == "POST"], "the second run created something"
    assert [c.path for c in again if c.method == "PATCH"] == [
        f"/repos/{REPO}/actions/variables/{names[0]}"
    ]
    assert (dict(state.environments), json.dumps(state.policies), dict(state.variables)) == (
        after_first
    )


def test_existing_settings_are_corrected(github, names, tmp_path):
    """A policy other than main is deleted; an existing variable gets the new value."""
    state: StandIn = github.stand_in
    state.environments["staging"] = {}
    state.policies["staging"] = [
        {"id": 7, "node_id": "BP7", "name": "release/*", "type": "branch"}
    ]
    state.variables[names[0]] = "old"
    env = clean_env(GITHUB_API_URL=api_url(github), GH_TOKEN=TOKEN, **{names[0]: "new"})
    done = module("--repo", REPO, "--env-file", str(env_file(tmp_path, {})), env=env)
    assert done.returncode == 0, done.stderr
    check_contract(state.calls)
    assert [p["name"] for p in state.policies["staging"]] == ["main"]
    assert state.variables[names[0]] == "new"
    assert "No REVIEWERS given" in done.stdout
    assert state.environments["production"]["reviewers"] == []


def test_dry_run_prints_every_call_and_sends_nothing(github, names, tmp_path):
    values = {name: f"value-{name}" for name in names}
    settings = str(env_file(tmp_path, values))
    real = module(
        "--repo", REPO, "--reviewers", "alice", "--env-file", settings,
        env=clean_env(GITHUB_API_URL=api_url(github), GH_TOKEN=TOKEN),
    )  # fmt: skip
    assert real.returncode == 0, real.stderr
    sent = {(c.method, urlsplit(c.path).path) for c in github.stand_in.calls}
    github.stand_in.calls.clear()

    done = run(
        "make", "--no-print-directory", "github-setup", "DRY_RUN=1", f"REPO={REPO}",
        "REVIEWERS=alice", f"GITHUB_SETUP_ENV={settings}",
        env=clean_env(GITHUB_API_URL=api_url(github)),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert github.stand_in.calls == [], "a dry run sent calls"
    printed = re.findall(r"^\[dry-run\] (\w+) (\S+)", done.stdout, re.M)
    assert sent <= {(m, urlsplit(p).path) for m, p in printed}
    for name in names:  # the body is shown with the call
        assert json.dumps({"name": name, "value": values[name]}) in done.stdout


def test_error_answer_stops_with_one_line(github, tmp_path):
    path = f"/repos/{REPO}/branches/main/protection"
    github.stand_in.fail["PUT", path] = (403, "Resource not accessible by integration")
    env = clean_env(GITHUB_API_URL=api_url(github), GH_TOKEN=TOKEN)
    done = module("--repo", REPO, "--env-file", str(env_file(tmp_path, {})), env=env)
    assert done.returncode == 1
    assert (
        done.stderr.strip() == f"ERROR: PUT {path} -> 403: Resource not accessible by integration"
    )
    assert "Traceback" not in done.stdout
    check_contract(github.stand_in.calls)


@pytest.mark.parametrize(
    ("args", "extra", "expected"),
    [
        (["--repo", "not-a-repo"], {}, "REPO='not-a-repo' is not owner/name"),
        (["--reviewers", "carol"], {}, "GET /users/carol -> 404: Not Found"),
        (["--reviewers", "a,b,c,d,e,f,g"], {}, "GitHub allows 6"),
        (["--approvals", "9"], {}, "APPROVALS=9"),
        (["--env-file", "missing.env"], {}, "missing.env not found"),
        ([], {"GH_TOKEN": ""}, "no GitHub token: run `gh auth login`"),
        ([], {"GITHUB_API_URL": "http://127.0.0.1:9"}, "cannot reach http://127.0.0.1:9"),
    ],
)
def test_bad_input_gets_one_line(github, tmp_path, args, extra, expected):
    env = clean_env(GITHUB_API_URL=api_url(github), GH_TOKEN=TOKEN)
    env.update(extra)
    if "GH_TOKEN" in extra:  # and no `gh` to ask: only the interpreter's directory on PATH
        env["PATH"] = str(Path(sys.executable).parent)
    if "--repo" not in args:
        args = ["--repo", REPO, *args]
    if "--env-file" not in args:
        args = [*args, "--env-file", str(env_file(tmp_path, {}))]
    done = module(*args, env=env)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], done.stderr
    assert "Traceback" not in done.stderr


def test_bad_env_file_line_names_the_line(tmp_path):
    path = tmp_path / "github-setup.env"
    path.write_text("# ok\nexport A='x'\nnot a setting\n", encoding="utf-8")
    done = module("--repo", REPO, "--dry-run", "--env-file", str(path), env=clean_env())
    assert done.returncode == 1
    assert done.stderr.strip() == f"ERROR: {path}:3: expected NAME=value, got 'not a setting'"
    path.write_text("# ok\n\nexport A='x y'\nB = \"z\"\nC=\n", encoding="utf-8")
    assert read_env_file(path) == {"A": "x y", "B": "z", "C": ""}


def test_variable_names_come_from_the_workflows(tmp_path):
    workflows = tmp_path / "workflows"
    workflows.mkdir()
    (workflows / "ci.yml").write_text(
        f"jobs:\n  {REQUIRED_CHECK}:\n"
        "    runs-on: ${{ vars.RUNNER_LABEL || 'ubuntu-latest' }}\n"
        "    env:\n      URL: ${{ vars.NEW_SERVER_URL }}\n",
        encoding="utf-8",
    )
    assert workflow_variables(workflows) == ["NEW_SERVER_URL", "RUNNER_LABEL"]
    env = clean_env(NEW_SERVER_URL="https://mlflow.example.com")
    done = module("--repo", REPO, "--dry-run", "--workflows", str(workflows), env=env)
    assert done.returncode == 0, done.stderr
    assert '{"name": "NEW_SERVER_URL", "value": "https://mlflow.example.com"}' in done.stdout
    assert "skip RUNNER_LABEL: not set" in done.stdout
    # The project's own workflows: every `vars.` name they read, found the same way by hand.
    text = "".join(p.read_text() for p in (ROOT / ".github" / "workflows").glob("*.yml"))
    assert workflow_variables(ROOT / ".github" / "workflows") == sorted(
        set(re.findall(r"vars\.(\w+)", text))
    )


def test_a_missing_required_job_is_refused(tmp_path):
    workflows = tmp_path / "workflows"
    workflows.mkdir()
    (workflows / "ci.yml").write_text("jobs:\n  tests:\n    name: tests\n", encoding="utf-8")
    done = module("--repo", REPO, "--dry-run", "--workflows", str(workflows), env=clean_env())
    assert done.returncode == 1
    assert f"no workflow job `{REQUIRED_CHECK}`" in done.stderr


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/acme/tabml.git",
        "https://github.com/acme/tabml",
        "git@github.com:acme/tabml.git",
        "ssh://git@github.com/acme/tabml.git",
    ],
)
def test_repository_defaults_to_the_origin_remote(tmp_path, monkeypatch, url):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "remote", "add", "origin", url], check=True)
    monkeypatch.chdir(tmp_path)
    assert repo_from_remote() == REPO


def load_trim():
    spec = importlib.util.spec_from_file_location("trim", UPSTREAM / "trim.py")
    trim = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(trim)
    return trim


def test_trim_rules_on_a_small_description():
    """What trim.py keeps, resolves and marks, on a description shaped like GitHub's."""
    trim = load_trim()
    body = {
        "type": "object",
        "description": "dropped",
        "properties": {
            "description": {"type": "string"},
            "wait": {"$ref": "#/components/schemas/wait-timer"},
            "user": {"oneOf": [{"$ref": "#/components/schemas/simple-user"}, {"type": "string"}]},
        },
    }
    paths: dict[str, dict] = {}
    for method, path in trim.OPERATIONS:
        paths.setdefault(path, {})[method] = {
            "operationId": f"{method} {path}",
            "summary": "dropped",
            "parameters": [{"$ref": "#/components/parameters/owner"}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
            "responses": {
                "204": {"description": "Response"},
                "404": {"$ref": "#/components/responses/not_found"},
            },
            "x-github": {"category": "dropped"},
        }
    doc = {
        "openapi": "3.0.3",
        "info": {"version": "9"},
        "paths": paths,
        "components": {"schemas": {"wait-timer": {"type": "integer", "example": 30}}},
    }
    fragment = trim.trim(doc, "abc")
    assert fragment["source"]["commit"] == "abc"
    for method, path in trim.OPERATIONS:
        op = fragment["paths"][path][method]
        assert op["operationId"] == f"{method} {path}"
        assert set(op) == {"operationId", "requestBody", "responses"}
        schema = op["requestBody"]["schema"]
        assert "description" not in schema
        assert schema["properties"]["description"] == {"type": "string"}
        assert schema["properties"]["wait"] == {"type": "integer"}
        assert schema["properties"]["user"] == {
            "anyOf": [{"x-trimmed-ref": "#/components/schemas/simple-user"}, {"type": "string"}]
        }
        assert op["responses"] == {
            "204": {},
            "404": {"x-trimmed-ref": "#/components/responses/not_found"},
        }


def test_fragment_is_resolved():
    """No `$ref` is left: the fragment stands alone, and names where it came from."""
    text = json.dumps(FRAGMENT)
    assert '"$ref"' not in text
    assert re.fullmatch(r"[0-9a-f]{40}", FRAGMENT["source"]["commit"])
    assert {(m, p) for m, p in load_trim().OPERATIONS} == {
        (m, p) for p, ms in FRAGMENT["paths"].items() for m in ms
    }
