"""Assemble a release from binaries built elsewhere (split CI builds): ``inv release --prebuilt DIR``.

Nothing is published unless every binary of the matrix is present once, has the
right header and CPU, carries the version, and (where it can run here) reports
exactly the version line this checkout would inject.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from .build import build, check_binary, resolve_build_info
from .errors import KmError
from .gotool import find_go
from .hashing import sha256_file
from .layout import dist_dir
from .matrix import TARGETS
from .ui import Reporter
from .version import Version


def find_binaries(src: Path) -> dict[str, Path]:
    """Each matrix binary under ``src`` (any depth, as artifact downloads nest them)."""
    if not src.is_dir():
        raise KmError(f"--prebuilt {src} is not a directory")
    found: dict[str, list[Path]] = {t.filename: [] for t in TARGETS}
    for path in sorted(src.rglob("km-*")):
        if path.is_file() and path.name in found:
            found[path.name].append(path)
    missing = [n for n, paths in found.items() if not paths]
    if missing:
        raise KmError(f"--prebuilt {src} is incomplete: missing {', '.join(missing)}")
    out: dict[str, Path] = {}
    for name, paths in found.items():
        if len({sha256_file(p) for p in paths}) > 1:
            raise KmError(f"--prebuilt {src} holds different copies of {name}: {', '.join(map(str, paths))}")
        out[name] = paths[0]
    return out


def _same_code(rebuilt: Path, prebuilt: Path) -> bool:
    """Byte-identical, or (a signed Windows binary) identical once its Authenticode signature is removed."""
    if sha256_file(rebuilt) == sha256_file(prebuilt):
        return True
    if prebuilt.name.endswith(".exe"):
        from .authenticode import is_signed, unsigned_sha256

        return is_signed(prebuilt) and unsigned_sha256(prebuilt) == unsigned_sha256(rebuilt)
    return False


def assemble(
    src: Path,
    version: Version,
    reporter: Reporter,
    *,
    dry_run: bool = False,
    check_reproducible: bool = False,
) -> Path:
    go = find_go()
    info = resolve_build_info(version, go, reporter)
    found = find_binaries(src)
    reporter.step(f"check {len(found)} prebuilt binaries from {src}")
    for t in TARGETS:
        check_binary(found[t.filename], t, info, reporter)
    if check_reproducible:
        with tempfile.TemporaryDirectory(prefix="km-rebuild-") as tmp:
            reporter.step("rebuild locally to prove the prebuilt binaries are reproducible")
            rebuilt = build(version, TARGETS, reporter, out_root=Path(tmp))
            differ = [b.target.filename for b in rebuilt if not _same_code(b.path, found[b.target.filename])]
            if differ:
                raise KmError(f"prebuilt binaries differ from a local rebuild: {', '.join(differ)}")
    out = dist_dir(str(version))
    if dry_run:
        reporter.info(f"would copy the binaries into {out}")
        return out
    out.mkdir(parents=True, exist_ok=True)
    info.save(out)
    for t in TARGETS:
        dst = out / t.filename
        src_file = found[t.filename]
        if dst.exists() and sha256_file(dst) == sha256_file(src_file):
            continue
        part = dst.with_name(f".{t.filename}.tmp")
        shutil.copyfile(src_file, part)
        os.chmod(part, 0o755)
        os.replace(part, dst)
    return out
