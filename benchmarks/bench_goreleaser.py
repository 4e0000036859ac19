"""GoReleaser as the peer (issue 9): the same source, Go, targets, flags and ldflags, one run.

GoReleaser is installed once with ``go install github.com/goreleaser/goreleaser/v2@latest``
by the pinned Go into ``<root>/.cache/tools`` (skipped, with a note, when it cannot be).
Its configuration is generated into a temporary directory from our ``[build]`` recipes
(one GoReleaser build per target, so every target gets exactly our environment and
ldflags; ``formats: [binary]``; a ``SHA256SUMS`` checksum) and it runs as
``goreleaser release --snapshot --clean -p <cores>``. Compared with ``inv build`` +
``inv checksums``:

1. cold: each side with its own empty ``GOCACHE`` (neither warms the other);
2. warm: the same again, caches and outputs kept.

Ratios are ours ÷ GoReleaser (below 1: we are faster). ``KM_BENCH_TARGETS=linux/amd64``
limits both sides to fewer targets (a quick check of the benchmark itself).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from kmrelease.build import BuildInfo, Recipe, prepare, recipe, with_trusted_keys
from kmrelease.config import CONFIG_ENV, CONFIG_FILE, load_project
from kmrelease.context import ReleaseContext
from kmrelease.gotool import GoToolchain, find_go
from kmrelease.ui import Reporter
from kmrelease.version import parse_version

ROOT = Path(__file__).resolve().parents[1]  # this checkout
VERSION = "v0.0.1"
MODULE = "github.com/goreleaser/goreleaser/v2@latest"
INSTALL_TIMEOUT = 1800  # seconds: ~4 min on an idle machine, once
RUN_TIMEOUT = 1800
TARGETS_ENV = "KM_BENCH_TARGETS"


@dataclass(frozen=True)
class Run:
    wall: float
    cpu: float


def tools_dir() -> Path:
    return ROOT / ".cache" / "tools"


def install_goreleaser(go: GoToolchain) -> tuple[Path | None, str]:
    """GoReleaser under ``.cache/tools/bin`` (installed now if missing), or None and why not."""
    tools = tools_dir()
    exe = tools / "bin" / ("goreleaser.exe" if os.name == "nt" else "goreleaser")
    if exe.is_file():
        return exe, "already installed"
    env = go.env(
        GOBIN=str(tools / "bin"),
        GOPATH=str(tools / "gopath"),
        GOMODCACHE=str(tools / "gomodcache"),
        GOCACHE=str(tools / "gocache"),
        GOFLAGS="-modcacherw",
    )
    print(f"installing GoReleaser ({MODULE}) with {go.version} into {tools} (~4 min, once)", flush=True)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            [str(go.go), "install", MODULE], env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT
        )
    except subprocess.TimeoutExpired:
        return None, f"go install timed out after {INSTALL_TIMEOUT} s"
    if proc.returncode != 0 or not exe.is_file():
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        return None, f"go install failed: {last}"
    return exe, f"installed in {time.perf_counter() - t0:.0f} s"


def _build_entry(go: GoToolchain, r: Recipe, binary: str) -> dict[str, object]:
    env = [f"{k}={v}" for k, v in sorted(r.env.items()) if k not in ("GOOS", "GOARCH")]
    flags = [a for a in r.go_args[1:] if a not in ("-ldflags", r.ldflags)]  # -trimpath, -tags
    return {
        "id": f"{r.target.os}_{r.target.arch}",
        "main": r.main,
        "binary": binary,
        "tool": str(go.go),
        "goos": [r.target.os],
        "goarch": [r.target.arch],
        "goamd64": [r.env.get("GOAMD64", "v1")],
        "goarm64": [r.env.get("GOARM64", "v8.0")],
        "env": env,
        "flags": flags,
        "ldflags": [r.ldflags],
    }


def goreleaser_config(ctx: ReleaseContext, go: GoToolchain, info: BuildInfo, dist: Path) -> dict[str, object]:
    """The ``.goreleaser.yaml`` document equivalent to our build and checksums (JSON is YAML)."""
    recipes = [recipe(ctx, info, t) for t in ctx.build.targets]
    binary = ctx.build.binary
    return {
        "version": 2,
        "project_name": binary,
        "dist": str(dist),
        "builds": [_build_entry(go, r, binary) for r in recipes],
        "archives": [{"formats": ["binary"], "name_template": "{{ .Binary }}-{{ .Os }}-{{ .Arch }}"}],
        "checksum": {"name_template": "SHA256SUMS", "algorithm": "sha256"},
        "snapshot": {"version_template": VERSION},
        "changelog": {"disable": True},
        "release": {"disable": True},
    }


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(cmds: list[list[str]], env: dict[str, str], what: str) -> Run:
    cpu0, t0 = _children_cpu(), time.perf_counter()
    for cmd in cmds:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT)
        if proc.returncode != 0:
            sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
            raise SystemExit(f"{what} failed: {' '.join(cmd[:4])}")
    return Run(time.perf_counter() - t0, _children_cpu() - cpu0)


def tiny_config(tmp: Path, targets: str) -> Path:
    """A copy of the project's configuration limited to ``targets`` ("linux/amd64,...")."""
    text = (ROOT / CONFIG_FILE).read_text(encoding="utf-8")
    slugs = json.dumps([s.strip() for s in targets.split(",") if s.strip()])  # a JSON string array is TOML
    path = tmp / "release.toml"
    path.write_text(text.replace("[build]\n", f"[build]\ntargets = {slugs}\n", 1), encoding="utf-8")
    return path


def sums(path: Path) -> dict[str, str]:
    lines = (line.split() for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    return {name.lstrip("*"): digest for digest, name in lines}


def main() -> int:
    go = find_go()
    exe, note = install_goreleaser(go)
    if exe is None:
        print(f"goreleaser benchmark skipped: GoReleaser could not be installed ({note})")
        return 0
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="km-bench-gr-") as t:
        tmp = Path(t)
        base = {**os.environ, "CI": "true", "GOTOOLCHAIN": "local", "GOROOT": str(go.root)}
        if os.environ.get(TARGETS_ENV):
            base[CONFIG_ENV] = str(tiny_config(tmp, os.environ[TARGETS_ENV]))
        project = load_project(cwd=ROOT, environ=base)
        ctx = with_trusted_keys(ReleaseContext.create(project, parse_version(VERSION), Reporter(quiet=True)))
        _, info = prepare(ctx)
        config = tmp / "goreleaser.yaml"
        doc = goreleaser_config(ctx, go, info, tmp / "gr-dist")
        config.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        ours_env = {**base, "GOCACHE": str(tmp / "gocache-ours"), "KM_DIST_DIR": str(tmp / "dist")}
        # GoReleaser also runs `go` itself (go list -m, go env): the pinned one, never the one on PATH
        path = os.pathsep.join([str(go.go.parent), os.environ.get("PATH", "")])
        gr_env = {**base, "GOCACHE": str(tmp / "gocache-gr"), "PATH": path}
        inv = [sys.executable, "-m", "invoke"]
        ours = [[*inv, "build", "--version", VERSION], [*inv, "checksums", "--version", VERSION]]
        theirs = [[str(exe), "release", "--snapshot", "--clean", "-p", str(cores), "--config", str(config)]]
        runs = {}
        for phase in ("cold", "warm"):
            runs["ours", phase] = timed(ours, ours_env, "inv build + inv checksums")
            runs["gr", phase] = timed(theirs, gr_env, "goreleaser release --snapshot")
        ours_sums = sums(tmp / "dist" / VERSION / "SHA256SUMS")
        gr_sums = sums(tmp / "gr-dist" / "SHA256SUMS")
        identical = all(gr_sums.get(n) == ours_sums.get(n) for n in ctx.build.file_names)
    version = subprocess.run([str(exe), "--version"], capture_output=True, text=True).stdout
    gr_version = next((ln.split(":", 1)[1].strip() for ln in version.splitlines() if "GitVersion" in ln), "?")
    print(f"GoReleaser {gr_version} ({note}); {len(ctx.build.targets)} targets, {go.version}, -p {cores}")
    for phase in ("cold", "warm"):
        o, g = runs["ours", phase], runs["gr", phase]
        print(
            f"{phase:4} inv build + inv checksums {o.wall:7.2f} s wall {o.cpu:7.2f} s CPU | "
            f"goreleaser {g.wall:7.2f} s wall {g.cpu:7.2f} s CPU | ratio {o.wall / g.wall:.3f} (goal ≤ 1.0)"
        )
    print("binaries byte-identical to GoReleaser's:", "yes" if identical else "NO")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
