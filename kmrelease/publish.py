"""Stages: publish a release to a destination and make a version current (SPEC §6).

Written once against :class:`~kmrelease.destinations.Destination`. The order is the
safety argument: versioned files are uploaded and read back before anything
public changes; ``latest/`` is filled before the version pointer moves; the
version pointer (``meta/version``) is the commit point, ``meta/health`` follows;
files ``latest/`` no longer needs are removed last. Every step skips what is
already done, so re-running the same command after an interruption finishes
the job.
"""

from __future__ import annotations

import json
import os
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .artifacts import Release, ReleaseFile, check_manifest, parse_sums, release_file_names
from .contentcheck import check_content, expected_from_published
from .context import ReleaseContext
from .destinations import Destination, ObjectInfo
from .errors import KmError
from .hashing import digest_bytes
from .layout import MANIFEST, SUMS, script_path
from .scriptsettings import render_for
from .sign.statement import SIGNATURE_FILES
from .ui import Bar, Reporter
from .urlspace import Kind, headers_of, key_of
from .version import Version, parse_version

SCRIPT_FILES: tuple[tuple[Kind, str], ...] = (
    (Kind.INSTALL_SH, "install.sh"),
    (Kind.INSTALL_PS1, "install.ps1"),
)


@dataclass
class Outcome:
    uploaded: list[str]
    skipped: list[str]
    bytes_uploaded: int = 0
    promoted: bool = False
    current: str | None = None
    changed_public: bool = False  # whether anything a purge should refresh changed


def _same(info: ObjectInfo | None, size: int, md5: bytes | None) -> bool:
    return info is not None and info.size == size and (info.md5 is None or md5 is None or info.md5 == md5)


def read_current(dest: Destination, reporter: Reporter | None = None) -> Version | None:
    """The version ``meta/version`` names, or None when there is none yet."""
    raw = dest.read_bytes(key_of(Kind.VERSION))
    if raw is None:
        return None
    try:
        return parse_version(raw.decode("utf-8", "replace").strip())
    except KmError:
        if reporter:
            reporter.warn(f"{key_of(Kind.VERSION)} holds {raw[:40]!r}, not a version: it will be replaced")
        return None


@dataclass(frozen=True)
class Script:
    """An install script as a release publishes it: the project's names in its settings block."""

    kind: Kind
    name: str
    data: bytes


def install_scripts(ctx: ReleaseContext) -> list[Script]:
    """The rendered install scripts (the repository's own ``scripts/``, else the engine's)."""
    out = []
    for kind, name in SCRIPT_FILES:
        path = script_path(ctx.project, name)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise KmError(f"cannot read install script {path}: {exc}") from None
        rendered = render_for(ctx.project, text, str(path), ctx.trusted_keys_pem)
        out.append(Script(kind, name, rendered.encode("utf-8")))
    return out


def destination(ctx: ReleaseContext) -> Destination:
    if ctx.dest is None:
        raise KmError("internal: a publishing stage needs a destination in its release context")
    return ctx.dest


def should_promote(version: Version, current: Version | None, *, requested: bool) -> tuple[bool, str]:
    if requested:
        return True, "promotion requested"
    if version.is_prerelease:
        return False, f"{version} is a pre-release: not made current (use --promote to make it current)"
    if current is None:
        return True, "first release on this destination"
    if version >= current:
        return True, f"{version} ≥ current {current}"
    return (
        False,
        f"current {current} is newer than {version}: not made current (`inv promote --version {version}`)",
    )


def publish_release(
    ctx: ReleaseContext,
    release: Release,
    *,
    before_current: Callable[[], bool] | None = None,
    documents: Mapping[Kind, bytes] | None = None,
) -> Outcome:
    """Publish (and maybe make current) under the destination's publisher lock (none for a dry run).

    ``before_current`` runs after the read back and before anything current changes (the APT
    repository); it returns whether it changed something public. ``documents``: other small public
    objects written with the install scripts in step 4 (the key documents of ``/keys/``)."""
    with publisher_lock(destination(ctx), f"release {release.version}", ctx.dry_run):
        return _publish_release(ctx, release, before_current, documents)


_HELD: weakref.WeakSet[Any] = weakref.WeakSet()  # destinations whose lock this process holds


@contextmanager
def publisher_lock(dest: Destination, what: str, dry_run: bool = False) -> Iterator[None]:
    """One publisher at a time on a destination, from validation through verification; taken once
    (a caller already holding it for ``dest`` keeps it). A dry run changes nothing and takes none."""
    if dry_run or dest in _HELD:
        yield
        return
    dest.check_writable()  # its message first: an unwritable destination cannot be locked either
    with dest.publishing(what):
        _HELD.add(dest)
        try:
            yield
        finally:
            _HELD.discard(dest)


def _publish_release(
    ctx: ReleaseContext,
    release: Release,
    before_current: Callable[[], bool] | None,
    documents: Mapping[Kind, bytes] | None,
) -> Outcome:
    dest, reporter, force, dry_run = destination(ctx), ctx.reporter, ctx.force, ctx.dry_run
    v = str(release.version)
    folder = key_of(Kind.VERSIONED, version=v, file="")
    # 1. validate: nothing remote changes before every check has passed
    reporter.step(f"validate {v} against {dest.label}")
    dest.check_writable()
    scripts = install_scripts(ctx)
    todo, skipped, conflicts = [], [], []
    for f in release.files:
        key = key_of(Kind.VERSIONED, version=v, file=f.name)
        info = dest.stat(key)
        if info is None:
            todo.append(f)
        elif _same(info, f.digest.size, f.digest.md5):
            skipped.append(f.name)
        else:
            conflicts.append(f)
    if conflicts and not force:
        names = ", ".join(key_of(Kind.VERSIONED, version=v, file=f.name) for f in conflicts)
        raise KmError(
            f"{names}: already published with other content (versions are immutable; --force replaces)"
        )
    current = read_current(dest, reporter)
    do_promote, why = should_promote(release.version, current, requested=ctx.promote)
    outcome = Outcome(uploaded=[], skipped=skipped, current=str(current) if current else None)
    todo += conflicts
    reporter.info(f"{len(todo)} to upload, {len(skipped)} already there; {why}")
    if dry_run:
        for f in todo:
            reporter.info(
                f"would upload {key_of(Kind.VERSIONED, version=v, file=f.name)} ({f.digest.size} bytes)"
            )
        reporter.info(
            f"would {'make ' + v + ' current' if do_promote else 'leave the current version as it is'}"
        )
        return outcome

    # 2. upload the immutable versioned files
    if todo:
        reporter.step(f"upload {len(todo)} file(s) to {folder}")
        total = sum(f.digest.size for f in todo)
        with reporter.progress(), reporter.bar(folder, total) as overall:

            def put(f: ReleaseFile) -> None:
                key = key_of(Kind.VERSIONED, version=v, file=f.name)
                with reporter.bar(f.name, f.digest.size) as bar:
                    dest.upload(
                        key,
                        f.path,
                        f.digest,
                        headers_of(Kind.VERSIONED, f.name),
                        overwrite=f in conflicts,
                        bar=_Tee(bar, overall),
                    )

            # A destination may take several files at once (``parallel_uploads``, e.g. Azure): the
            # files are independent; nothing public changes until all of them are read back (step 3).
            workers = max(1, min(len(todo), dest.parallel_uploads))
            if workers == 1:
                for f in todo:
                    put(f)
            else:
                with ThreadPoolExecutor(workers, thread_name_prefix="km-upload") as pool:
                    futures = [pool.submit(put, f) for f in todo]
                    try:
                        for fut in futures:
                            fut.result()
                    except BaseException:
                        pool.shutdown(wait=True, cancel_futures=True)
                        raise
            for f in todo:
                outcome.uploaded.append(f.name)
                outcome.bytes_uploaded += f.digest.size

    # 3. read back everything before going on
    reporter.step("read back the versioned files")
    _read_back(dest, v, release.files)

    if before_current is not None:
        outcome.changed_public |= before_current()
    # 4. install scripts (and the key documents), then latest/ and the version pointer
    if do_promote:
        _check_release_content(dest, release, reporter)
    outcome.changed_public |= publish_scripts(dest, scripts, reporter, documents)
    if do_promote:
        files = {f.name: ObjectInfo(f.digest.size, f.digest.md5) for f in release.files}
        outcome.changed_public |= make_current(dest, release.version, files, reporter)
        outcome.promoted = True
        outcome.current = v
    else:
        reporter.info(why)
    return outcome


def _read_back(dest: Destination, v: str, files: Sequence[ReleaseFile]) -> None:
    """Size and MD5 of every versioned file as the destination holds it, several at once (a local
    site hashes them: a core each; a remote one answers requests)."""
    keys = [key_of(Kind.VERSIONED, version=v, file=f.name) for f in files]
    workers = max(1, min(len(keys), max(dest.parallel_uploads, os.cpu_count() or 1)))
    with ThreadPoolExecutor(workers, thread_name_prefix="km-read-back") as pool:
        infos = list(pool.map(dest.stat, keys))
    for key, f, info in zip(keys, files, infos, strict=True):
        if not _same(info, f.digest.size, f.digest.md5):
            raise KmError(f"{key}: read back {info} does not match the local file ({f.digest.size} bytes)")


def _check_release_content(dest: Destination, release: Release, reporter: Reporter) -> None:
    """What goes into latest/ is what was built: every versioned file hashed against dist/."""
    reporter.step(f"check the content of the versioned files of {release.version}")
    expected = {f.name: f.digest.sha256 for f in release.files}
    check_content(dest, release.version, expected, expected)


class _Tee:
    """One upload advancing several bars (its own and the total)."""

    def __init__(self, *bars: Bar) -> None:
        self._bars = bars

    def advance(self, amount: int) -> None:
        for b in self._bars:
            b.advance(amount)


def publish_scripts(
    dest: Destination,
    scripts: Iterable[Script],
    reporter: Reporter,
    documents: Mapping[Kind, bytes] | None = None,
) -> bool:
    """Write each rendered install script (and small public document) whose published copy differs;
    whether any did."""
    changed = False
    others = [Script(kind, key_of(kind).rsplit("/", 1)[-1], data) for kind, data in (documents or {}).items()]
    for script in [*scripts, *others]:
        key = key_of(script.kind)
        d = digest_bytes(script.data)
        if _same(dest.stat(key), d.size, d.md5):
            continue
        reporter.info(f"publish {script.name} → {key}")
        dest.put_bytes(key, script.data, headers_of(script.kind, script.name))
        changed = True
    return changed


def make_current(
    dest: Destination, version: Version, files: dict[str, ObjectInfo], reporter: Reporter
) -> bool:
    """Mirror ``releases/<v>/`` into ``latest/``, then move the version pointer, then prune."""
    v = str(version)
    changed = False
    reporter.step(f"make {v} current on {dest.label}")
    before = dest.read_bytes(key_of(Kind.VERSION))  # the commit point is written only over this
    for name, info in files.items():
        dst = key_of(Kind.LATEST, file=name)
        if _same(dest.stat(dst), info.size, info.md5):
            continue
        dest.copy(key_of(Kind.VERSIONED, version=v, file=name), dst, headers_of(Kind.LATEST, name))
        changed = True
    for name, info in files.items():
        dst = key_of(Kind.LATEST, file=name)
        if not _same(dest.stat(dst), info.size, info.md5):
            raise KmError(f"{dst}: copy of {v} did not arrive intact; the version pointer was not moved")
    # the commit point
    pointer = f"{v}\n".encode()
    if before != pointer:
        dest.replace_if(key_of(Kind.VERSION), pointer, headers_of(Kind.VERSION), before)
        changed = True
        reporter.info(f"{key_of(Kind.VERSION)} → {v}")
    health_raw = dest.read_bytes(key_of(Kind.HEALTH))
    try:
        health = json.loads(health_raw or b"{}")
    except ValueError:
        health = {}
    if not isinstance(health, dict) or health.get("version") != v or health.get("status") != "ok":
        doc = {"status": "ok", "version": v, "published_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
        dest.put_bytes(key_of(Kind.HEALTH), (json.dumps(doc) + "\n").encode(), headers_of(Kind.HEALTH))
        changed = True
    latest_prefix = key_of(Kind.LATEST, file="")
    for key in dest.list(latest_prefix):
        if key[len(latest_prefix) :] not in files:
            dest.delete(key)
            changed = True
    return changed


def published_extras(dest: Destination, version: str, binaries: list[str]) -> list[str]:
    """The extra files (packages) a published version lists in its SHA256SUMS, sorted."""
    raw = dest.read_bytes(key_of(Kind.VERSIONED, version=version, file=SUMS))
    if raw is None:
        return []
    try:
        listed = parse_sums(raw.decode("utf-8", "replace"))
    except ValueError as exc:
        raise KmError(f"{SUMS} of {version} on {dest.label}: {exc}") from None
    return sorted(n for n in listed if n not in binaries)


def promote_version(
    ctx: ReleaseContext, *, before_current: Callable[[list[str]], bool] | None = None
) -> Outcome:
    """Make an already published version ``ctx.version`` current (rollback or pre-release promotion).

    ``before_current`` gets the version's file names once they are proven complete (the APT
    repository makes sure it holds the version's packages)."""
    with publisher_lock(destination(ctx), f"promote {ctx.version}", ctx.dry_run):
        return _promote_version(ctx, before_current)


def _promote_version(ctx: ReleaseContext, before_current: Callable[[list[str]], bool] | None) -> Outcome:
    dest, version, reporter, dry_run = destination(ctx), ctx.version, ctx.reporter, ctx.dry_run
    v = str(version)
    folder = key_of(Kind.VERSIONED, version=v, file="")
    reporter.step(f"validate {folder} on {dest.label}")
    dest.check_writable()
    scripts = install_scripts(ctx)
    raw = dest.read_bytes(key_of(Kind.VERSIONED, version=v, file=MANIFEST))
    if raw is None:
        raise KmError(f"{v} was never published to {dest.label} (no {folder}{MANIFEST})")
    try:
        manifest = json.loads(raw)
    except ValueError:
        raise KmError(f"{folder}{MANIFEST} on {dest.label} is not valid JSON") from None
    arts = {a["name"]: a for a in check_manifest(manifest, version, ctx.build)}
    binaries = ctx.build.file_names
    names = release_file_names(binaries, published_extras(dest, v, binaries), signed=True)
    files: dict[str, ObjectInfo] = {}
    missing = []
    for name in names:
        info = dest.stat(key_of(Kind.VERSIONED, version=v, file=name))
        if info is None and name in SIGNATURE_FILES:
            reporter.warn(f"{folder}{name} is missing: {v} was published before releases were signed")
            continue
        if info is None or (name in arts and info.size != arts[name]["size"]):
            missing.append(name)
        elif name == MANIFEST:
            files[name] = ObjectInfo(len(raw), digest_bytes(raw).md5)
        else:
            files[name] = info
    if missing:
        raise KmError(f"{folder} on {dest.label} is incomplete ({', '.join(missing)}): not promoted")
    sums_raw = dest.read_bytes(key_of(Kind.VERSIONED, version=v, file=SUMS)) or b""
    reporter.step(f"check the content of {folder} against its {SUMS}")
    check_content(dest, version, files, expected_from_published(version, sums_raw, raw, arts.values()))
    current = read_current(dest, reporter)
    outcome = Outcome(uploaded=[], skipped=names, current=str(current) if current else None)
    reporter.info(f"current version: {current or 'none'}")
    if dry_run:
        reporter.info(f"would make {v} current")
        return outcome
    if before_current is not None:
        outcome.changed_public |= before_current(names)
    outcome.changed_public |= publish_scripts(dest, scripts, reporter)
    outcome.changed_public |= make_current(dest, version, files, reporter)
    outcome.promoted, outcome.current = True, v
    return outcome
