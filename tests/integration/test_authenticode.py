"""Authenticode: the Windows binaries signed with a throwaway test CA (made with openssl),
checked by `osslsigncode verify`; reproducibility compares the bytes without the signature."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from kmrelease.artifacts import Release
from kmrelease.authenticode import (
    AuthenticodeKey,
    authenticode_key,
    authenticode_stage,
    is_signed,
    unsigned_sha256,
)
from kmrelease.errors import KmError
from kmrelease.matrix import TARGETS
from kmrelease.prebuilt import assemble
from kmrelease.ui import Reporter
from tests.support.fake_tsa import fake_tsa, timestamped_by
from tests.support.releases import PROJECT, context
from tests.support.signing import code_signing_ca

QUIET = Reporter(quiet=True)
EXES = [PROJECT.build.file_name(t) for t in TARGETS if t.os == "windows"]
EPOCH = 1767225600


@pytest.fixture(scope="module")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[AuthenticodeKey, Path]:
    d = code_signing_ca(tmp_path_factory.mktemp("ca"))
    return AuthenticodeKey(d / "cs.crt", d / "cs.key"), d / "ca.crt"


def verify(exe: Path, ca: Path) -> int:
    cmd = ["osslsigncode", "verify", "-CAfile", str(ca), "-in", str(exe)]
    proc = subprocess.run(cmd, capture_output=True, timeout=60)
    return proc.returncode


@pytest.fixture
def dist(release_v1: Release, tmp_path: Path) -> Path:
    out = tmp_path / "v1.0.0"
    shutil.copytree(release_v1.files[0].path.parent, out)
    return out


def test_windows_binaries_are_signed_and_verify(dist: Path, test_ca: tuple[AuthenticodeKey, Path]) -> None:
    key, ca = test_ca
    before = {n: hashlib.sha256((dist / n).read_bytes()).hexdigest() for n in EXES}
    assert not any(is_signed(dist / n) for n in EXES)
    assert authenticode_stage(dist, EXES, key, EPOCH, QUIET, dry_run=False) == EXES
    for name in EXES:
        assert is_signed(dist / name) and verify(dist / name, ca) == 0
        # the code is the same: only the signature (and the PE checksum it sets) was added
        assert hashlib.sha256((dist / name).read_bytes()).hexdigest() != before[name]
    assert authenticode_stage(dist, EXES, key, EPOCH, QUIET, dry_run=False) == []  # already signed
    other = Path(str(ca).replace("ca.crt", "cs.crt"))
    assert verify(dist / EXES[0], other) != 0  # not trusted by an unrelated CA file


def test_signing_is_reproducible_and_removable(
    dist: Path, tmp_path: Path, test_ca: tuple[AuthenticodeKey, Path]
) -> None:
    key, _ = test_ca
    orig = tmp_path / "orig.exe"
    shutil.copyfile(dist / EXES[0], orig)
    authenticode_stage(dist, EXES[:1], key, EPOCH, QUIET, dry_run=False)
    again = tmp_path / "again"
    again.mkdir()
    shutil.copyfile(orig, again / EXES[0])
    authenticode_stage(again, EXES[:1], key, EPOCH, QUIET, dry_run=False)
    assert (again / EXES[0]).read_bytes() == (dist / EXES[0]).read_bytes()
    assert unsigned_sha256(dist / EXES[0]) == unsigned_sha256(orig)


def test_a_tampered_signed_binary_does_not_verify(dist: Path, test_ca: tuple[AuthenticodeKey, Path]) -> None:
    key, ca = test_ca
    authenticode_stage(dist, EXES[:1], key, EPOCH, QUIET, dry_run=False)
    data = bytearray((dist / EXES[0]).read_bytes())
    data[len(data) // 3] ^= 0xFF
    (dist / EXES[0]).write_bytes(data)
    assert verify(dist / EXES[0], ca) != 0


def test_a_key_that_does_not_match_the_certificate_is_one_line(
    dist: Path, test_ca: tuple[AuthenticodeKey, Path], tmp_path: Path
) -> None:
    key, ca = test_ca
    wrong = AuthenticodeKey(key.cert, Path(str(ca).replace(".crt", ".key")))
    with pytest.raises(KmError, match=f"{EXES[0]}: Authenticode signing failed"):
        authenticode_stage(dist, EXES[:1], wrong, EPOCH, QUIET, dry_run=False)
    assert not is_signed(dist / EXES[0])


def test_a_configured_time_stamping_authority_stamps_the_signature(
    dist: Path, test_ca: tuple[AuthenticodeKey, Path]
) -> None:
    key, ca = test_ca
    with fake_tsa(ca.parent) as tsa:
        stamped = AuthenticodeKey(key.cert, key.key, tsa.url)
        assert authenticode_stage(dist, EXES, stamped, EPOCH, QUIET, dry_run=False) == EXES
    assert tsa.requests == len(EXES)
    for name in EXES:
        assert verify(dist / name, ca) == 0
        assert timestamped_by(dist / name, ca.parent) == "/CN=km test time-stamping authority"


def test_a_time_stamping_authority_that_is_down_is_one_line_and_signs_nothing(
    dist: Path, test_ca: tuple[AuthenticodeKey, Path]
) -> None:
    key, ca = test_ca
    with fake_tsa(ca.parent, mode="down") as tsa:
        stamped = AuthenticodeKey(key.cert, key.key, tsa.url)
        with pytest.raises(KmError) as err:
            authenticode_stage(dist, EXES, stamped, EPOCH, QUIET, dry_run=False)
    assert tsa.requests == 1  # the first binary; the stage stops there
    assert str(err.value) == (
        f"{EXES[0]}: Authenticode signing failed: RFC 3161 timestamping failed "
        f"(HTTP failure: Failed to get data from {tsa.url})"
    )
    assert not any(is_signed(dist / n) for n in EXES)
    assert not list(dist.glob(".*.signed"))  # no half-made file left behind


def test_the_configuration_gives_a_certificate_pair_its_time_stamping_authority(
    tmp_path: Path, test_ca: tuple[AuthenticodeKey, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("KM_AUTHENTICODE_KEYVAULT", "KM_AUTHENTICODE_TIMESTAMP_URL"):
        monkeypatch.delenv(name, raising=False)
    key, _ = test_ca
    monkeypatch.setenv("KM_AUTHENTICODE_CERT", str(key.cert))
    monkeypatch.setenv("KM_AUTHENTICODE_KEY", str(key.key))
    conf = tmp_path / "release.toml"
    conf.write_text('[signing]\nauthenticode_timestamp_url = "http://timestamp.digicert.com"\n')
    assert authenticode_key(conf, tmp_path) == AuthenticodeKey(
        key.cert, key.key, "http://timestamp.digicert.com"
    )
    for bad in ("ftp://tsa.example", "timestamp.digicert.com", "http://"):
        monkeypatch.setenv("KM_AUTHENTICODE_TIMESTAMP_URL", bad)
        with pytest.raises(KmError, match="^authenticode_timestamp_url must be an http\\(s\\) URL, not "):
            authenticode_key(conf, tmp_path)
    monkeypatch.setenv("KM_AUTHENTICODE_TIMESTAMP_URL", "https://signer:hunter2@tsa.example/")
    with pytest.raises(KmError) as err:
        authenticode_key(conf, tmp_path)
    assert str(err.value) == "authenticode_timestamp_url must not carry credentials (user:password@)"


@pytest.mark.slow
def test_check_reproducible_compares_without_the_signature(
    release_v1: Release,
    tmp_path: Path,
    test_ca: tuple[AuthenticodeKey, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Split CI builds whose Windows binaries were signed afterwards still prove reproducible."""
    key, _ = test_ca
    src = tmp_path / "prebuilt"
    shutil.copytree(release_v1.files[0].path.parent, src, ignore=shutil.ignore_patterns(".build", "*.json"))
    authenticode_stage(src, EXES, key, EPOCH, QUIET, dry_run=False)
    ctx = context("v1.0.0", tmp_path / "dist", dry_run=True)
    assemble(ctx, src, check_reproducible=True)
    data = bytearray((src / EXES[0]).read_bytes())
    data[len(data) // 3] ^= 0xFF  # the code changed under a (now broken) signature
    (src / EXES[0]).write_bytes(data)
    with pytest.raises(KmError, match=f"differ from a local rebuild: {EXES[0]}"):
        assemble(ctx, src, check_reproducible=True)
