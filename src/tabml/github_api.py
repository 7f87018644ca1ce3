"""The GitHub REST calls of `make github-setup`: one client, its errors, and its token.

Each call is printed on one line with the status GitHub answered; a dry run prints the call and
sends nothing. An error answer becomes an `ApiError` naming the call, for `tabml.github_setup`
to report in one line.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tabml.commands import CommandError, output

DEFAULT_API = "https://api.github.com"
API_VERSION = "2022-11-28"


class SetupError(Exception):
    """A problem to report in one line (what is wrong and what to change)."""


@dataclass
class ApiError(SetupError):
    """GitHub answered a call with an error status."""

    call: str
    status: int
    message: str

    def __str__(self) -> str:
        return f"{self.call} -> {self.status}: {self.message}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A 303 from "create a branch policy" means "exists"; following it would hide that.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class GitHub:
    """The REST calls, printed one line each; with `dry_run`, printed and not sent."""

    def __init__(self, api: str, token: str | None, dry_run: bool, out: Callable = print):
        self.api, self.token, self.dry_run, self.out = api.rstrip("/"), token, dry_run, out
        self.opener = urllib.request.build_opener(_NoRedirect)

    def call(
        self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (), when: str = ""
    ) -> Any:
        """Send one call; return the JSON answer, or None for an empty one or a status in `ok`.

        `when` is the condition under which a dry run's printed call would be sent.
        """
        if self.dry_run:
            shown = f" {json.dumps(body)}" if body is not None else ""
            self.out(f"[dry-run] {method} {path}{shown}" + (f"  ({when})" if when else ""))
            return None
        request = urllib.request.Request(
            self.api + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={
                "Accept": "application/vnd.github+json",
                "Authorization": f"Bearer {self.token}",
                "X-GitHub-Api-Version": API_VERSION,
                "User-Agent": "tabml-github-setup",
                **({"Content-Type": "application/json"} if body is not None else {}),
            },
        )
        try:
            with self.opener.open(request, timeout=30) as answer:
                status, raw = answer.status, answer.read()
        except urllib.error.HTTPError as err:
            if err.code in ok:
                self.out(f"{method} {path} -> {err.code}")
                return None
            raise ApiError(f"{method} {path}", err.code, _message(err.read())) from None
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise SetupError(
                f"{method} {path}: cannot reach {self.api} ({reason}); check GITHUB_API_URL"
            ) from None
        self.out(f"{method} {path} -> {status}")
        return json.loads(raw) if raw.strip() else None


def _message(raw: bytes) -> str:
    """GitHub's error message from an error answer's body."""
    try:
        answer = json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace").strip()[:200] or "no message"
    return str(answer.get("message", answer)) if isinstance(answer, dict) else str(answer)


def find_token() -> str:
    """GH_TOKEN, GITHUB_TOKEN, or the token of the `gh` CLI's login."""
    for name in ("GH_TOKEN", "GITHUB_TOKEN"):
        if os.environ.get(name):
            return os.environ[name]
    try:
        token = output("gh", "auth", "token")
    except (OSError, CommandError):
        token = ""
    if not token:
        raise SetupError("no GitHub token: run `gh auth login` (or set GH_TOKEN)")
    return token
