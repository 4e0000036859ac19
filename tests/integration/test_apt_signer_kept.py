"""The development APT key's public half is kept beside it: a release whose APT index is unchanged
starts no gpg; signing still imports the key, which must be the kept one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kmrelease.errors import KmError
from kmrelease.packages import openpgp
from kmrelease.packages.openpgp import development_key, gpg_home
from kmrelease.ui import Reporter

QUIET = Reporter(quiet=True)


@pytest.fixture
def key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> openpgp.KeySource:
    for name in (openpgp.KEY_ENV, openpgp.KEY_FILE_ENV):
        monkeypatch.delenv(name, raising=False)
    return development_key(QUIET, tmp_path)


def test_the_second_signer_starts_no_gpg_until_it_signs(key: openpgp.KeySource) -> None:
    with gpg_home() as gpg:
        first = openpgp.Signer(gpg, key)
        assert gpg.used
    assert key.public_cache is not None and key.public_cache.is_file()
    with gpg_home() as gpg:
        second = openpgp.Signer(gpg, key)
        assert not gpg.used  # fingerprint and keyring from the kept public half
        assert (second.fingerprint, second.keyring) == (first.fingerprint, first.keyring)
        signed = second.clearsign(b"Origin: x\n")
        assert gpg.used and signed.startswith(b"-----BEGIN PGP SIGNED MESSAGE-----")


def keep_then_change(key: openpgp.KeySource, **changes: str) -> None:
    """Sign once (the public half is kept), then change fields of the kept ``public.json``."""
    assert key.public_cache is not None
    with gpg_home() as gpg:
        openpgp.Signer(gpg, key)
    doc = json.loads(key.public_cache.read_text())
    key.public_cache.write_text(json.dumps({**doc, **changes}))


def test_a_kept_half_of_other_key_bytes_is_not_used(key: openpgp.KeySource) -> None:
    keep_then_change(key, key_sha256="0" * 64)
    with gpg_home() as gpg:
        openpgp.Signer(gpg, key)
        assert gpg.used  # imported again


def test_a_kept_fingerprint_that_is_not_the_keys_refuses_to_sign(key: openpgp.KeySource) -> None:
    keep_then_change(key, fingerprint="F" * 40)
    with gpg_home() as gpg:
        s = openpgp.Signer(gpg, key)
        with pytest.raises(KmError, match=r"the key is not the one .*public\.json names"):
            s.detach_sign(b"x")
