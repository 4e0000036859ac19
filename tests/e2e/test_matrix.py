"""SPEC §11 rows 1–6: install.sh (or the binary) in a container per platform, then the installed km."""

from __future__ import annotations

import pytest

from kmrelease import binaries
from tools.containers import Result

from .conftest import (
    CURL_GET,
    CURL_PIPE,
    MARK,
    NEW,
    WGET_GET,
    WGET_PIPE,
    Box,
    Published,
    install_script,
    marked,
)


def assert_installed(res: Result, published: Published, os_arch: str, asset: str) -> None:
    assert marked(res, "exit") == "0", res.describe()
    assert res.returncode == 0, res.describe()
    assert marked(res, "version") == published.version_line(NEW, os_arch), res.describe()
    assert marked(res, "sha256") == published.artifact(NEW, asset)["sha256"], res.describe()
    assert marked(res, "listing") == "km", f"stray files in the install directory:\n{res.describe()}"
    # the installer runs the installed km --version itself at the end
    assert published.version_line(NEW, os_arch) in res.stdout + res.stderr, res.describe()


DEBIAN_WAYS = {
    "dash": f"{CURL_GET}; dash /tmp/install.sh",
    "bash": f"{CURL_GET}; bash /tmp/install.sh",
    "curl-pipe-sh": CURL_PIPE,
}


@pytest.mark.parametrize("way", list(DEBIAN_WAYS))
@pytest.mark.parametrize("image", ["debian12", "debian13"])
def test_debian_with_curl(box: Box, published: Published, image: str, way: str) -> None:
    """Rows 1 and 2: Debian 12 and 13 with curl, under dash, bash, and piped to sh (no terminal)."""
    res = box.run(image, install_script(DEBIAN_WAYS[way]), timeout=120)
    assert_installed(res, published, "linux/amd64", "km-linux-amd64")
    if image == "debian12" and way == "dash":
        assert marked(res, "uname") == "x86_64"


BUSYBOX_WAYS = {
    "ash": f"{WGET_GET}; sh /tmp/install.sh",
    "wget-pipe-sh": WGET_PIPE,
}


@pytest.mark.parametrize("way", list(BUSYBOX_WAYS))
def test_busybox_wget_ash(box: Box, published: Published, way: str) -> None:
    """Row 3: busybox only (ash + wget; no curl, no bash)."""
    res = box.run(
        "busybox",
        "for t in curl bash; do command -v $t && exit 99; done\n" + install_script(BUSYBOX_WAYS[way]),
        timeout=120,
    )
    assert res.returncode != 99, f"the busybox image has curl or bash:\n{res.describe()}"
    assert_installed(res, published, "linux/amd64", "km-linux-amd64")


def test_piped_without_terminal_never_prompts(box: Box, published: Published) -> None:
    """No terminal and stdin an empty pipe: completes without waiting for an answer."""
    res = box.run("debian12", install_script(CURL_PIPE), input="", timeout=60)
    assert_installed(res, published, "linux/amd64", "km-linux-amd64")
    assert "[y/N]" not in res.stdout + res.stderr and "(y/n)" not in (res.stdout + res.stderr).lower()


def test_linux_arm64_under_qemu(box: Box, arm64: str, published: Published) -> None:
    """Row 4: arm64 Debian under qemu user emulation: uname says aarch64, the arm64 binary is chosen."""
    res = box.run(
        "debian12-arm64",
        install_script(f"{CURL_GET}; sh /tmp/install.sh"),
        platform="linux/arm64",
        ref=arm64,
        timeout=300,
    )
    assert marked(res, "uname") == "aarch64", res.describe()
    assert_installed(res, published, "linux/arm64", "km-linux-arm64")


WINE_RUN = f"""
set -e
mkdir -p /opt/km && cd /opt/km
base="$KM_BASE_URL/releases/{NEW}"
curl -fsS -O "$base/km-windows-amd64.exe" -O "$base/km-windows-amd64.exe.sha256"
sha256sum -c km-windows-amd64.exe.sha256 >&2
export WINEDEBUG=-all
echo "{MARK}wine=$(wine64 --version)"
echo "{MARK}version=$(wine64 /opt/km/km-windows-amd64.exe --version | tr -d '\\r')"
"""


def test_windows_binary_under_wine(box: Box, published: Published) -> None:
    """Row 5: the Windows binary runs under Wine 10 (Debian 13)."""
    res = box.run("debian13-wine", WINE_RUN, timeout=300)
    assert res.returncode == 0, res.describe()
    assert marked(res, "wine").startswith("wine-10"), res.describe()
    assert marked(res, "version") == published.version_line(NEW, "windows/amd64"), res.describe()


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_darwin_mach_o_headers(published: Published, arch: str) -> None:
    """Row 6: no macOS here; the published darwin binaries carry Mach-O headers for the right CPU."""
    for version in published.versions:
        path = published.file(version, f"km-darwin-{arch}")
        assert path.read_bytes()[:4] == bytes.fromhex("cffaedfe"), f"{path}: not a 64-bit Mach-O file"
        assert binaries.detect(path) == ("macho", arch), path
        assert binaries.contains(path, version.encode()), f"{path}: {version} not injected"
