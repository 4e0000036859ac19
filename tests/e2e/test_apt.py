"""The APT repository with the real apt (SPEC §14, issue 11): Debian 12 and 13, arm64 under qemu.

Two states of one repository, both made by `inv release` and served by `inv serve`:
``old`` (only v1.0.0 released) and the session's site (v1.0.0, then v1.1.0). A container
adds the repository with its keyring, installs, sees the newer release arrive with
`apt-get upgrade`, and pins the older one back. Tampered copies prove apt refuses an
index or a .deb that the signed Release does not vouch for.
"""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import NEW, OLD, Box, Published, _inv, edge, marked, progress

KEYRING = "/usr/share/keyrings/kilometers-archive-keyring.gpg"
APT_REFUSAL = "sudo apt-get install --only-upgrade kilometers-cli"


def _debver(v: str) -> str:
    return v[1:].replace("-", "~", 1)


@pytest.fixture(scope="module")
def old_repo(published: Published, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The repository as it was before the newer release: only v1.0.0 (same builds, fresh site)."""
    assert published.dist is not None
    site = tmp_path_factory.mktemp("apt-old-site")
    proc = _inv("release", "--version", OLD, "--site", str(site), dist=published.dist)
    if proc.returncode != 0:
        pytest.fail(f"inv release --version {OLD} failed:\n{proc.stderr[-3000:]}", pytrace=False)
    with edge(site, tmp_path_factory.mktemp("apt-old") / "serve.log", OLD) as url:
        yield url


def _copy_apt(published: Published, dest: Path) -> Path:
    shutil.copytree(published.site / "apt", dest / "apt")
    return dest / "apt"


@pytest.fixture(scope="module")
def tampered_index(published: Published, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Every Packages file (plain, .gz, by-hash) rewritten: self-consistent, but not what Release signs."""
    apt = _copy_apt(published, tmp_path_factory.mktemp("apt-tampered-index"))
    for folder in (apt / "dists").glob("*/main/binary-*"):
        text = (folder / "Packages").read_text().replace("Section: utils", "Section: admin")
        data = text.encode()
        (folder / "Packages").write_bytes(data)
        (folder / "Packages.gz").write_bytes(gzip.compress(data, mtime=0))
        for by_hash in (folder / "by-hash" / "SHA256").iterdir():
            was_gzip = by_hash.read_bytes()[:2] == b"\x1f\x8b"
            by_hash.write_bytes(gzip.compress(data, mtime=0) if was_gzip else data)
    with edge(apt.parent, apt.parent / "serve.log") as url:
        yield url


@pytest.fixture(scope="module")
def tampered_deb(published: Published, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The newest amd64 .deb in the pool replaced by another (genuine) package's bytes."""
    apt = _copy_apt(published, tmp_path_factory.mktemp("apt-tampered-deb"))
    pool = apt / "pool" / "main" / "k" / "kilometers-cli"
    newest = pool / f"kilometers-cli_{_debver(NEW)}_amd64.deb"
    shutil.copyfile(pool / f"kilometers-cli_{_debver(OLD)}_amd64.deb", newest)
    with edge(apt.parent, apt.parent / "serve.log") as url:
        yield url


def _add_repo(url: str) -> str:
    return f"""
rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*
curl -fsS "{url}/apt/kilometers-archive-keyring.gpg" -o {KEYRING}
echo "deb [signed-by={KEYRING}] {url}/apt stable main" > /etc/apt/sources.list.d/kilometers.list
"""


QUIET_APT = "export DEBIAN_FRONTEND=noninteractive; APT='-q -y -o Dpkg::Use-Pty=0'"


@pytest.mark.parametrize("image", ["debian12", "debian13"])
def test_install_upgrade_and_pin_back_with_apt(
    box: Box, published: Published, cdn: str, old_repo: str, image: str
) -> None:
    script = f"""
set -e
{QUIET_APT}
{_add_repo(old_repo)}
apt-get update -q
apt-get install $APT kilometers-cli
echo "@@installed=$(km --version)"
echo "@@path=$(command -v km)"
set +e
out=$(km update 2>&1); echo "@@update_rc=$?"; echo "@@update=$out"
out=$(km update --auto on 2>&1); echo "@@auto_rc=$?"; echo "@@auto=$out"
set -e
sed -i "s|{old_repo}|{cdn}|" /etc/apt/sources.list.d/kilometers.list
apt-get update -q
apt-get upgrade $APT
echo "@@upgraded=$(km --version)"
apt-get install $APT --allow-downgrades kilometers-cli={_debver(OLD)}
echo "@@pinned=$(km --version)"
echo "@@policy=$(apt-cache policy kilometers-cli | tr '\\n' ' ')"
"""
    res = box.run(image, script, timeout=600)
    assert res.returncode == 0, res.describe()
    assert marked(res, "installed") == published.version_line(OLD, "linux/amd64")
    assert marked(res, "path") == "/usr/bin/km"
    # issue 15: a km installed by apt never updates itself and names apt's command
    for key in ("update", "auto"):
        assert marked(res, f"{key}_rc") != "0", res.describe()
        assert APT_REFUSAL in marked(res, key), res.describe()
    assert marked(res, "upgraded") == published.version_line(NEW, "linux/amd64")
    assert marked(res, "pinned") == published.version_line(OLD, "linux/amd64")
    assert f"{_debver(NEW)} 500" in marked(res, "policy")  # both versions stay in the index


def test_apt_refuses_a_tampered_index_and_a_deb_with_another_hash(
    box: Box, tampered_index: str, tampered_deb: str
) -> None:
    script = f"""
set +e
{QUIET_APT}
{_add_repo(tampered_index)}
out=$(apt-get update 2>&1); echo "@@index_rc=$?"; echo "@@index=$(echo "$out" | tr '\\n' ' ')"
out=$(apt-get install $APT kilometers-cli 2>&1); echo "@@index_install_rc=$?"
{_add_repo(tampered_deb)}
apt-get update -q >/dev/null 2>&1; echo "@@deb_update_rc=$?"
out=$(apt-get install $APT kilometers-cli 2>&1); echo "@@deb_rc=$?"
echo "@@deb=$(echo "$out" | tr '\\n' ' ')"
echo "@@km=$(command -v km || echo none)"
"""
    res = box.run("debian12", script, timeout=600)
    assert marked(res, "index_rc") != "0", res.describe()
    assert "Hash Sum mismatch" in marked(res, "index") or "unexpected size" in marked(res, "index")
    assert marked(res, "index_install_rc") != "0"
    assert marked(res, "deb_update_rc") == "0", res.describe()  # the index itself is genuine
    assert marked(res, "deb_rc") != "0", res.describe()
    deb = marked(res, "deb")
    assert "Hash Sum mismatch" in deb or "unexpected size" in deb, deb
    assert marked(res, "km") == "none"


def test_arm64_package_under_qemu(box: Box, published: Published, cdn: str, arm64: str) -> None:
    script = f"""
set -e
{QUIET_APT}
{_add_repo(cdn)}
apt-get update -q
apt-get install $APT kilometers-cli
echo "@@version=$(km --version)"
echo "@@arch=$(dpkg-query -W -f '${{Architecture}}' kilometers-cli)"
"""
    progress("apt under qemu-aarch64: slower than native")
    res = box.run("debian12-arm64", script, platform="linux/arm64", ref=arm64, timeout=900)
    assert res.returncode == 0, res.describe()
    assert marked(res, "version") == published.version_line(NEW, "linux/arm64")
    assert marked(res, "arch") == "arm64"
