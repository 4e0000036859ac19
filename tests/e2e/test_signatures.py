"""Issue 10 point 4 in containers: install.sh checks the release signature with the tools it finds.

- Debian 12 with openssh-client: ``ssh-keygen -Y verify`` (``SHA256SUMS.sig``);
- Debian 12 without ssh-keygen (its openssl comes with ca-certificates): ``openssl dgst``
  (``SHA256SUMS.p256``);
- busybox: neither: one warning and an install on the checksum alone; with
  ``--require-signature`` a refusal and an empty install directory.

The current release of the session's site is signed with a throwaway key by the real tools
(tests/support/signed_sites.py), and the install.sh it serves trusts that key; a local fake CDN
(tests/support/sites.py) serves the copy on 127.0.0.1 (the containers share the host network).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.support.install_settings import write_install_sh
from tests.support.signed_sites import make_key, sign_site
from tests.support.sites import CdnServer

from .conftest import CURL_GET, NEW, OLD, WGET_GET, Box, Published, install_script, marked


@pytest.fixture(scope="session")
def signed_cdn(published: Published, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    site = tmp_path_factory.mktemp("signed-site")
    shutil.copytree(published.site, site, dirs_exist_ok=True)
    key = make_key(tmp_path_factory.mktemp("e2e-key"))
    sign_site(site, NEW, key)
    write_install_sh(site / "install" / "install.sh", TRUSTED_KEYS=key.public_pem.strip())
    with CdnServer(site) as cdn:
        yield cdn.url


def signed_env(cdn: str) -> dict[str, str]:
    return {"KM_BASE_URL": cdn, "KM_E2E_SCRIPT_URL": f"{cdn}/install.sh"}


def assert_installed(res: object, published: Published) -> None:
    from tools.containers import Result

    assert isinstance(res, Result)
    assert marked(res, "exit") == "0", res.describe()
    assert marked(res, "version") == published.version_line(NEW, "linux/amd64"), res.describe()
    assert marked(res, "sha256") == published.artifact(NEW, "km-linux-amd64")["sha256"], res.describe()


@pytest.mark.parametrize(
    "image,before,verifier",
    [
        ("debian12-ssh", "command -v ssh-keygen >/dev/null || exit 97", "ssh"),
        ("debian12", "command -v ssh-keygen && exit 98; command -v openssl >/dev/null || exit 97", "openssl"),
    ],
    ids=["ssh-keygen", "openssl"],
)
def test_debian_verifies_the_signature(
    box: Box, published: Published, signed_cdn: str, image: str, before: str, verifier: str
) -> None:
    script = install_script(f"{CURL_GET}; sh /tmp/install.sh", before=before)
    res = box.run(image, script, env=signed_env(signed_cdn), timeout=180)
    assert res.returncode not in (97, 98), f"the {image} image has the wrong tools:\n{res.describe()}"
    assert_installed(res, published)
    assert f"verified the release signature of km {NEW} ({verifier})" in res.stdout, res.describe()
    assert "signature" not in res.stderr, res.describe()


def test_busybox_warns_once_without_a_verifier(box: Box, published: Published, signed_cdn: str) -> None:
    before = "for t in ssh-keygen openssl; do command -v $t && exit 98; done"
    res = box.run(
        "busybox",
        install_script(f"{WGET_GET}; sh /tmp/install.sh", before=before),
        env=signed_env(signed_cdn),
        timeout=180,
    )
    assert res.returncode != 98, res.describe()
    assert_installed(res, published)
    warnings = [line for line in res.stderr.splitlines() if "signature" in line]
    assert len(warnings) == 1 and "install OpenSSH's ssh-keygen or openssl" in warnings[0], res.describe()


def test_busybox_refuses_with_require_signature(box: Box, signed_cdn: str) -> None:
    how = f"{WGET_GET}; sh /tmp/install.sh --require-signature"
    res = box.run("busybox", install_script(how), env=signed_env(signed_cdn), timeout=180)
    assert marked(res, "exit") == "1", res.describe()
    assert res.last_stderr_line.startswith("error: cannot check the release signature"), res.describe()
    assert marked(res, "listing") == "", res.describe()


def test_release_not_signed_by_a_trusted_key_is_refused(
    box: Box, published: Published, signed_cdn: str
) -> None:
    """v1.0.0 of the copy is not signed with the key this install.sh trusts (the engine signed it with
    its own key, or not at all): refused with ssh-keygen present; /usr/local/bin stays empty."""
    script = install_script(f"{CURL_GET}; sh /tmp/install.sh --version {OLD}")
    res = box.run("debian12-ssh", script, env=signed_env(signed_cdn), timeout=180)
    assert marked(res, "exit") == "1", res.describe()
    if published.file(OLD, "SHA256SUMS.sig").is_file():
        want = f"does not verify for km {OLD} with this installer's release keys"
    else:
        want = f"km {OLD} has no signature"
    assert want in res.last_stderr_line, res.describe()
    assert res.last_stderr_line.endswith("refusing to install (not retried from another source)"), (
        res.describe()
    )
    assert marked(res, "listing") == "", res.describe()
