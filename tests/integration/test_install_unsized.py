"""install.sh against bodies whose size the server does not announce (no Content-Length).

curl's ``--max-filesize`` stops only a body announced over the cap; one sent without a
length is stopped by the file size limit (``ulimit -f``) of the subshell that runs curl
(SIGXFSZ, whose status differs between shells), or, under posh (no ``ulimit``), by the
watchdog. The rest of the installer's fixtures are test_install_sh.py's.
"""

# ruff: noqa: F811  (the fixtures of test_install_sh are imported, then requested by name)
from __future__ import annotations

import pytest

from tests.integration.test_install_sh import (  # noqa: F401  (fixtures)
    CURRENT,
    Env,
    assert_installed,
    env,
    leftovers,
    release_key,
    site,
)
from tests.support.sites import Fault, fake_km

EARLIER = fake_km("v0.9.0")


@pytest.mark.parametrize("shell", ["dash", "bash", "ksh", "yash", "posh"])
def test_an_unsized_10_mb_version_is_refused_and_github_used(env: Env, shell: str) -> None:
    env.gh.latest = CURRENT
    (env.site / "meta" / "version").write_bytes(b"v1.2.3\n" + b"9" * 10_000_000)
    env.cdn.faults["/version"] = Fault.UNSIZED
    r = env.run("--install-dir", str(env.bindir), shell=shell)
    assert r.rc == 0, r.stderr
    assert "/version: larger than 256 bytes" in r.stderr and "trying GitHub" in r.stderr
    assert_installed(env, r, CURRENT)
    assert r.seconds < 15


@pytest.mark.parametrize("shell", ["dash", "yash"])
def test_an_unsized_huge_sha256sums_is_refused(env: Env, shell: str) -> None:
    """One curl for the four files lets each grow to the binary's cap; SHA256SUMS over its
    own cap is then taken alone, and stopped at 64 KiB."""
    env.bindir.mkdir()
    (env.bindir / "km").write_bytes(EARLIER)
    sums = env.site / "releases" / CURRENT / "SHA256SUMS"
    sums.write_bytes(sums.read_bytes() + b"#" * 3_000_000)
    env.cdn.faults[f"/releases/{CURRENT}/SHA256SUMS"] = Fault.UNSIZED
    r = env.run("--install-dir", str(env.bindir), "--source", "cdn", shell=shell)
    r.assert_failed("refusing a download", "larger than 65536 bytes")
    assert (env.bindir / "km").read_bytes() == EARLIER and leftovers(env.bindir) == []
    assert env.gh.paths() == []
