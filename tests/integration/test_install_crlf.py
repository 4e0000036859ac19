"""install.sh reads a server's CRLF lines: ``/version``, ``SHA256SUMS`` and the ``.sha256`` each
with ``\\r\\n`` line ends (a CDN or a Windows-made release) install as LF ones do. The carriage
return is made once per run (a command substitution forks), not once per checksum line."""

# ruff: noqa: F811  (the fixtures of test_install_sh are imported, then requested by name)
from __future__ import annotations

from tests.integration.test_install_sh import (  # noqa: F401  (fixtures)
    ASSET,
    CURRENT,
    INSTALL_SH,
    Env,
    assert_installed,
    env,
    release_key,
    site,
)
from tests.support.signed_sites import sign_site
from tests.support.sites import site_file


def crlf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


def test_crlf_version_and_checksums_install(env: Env) -> None:
    version = env.site / "meta" / "version"
    version.write_text(crlf(version.read_text()))
    for name in ("SHA256SUMS", ASSET + ".sha256"):
        f = site_file(env.site, CURRENT, name)
        f.write_bytes(crlf(f.read_text()).encode())
    sign_site(env.site, CURRENT, env.key)  # the signature covers the CRLF bytes
    r = env.run("--install-dir", str(env.bindir))
    assert_installed(env, r)


def test_the_carriage_return_is_made_once() -> None:
    assert INSTALL_SH.read_text().count("$(printf '\\r')") == 1
