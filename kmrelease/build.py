"""Stage: cross-compile ``km`` for the matrix into ``dist/<version>/``."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import shutil
import subprocess
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

from . import binaries
from .codesign import check_code_signature
from .config import ROOT
from .errors import KmError
from .gitinfo import source_info
from .gotool import GoToolchain, find_go
from .hashing import sha256_file
from .layout import BUILD_META, dist_dir, write_if_changed
from .matrix import Target
from .ui import Reporter
from .version import Version

GO_PACKAGE = "./cmd/km"
_SKIP_DIRS = {".git", ".venv", ".nox", "dist", "site", "node_modules", ".cache", "__pycache__"}
# Pinned so that a user's environment cannot change the bytes.
_PINNED_ENV = {"CGO_ENABLED": "0", "GOAMD64": "v1", "GOARM64": "v8.0", "GOFLAGS": "", "GOEXPERIMENT": ""}


@dataclass(frozen=True)
class BuildInfo:
    """What a release is built from; recorded in ``dist/<v>/.build/info.json``."""

    version: str
    commit: str | None
    date: str
    go: str
    trusted_keys: str = ""  # the {trusted_keys} placeholder: base64 DER public keys, comma-separated

    @property
    def ldflags(self) -> str:
        flags = [
            "-s -w -buildid=",
            f"-X main.Version={self.version}",
            f"-X main.Commit={self.commit or 'none'}",
            f"-X main.Date={self.date}",
        ]
        if self.trusted_keys:
            flags.append(f"-X main.TrustedKeys={self.trusted_keys}")
        return " ".join(flags)

    def version_line(self, target: Target) -> str:
        """What ``km --version`` of this build must print."""
        return f"km {self.version} ({self.commit or 'none'}, {self.date}, {target.os}/{target.arch})"

    def save(self, dist: Path) -> None:
        meta = dist / BUILD_META
        meta.mkdir(parents=True, exist_ok=True)
        write_if_changed(meta / "info.json", json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, dist: Path) -> BuildInfo:
        path = dist / BUILD_META / "info.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(**data)
        except (OSError, ValueError, TypeError):
            raise KmError(
                f"{dist} has no build information: run `inv build --version {dist.name}` first"
            ) from None


@dataclass(frozen=True)
class Built:
    target: Target
    path: Path
    sha256: str
    rebuilt: bool


def go_files(root: Path = ROOT, *, tests: bool = False) -> list[Path]:
    """The module's Go sources (``_test.go`` only with ``tests``), never the toolchain in .venv."""
    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith((".", "_")))
        files += [
            Path(dirpath) / name
            for name in filenames
            if name.endswith(".go") and (tests or not name.endswith("_test.go"))
        ]
    return sorted(files)


def source_fingerprint(root: Path = ROOT) -> str:
    """Hash of every Go source file that can go into the binary (tests excluded), go.mod and go.sum."""
    h = hashlib.sha256()
    files = go_files(root) + [p for p in (root / "go.mod", root / "go.sum") if p.exists()]
    for path in sorted(files):
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(sha256_file(path).encode() + b"\n")
    return h.hexdigest()


def build_env(go: GoToolchain, target: Target) -> dict[str, str]:
    return go.env(GOOS=target.os, GOARCH=target.arch, **_PINNED_ENV)


def inputs_fingerprint(go: GoToolchain, info: BuildInfo, target: Target, sources: str) -> str:
    doc = {
        "go": go.version,
        "target": target.slug,
        "ldflags": info.ldflags,
        "env": _PINNED_ENV,
        "package": GO_PACKAGE,
        "sources": sources,
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def _runner(target: Target) -> list[str] | None:
    """How to run a target's binary on this machine, or None when it cannot be."""
    host_os = {"Linux": "linux", "Darwin": "darwin", "Windows": "windows"}.get(platform.system())
    host_arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower()
    )
    if target.os == host_os and target.arch == host_arch:
        return []
    if target.os == "linux" and host_os == "linux":
        qemu = shutil.which({"arm64": "qemu-aarch64-static", "amd64": "qemu-x86_64-static"}[target.arch])
        if qemu:
            return [qemu]
    return None


def check_binary(path: Path, target: Target, info: BuildInfo, reporter: Reporter) -> None:
    """Header and CPU, the version string, and the version it reports when it can run."""
    binaries.check_header(path, target)
    if (target.os, target.arch) == ("darwin", "arm64"):  # macOS runs no unsigned arm64 code
        check_code_signature(path)
    if not binaries.contains(path, info.version.encode()):
        raise KmError(f"{path.name}: the version {info.version} was not injected into the binary")
    runner = _runner(target)
    if runner is None:
        return
    try:
        proc = subprocess.run([*runner, str(path), "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise KmError(f"{path.name}: could not run `--version`: {exc}") from None
    got = proc.stdout.strip()
    want = info.version_line(target)
    if proc.returncode != 0 or got != want:
        raise KmError(f"{path.name}: `--version` printed {got!r} (exit {proc.returncode}), expected {want!r}")
    how = "under " + Path(runner[0]).name if runner else "natively"
    reporter.info(f"{path.name}: ran {how}: {got}")


def _build_one(
    go: GoToolchain, info: BuildInfo, target: Target, out_dir: Path, sources: str, reporter: Reporter
) -> Built:
    out = out_dir / target.filename
    stamp_path = out_dir / BUILD_META / f"{target.filename}.json"
    fingerprint = inputs_fingerprint(go, info, target, sources)
    if out.exists() and stamp_path.exists():
        try:
            stamp = json.loads(stamp_path.read_text(encoding="utf-8"))
        except ValueError:
            stamp = {}
        if stamp.get("inputs") == fingerprint:
            digest = sha256_file(out)
            if digest in (stamp.get("sha256"), stamp.get("signed_sha256")):  # signed: authenticode.py
                reporter.info(f"{target.filename}: up to date")
                return Built(target, out, digest, rebuilt=False)
    tmp = out_dir / BUILD_META / f"{target.filename}.tmp"
    cmd = [str(go.go), "build", "-trimpath", "-ldflags", info.ldflags, "-o", str(tmp), GO_PACKAGE]
    reporter.info(f"{target.filename}: go build ({target.slug})")
    proc = subprocess.run(cmd, cwd=ROOT, env=build_env(go, target), capture_output=True, text=True)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        first = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise KmError(f"go build failed for {target.slug}: {first}")
    digest = sha256_file(tmp)
    os.replace(tmp, out)
    stamp_path.write_text(json.dumps({"inputs": fingerprint, "sha256": digest}) + "\n", encoding="utf-8")
    return Built(target, out, digest, rebuilt=True)


def resolve_build_info(
    version: Version, go: GoToolchain, reporter: Reporter | None = None, *, trusted_keys: str | None = None
) -> BuildInfo:
    """What the binaries are built from; ``trusted_keys`` None: build/keys plus a local signing key."""
    if trusted_keys is None:
        from .config import config_path
        from .sign.trust import build_trust

        trusted_keys = build_trust(ROOT, config_path())
    src = source_info(ROOT)
    if src.dirty and reporter is not None:
        reporter.warn("the work tree has uncommitted changes: the binaries will not match the commit")
    if src.note and reporter is not None:
        reporter.warn(src.note)
    return BuildInfo(str(version), src.commit, src.date, go.version, trusted_keys)


def build(
    version: Version,
    targets: Sequence[Target],
    reporter: Reporter,
    *,
    dry_run: bool = False,
    out_root: Path | None = None,
    trusted_keys: str | None = None,
) -> list[Built]:
    """Build ``targets`` in parallel (bounded by the cores), then check every binary."""
    go = find_go()
    info = resolve_build_info(version, go, reporter, trusted_keys=trusted_keys)
    out_dir = dist_dir(str(version), out_root)
    reporter.step(f"build {version} for {len(targets)} target(s) with {go.version} into {out_dir}")
    if dry_run:
        for t in targets:
            reporter.info(f"would build {t.filename} ({t.slug}) with -ldflags {info.ldflags!r}")
        return []
    (out_dir / BUILD_META).mkdir(parents=True, exist_ok=True)
    previous = None
    with contextlib.suppress(KmError):
        previous = BuildInfo.load(out_dir)
    if previous is not None and previous != info:
        reporter.info(f"build information changed since the last build of {version}: rebuilding")
    info.save(out_dir)
    sources = source_fingerprint()
    workers = max(1, min(os.cpu_count() or 1, len(targets)))
    with (
        reporter.progress(),
        reporter.bar("go build", len(targets), unit="targets") as bar,
        ThreadPoolExecutor(max_workers=workers) as pool,
    ):
        futures = [pool.submit(_build_one, go, info, t, out_dir, sources, reporter) for t in targets]
        for done in as_completed(futures):
            done.result()
            bar.advance(1)
        results = [f.result() for f in futures]
    for built in results:
        check_binary(built.path, built.target, info, reporter)
    rebuilt = sum(1 for b in results if b.rebuilt)
    reporter.step(f"built {rebuilt}, up to date {len(results) - rebuilt}; every binary checked")
    return results
