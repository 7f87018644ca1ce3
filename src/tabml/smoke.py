"""Smoke test of a deployed service: is it the release that was meant, and does it answer right?

    python -m tabml.smoke golden [--model M] [--data TEST.parquet] --out build/golden.json
    python -m tabml.smoke check --url http://127.0.0.1:3100 --golden build/golden.json

`golden` scores a spread of real evaluation rows with the pipeline's own model and records the
answers; `check` asks the service for the same rows. It passes only if the service is ready,
`/identity` names the model the golden file was made from, every golden score matches, a request
the contract refuses (one field off its category set or range, chosen by `golden` from the
schema) gets a 4xx that names the field, and the latency budget holds. The model and rows
`golden` reads default to params.yaml's `paths.model` and `paths.test`.
"""

from __future__ import annotations

import json
import logging
import statistics
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tabml import cli
from tabml.commands import CommandError
from tabml.io import DataError, file_md5, read_json, read_parquet, write_json
from tabml.params import DeployParams, load_params
from tabml.predict import features, load_model, score
from tabml.serving.contract import refused_request

log = logging.getLogger(__name__)

TOLERANCE = 1e-5  # the service may run a compiled model: equal to the pipeline within 1e-6
LATENCY_REQUESTS = 20


class ReleaseError(CommandError):
    """The release did not pass its smoke test; what serves now is said in the message."""


@dataclass
class Outcome:
    check: str
    passed: bool
    detail: str


def golden(model_path: str, data_path: str, rows: int) -> dict[str, Any]:
    """`rows` evaluation rows spread over the score range, with the pipeline's scores."""
    model = load_model(model_path)
    frame = read_parquet(data_path)[features(model)]
    proba = score(model, frame)
    picks = np.argsort(proba, kind="stable")[np.linspace(0, len(frame) - 1, rows).astype(int)]
    records = json.loads(frame.iloc[picks].to_json(orient="records"))
    return {
        "model_md5": file_md5(model_path),
        "records": records,
        "probabilities": [float(p) for p in proba[picks]],
        "refused": refused_request(records[0]),
    }


def call(url: str, path: str, body: Any, timeout: float = 10.0) -> tuple[int, Any]:
    """POST JSON; return (status, parsed answer). HTTP errors are answers too."""
    request = urllib.request.Request(
        f"{url}{path}",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def wait_ready(url: str, timeout: float) -> float:
    """Seconds until `/readyz` answers 200; raise TimeoutError after `timeout`."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as answer:
                if answer.status == 200:
                    return time.monotonic() - start
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url}/readyz did not answer 200 within {timeout:.0f} s")


def check(url: str, gold: dict[str, Any], budget_ms: float, timeout: float) -> list[Outcome]:
    """Every smoke check against the service at `url`."""
    try:
        outcomes = [Outcome("ready", True, f"after {wait_ready(url, timeout):.1f} s")]
    except TimeoutError as exc:
        return [Outcome("ready", False, str(exc))]
    status, ident = call(url, "/identity", {})
    version = ident.get("model_version") if status == 200 else None
    outcomes.append(
        Outcome(
            "identity",
            version == gold["model_md5"],
            f"serves model {version}, expected {gold['model_md5']}",
        )
    )
    status, answer = call(url, "/score_batch", {"records": gold["records"]})
    if status == 200:
        got = np.asarray(answer["probabilities"], dtype=float)
        gap = float(np.max(np.abs(got - np.asarray(gold["probabilities"]))))
        outcomes.append(Outcome("golden", gap <= TOLERANCE, f"largest score difference {gap:.2e}"))
    else:
        outcomes.append(Outcome("golden", False, f"/score_batch answered {status}: {answer}"))
    bad = gold["refused"]
    status, answer = call(url, "/score", {"client": bad["record"]})
    outcomes.append(
        Outcome(
            "refuses bad input",
            400 <= status < 500 and bad["field"] in str(answer),
            f"{bad['field']} {bad['value']!r} ({bad['why']}) -> {status}: {str(answer)[:120]}",
        )
    )
    times = []
    for record in gold["records"][:LATENCY_REQUESTS]:
        start = time.perf_counter()
        call(url, "/score", {"client": record})
        times.append((time.perf_counter() - start) * 1000)
    worst = max(times)
    outcomes.append(
        Outcome(
            "latency",
            worst <= budget_ms,
            f"median {statistics.median(times):.1f} ms, max {worst:.1f} ms, "
            f"budget {budget_ms:.0f} ms",
        )
    )
    return outcomes


def to_text(url: str, outcomes: list[Outcome]) -> str:
    lines = [f"smoke test of {url}:"]
    lines += [f"  {'pass' if o.passed else 'FAIL'}  {o.check:18s} {o.detail}" for o in outcomes]
    return "\n".join(lines)


def failures(url: str, gold: dict[str, Any], cfg: DeployParams) -> list[Outcome]:
    """Smoke-test a release as a deploy does: print the report, return the checks that failed."""
    outcomes = check(url, gold, cfg.latency_budget_ms, cfg.readiness_seconds)
    print(to_text(url, outcomes), flush=True)
    return [o for o in outcomes if not o.passed]


def main(argv: Sequence[str] | None = None) -> None:
    ap = cli.parser(__doc__)
    ap.add_argument("command", choices=["golden", "check"])
    ap.add_argument("--model", help="default: paths.model")
    ap.add_argument("--data", help="default: paths.test")
    ap.add_argument("--rows", type=int, default=LATENCY_REQUESTS)
    ap.add_argument("--golden", "--out", dest="golden", default="build/golden.json")
    ap.add_argument("--url")
    ap.add_argument("--latency-ms", type=float, default=250.0)
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for /readyz")
    args = ap.parse_args(argv)
    if args.command == "golden":
        paths = load_params(args.params).paths
        model, data = args.model or paths.model, args.data or paths.test
        write_json(golden(model, data, args.rows), args.golden)
        log.info("wrote %s", args.golden)
        return
    if not args.url:
        raise DataError("smoke check needs --url (make smoke URL=http://127.0.0.1:3100)")
    outcomes = check(args.url.rstrip("/"), read_json(args.golden), args.latency_ms, args.timeout)
    report = to_text(args.url, outcomes)
    print(report)
    if not all(o.passed for o in outcomes):
        raise DataError(
            f"smoke test of {args.url} failed: "
            + ", ".join(o.check for o in outcomes if not o.passed)
        )


if __name__ == "__main__":
    cli.run(main)
