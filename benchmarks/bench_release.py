"""Release engine benchmark (issue 2), every figure from one run on this machine.

1. ideal compile bound: raw ``go build`` of each of the six targets with a cold cache,
   CPU seconds summed ÷ cores;
2. cold ``inv release`` of six targets with another cold cache: wall ÷ the ideal (goal ≤ 1.10);
3. warm ``inv release`` with nothing changed: wall (goal ≤ 2.0 s), bytes rewritten (goal 0);
4. peak RSS of the release process (goal ≤ 150 MB).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kmrelease.build import prepare, recipe
from kmrelease.config import load_project
from kmrelease.context import ReleaseContext
from kmrelease.ui import Reporter
from kmrelease.version import parse_version

ROOT = Path(__file__).resolve().parents[1]  # this checkout

VERSION = "v0.0.1"
# Runs the release task and records the process's own peak RSS (children excluded).
RUNNER = """
import atexit, json, resource, sys
from invoke.main import program
out = sys.argv[1]
atexit.register(lambda: open(out, "w").write(json.dumps(
    {"maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss})))
sys.argv = ["inv", *sys.argv[2:]]
program.run()
"""


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def ideal_compile_bound(gocache: Path, out: Path) -> tuple[float, float]:
    project = load_project(cwd=ROOT)
    ctx = ReleaseContext.create(project, parse_version(VERSION), Reporter(quiet=True))
    go, info = prepare(ctx)
    cpu0, wall0 = _children_cpu(), time.perf_counter()
    for t in project.build.targets:
        r = recipe(ctx, info, t)
        env = go.env(**r.env, GOCACHE=str(gocache))
        cmd = [str(go.go), *r.go_args, "-o", str(out / r.file_name), r.main]
        subprocess.run(cmd, cwd=ROOT, env=env, check=True)
    cpu = _children_cpu() - cpu0
    return cpu / (os.cpu_count() or 1), time.perf_counter() - wall0


def files_state(*roots: Path) -> dict[str, tuple[int, int, int]]:
    state = {}
    for root in roots:
        for p in root.rglob("*"):
            if p.is_file():
                st = p.stat()
                state[str(p)] = (st.st_ino, st.st_mtime_ns, st.st_size)
    return state


def run_release(tmp: Path, gocache: Path, tag: str) -> tuple[float, int]:
    env = {**os.environ, "GOCACHE": str(gocache), "KM_DIST_DIR": str(tmp / "dist"), "CI": "true"}
    rss_file = tmp / f"rss-{tag}.json"
    cmd = [
        sys.executable,
        "-c",
        RUNNER,
        str(rss_file),
        "release",
        "--version",
        VERSION,
        "--site",
        str(tmp / "site"),
    ]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"release failed ({tag})")
    return wall, int(json.loads(rss_file.read_text())["maxrss_kb"])


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="km-bench-") as t:
        tmp = Path(t)
        (tmp / "raw").mkdir()
        ideal, raw_wall = ideal_compile_bound(tmp / "gocache-raw", tmp / "raw")
        cold, rss_cold = run_release(tmp, tmp / "gocache-release", "cold")
        before = files_state(tmp / "dist", tmp / "site")
        warm, rss_warm = run_release(tmp, tmp / "gocache-release", "warm")
        after = files_state(tmp / "dist", tmp / "site")
        rewritten = sum(after[p][2] for p in after if before.get(p) != after[p])
    peak_mb = max(rss_cold, rss_warm) / 1024
    rows = [
        (
            "ideal compile bound (raw go build CPU s ÷ cores)",
            f"{ideal:.2f} s",
            f"(raw sequential wall {raw_wall:.2f} s)",
        ),
        ("cold inv release, six targets", f"{cold:.2f} s", f"ratio {cold / ideal:.3f} (goal ≤ 1.10)"),
        ("warm inv release, nothing changed", f"{warm:.2f} s", "goal ≤ 2.0 s"),
        ("bytes rewritten by the warm release", str(rewritten), "goal 0"),
        ("peak RSS of the release process", f"{peak_mb:.1f} MB", "goal ≤ 150 MB"),
    ]
    for name, value, note in rows:
        print(f"{name:52} {value:>12}  {note}")
    ok = cold / ideal <= 1.10 and warm <= 2.0 and rewritten == 0 and peak_mb <= 150
    print("release benchmark:", "all goals met" if ok else "a goal was missed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
