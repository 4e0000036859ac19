"""Stage: cross-compile the configured Go main package for every target into ``dist/<version>/``.

``build(ctx)`` builds ``ctx.build.targets`` (``[build]`` of ``build/release.toml``):
``-trimpath``, ``-s -w -buildid=`` and ``CGO_ENABLED=0`` always, then the configured
ldflags, tags and environment with their placeholders filled (``ctx.build_values``).
A target whose recipe (Go, arguments, environment, package, sources) is unchanged is
not rebuilt. Every binary's header is checked, and unless ``version_check = false``
it must carry the version and print exactly ``version_output`` where it can run.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import platform
import shutil
import subprocess
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

from . import binaries
from .codesign import check_code_signature
from .context import RELEASE, BuildVariant, ReleaseContext
from .errors import KmError
from .gitinfo import source_info
from .gocheck import check_build_config
from .gotool import GoToolchain, find_go
from .hashing import sha256_file
from .layout import BUILD_META, write_if_changed
from .matrix import Target
from .ui import Reporter

_BASE_LDFLAGS = "-s -w -buildid="  # always: reproducible and small, whatever [build] says
_SKIP_DIRS = {".git", ".venv", ".nox", "dist", "site", "node_modules", ".cache", "__pycache__"}
# Pinned so that a user's environment cannot change the bytes.
_PINNED_ENV = {"CGO_ENABLED": "0", "GOAMD64": "v1", "GOARM64": "v8.0", "GOFLAGS": "", "GOEXPERIMENT": ""}


@dataclass(frozen=True)
class BuildInfo:
    """What a release is built from; recorded in ``dist/<version>/.build/info.json``."""

    version: str
    commit: str | None
    date: str
    go: str

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


def go_files(root: Path, *, tests: bool = False) -> list[Path]:
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


def source_fingerprint(root: Path) -> str:
    """Hash of every Go source file that can go into the binary (tests excluded), go.mod and go.sum."""
    h = hashlib.sha256()
    files = go_files(root) + [p for p in (root / "go.mod", root / "go.sum") if p.exists()]
    for path in sorted(files):
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(sha256_file(path).encode() + b"\n")
    return h.hexdigest()


@dataclass(frozen=True)
class Recipe:
    """Everything the build of one target depends on, from ``[build]`` and the run."""

    target: Target
    file_name: str
    main: str
    ldflags: str
    tags: tuple[str, ...]
    env: dict[str, str]  # on top of the Go toolchain's own environment
    version_line: str

    @property
    def go_args(self) -> list[str]:
        tags = ["-tags", ",".join(self.tags)] if self.tags else []
        return ["build", "-trimpath", *tags, "-ldflags", self.ldflags]


def recipe(ctx: ReleaseContext, info: BuildInfo, target: Target, variant: BuildVariant = RELEASE) -> Recipe:
    values = ctx.build_values(target, info, variant)
    cfg = ctx.build
    flags = [_BASE_LDFLAGS, *(flag.format_map(values) for flag in cfg.ldflags)]
    env = {**_PINNED_ENV, **dict(cfg.env), "GOOS": target.os, "GOARCH": target.arch, "CGO_ENABLED": "0"}
    return Recipe(
        target=target,
        file_name=ctx.file_name(target),
        main=cfg.main,
        ldflags=" ".join(flags),
        tags=cfg.tags,
        env=env,
        version_line=cfg.version_output.format_map(values),
    )


def inputs_fingerprint(go: GoToolchain, r: Recipe, sources: str) -> str:
    doc = {
        "go": go.version,
        "target": r.target.slug,
        "args": r.go_args,
        "env": r.env,
        "package": r.main,
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


def check_binary(ctx: ReleaseContext, path: Path, r: Recipe, info: BuildInfo) -> None:
    """Header and CPU, the version string, and the version line it prints when it can run."""
    binaries.check_header(path, r.target)
    if (r.target.os, r.target.arch) == ("darwin", "arm64"):  # macOS runs no unsigned arm64 code
        check_code_signature(path)
    if not ctx.build.version_check:
        return
    if not binaries.contains(path, info.version.encode()):
        raise KmError(f"{path.name}: the version {info.version} was not injected into the binary")
    runner = _runner(r.target)
    if runner is None:
        return
    args = [*runner, str(path), *ctx.build.version_args]
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise KmError(f"{path.name}: could not run `{' '.join(ctx.build.version_args)}`: {exc}") from None
    got = (proc.stdout.splitlines() or [""])[0].strip()
    if proc.returncode != 0 or got != r.version_line:
        raise KmError(
            f"{path.name}: `{' '.join(ctx.build.version_args)}` printed {got!r} (exit {proc.returncode}), "
            f"expected {r.version_line!r}"
        )
    how = "under " + Path(runner[0]).name if runner else "natively"
    ctx.reporter.info(f"{path.name}: ran {how}: {got}")


def _fresh(out: Path, stamp_path: Path, fingerprint: str) -> str | None:
    """The binary's SHA-256 when its stamp says it was built from exactly these inputs."""
    if not (out.exists() and stamp_path.exists()):
        return None
    try:
        stamp = json.loads(stamp_path.read_text(encoding="utf-8"))
    except ValueError:
        return None
    if not isinstance(stamp, dict) or stamp.get("inputs") != fingerprint:
        return None
    digest = sha256_file(out)
    signed = stamp.get("signed_sha256")  # an Authenticode-signed .exe (authenticode.py)
    return digest if digest in (stamp.get("sha256"), signed) else None


def _build_one(
    ctx: ReleaseContext, go: GoToolchain, r: Recipe, out_dir: Path, sources: str, meta: Path
) -> Built:
    out = out_dir / r.file_name
    stamp_path = meta / f"{r.file_name}.json"
    fingerprint = inputs_fingerprint(go, r, sources)
    digest = _fresh(out, stamp_path, fingerprint)
    if digest is not None:
        ctx.reporter.info(f"{r.file_name}: up to date")
        return Built(r.target, out, digest, rebuilt=False)
    tmp = meta / f"{r.file_name}.tmp"
    cmd = [str(go.go), *r.go_args, "-o", str(tmp), r.main]
    ctx.reporter.info(f"{r.file_name}: go build ({r.target.slug})")
    env = go.env(**r.env)
    proc = subprocess.run(cmd, cwd=ctx.project.root, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        first = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise KmError(f"go build failed for {r.target.slug}: {first}")
    digest = sha256_file(tmp)
    os.replace(tmp, out)
    stamp_path.write_text(json.dumps({"inputs": fingerprint, "sha256": digest}) + "\n", encoding="utf-8")
    return Built(r.target, out, digest, rebuilt=True)


def resolve_build_info(ctx: ReleaseContext, go: GoToolchain) -> BuildInfo:
    src = source_info(ctx.project.root)
    if src.dirty:
        ctx.reporter.warn("the work tree has uncommitted changes: the binaries will not match the commit")
    if src.note:
        ctx.reporter.warn(src.note)
    return BuildInfo(str(ctx.version), src.commit, src.date, go.version)


def with_trusted_keys(ctx: ReleaseContext) -> ReleaseContext:
    """``ctx`` with the keys its binaries trust: the signing plan's, else ``build/keys/`` plus a
    locally configured signing key (a plain ``inv build``)."""
    if ctx.trusted_keys is not None:
        return ctx
    from .sign.trust import build_trust

    value = build_trust(ctx.project.root, ctx.project.path)
    return ctx.replace(trusted_keys=tuple(base64.b64decode(k) for k in value.split(",") if k))


def prepare(ctx: ReleaseContext) -> tuple[GoToolchain, BuildInfo]:
    """The pinned Go and the build information, after the checks of ``[build]`` that need Go."""
    go = find_go()
    check_build_config(ctx.project, go)
    if not ctx.build.version_check:
        ctx.reporter.warn(
            f"the version check is off ([build] version_check = false in {ctx.project.path}): "
            "no binary is asked for its version"
        )
    return go, resolve_build_info(ctx, go)


# Builds that follow a target's own (the release's package builds): the jobs (recipe, output
# folder) to run once that target is built, when its packages are in the Go cache and the follow-up
# mostly links. They take the cores that the last targets' builds leave idle.
FollowUps = Callable[[ReleaseContext, Target, BuildInfo], Sequence[tuple[Recipe, Path]]]


def build(
    ctx: ReleaseContext,
    targets: Sequence[Target] | None = None,
    variant: BuildVariant = RELEASE,
    then: FollowUps | None = None,
) -> list[Built]:
    """Build ``targets`` (default: all configured) in parallel, bounded by the cores; check every binary.
    With ``then``, each target's follow-up builds join the same pool as soon as it is built (and are
    checked when rebuilt)."""
    targets = ctx.build.targets if targets is None else targets
    ctx = with_trusted_keys(ctx)
    go, info = prepare(ctx)
    out_dir = ctx.variant_dir(variant)
    recipes = [recipe(ctx, info, t, variant) for t in targets]
    what = f" ({variant.install_method} build)" if variant.install_method else ""
    ctx.reporter.step(
        f"build {ctx.version}{what} for {len(targets)} target(s) with {go.version} into {out_dir}"
    )
    if ctx.dry_run:
        for r in recipes:
            ctx.reporter.info(f"would build {r.file_name} ({r.target.slug}) with -ldflags {r.ldflags!r}")
        return []
    meta = out_dir / BUILD_META
    meta.mkdir(parents=True, exist_ok=True)
    previous = None
    with contextlib.suppress(KmError):
        previous = BuildInfo.load(out_dir)
    if previous is not None and previous != info:
        ctx.reporter.info(f"build information changed since the last build of {ctx.version}: rebuilding")
    info.save(out_dir)
    sources = source_fingerprint(ctx.project.root)
    workers = max(1, min(os.cpu_count() or 1, len(recipes)))
    follow: list[tuple[Future[Built], Recipe]] = []
    with (
        ctx.reporter.progress(),
        ctx.reporter.bar("go build", len(recipes), unit="targets") as bar,
        ThreadPoolExecutor(max_workers=workers) as pool,
    ):
        futures = [pool.submit(_build_one, ctx, go, r, out_dir, sources, meta) for r in recipes]
        quiet = ctx.replace(reporter=Reporter(quiet=True))
        for done in as_completed(futures):
            target = done.result().target
            bar.advance(1)
            for fr, out in then(ctx, target, info) if then else ():
                follow.append((pool.submit(_build_one, quiet, go, fr, out, sources, out / BUILD_META), fr))
        results = [f.result() for f in futures]
    again = 0
    for built, r in zip(results, recipes, strict=True):
        again += check_once(ctx, built, r, info, meta)
    rebuilt = sum(1 for b in results if b.rebuilt)
    note = f" ({again} with the same bytes and expected line as at their last check: not run again)"
    ctx.reporter.step(
        f"built {rebuilt}, up to date {len(results) - rebuilt}; every binary checked{note if again else ''}"
    )
    check_follow_ups(ctx, info, [(f.result(), fr) for f, fr in follow])
    return results


def check_follow_ups(ctx: ReleaseContext, info: BuildInfo, done: Sequence[tuple[Built, Recipe]]) -> None:
    """Check each rebuilt package build like a release binary, then one line for all of them (here
    after the build stage's pool, and in :func:`kmrelease.packages.variants.build_variants`)."""
    for built, r in done:
        if built.rebuilt:
            check_binary(ctx, built.path, r, info)
    if done:
        rebuilt = sum(1 for b, _ in done if b.rebuilt)
        ctx.reporter.info(f"package builds: {rebuilt} built, {len(done) - rebuilt} up to date")


def check_fingerprint(ctx: ReleaseContext, r: Recipe, info: BuildInfo, sha256: str) -> str:
    """What :func:`check_binary` proved of a binary: its exact bytes against these expectations."""
    doc = {
        "sha256": sha256,
        "target": r.target.slug,
        "version": info.version,
        "version_check": ctx.build.version_check,
        "version_args": list(ctx.build.version_args),
        "version_line": r.version_line,
        "runner": _runner(r.target),
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def check_once(ctx: ReleaseContext, built: Built, r: Recipe, info: BuildInfo, meta: Path) -> bool:
    """:func:`check_binary`, unless the same bytes (SHA-256) passed it with the same expected line
    (``.build/<file>.checked``); whether it was skipped so."""
    mark = meta / f"{r.file_name}.checked"
    fingerprint = check_fingerprint(ctx, r, info, built.sha256)
    try:
        if mark.read_text(encoding="ascii").strip() == fingerprint:
            ctx.reporter.info(f"{r.file_name}: checked before (same bytes, same expected line)")
            return True
    except (OSError, UnicodeDecodeError):
        pass
    check_binary(ctx, built.path, r, info)
    write_if_changed(mark, fingerprint + "\n")
    return False
