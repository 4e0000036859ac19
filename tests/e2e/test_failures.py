"""SPEC §11 failure rows: each asserts the exit code, the last stderr line and the install directory."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.sites import GITHUB_REPO, CdnServer, Fault, GitHubServer
from tools.containers import Result

from .conftest import CURL_GET, DEAD_URL, OLD, WGET_GET, Box, Published, install_script, marked

RUN = "sh /tmp/install.sh"


def assert_failed(res: Result, *, install_dir_listing: str = "") -> str:
    """A failure: non-zero exit, a last stderr line, nothing (else) in the install directory."""
    assert marked(res, "exit") not in ("0", ""), f"the installer succeeded:\n{res.describe()}"
    last = res.last_stderr_line
    assert last, f"no message on stderr:\n{res.describe()}"
    assert marked(res, "listing") == install_dir_listing, f"install directory changed:\n{res.describe()}"
    return last


class TamperedCdn(CdnServer):
    """The CDN, with some bodies replaced (a checksum file that does not match, say)."""

    def __init__(self, site: Path, replace: dict[str, bytes]) -> None:
        super().__init__(site)
        self.replace = replace

    def answer(self, path: str) -> tuple[int, bytes, dict[str, str]]:
        status, body, headers = super().answer(path)
        if path in self.replace:
            return 200, self.replace[path], headers
        return status, body, headers


@pytest.fixture
def github(published: Published) -> Iterator[GitHubServer]:
    """GitHub's download layout for the published site; assets answer with a 302 to another port."""
    with GitHubServer(published.site) as gh:
        yield gh


def test_checksum_mismatch_refused(box: Box, published: Published, github: GitHubServer) -> None:
    """The .sha256 does not match the binary: refused with both hashes, nothing installed, no fallback."""
    v = published.current
    actual = published.artifact(v, "km-linux-amd64")["sha256"]
    claimed = published.artifact(OLD, "km-linux-amd64")["sha256"]
    assert claimed != actual
    # only the .sha256: SHA256SUMS rewritten too would be refused by its signature, before the
    # binary is fetched (tests/e2e/test_signatures.py, tests/integration/test_install_signatures.py)
    bad = {f"/releases/{v}/km-linux-amd64.sha256": f"{claimed}  km-linux-amd64\n".encode()}
    with TamperedCdn(published.site, bad) as cdn:
        res = box.run(
            "debian12",
            install_script(f"{CURL_GET}; {RUN}"),
            env={"KM_BASE_URL": cdn.url, "KM_GITHUB_BASE_URL": github.url},
        )
    last = assert_failed(res)
    assert claimed in res.stderr and actual in res.stderr, f"both hashes must be shown:\n{res.describe()}"
    assert re.search(r"checksum|sha-?256|hash", last, re.I), last
    assert f"/releases/{v}/km-linux-amd64" in cdn.paths()
    assert github.paths() == [], "a checksum mismatch must never fall back to GitHub"


def test_unpublished_version(box: Box, published: Published, github: GitHubServer) -> None:
    """--version v9.9.9 was never published: a clear error naming it."""
    res = box.run(
        "debian12",
        install_script(f"{CURL_GET}; {RUN} --version v9.9.9"),
        env={"KM_GITHUB_BASE_URL": github.url},
    )
    last = assert_failed(res)
    assert "v9.9.9" in last, last


@pytest.mark.parametrize("image", ["debian12", "busybox"])
def test_cdn_down_falls_back_to_github(
    box: Box, published: Published, github: GitHubServer, image: str
) -> None:
    """Nothing listens at the CDN: installed from GitHub's layout, through its 302 to another host.

    On busybox, wget 1.35 segfaults on a refused connection: that must read as a CDN failure.
    """
    get = CURL_GET if image == "debian12" else WGET_GET
    res = box.run(
        image,
        install_script(f"{get}; {RUN}"),
        env={"KM_BASE_URL": DEAD_URL, "KM_GITHUB_BASE_URL": github.url},
    )
    assert marked(res, "exit") == "0", res.describe()
    assert marked(res, "version") == published.version_line(published.current, "linux/amd64"), res.describe()
    assert marked(res, "listing") == "km", res.describe()
    gh = github.paths()
    assert any(p.endswith("/km-linux-amd64") for p in gh), gh
    assert all(p.startswith(f"/{GITHUB_REPO}/releases/") for p in gh), gh
    assert any(p.endswith("/km-linux-amd64") for p in github.asset_host.paths()), "the 302 was not followed"


def test_source_github_never_touches_the_cdn(box: Box, published: Published, github: GitHubServer) -> None:
    """KM_INSTALL_SOURCE=github: installed from GitHub; the CDN receives no request at all."""
    with CdnServer(published.site) as cdn:
        res = box.run(
            "debian12",
            install_script(f"{CURL_GET}; {RUN}"),
            env={"KM_BASE_URL": cdn.url, "KM_GITHUB_BASE_URL": github.url, "KM_INSTALL_SOURCE": "github"},
        )
    assert marked(res, "exit") == "0", res.describe()
    assert marked(res, "version") == published.version_line(published.current, "linux/amd64"), res.describe()
    assert cdn.paths() == [], f"the CDN was asked for {cdn.paths()}"
    assert github.paths(), "GitHub was not asked"


def test_interrupted_download_keeps_the_earlier_km(box: Box, published: Published) -> None:
    """The binary is cut off half way: failure; the km installed before runs unchanged."""
    v = published.current
    with CdnServer(published.site) as cut:
        cut.faults[f"/releases/{v}/km-linux-amd64"] = Fault.TRUNCATE
        before = (
            f"{CURL_GET}\nKM_VERSION={OLD} {RUN} >/dev/null 2>&1 || echo '@@first=failed'\n"
            f"echo \"@@before=$(sha256sum /usr/local/bin/km | cut -d' ' -f1)\""
        )
        res = box.run(
            "debian12", install_script(f"KM_BASE_URL={cut.url} KM_INSTALL_SOURCE=cdn {RUN}", before=before)
        )
    old_sha = published.artifact(OLD, "km-linux-amd64")["sha256"]
    assert "@@first=failed" not in res.stdout, res.describe()
    assert marked(res, "before") == old_sha, res.describe()
    assert_failed(res, install_dir_listing="km")
    assert marked(res, "sha256") == old_sha, res.describe()
    assert marked(res, "version") == published.version_line(OLD, "linux/amd64"), res.describe()
    assert f"/releases/{v}/km-linux-amd64" in cut.paths(), cut.paths()


def test_unwritable_install_dir(box: Box, published: Published) -> None:
    """A user who cannot write /usr/local/bin: the advice line (sudo or --install-dir), nothing written."""
    script = install_script(f"{CURL_GET}; {RUN}") + (
        "echo \"@@home=$(ls -A \"$HOME/.local/bin\" 2>/dev/null | tr '\\n' ' ')\"\n"
        "echo \"@@tmp=$(find /usr/local /tmp -newer /tmp/install.sh -type f 2>/dev/null | tr '\\n' ' ')\"\n"
    )
    res = box.run("debian12", script, user="1000:1000", env={"KM_INSTALL_DIR": "/usr/local/bin"})
    last = assert_failed(res)
    assert re.search(r"sudo|--install-dir|KM_INSTALL_DIR", last), last
    assert "/usr/local/bin" in res.stderr, res.describe()
    assert marked(res, "home") == "", res.describe()
    assert marked(res, "tmp") == "", f"temporary files left behind:\n{res.describe()}"


FAKE_UNAME = """
mkdir -p /tmp/fakebin
cat > /tmp/fakebin/uname <<'EOF'
#!/bin/sh
case "$1" in
  -m|-p) echo {machine} ;;
  -sm) echo "{system} {machine}" ;;
  -a) echo "{system} box 1.0 {machine}" ;;
  -r) echo 1.0 ;;
  *) echo {system} ;;
esac
EOF
chmod +x /tmp/fakebin/uname
export PATH=/tmp/fakebin:$PATH
"""


@pytest.mark.parametrize(
    ("system", "machine", "named"),
    [
        ("FreeBSD", "x86_64", "FreeBSD"),
        ("Linux", "riscv64", "riscv64"),
    ],
)
def test_unsupported_platform(box: Box, published: Published, system: str, machine: str, named: str) -> None:
    """A uname reporting FreeBSD or riscv64: a clear error naming the platform and the manual download URL."""
    res = box.run(
        "debian12",
        install_script(f"{CURL_GET}; {RUN}", before=FAKE_UNAME.format(system=system, machine=machine)),
    )
    last = assert_failed(res)
    assert named.lower() in last.lower(), last
    assert re.search(r"https?://\S+", res.stderr), f"no manual download URL:\n{res.describe()}"
