"""Signed release fixtures made with the real tools and a throwaway key (issue 10).

``make_key(directory)`` makes an ECDSA P-256 key with ``ssh-keygen`` (PEM, so openssl
reads it too) and returns its private key file and its public key as a PEM
``PUBLIC KEY`` (SubjectPublicKeyInfo, what ``build/keys/*.pem`` hold).
``sign_release(directory, version, key)`` writes ``SHA256SUMS.sig`` (``ssh-keygen -Y sign``,
namespace ``km-release-<v>``) and ``SHA256SUMS.p256`` (``openssl dgst -sha256 -sign`` over
``km-release-<v>\\n`` + SHA256SUMS) beside the directory's ``SHA256SUMS``: the signed
statement of HELPERS.md / SPEC.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from kmrelease.urlspace import Kind, key_of


@dataclass(frozen=True)
class ReleaseKey:
    private: Path
    public_pem: str


def make_key(directory: Path, name: str = "release") -> ReleaseKey:
    directory.mkdir(parents=True, exist_ok=True)
    private = directory / name
    private.unlink(missing_ok=True)
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ecdsa", "-b", "256", "-m", "PEM", "-N", "", "-C", "", "-f", str(private)],
        check=True,
        capture_output=True,
    )
    public = subprocess.run(
        ["openssl", "ec", "-in", str(private), "-pubout"], check=True, capture_output=True, text=True
    ).stdout
    return ReleaseKey(private, public)


def statement(version: str, sums: bytes) -> bytes:
    """The signed statement of release ``version``."""
    return f"km-release-{version}\n".encode() + sums


def sign_release(directory: Path, version: str, key: ReleaseKey, *, sums: bytes | None = None) -> None:
    """Sign ``directory/SHA256SUMS`` (or ``sums``, as if it were that file) for ``version``."""
    data = sums if sums is not None else (directory / "SHA256SUMS").read_bytes()
    work = directory / ".signing"
    work.mkdir(exist_ok=True)
    message = work / "SHA256SUMS"
    message.write_bytes(data)
    (work / "SHA256SUMS.sig").unlink(missing_ok=True)
    subprocess.run(
        [
            "ssh-keygen",
            "-q",
            "-Y",
            "sign",
            "-f",
            str(key.private),
            "-n",
            f"km-release-{version}",
            str(message),
        ],
        check=True,
        capture_output=True,
    )
    (directory / "SHA256SUMS.sig").write_bytes((work / "SHA256SUMS.sig").read_bytes())
    (work / "statement").write_bytes(statement(version, data))
    subprocess.run(
        [
            "openssl",
            "dgst",
            "-sha256",
            "-sign",
            str(key.private),
            "-out",
            str(directory / "SHA256SUMS.p256"),
            str(work / "statement"),
        ],
        check=True,
        capture_output=True,
    )
    for f in work.iterdir():
        f.unlink()
    work.rmdir()


def release_dir(site: Path, version: str) -> Path:
    """``releases/<version>/`` of a site directory."""
    return site.joinpath(*key_of(Kind.VERSIONED, version=version, file="x").split("/")[:-1])


def sign_site(site: Path, version: str, key: ReleaseKey) -> None:
    """Sign ``releases/<version>/`` of a site (and ``releases/latest/`` when it holds the same SHA256SUMS)."""
    versioned = release_dir(site, version)
    sign_release(versioned, version, key)
    latest = site.joinpath(*key_of(Kind.LATEST, file="x").split("/")[:-1])
    if (latest / "SHA256SUMS").is_file() and (latest / "SHA256SUMS").read_bytes() == (
        versioned / "SHA256SUMS"
    ).read_bytes():
        for name in ("SHA256SUMS.sig", "SHA256SUMS.p256"):
            (latest / name).write_bytes((versioned / name).read_bytes())
