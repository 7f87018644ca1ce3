"""Benchmark: this service against the usual ways of serving the same trained model.

    python benchmarks/serve.py [--seconds 10] [--soak-seconds 120]      (make bench-serve)

Servers, one at a time, on 127.0.0.1, all scoring `models/model.joblib`:
- `tabml`: the bento that `python -m tabml.bento` builds (ONNX, 2 workers, prediction log on);
- `naive`: FastAPI + uvicorn, one worker, the pipeline called per request
  (benchmarks/baselines/naive_fastapi.py);
- `batching`: BentoML with adaptive batching switched on and nothing else changed
  (benchmarks/baselines/bento_batching.py).

Scenarios: one record per request at concurrency 1, 8 and 32; batches of 100 at concurrency
4; batches of 10,000 at concurrency 2 (rows/s). Each runs after an unrecorded warm-up at the
same load and reports req/s, p50, p99, errors and the server's CPU time per request. Then the
shadow overhead: `tabml` against the same bento built with a shadow model (`--shadow`, the other
estimator trained here on the same splits), one record per request at concurrency 8, in turns
(plain, shadow, plain, shadow) so that both see the same machine; the p99 ratio is the figure
(goal: at most 1.3). Then a
soak of `tabml` at concurrency 16 (a minute of warm-up, then two measured): errors, and the
resident memory of its processes sampled every 20 s under load. The load generator is a small
asyncio HTTP/1.1 client with keep-alive connections, in this process, on the same 2 cores as
the servers: figures are for this machine as loaded at the time (printed), ratios are what
carry.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import psutil
from record import check_block, recorded

from tabml.serving.inference import OnnxScorer, compile_onnx, to_columns

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # testkit
from testkit.server import free_port, running

ROOT = Path(__file__).resolve().parents[1]
BASELINES = Path(__file__).resolve().parent / "baselines"
MODEL = "models/model.joblib"
BENTO_CMD = (
    f"{sys.executable} -m tabml.bento --model {MODEL} --train data/processed/train.parquet "
    "--valid data/processed/valid.parquet --test data/processed/test.parquet "
    "--metrics reports/metrics.json"
)
SOAK_SAMPLE_SECONDS = 20.0
GOALS = {"throughput_ratio": 2.0, "p99_c8_ms": 50.0, "batch_rows_per_s": 50_000,
         "shadow_p99_ratio": 1.3}  # fmt: skip
SHADOW_ROUNDS = 2


@dataclass
class Result:
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    cpu_seconds: float = 0.0
    rows: int = 0

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def pct(self, q: float) -> float:
        return float(np.percentile(self.latencies, q) * 1e3) if self.latencies else float("nan")


async def _connection(host, port, request, deadline, result, per_request_rows) -> None:
    reader = writer = None
    while time.perf_counter() < deadline:
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            start = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            headers = head.lower()
            at = headers.find(b"content-length:")
            if at >= 0:
                await reader.readexactly(int(headers[at + 15 : headers.index(b"\r\n", at)]))
            else:  # chunked
                while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
                    await reader.readexactly(size + 2)
                await reader.readuntil(b"\r\n")
            result.latencies.append(time.perf_counter() - start)
            result.requests += 1
            if status == 200:
                result.rows += per_request_rows
            else:
                result.errors += 1
        except (OSError, asyncio.IncompleteReadError, ValueError):
            result.errors += 1
            result.requests += 1
            if writer is not None:
                writer.close()
            reader = writer = None
            await asyncio.sleep(0.01)
    if writer is not None:
        writer.close()


def load(port: int, path: str, body: bytes, concurrency: int, seconds: float, rows: int) -> Result:
    """Send `body` to `path` from `concurrency` keep-alive connections for `seconds`."""
    request = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    result = Result()

    async def main() -> None:
        deadline = time.perf_counter() + seconds
        await asyncio.gather(
            *(
                _connection("127.0.0.1", port, request, deadline, result, rows)
                for _ in range(concurrency)
            )
        )

    start = time.perf_counter()
    asyncio.run(main())
    result.seconds = time.perf_counter() - start
    return result


def tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def cpu_seconds(pid: int) -> float:
    total = 0.0
    for proc in tree(pid):
        with contextlib.suppress(psutil.NoSuchProcess):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


def rss_mb(pid: int) -> float:
    total = 0
    for proc in tree(pid):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += proc.memory_info().rss
    return total / 2**20


@dataclass
class Target:
    name: str
    cmd: list[str]
    ready: str
    single: tuple[str, bytes]
    batch: tuple[str, bytes]
    big: tuple[str, bytes]
    env: dict[str, str]


def bodies(frame: pd.DataFrame) -> dict[str, bytes]:
    records = json.loads(frame.to_json(orient="records"))
    return {
        "client": json.dumps({"client": records[0]}).encode(),
        "one": json.dumps({"records": records[:1]}).encode(),
        "100": json.dumps({"records": records[:100]}).encode(),
        "10000": json.dumps({"records": (records * 2)[:10_000]}).encode(),
    }


def shadow_model(work: Path) -> Path:
    """A second model for the shadow: the other estimator, fitted on the same splits."""
    from dataclasses import replace

    from tabml.io import read_parquet
    from tabml.params import load_params
    from tabml.train import train

    params = load_params(ROOT / "params.yaml")
    other = ("logistic_regression" if params.train.estimator != "logistic_regression"
             else "hist_gradient_boosting")  # fmt: skip
    params = replace(params, train=replace(params.train, estimator=other))
    model, _ = train(read_parquet(ROOT / params.paths.train),
                     read_parquet(ROOT / params.paths.valid), params)  # fmt: skip
    joblib.dump(model, work / "shadow.joblib")
    return work / "shadow.joblib"


def build_bento(env: dict[str, str], *extra: str) -> str:
    built = subprocess.run(
        [*shlex.split(BENTO_CMD), *extra], cwd=ROOT, env=env, capture_output=True, text=True,
        check=True,
    ).stdout  # fmt: skip
    bento_tag = built.rpartition("bento: ")[2].strip()
    print(f"built {bento_tag} ({', '.join(built.splitlines()[:-1])})")
    return bento_tag


def targets(port: int, work: Path, frame: pd.DataFrame) -> list[Target]:
    env = {**os.environ, "BENTOML_HOME": str(work / "bentoml"), "BENTOML_DO_NOT_TRACK": "true"}
    bento_tag = build_bento(env)
    shadow_tag = build_bento(env, "--shadow", str(shadow_model(work)))
    b = bodies(frame)
    host = ["--host", "127.0.0.1", "--port", str(port)]
    bentoml = str(Path(sys.executable).parent / "bentoml")
    model = str(ROOT / MODEL)
    return [
        Target(
            "tabml", [bentoml, "serve", bento_tag, *host], "/readyz",
            ("/score", b["client"]), ("/score_batch", b["100"]), ("/score_batch", b["10000"]),
            {**env, "TABML_PREDICTION_LOG": str(work / "predictions")},
        ),
        Target(
            "tabml+shadow", [bentoml, "serve", shadow_tag, *host], "/readyz",
            ("/score", b["client"]), ("/score_batch", b["100"]), ("/score_batch", b["10000"]),
            {**env, "TABML_PREDICTION_LOG": str(work / "predictions-shadow")},
        ),
        Target(
            "naive",
            [sys.executable, "-m", "uvicorn", "naive_fastapi:app", "--workers", "1", *host],
            "/openapi.json",
            ("/score", b["client"]), ("/score_batch", b["100"]), ("/score_batch", b["10000"]),
            {**env, "TABML_MODEL": model, "PYTHONPATH": str(BASELINES)},
        ),
        Target(
            "batching",
            [bentoml, "serve", "bento_batching:Batched", "--working-dir", str(BASELINES),
             f"--arg=model_path={model}", *host],
            "/readyz",
            ("/score", b["one"]), ("/score", b["100"]), ("/score", b["10000"]),
            env,
        ),
    ]  # fmt: skip


SCENARIOS = (  # name, which body, concurrency, rows per request
    ("single c=1", "single", 1, 1),
    ("single c=8", "single", 8, 1),
    ("single c=32", "single", 32, 1),
    ("batch 100 c=4", "batch", 4, 100),
    ("batch 10k c=2", "big", 2, 10_000),
)


def measure(target: Target, port: int, seconds: float, warmup: float, work: Path) -> dict:
    out: dict = {}
    with running(target.cmd, port, work / f"{target.name}.log", ready_path=target.ready,
                 env=target.env, cwd=ROOT) as server:  # fmt: skip
        out["startup"] = server.startup_seconds
        for name, kind, concurrency, rows in SCENARIOS:
            path, body = getattr(target, kind)
            # Unrecorded warm-up at the scenario's load: adaptive batching tunes its wait to
            # the traffic it sees, and takes several seconds to settle.
            load(port, path, body, concurrency, warmup, rows)
            before = cpu_seconds(server.process.pid)
            result = load(port, path, body, concurrency, seconds, rows)
            result.cpu_seconds = cpu_seconds(server.process.pid) - before
            out[name] = result
            print(
                f"  {target.name:9s} {name:14s} {result.rps:8.1f} req/s  "
                f"p99 {result.pct(99):7.1f} ms  errors {result.errors}",
                flush=True,
            )
    return out


def shadow_overhead(plain: Target, shadow: Target, port: int, seconds: float, warmup: float,
                    work: Path) -> dict[str, Result]:  # fmt: skip
    """One record per request at concurrency 8, with and without a shadow, in turns."""
    pooled = {plain.name: Result(), shadow.name: Result()}
    for turn in range(SHADOW_ROUNDS):
        for target in (plain, shadow):
            with running(target.cmd, port, work / f"{target.name}-{turn}.log",
                         ready_path=target.ready, env=target.env, cwd=ROOT):  # fmt: skip
                path, body = target.single
                load(port, path, body, 8, warmup, 1)
                result = load(port, path, body, 8, seconds, 1)
            total = pooled[target.name]
            total.requests += result.requests
            total.errors += result.errors
            total.seconds += result.seconds
            total.latencies += result.latencies
            print(f"  {target.name:13s} single c=8 (turn {turn + 1}) {result.rps:8.1f} req/s  "
                  f"p99 {result.pct(99):7.1f} ms  errors {result.errors}", flush=True)  # fmt: skip
    return pooled


def soak(target: Target, port: int, seconds: float, warmup: float, work: Path) -> dict:
    """`tabml` at concurrency 16 without a pause: errors, and memory sampled under load.

    The workers' memory rises for the first seconds under load (allocator arenas, buffers and
    BentoML's per-request timers reaching their working size), then stays flat: `warmup`
    covers that rise, and growth is measured from its end.
    """
    with running(target.cmd, port, work / "soak.log", ready_path=target.ready,
                 env=target.env, cwd=ROOT) as server:  # fmt: skip
        path, body = target.single
        samples: list[tuple[float, float]] = []
        stop = threading.Event()

        def sample() -> None:
            start = time.perf_counter()
            while not stop.wait(SOAK_SAMPLE_SECONDS):
                samples.append((time.perf_counter() - start, rss_mb(server.process.pid)))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        result = load(port, path, body, 16, warmup + seconds, 1)
        stop.set()
        sampler.join()
    return {
        "requests": result.requests,
        "errors": result.errors,
        "rps": result.rps,
        "rss": [mb for at, mb in samples if at >= warmup - 1],
    }


def in_process(frame: pd.DataFrame) -> list[tuple[str, float, float]]:
    """Milliseconds per call: the pipeline's predict_proba against the compiled graph."""
    pipeline = joblib.load(ROOT / MODEL)
    features = list(pipeline.feature_names_in_)
    scorer = OnnxScorer(compile_onnx(pipeline, frame))
    big = pd.concat([frame] * 2, ignore_index=True)
    rows = []
    for n in (1, 1000, 10_000):
        part = big.iloc[:n][features]
        columns = to_columns(part)
        repeat = max(3, 2000 // n)
        sk = _timed(lambda part=part: pipeline.predict_proba(part), repeat)
        ox = _timed(lambda columns=columns: scorer.score(columns), repeat * 5)
        rows.append((f"{n} rows", sk, ox))
    return rows


def _timed(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def report(results: dict, soaked: dict, micro, load_before, load_after, seconds,
           shadowed: dict[str, Result]) -> bool:  # fmt: skip
    ours, naive, batching = results["tabml"], results["naive"], results["batching"]
    print(f"\nserving benchmark: {seconds:.0f} s per scenario, one server at a time, 2 cores "
          f"shared with the load generator and whatever else runs (load average before "
          f"{load_before}, after {load_after})\n")  # fmt: skip
    print("| scenario | server | req/s | rows/s | p50 ms | p99 ms | errors | CPU ms/req | "
          "x batching | x naive |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, *_ in SCENARIOS:
        for label, res in (("tabml", ours), ("naive", naive), ("batching", batching)):
            r = res[name]
            cpu = r.cpu_seconds / max(r.requests, 1) * 1e3
            print(
                f"| {name} | {label} | {r.rps:.0f} | {r.rows / r.seconds:,.0f} | "
                f"{r.pct(50):.1f} | {r.pct(99):.1f} | {r.errors} | {cpu:.2f} | "
                f"{r.rps / batching[name].rps:.2f} | {r.rps / naive[name].rps:.2f} |"
            )
    print("\n| start-up (launch to ready) | tabml | naive | batching |\n|---|---:|---:|---:|")
    print(
        f"| seconds | {ours['startup']:.1f} | {naive['startup']:.1f} | {batching['startup']:.1f} |"
    )
    print("\n| in-process, ms per call | scikit-learn predict_proba | ONNX (tabml) | ratio |")
    print("|---|---:|---:|---:|")
    for name, sk, ox in micro:
        print(f"| {name} | {sk:.3f} | {ox:.3f} | {sk / ox:.0f} |")
    rss = soaked["rss"]
    growth = rss[-1] / rss[0] - 1
    print(
        f"\nsoak (tabml, concurrency 16, {soaked['warmup']:.0f} s of warm-up then "
        f"{soaked['seconds']:.0f} s): {soaked['requests']} requests, {soaked['errors']} errors, "
        f"{soaked['rps']:.0f} req/s; resident memory of all its processes from the end of "
        f"warm-up, every {SOAK_SAMPLE_SECONDS:.0f} s (MB): {' '.join(f'{m:.0f}' for m in rss)} "
        f"({growth:+.1%})"
    )
    plain, shadow = shadowed["tabml"], shadowed["tabml+shadow"]
    ratio = shadow.pct(99) / plain.pct(99)
    print(f"\n| shadow overhead, single c=8 ({SHADOW_ROUNDS} turns of {seconds:.0f} s) | req/s "
          "| p50 ms | p99 ms | errors |\n|---|---:|---:|---:|---:|")  # fmt: skip
    for label, r in (("tabml", plain), ("tabml with a shadow model", shadow)):
        print(f"| {label} | {r.rps:.0f} | {r.pct(50):.2f} | {r.pct(99):.2f} | {r.errors} |")
    print(
        f"\np99 with a shadow / without: {ratio:.2f}x "
        f"(p50 {shadow.pct(50) / plain.pct(50):.2f}x, req/s {shadow.rps / plain.rps:.2f}x)"
    )
    checks = [
        ("p99 at c=8 with a shadow <= 1.3x without", ratio <= GOALS["shadow_p99_ratio"]),
        ("no errors with a shadow", shadow.errors == 0),
        ("throughput at c=8 >= 2x batching",
         ours["single c=8"].rps / batching["single c=8"].rps >= GOALS["throughput_ratio"]),
        ("throughput at c=32 >= 2x batching",
         ours["single c=32"].rps / batching["single c=32"].rps >= GOALS["throughput_ratio"]),
        ("p99 at c=8 <= 50 ms", ours["single c=8"].pct(99) <= GOALS["p99_c8_ms"]),
        ("batch scoring >= 50,000 rows/s",
         ours["batch 10k c=2"].rows / ours["batch 10k c=2"].seconds >= GOALS["batch_rows_per_s"]),
        ("no errors in tabml's scenarios", all(ours[n].errors == 0 for n, *_ in SCENARIOS)),
        ("soak: no errors", soaked["errors"] == 0),
        ("soak: memory grows < 10% after warm-up", growth < 0.10),
    ]  # fmt: skip
    print("\ngoals:")
    for name, ok in checks:
        print(f"  [{'x' if ok else ' '}] {name}")
    return all(ok for _, ok in checks)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="per scenario")
    ap.add_argument("--warmup", type=float, default=5.0, help="unrecorded, before each scenario")
    ap.add_argument("--soak-seconds", type=float, default=120.0)
    ap.add_argument("--soak-warmup", type=float, default=60.0)
    args = ap.parse_args()
    if not (ROOT / MODEL).exists():
        sys.exit(f"{MODEL} is missing: run `make repro` first")
    check_block("serve")  # before minutes of measuring, not after
    frame = pd.read_parquet(ROOT / "data/processed/test.parquet")
    frame = frame[list(joblib.load(ROOT / MODEL).feature_names_in_)]
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        work = Path(tmp)
        port = free_port()
        servers = targets(port, work, frame)
        results = {}
        plain, shadowed_target = servers[0], servers[1]
        for target in (s for s in servers if s is not shadowed_target):
            print(f"{target.name}: {shlex.join(target.cmd)}", flush=True)
            results[target.name] = measure(target, port, args.seconds, args.warmup, work)
        print(f"shadow overhead: {shlex.join(shadowed_target.cmd)}", flush=True)
        shadowed = shadow_overhead(plain, shadowed_target, port, args.seconds, args.warmup, work)
        print(f"soak: tabml at concurrency 16, {args.soak_warmup:.0f} + {args.soak_seconds:.0f} s")
        soaked = soak(servers[0], port, args.soak_seconds, args.soak_warmup, work)
        soaked.update(warmup=args.soak_warmup, seconds=args.soak_seconds)
    micro = in_process(frame)
    load_after = " ".join(f"{x:.2f}" for x in os.getloadavg())
    with recorded("serve", "make bench-serve"):
        ok = report(results, soaked, micro, load_before, load_after, args.seconds, shadowed)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
