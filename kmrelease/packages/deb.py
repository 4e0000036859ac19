"""``.deb`` packages of km (SPEC §14), built reproducibly with Debian's own tools.

The control file is written with python-debian, the archive by ``dpkg-deb`` with fixed
settings: ``--root-owner-group`` (no user names), one compressor at a fixed level on one
thread (gzip -6: a third of xz -1's time for a 7 MB Go binary, which keeps packaging within
its budget; apt reads both),
``SOURCE_DATE_EPOCH`` = the commit date (the ar member times, and the clamp of every tar
entry), every staged file's mode and mtime set explicitly (umask and clock play no
part). dpkg-deb sorts the members, so the same release gives the same bytes.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from debian.deb822 import Deb822

from ..errors import KmError
from ..layout import BUILD_META, write_if_changed
from .settings import PackageSettings

DEB_ARCHES = {"amd64": "amd64", "arm64": "arm64"}  # Go arch → Debian arch
COMPRESSION = ("gzip", "6")  # dpkg-deb -Z and -z: part of the reproducible settings
LINTIAN_OVERRIDES = """\
# km is a Go program: one statically linked executable with no shared library dependencies.
kilometers-cli: statically-linked-binary [usr/bin/km]
# km documents itself (`km --help`); the project ships no manual page.
kilometers-cli: no-manual-page [usr/bin/km]
"""


@dataclass(frozen=True)
class DebSpec:
    settings: PackageSettings
    debver: str
    arch: str  # Debian architecture
    epoch: int  # SOURCE_DATE_EPOCH: the commit date
    version: str  # the release version (v1.2.3), for the changelog

    @property
    def filename(self) -> str:
        return f"{self.settings.package}_{self.debver}_{self.arch}.deb"


def _epoch_of(date: str) -> int:
    return int(datetime.strptime(date, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp())


def epoch_of(date: str) -> int:
    """Seconds since 1970 of an RFC 3339 UTC build date."""
    try:
        return _epoch_of(date)
    except ValueError:
        raise KmError(f"build date {date!r} is not RFC 3339 UTC (YYYY-MM-DDTHH:MM:SSZ)") from None


def control(spec: DebSpec, binary: Path) -> Deb822:
    s = spec.settings
    ctl = Deb822()
    ctl["Package"] = s.package
    ctl["Version"] = spec.debver
    ctl["Architecture"] = spec.arch
    ctl["Maintainer"] = s.maintainer
    ctl["Installed-Size"] = str(_installed_kib(binary))
    ctl["Section"] = "utils"
    ctl["Priority"] = "optional"
    ctl["Homepage"] = s.homepage
    long = "\n".join(f" {line}" if line else " ." for line in s.long_description.splitlines())
    ctl["Description"] = f"{s.summary}\n{long}"
    return ctl


def _installed_kib(binary: Path) -> int:
    docs = 4  # copyright, changelog, overrides: a few KiB rounded up per file
    return (binary.stat().st_size + 1023) // 1024 + docs


def copyright_text(spec: DebSpec) -> str:
    s = spec.settings
    year = datetime.fromtimestamp(spec.epoch, UTC).year
    doc = Deb822()
    doc["Format"] = "https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
    doc["Upstream-Name"] = s.binary
    doc["Source"] = s.homepage
    files = Deb822()
    files["Files"] = "*"
    files["Copyright"] = f"{year} {s.copyright_holder}"
    files["License"] = s.license_text
    return f"{doc.dump()}\n{files.dump()}"


def changelog_gz(spec: DebSpec) -> bytes:
    """A native package's ``changelog.gz``: one entry for this version, gzip without name or time."""
    s = spec.settings
    date = datetime.fromtimestamp(spec.epoch, UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")
    text = (
        f"{s.package} ({spec.debver}) {'unstable' if '~' in spec.debver else 'stable'}; urgency=medium\n\n"
        f"  * Release {spec.version}.\n\n"
        f" -- {s.maintainer}  {date}\n"
    )
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(text.encode())
    return buf.getvalue()


def _put(path: Path, data: bytes, mode: int, epoch: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.chmod(path, mode)
    os.utime(path, (epoch, epoch))


def stage(spec: DebSpec, binary: Path, root: Path) -> None:
    """Lay out the package tree under ``root`` with fixed modes and times."""
    if root.exists():
        shutil.rmtree(root)
    s, e = spec.settings, spec.epoch
    doc = root / "usr" / "share" / "doc" / s.package
    files: dict[Path, tuple[bytes, int]] = {
        root / "usr" / "bin" / s.binary: (binary.read_bytes(), 0o755),
        doc / "copyright": (copyright_text(spec).encode(), 0o644),
        doc / "changelog.gz": (changelog_gz(spec), 0o644),
        root / "usr" / "share" / "lintian" / "overrides" / s.package: (LINTIAN_OVERRIDES.encode(), 0o644),
    }
    for path, (data, mode) in files.items():
        _put(path, data, mode, e)
    md5sums = "".join(
        f"{hashlib.md5(data, usedforsecurity=False).hexdigest()}  {path.relative_to(root).as_posix()}\n"
        for path, (data, _) in sorted(files.items())
    )
    _put(root / "DEBIAN" / "md5sums", md5sums.encode(), 0o644, e)
    _put(root / "DEBIAN" / "control", control(spec, binary).dump().encode(), 0o644, e)
    staged = [*files, root / "DEBIAN" / "md5sums"]
    for d in sorted({p for f in staged for p in f.parents if root in p.parents}):
        os.chmod(d, 0o755)
        os.utime(d, (e, e))
    os.chmod(root, 0o755)
    os.utime(root, (e, e))


def dpkg_deb(root: Path, out: Path, epoch: int) -> None:
    """``dpkg-deb --build`` with every setting that could change the bytes fixed."""
    tool = shutil.which("dpkg-deb")
    if tool is None:
        raise KmError("dpkg-deb is not installed: apt-get install dpkg-dev")
    zname, zlevel = COMPRESSION
    cmd = [
        tool, "--build", "--root-owner-group", f"-Z{zname}", f"-z{zlevel}", "--threads-max=1",
        "--uniform-compression", str(root), str(out),
    ]  # fmt: skip
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(epoch), "LC_ALL": "C.UTF-8", "TZ": "UTC"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise KmError(f"dpkg-deb failed for {out.name}: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")


def build_deb(spec: DebSpec, binary: Path, dist: Path, out_dir: Path) -> tuple[Path, bool]:
    """The ``.deb`` of one architecture in ``out_dir``; (path, whether it was (re)written).

    A stamp of the inputs (the binary's hash, the control and the settings) skips the
    build when nothing changed, so a warm release rewrites no byte.
    """
    out = out_dir / spec.filename
    work = dist / BUILD_META / "deb" / spec.arch
    work.mkdir(parents=True, exist_ok=True)
    stamp = work / "inputs.sha256"
    inputs = hashlib.sha256()
    inputs.update(hashlib.sha256(binary.read_bytes()).digest())
    inputs.update(repr((spec, LINTIAN_OVERRIDES, COMPRESSION)).encode())
    want = inputs.hexdigest() + "\n"
    if out.is_file() and stamp.is_file() and stamp.read_text() == want + _sha(out):
        return out, False
    tmp = work / f".{spec.filename}.tmp"
    stage(spec, binary, work / "root")
    dpkg_deb(work / "root", tmp, spec.epoch)
    if out.is_file() and out.read_bytes() == tmp.read_bytes():
        tmp.unlink()
        changed = False
    else:
        os.replace(tmp, out)
        changed = True
    write_if_changed(stamp, want + _sha(out))
    return out, changed


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() + "\n"
