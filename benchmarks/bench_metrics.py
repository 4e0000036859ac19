"""Metrics benchmark (issue 12): ``inv metrics`` over one million access-log lines.

One run: a log of one million lines in the local edge's format (a mix of install-script
fetches, binary downloads of six platforms and two versions, ``/version`` reads by km
and by curl, ``.sha256`` fetches, 404s, HEADs, 20 000 clients, seven days), then

- baseline: ``wc -l`` of the same file (reading it once, nothing parsed);
- ``inv metrics --format json`` over the whole window, as a user runs it (a new process:
  interpreter, Invoke, the streaming aggregation), wall time and its peak RSS.

Goals: ≤ 5 s, ≤ 200 MB peak RSS; the ratio to ``wc -l`` is printed.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec

from kmrelease.matrix import TARGETS

ROOT = Path(__file__).resolve().parents[1]  # this checkout
LINES = int(os.environ.get("KM_BENCH_METRICS_LINES", "1000000"))
ROUNDS = int(os.environ.get("KM_BENCH_ROUNDS", "3"))
TIME_GOAL_S = 5.0
RSS_GOAL_MB = 200
START = datetime(2026, 3, 1, tzinfo=UTC)


def write_log(path: Path, lines: int, seed: int = 12) -> None:
    """A week of plausible traffic, in time order, as the edge writes it."""
    rng = random.Random(seed)
    files = [t.file_name("km") for t in TARGETS]
    paths = (
        [f"/releases/v1.2.{p}/{f}" for p in (2, 3) for f in files]
        + [f"/releases/v1.2.3/{f}.sha256" for f in files]
        + ["/install.sh", "/", "/install.ps1", "/version", "/version", "/version", "/health"]
        + ["/releases/v9.9.9/km-linux-amd64.sha256", "/wp-login.php"]
    )
    agents = ["curl/8.5.0", "km/v1.2.2", "Wget/1.21.4", "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"]
    caches = ["HIT", "HIT", "HIT", "MISS", "REMOTE_HIT"]
    step = timedelta(days=7).total_seconds() / lines
    t0 = START.timestamp()
    encode = msgspec.json.Encoder().encode
    with path.open("wb") as fh:
        batch: list[bytes] = []
        for i in range(lines):
            p = rng.choice(paths)
            status = 404 if p.startswith(("/releases/v9", "/wp")) else 200
            rec = {
                "time": datetime.fromtimestamp(t0 + i * step, UTC),
                "httpMethod": "HEAD" if i % 50 == 0 else "GET",
                "requestUri": f"https://get.kilometers.ai:443{p}",
                "hostName": "get.kilometers.ai",
                "httpStatusCode": status,
                "responseBytes": 6_000_000 if p.startswith("/releases/v1") else 400,
                "cacheStatus": rng.choice(caches),
                "userAgent": rng.choice(agents),
                "clientCountry": rng.choice(["Netherlands", "Japan", "United States", ""]),
                "timeToFirstByte": round(rng.random() * 0.05, 6),
                "timeTaken": round(rng.random() * 0.5, 6),
                "clientIpHash": f"{rng.randrange(20_000):016x}",
            }
            batch.append(encode(rec))
            if len(batch) == 10_000:
                fh.write(b"\n".join(batch) + b"\n")
                batch.clear()
        if batch:
            fh.write(b"\n".join(batch) + b"\n")


def timed(cmd: list[str]) -> tuple[float, float, float, bytes]:
    """Wall seconds, CPU seconds and peak RSS in MB of the child, and its stdout."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} exited {proc.returncode}")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="km-bench-metrics-") as tmp:
        log = Path(tmp) / "access.jsonl"
        t = time.perf_counter()
        write_log(log, LINES)
        size = log.stat().st_size
        print(f"log: {LINES:,} lines, {size / 1e6:.0f} MB (generated in {time.perf_counter() - t:.1f}s)")
        inv = [sys.executable, "-m", "invoke", "metrics", "--log", str(log), "--format", "json"]
        inv += ["--since", "2026-03-01", "--until", "2026-03-09"]
        wcs, runs, cpus, rss = [], [], [], []
        report: dict[str, object] = {}
        for _ in range(ROUNDS):
            wcs.append(timed(["wc", "-l", str(log)])[0])
            elapsed, cpu, peak, out = timed(inv)
            runs.append(elapsed)
            cpus.append(cpu)
            rss.append(peak)
            report = json.loads(out)
    wc_med, run_med, rss_max = statistics.median(wcs), statistics.median(runs), max(rss)
    assert report["requests"] == LINES, report["requests"]
    print(f"{ROUNDS} rounds, medians")
    print(f"{'wc -l (baseline)':40} {wc_med * 1000:9.1f} ms")
    print(f"{'inv metrics --format json':40} {run_med * 1000:9.1f} ms   goal ≤ {TIME_GOAL_S * 1000:.0f} ms")
    print(f"{'  its CPU time (user + system)':40} {statistics.median(cpus) * 1000:9.1f} ms")
    print(f"{'ratio inv metrics ÷ wc -l':40} {run_med / wc_med:9.1f}")
    print(f"{'load average (2 cores shared)':40} {os.getloadavg()[0]:9.1f}")
    print(f"{'peak RSS of inv metrics':40} {rss_max:9.1f} MB   goal ≤ {RSS_GOAL_MB} MB")
    met = run_med <= TIME_GOAL_S and rss_max <= RSS_GOAL_MB
    print("metrics benchmark:", "goals met" if met else "goal missed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
