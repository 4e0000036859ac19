"""Release engine benchmark (issue 2), every figure from one run on this machine.

1. ideal compile bound: raw ``go build`` of each of the six targets with a cold cache, then of
   the ten package builds (the same recipes with ``{install_method}`` filled: mostly links), CPU
   seconds summed ÷ cores; everything a release compiles, and the six targets alone;
2. cold ``inv release`` of six targets and their packages with another cold cache: wall ÷ the
   ideal (goal ≤ 1.10), and ÷ the six targets' bound alone;
3. warm ``inv release`` with nothing changed, twice: right after the cold one (which hashes
   again what the cold run wrote in its last moments: kmrelease.hashing trusts no digest taken
   that close to a file's change), then again: wall (goal ≤ 0.8 s), bytes rewritten (goal 0),
   and where its time goes: each stage (``==>`` line of the reporter) timed from the
   moment its line is printed to the next one, plus the start-up before the first;
4. peak RSS of the release process (goal ≤ 100 MB).
"""

from __future__ import annotations

import compileall
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kmrelease.build import Recipe, prepare, recipe
from kmrelease.config import load_project
from kmrelease.context import BuildVariant, ReleaseContext
from kmrelease.packages.stage import VARIANTS
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


def ideal_compile_bound(gocache: Path, out: Path) -> tuple[float, float, float]:
    """CPU s ÷ cores of raw ``go build`` of the six targets (cold cache), then of the same plus the
    package builds a release also compiles (the same recipes with ``{install_method}`` filled,
    after the six: mostly links); and the sequential wall of the six."""
    project = load_project(cwd=ROOT)
    ctx = ReleaseContext.create(project, parse_version(VERSION), Reporter(quiet=True))
    go, info = prepare(ctx)
    cores = os.cpu_count() or 1

    def go_build(r: Recipe, dest: Path) -> None:
        env = go.env(**r.env, GOCACHE=str(gocache))
        dest.mkdir(parents=True, exist_ok=True)
        cmd = [str(go.go), *r.go_args, "-o", str(dest / r.file_name), r.main]
        subprocess.run(cmd, cwd=ROOT, env=env, check=True)

    cpu0, wall0 = _children_cpu(), time.perf_counter()
    for t in project.build.targets:
        go_build(recipe(ctx, info, t), out)
    six, wall = (_children_cpu() - cpu0) / cores, time.perf_counter() - wall0
    for v in VARIANTS:
        for t in v.targets:
            go_build(recipe(ctx, info, t, BuildVariant(v.method)), out / v.method)
    return six, (_children_cpu() - cpu0) / cores, wall


def files_state(*roots: Path) -> dict[str, tuple[int, int, int]]:
    state = {}
    for root in roots:
        for p in root.rglob("*"):
            if p.is_file():
                st = p.stat()
                state[str(p)] = (st.st_ino, st.st_mtime_ns, st.st_size)
    return state


def stage_times(lines: list[tuple[float, str]], end: float) -> list[tuple[str, float]]:
    """(stage, seconds) from timestamped stderr lines: each ``==>`` line until the next one."""
    stages: list[tuple[str, float]] = []
    name, since = "start-up (interpreter, imports, configuration)", 0.0
    for at, line in lines:
        if line.startswith("==> "):
            stages.append((name, at - since))
            name, since = line[4:].strip(), at
    stages.append((name, end - since))
    return stages


def _timestamped(proc: subprocess.Popen[str], t0: float) -> list[tuple[float, str]]:
    assert proc.stderr is not None
    return [(time.perf_counter() - t0, line) for line in proc.stderr]


def run_release(tmp: Path, gocache: Path, tag: str) -> tuple[float, int, list[tuple[str, float]]]:
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
    with subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    ) as proc:
        lines = _timestamped(proc, t0)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.stderr.write("".join(line for _, line in lines))
        raise SystemExit(f"release failed ({tag})")
    rss = int(json.loads(rss_file.read_text())["maxrss_kb"])
    return wall, rss, stage_times(lines, wall)


def main() -> int:
    # The engine's modules compiled first, as a non-editable install does (Invoke turns bytecode
    # writing off, so an editable checkout would otherwise compile them again in every run).
    compileall.compile_dir(ROOT / "kmrelease", quiet=1)
    with tempfile.TemporaryDirectory(prefix="km-bench-") as t:
        tmp = Path(t)
        (tmp / "raw").mkdir()
        six, ideal, raw_wall = ideal_compile_bound(tmp / "gocache-raw", tmp / "raw")
        cold, rss_cold, cold_stages = run_release(tmp, tmp / "gocache-release", "cold")
        before = files_state(tmp / "dist", tmp / "site")
        warm1, rss_warm1, stages1 = run_release(tmp, tmp / "gocache-release", "warm")
        warm, rss_warm, stages = run_release(tmp, tmp / "gocache-release", "warm-again")
        after = files_state(tmp / "dist", tmp / "site")
        rewritten = sum(after[p][2] for p in after if before.get(p) != after[p])
    peak_mb = max(rss_cold, rss_warm1, rss_warm) / 1024
    rows = [
        (
            "compile bound: six targets (raw go build CPU s ÷ cores)",
            f"{six:.2f} s",
            f"(raw sequential wall {raw_wall:.2f} s)",
        ),
        (
            "compile bound: six targets + 10 package builds",
            f"{ideal:.2f} s",
            "(everything a release compiles)",
        ),
        (
            "cold inv release, six targets and packages",
            f"{cold:.2f} s",
            f"ratio {cold / ideal:.3f} (goal ≤ 1.10); ÷ six targets alone {cold / six:.3f}",
        ),
        ("warm inv release, right after the cold one", f"{warm1:.2f} s", "(re-hashes the newest files)"),
        ("warm inv release again, nothing changed", f"{warm:.2f} s", "goal ≤ 0.8 s"),
        ("bytes rewritten by the two warm releases", str(rewritten), "goal 0"),
        ("peak RSS of the release process", f"{peak_mb:.1f} MB", "goal ≤ 100 MB"),
    ]
    for name, value, note in rows:
        print(f"{name:52} {value:>12}  {note}")
    print("where the warm releases' time goes (stage: from its ==> line to the next; first, again):")
    for (name, seconds), (_, first) in zip(stages, stages1, strict=False):
        print(f"  {first:6.3f} s {seconds:6.3f} s  {name[:84]}")
    print("where the cold release's time goes (stage: from its ==> line to the next):")
    for name, seconds in cold_stages:
        print(f"  {seconds:7.2f} s  {name[:84]}")
    print("load average (1, 5, 15 min) at the end: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    ok = cold / ideal <= 1.10 and warm <= 0.8 and rewritten == 0 and peak_mb <= 100
    print("release benchmark:", "all goals met" if ok else "a goal was missed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
