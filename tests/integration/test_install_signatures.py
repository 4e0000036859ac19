"""install.sh checks the release signature (issue 10 point 4), with the real tools.

The site is signed by tests/support/signed_sites.py with ``ssh-keygen -Y sign`` and
``openssl dgst -sign`` and a throwaway key; install.sh trusts that key through its
release-settings block. Each verifier is chosen by what is on PATH: ssh-keygen
(OpenSSH 8.1+), else openssl, else none. Every refusal asserts the exit code, the
last stderr line, no request to another source and an untouched earlier km.
"""

# ruff: noqa: F811  (the fixtures of test_install_sh are imported, then requested by name)
from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from tests.integration.test_install_sh import (  # noqa: F401  (fixtures)
    ASSET,
    CURRENT,
    GH_PREFIX,
    OLDER,
    Env,
    assert_installed,
    cdn_paths,
    env,
    leftovers,
    release_key,
    site,
)
from tests.support.install_settings import write_install_sh
from tests.support.signed_sites import make_key, release_dir, sign_release, sign_site
from tests.support.sites import dead_url, fake_km, site_file

EARLIER = fake_km("v0.9.0")
VERIFIERS = {"ssh": "sig", "openssl": "p256"}


def path_without(e: Env, *missing: str) -> str:
    """A PATH holding everything of /usr/bin and /bin except ``missing``."""
    tools = e.tmp / ("tools-without-" + "-".join(missing))
    if not tools.exists():
        tools.mkdir()
        for d in ("/usr/bin", "/bin"):
            for name in os.listdir(d):
                if name not in missing and not (tools / name).exists():
                    (tools / name).symlink_to(Path(d) / name)
    return f"{e.fakes}:{tools}"


def verifier_path(e: Env, verifier: str) -> str:
    return {
        "ssh": f"{e.fakes}:/usr/bin:/bin",
        "openssl": path_without(e, "ssh-keygen"),
        "none": path_without(e, "ssh-keygen", "openssl"),
    }[verifier]


def earlier(e: Env) -> None:
    e.bindir.mkdir(exist_ok=True)
    (e.bindir / "km").write_bytes(EARLIER)
    (e.bindir / "km").chmod(0o755)


def assert_refused(e: Env, r: object, *needles: str) -> None:
    from tests.integration.test_install_sh import Result

    assert isinstance(r, Result)
    r.assert_failed(*needles)
    assert (e.bindir / "km").read_bytes() == EARLIER and leftovers(e.bindir) == []
    assert e.gh.paths() == []  # a red flag, not an outage: no other source is tried


def needs(verifier: str) -> None:
    if verifier == "ssh" and shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen is not installed")
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")


# -- the verifiers --------------------------------------------------------------------------


@pytest.mark.parametrize("verifier", ["ssh", "openssl"])
@pytest.mark.parametrize("shell", ["dash", "bash", "busybox ash"])
def test_signed_release_installs(env: Env, verifier: str, shell: str) -> None:
    needs(verifier)
    if shutil.which(shell.split()[0]) is None:
        pytest.skip(f"{shell} is not installed")
    r = env.run("--install-dir", str(env.bindir), shell=shell, path=verifier_path(env, verifier))
    assert_installed(env, r)
    assert f"verified the release signature of km {CURRENT} ({verifier})" in r.stdout
    assert "signature" not in r.stderr
    assert env.cdn.paths() == cdn_paths(sig=VERIFIERS[verifier])


def test_no_verifier_warns_once_and_installs(env: Env) -> None:
    r = env.run("--install-dir", str(env.bindir), path=verifier_path(env, "none"))
    assert_installed(env, r)
    warnings = [line for line in r.stderr.splitlines() if "signature" in line]
    assert warnings == [
        "warning: not checking the release signature: neither ssh-keygen (OpenSSH 8.1 or later) nor"
        " openssl is installed (install OpenSSH's ssh-keygen or openssl); installing on the SHA-256"
        " checksum alone"
    ]
    assert env.cdn.paths() == cdn_paths(sig=None)


@pytest.mark.parametrize("how", ["flag", "env"])
def test_no_verifier_with_require_signature_refuses(env: Env, how: str) -> None:
    earlier(env)
    args = ["--require-signature"] if how == "flag" else []
    extra = {"KM_REQUIRE_SIGNATURE": "1"} if how == "env" else {}
    r = env.run("--install-dir", str(env.bindir), *args, path=verifier_path(env, "none"), env=extra)
    assert_refused(env, r, "cannot check the release signature", "ssh-keygen", "openssl")
    assert env.all_requests() == []  # refused before any download


def test_unkeyed_installer_warns_and_require_signature_refuses(env: Env) -> None:
    """The repository copy before any key exists: it says so; a required signature refuses."""
    plain = write_install_sh(env.tmp / "plain.sh", TRUSTED_KEYS="")
    r = env.run("--install-dir", str(env.bindir), script=plain)
    assert_installed(env, r)
    assert "this copy of the installer carries no release keys" in r.stderr
    earlier(env)
    r = env.run("--install-dir", str(env.bindir), "--require-signature", script=plain)
    assert_refused(env, r, "carries no release keys")


def test_rotation_any_trusted_key_verifies(env: Env) -> None:
    """Trusting the current key A and the next key B, a release signed with B installs."""
    b = make_key(env.tmp / "next-key")
    sign_site(env.site, CURRENT, b)
    both = write_install_sh(
        env.tmp / "both.sh", TRUSTED_KEYS=env.key.public_pem.strip() + "\n" + b.public_pem.strip()
    )
    for verifier in ("ssh", "openssl"):
        r = env.run("--install-dir", str(env.bindir), script=both, path=verifier_path(env, verifier))
        assert_installed(env, r)
        assert f"({verifier})" in r.stdout


# -- refusals -------------------------------------------------------------------------------


def _tamper(e: Env) -> str:
    """An attacker with the storage account: a new binary, SHA256SUMS and .sha256 to match."""
    evil = fake_km(CURRENT, tag="evil")
    digest = hashlib.sha256(evil).hexdigest()
    site_file(e.site, CURRENT, ASSET).write_bytes(evil)
    site_file(e.site, CURRENT, ASSET + ".sha256").write_text(f"{digest}  {ASSET}\n")
    sums = site_file(e.site, CURRENT, "SHA256SUMS")
    lines = [
        f"{digest}  {ASSET}" if line.endswith("  " + ASSET) else line
        for line in sums.read_text().splitlines()
    ]
    sums.write_text("\n".join(lines) + "\n")
    return digest


@pytest.mark.parametrize("verifier", ["ssh", "openssl"])
def test_consistently_rewritten_checksums_are_refused(env: Env, verifier: str) -> None:
    needs(verifier)
    earlier(env)
    _tamper(env)
    r = env.run("--install-dir", str(env.bindir), path=verifier_path(env, verifier))
    assert_refused(env, r, "does not verify", f"km {CURRENT}", "refusing to install")
    # The binary may come over the same connection as the small files: it is never checked, run or kept.
    assert "verified sha256" not in r.stdout


@pytest.mark.parametrize("verifier", ["ssh", "openssl"])
def test_signature_by_an_unknown_key_is_refused(env: Env, verifier: str) -> None:
    needs(verifier)
    earlier(env)
    _tamper(env)
    sign_site(env.site, CURRENT, make_key(env.tmp / "attacker"))
    r = env.run("--install-dir", str(env.bindir), path=verifier_path(env, verifier))
    assert_refused(env, r, "does not verify", "unknown key")


@pytest.mark.parametrize("verifier", ["ssh", "openssl"])
def test_signature_replayed_from_an_older_release_is_refused(env: Env, verifier: str) -> None:
    """v1.1.0's files with v1.1.0's valid signature, served as v1.2.3."""
    needs(verifier)
    earlier(env)
    old, new = release_dir(env.site, OLDER), release_dir(env.site, CURRENT)
    for name in ("SHA256SUMS", "SHA256SUMS.sig", "SHA256SUMS.p256", ASSET, ASSET + ".sha256"):
        (new / name).write_bytes((old / name).read_bytes())
    r = env.run("--install-dir", str(env.bindir), path=verifier_path(env, verifier))
    assert_refused(env, r, "does not verify", f"km {CURRENT}", "another release")


def test_signature_over_other_bytes_is_refused(env: Env) -> None:
    """A valid signature for v1.2.3 over another SHA256SUMS (another file set) is refused."""
    earlier(env)
    sums = site_file(env.site, CURRENT, "SHA256SUMS")
    sign_release(release_dir(env.site, CURRENT), CURRENT, env.key, sums=sums.read_bytes() + b"x  y\n")
    for verifier in ("ssh", "openssl"):
        r = env.run("--install-dir", str(env.bindir), path=verifier_path(env, verifier))
        assert_refused(env, r, "does not verify")


@pytest.mark.parametrize("verifier", ["ssh", "openssl"])
def test_missing_signature_is_refused_where_a_verifier_exists(env: Env, verifier: str) -> None:
    needs(verifier)
    earlier(env)
    site_file(env.site, CURRENT, f"SHA256SUMS.{VERIFIERS[verifier]}").unlink()
    r = env.run("--install-dir", str(env.bindir), path=verifier_path(env, verifier))
    assert_refused(env, r, f"km {CURRENT} has no signature", "HTTP 404", "not retried")


@pytest.mark.parametrize("verifier", ["ssh", "openssl"])
def test_github_fallback_with_a_bad_signature_is_refused(env: Env, verifier: str) -> None:
    needs(verifier)
    earlier(env)
    _tamper(env)
    sign_site(env.site, CURRENT, make_key(env.tmp / "attacker"))
    r = env.run(
        "--install-dir", str(env.bindir), path=verifier_path(env, verifier), env={"KM_BASE_URL": dead_url()}
    )
    r.assert_failed("does not verify", "refusing to install")
    assert "trying GitHub" in r.stderr
    assert f"{GH_PREFIX}/download/{CURRENT}/SHA256SUMS.{VERIFIERS[verifier]}" in env.gh.paths()
    assert not any(p.endswith("/" + ASSET) for p in env.gh.paths())
    assert (env.bindir / "km").read_bytes() == EARLIER and leftovers(env.bindir) == []


def test_checksum_files_that_disagree_are_refused(env: Env) -> None:
    """SHA256SUMS (signed) and the .sha256 must name the same hash for the exact file name."""
    earlier(env)
    site_file(env.site, CURRENT, ASSET + ".sha256").write_text(f"{'0' * 64}  {ASSET}\n")
    r = env.run("--install-dir", str(env.bindir))
    assert_refused(env, r, "SHA256SUMS says sha256", f"{ASSET}.sha256 says {'0' * 64}")


@pytest.mark.parametrize(
    "sums",
    [
        "not a checksum list\n",
        f"{'a' * 64}  km-linux-arm64\n",
        f"{'a' * 64}  {ASSET}\n{'b' * 64}  {ASSET}\n",
        f"{'a' * 63}  {ASSET}\n",
    ],
    ids=["garbage", "not-listed", "twice", "short-hash"],
)
def test_malformed_signed_sums_are_refused(env: Env, sums: str) -> None:
    """Even correctly signed, a SHA256SUMS that does not name the asset once is refused."""
    earlier(env)
    site_file(env.site, CURRENT, "SHA256SUMS").write_text(sums)
    sign_site(env.site, CURRENT, env.key)
    r = env.run("--install-dir", str(env.bindir))
    assert_refused(env, r, "SHA256SUMS of km v1.2.3")


def test_keys_ssh_keygen_cannot_read_are_one_line(env: Env) -> None:
    """A trusted key that is not an EC public key: ssh-keygen cannot convert it; refused, said so."""
    earlier(env)
    garbage = "-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----"
    script = write_install_sh(env.tmp / "bad-keys.sh", TRUSTED_KEYS=garbage)
    r = env.run("--install-dir", str(env.bindir), script=script)
    assert_refused(env, r, "ssh-keygen cannot read this installer's release keys")
