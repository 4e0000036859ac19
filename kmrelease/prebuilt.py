"""Assemble a release from binaries built elsewhere (split CI builds): ``inv release --prebuilt DIR``.

Nothing is published unless every configured binary (``<binary>-<os>-<arch>[.exe]``
of ``[build]``) is present once, has the right header and CPU, carries the version,
and (where it can run here) prints exactly the version line this checkout would inject.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from .build import build, check_binary, prepare, recipe
from .context import ReleaseContext
from .errors import KmError
from .hashing import sha256_file


def find_binaries(ctx: ReleaseContext, src: Path) -> dict[str, Path]:
    """Each configured binary under ``src`` (any depth, as artifact downloads nest them)."""
    if not src.is_dir():
        raise KmError(f"--prebuilt {src} is not a directory")
    found: dict[str, list[Path]] = {name: [] for name in ctx.build.file_names}
    for path in sorted(src.rglob("*")):
        if path.name in found and path.is_file():
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


def _check_reproducible(ctx: ReleaseContext, found: dict[str, Path]) -> None:
    with tempfile.TemporaryDirectory(prefix="kmrelease-rebuild-") as tmp:
        ctx.reporter.step("rebuild locally to prove the prebuilt binaries are reproducible")
        rebuilt = build(ctx.replace(dist_root=Path(tmp), dry_run=False))
        differ = [
            ctx.file_name(b.target) for b in rebuilt if not _same_code(b.path, found[ctx.file_name(b.target)])
        ]
        if differ:
            raise KmError(f"prebuilt binaries differ from a local rebuild: {', '.join(differ)}")


def assemble(ctx: ReleaseContext, src: Path, *, check_reproducible: bool = False) -> Path:
    """Check the binaries under ``src`` and copy them into ``ctx.dist``."""
    _, info = prepare(ctx)
    found = find_binaries(ctx, src)
    ctx.reporter.step(f"check {len(found)} prebuilt binaries from {src}")
    for t in ctx.build.targets:
        check_binary(ctx, found[ctx.file_name(t)], recipe(ctx, info, t), info)
    if check_reproducible:
        _check_reproducible(ctx, found)
    out = ctx.dist
    if ctx.dry_run:
        ctx.reporter.info(f"would copy the binaries into {out}")
        return out
    out.mkdir(parents=True, exist_ok=True)
    info.save(out)
    for name, src_file in found.items():
        dst = out / name
        if dst.exists() and sha256_file(dst) == sha256_file(src_file):
            continue
        part = dst.with_name(f".{name}.tmp")
        shutil.copyfile(src_file, part)
        os.chmod(part, 0o755)
        os.replace(part, dst)
    return out
