"""km update against a signed local release in Debian 12 (issues 10, 13, 15).

Real km binaries (linux/amd64, built here with ``-X main.TrustedKeys`` of a test key)
published into a site whose releases the engine's signing stage signed with that key (a
key file signer), served on 127.0.0.1. Rows: a tampered signature is refused with
exit 3 and km unchanged, then ``km update`` installs the current version; and an
automatic update applies for the next start while the MCP session it ran beside
stayed byte-exact.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from kmrelease.gotool import find_go
from kmrelease.sign.keys import TrustedKey, trusted_keys_value
from kmrelease.sign.signers import KeyFileSigner
from kmrelease.sign.stage import sign_release
from kmrelease.sign.statement import P256
from kmrelease.ui import Reporter
from tests.support.releases import ROOT
from tests.support.signing import new_key
from tests.support.sites import CdnServer, build_site, site_file
from tools.containers import Engine, Images

from .conftest import MARK, Box, marked, progress
from .test_km import INIT, REPLY, SERVER

OLD, NEW, TAMPERED = "v1.0.0", "v1.1.0", "v1.2.0"
TRUNCATED, WRONG_CPU = "v1.3.0", "v1.4.0"  # signed, checksums consistent, binaries that cannot run
ASSET = "km-linux-amd64"


def _build_km(out: Path, version: str, trusted: str, arch: str = "amd64") -> bytes:
    go = find_go()
    ldflags = (
        f"-s -w -buildid= -X main.Version={version} -X main.Commit=e2e "
        f"-X main.Date=2026-01-01T00:00:00Z -X main.TrustedKeys={trusted}"
    )
    env = {**os.environ, "CGO_ENABLED": "0", "GOOS": "linux", "GOARCH": arch, "GOTOOLCHAIN": "local"}
    cmd = [str(go.go), "build", "-trimpath", "-ldflags", ldflags, "-o", str(out), "./cmd/km"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        pytest.fail(f"go build {version}: {proc.stderr[-2000:]}", pytrace=False)
    return out.read_bytes()


@pytest.fixture(scope="module")
def signed_cdn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """v1.0.0, v1.2.0 whose signature was tampered with, v1.3.0 (a truncated binary) and
    v1.4.0 (an arm64 binary as km-linux-amd64), both signed, and v1.1.0 (current)."""
    work = tmp_path_factory.mktemp("signed")
    key = new_key(work / "release.pem")
    signer = KeyFileSigner(work / "release.pem")
    trusted = trusted_keys_value([TrustedKey("e2e", key.public_key())])
    site = work / "site"
    binaries = {v: _build_km(work / f"km-{v}", v, trusted) for v in (OLD, NEW)}
    binaries[TAMPERED] = binaries[NEW]  # never downloaded: the signature is refused first
    binaries[TRUNCATED] = binaries[NEW][: len(binaries[NEW]) // 2]
    binaries[WRONG_CPU] = _build_km(work / f"km-{WRONG_CPU}", WRONG_CPU, trusted, arch="arm64")
    for v in (OLD, TAMPERED, TRUNCATED, WRONG_CPU, NEW):
        build_site(site, v, {ASSET: binaries[v]}, current=v in (OLD, NEW))
        release_dir = site_file(site, v, "SHA256SUMS").parent
        sign_release(release_dir, v, signer, Reporter(quiet=True))
        if v == TAMPERED:
            data = bytearray((release_dir / P256).read_bytes())
            data[-1] ^= 0x01
            (release_dir / P256).write_bytes(bytes(data))
    with CdnServer(site) as cdn:
        progress(f"signed site of {OLD}, {TAMPERED} (tampered), {TRUNCATED}, {WRONG_CPU}, {NEW}: {cdn.url}")
        yield cdn.url


@pytest.fixture(scope="module")
def signed_box(engine: Engine, images: Images, signed_cdn: str) -> Box:
    return Box(engine, images, signed_cdn)


INSTALL_OLD = f"""set +e
curl -fsS -o /usr/local/bin/km "$KM_BASE_URL/releases/{OLD}/{ASSET}" && chmod +x /usr/local/bin/km \
  || echo '{MARK}install=failed'
"""


def test_km_update_refuses_tampered_then_updates_debian12(signed_box: Box) -> None:
    """A tampered signature, a truncated binary and one for another CPU: exit 3, km unchanged."""
    script = f"""{INSTALL_OLD}
before=$(sha256sum /usr/local/bin/km | cut -d' ' -f1)
km update --version {TAMPERED} 2>/tmp/err; echo "{MARK}tampered=$?"
echo "{MARK}tampered_err=$(tail -n 1 /tmp/err)"
echo "{MARK}unchanged=$(sha256sum /usr/local/bin/km | cut -d' ' -f1 | grep -qx "$before" && echo yes)"
for v in {TRUNCATED} {WRONG_CPU}; do
  km update --version $v 2>/tmp/err; echo "{MARK}$v=$?"
  echo "{MARK}$v-err=$(tail -n 1 /tmp/err)"
  echo "{MARK}$v-unchanged=$(sha256sum /usr/local/bin/km | cut -d' ' -f1 | grep -qx "$before" && echo yes)"
  echo "{MARK}$v-listing=$(ls -A /usr/local/bin | tr '\n' ' ')"
done
km update; echo "{MARK}update=$?"
echo "{MARK}after=$(km --version)"
echo "{MARK}listing=$(ls -A /usr/local/bin | tr '\\n' ' ')"
"""
    res = signed_box.run("debian12", script, timeout=120)
    assert f"{MARK}install=failed" not in res.stdout, res.describe()
    assert marked(res, "tampered") == "3", res.describe()
    assert marked(res, "tampered_err") == (
        f"km update: refusing {TAMPERED}: the signature of its SHA256SUMS does not verify with any of "
        "the 1 release keys this km trusts; this is a red flag, not an outage: km was not changed"
    ), res.describe()
    assert marked(res, "unchanged") == "yes", res.describe()
    for v in (TRUNCATED, WRONG_CPU):  # run before replace (issue 13)
        assert marked(res, v) == "3", res.describe()
        refusal = f"km update: the downloaded km {v} does not work here ("
        assert marked(res, f"{v}-err").startswith(refusal), res.describe()
        assert marked(res, f"{v}-unchanged") == "yes", res.describe()
        assert marked(res, f"{v}-listing") == "km", res.describe()
    assert marked(res, "update") == "0", res.describe()
    assert marked(res, "after") == f"km {NEW} (e2e, 2026-01-01T00:00:00Z, linux/amd64)", res.describe()
    assert marked(res, "listing") == "km", res.describe()


def test_km_auto_update_applies_for_next_start_debian12(signed_box: Box) -> None:
    script = f"""{INSTALL_OLD}
km update --auto on >/dev/null; echo "{MARK}on=$?"
printf '%s' "$SERVER" > /tmp/server.sh && chmod +x /tmp/server.sh
printf '%s\\n' "$INIT" | km --log /tmp/km.jsonl /tmp/server.sh > /tmp/out; echo "{MARK}exit=$?"
echo "{MARK}out=$(cat /tmp/out)"
echo "{MARK}lines=$(wc -l < /tmp/out)"
i=0
while [ $i -lt 200 ] && ! km update --auto status | grep -q ': updated: '; do sleep 0.3; i=$((i+1)); done
echo "{MARK}status=$(km update --auto status | tr '\\n' '|')"
echo "{MARK}after=$(km --version)"
echo "{MARK}listing=$(ls -A /usr/local/bin | tr '\\n' ' ')"
"""
    env = {"SERVER": SERVER, "INIT": INIT, "REPLY": REPLY}
    res = signed_box.run("debian12", script, env=env, timeout=180)
    assert f"{MARK}install=failed" not in res.stdout, res.describe()
    assert marked(res, "on") == "0", res.describe()
    assert marked(res, "exit") == "0", res.describe()
    assert marked(res, "out") == REPLY, res.describe()
    assert marked(res, "lines") == "1", res.describe()
    status = marked(res, "status")
    assert status.startswith("automatic updates: on ("), res.describe()
    assert f": updated: {OLD} -> {NEW}, for the next start (sha256 " in status, res.describe()
    assert marked(res, "after") == f"km {NEW} (e2e, 2026-01-01T00:00:00Z, linux/amd64)", res.describe()
    assert marked(res, "listing") == "km", res.describe()
