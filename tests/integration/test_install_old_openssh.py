"""install.sh with an OpenSSH before 8.1 (no ``ssh-keygen -Y``), told by its verify, not by a probe.

install.sh no longer runs ``ssh-keygen -Y verify`` once to see whether it can: it verifies, and
an ssh-keygen that answers "illegal option -- Y" (OpenSSH 7.x) hands over to openssl with
``SHA256SUMS.p256`` (fetched only then), or, without openssl, to the no-verifier rules (one
warning, or the refusal with ``--require-signature``). The fake ssh-keygen answers as OpenSSH 7.6.
"""

# ruff: noqa: F811  (the fixtures of test_install_sh are imported, then requested by name)
from __future__ import annotations

from tests.integration.test_install_sh import (  # noqa: F401  (fixtures)
    ASSET,
    CURRENT,
    Env,
    assert_installed,
    cdn_paths,
    env,
    release_key,
    site,
)
from tests.integration.test_install_signatures import assert_refused, earlier, needs, path_without
from tests.support.signed_sites import make_key, sign_site
from tests.support.sites import site_file

OLD_SSH_KEYGEN = """#!/bin/sh
echo "ssh-keygen: illegal option -- Y" >&2
echo "usage: ssh-keygen [-q] [-b bits] [-C comment] [-f output_keyfile] [-m format]" >&2
exit 1
"""
BOTH = [
    "/version",
    f"/releases/{CURRENT}/SHA256SUMS",
    f"/releases/{CURRENT}/SHA256SUMS.sig",
    f"/releases/{CURRENT}/{ASSET}.sha256",
    f"/releases/{CURRENT}/{ASSET}",
    f"/releases/{CURRENT}/SHA256SUMS.p256",
]


def old_openssh(e: Env) -> None:
    e.write_tool("ssh-keygen", OLD_SSH_KEYGEN)


def test_openssl_takes_over_from_an_old_ssh_keygen(env: Env) -> None:
    needs("openssl")
    old_openssh(env)
    r = env.run("--install-dir", str(env.bindir))
    assert_installed(env, r)
    assert f"verified the release signature of km {CURRENT} (openssl)" in r.stdout
    assert "signature" not in r.stderr
    assert env.cdn.paths() == BOTH


def test_old_ssh_keygen_without_openssl_warns_once_and_installs(env: Env) -> None:
    old_openssh(env)
    r = env.run("--install-dir", str(env.bindir), path=path_without(env, "openssl"))
    assert_installed(env, r)
    warnings = [line for line in r.stderr.splitlines() if "signature" in line]
    assert warnings == [
        "warning: not checking the release signature: neither ssh-keygen (OpenSSH 8.1 or later) nor"
        " openssl is installed (install OpenSSH's ssh-keygen or openssl); installing on the SHA-256"
        " checksum alone"
    ]
    assert env.cdn.paths() == cdn_paths()


def test_old_ssh_keygen_without_openssl_refuses_a_required_signature(env: Env) -> None:
    old_openssh(env)
    earlier(env)
    r = env.run("--install-dir", str(env.bindir), "--require-signature", path=path_without(env, "openssl"))
    assert_refused(env, r, "cannot check the release signature", "ssh-keygen", "openssl")


def test_old_ssh_keygen_and_a_missing_p256_is_refused(env: Env) -> None:
    needs("openssl")
    old_openssh(env)
    earlier(env)
    site_file(env.site, CURRENT, "SHA256SUMS.p256").unlink()
    r = env.run("--install-dir", str(env.bindir))
    assert_refused(env, r, f"km {CURRENT} has no signature", "SHA256SUMS.p256", "404")


def test_old_ssh_keygen_and_a_p256_by_another_key_is_refused(env: Env) -> None:
    needs("openssl")
    old_openssh(env)
    earlier(env)
    good_sig = site_file(env.site, CURRENT, "SHA256SUMS.sig").read_bytes()
    sign_site(env.site, CURRENT, make_key(env.tmp / "other-key"))
    site_file(env.site, CURRENT, "SHA256SUMS.sig").write_bytes(good_sig)  # only the .p256 is wrong
    r = env.run("--install-dir", str(env.bindir))
    assert_refused(env, r, "SHA256SUMS.p256 does not verify", f"km {CURRENT}")
