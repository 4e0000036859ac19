"""``inv sign.macos`` (Developer ID signing + notarization). macOS's codesign, ditto, xcrun and
security cannot run here: stand-ins on PATH record each call and answer as the real tools do
(notarytool's ``status:`` lines); what is asserted is the command sequence, the refusals and
that no credential reaches the output."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from kmrelease.errors import KmError
from kmrelease.macsign import ENV, credentials, sign_macos
from kmrelease.ui import Reporter
from tests.support.releases import ROOT

P12, KEY = b"\x30\x82pkcs12-bytes", b"-----BEGIN PRIVATE KEY-----\nsecret\n-----END PRIVATE KEY-----\n"
GOOD = {
    "KM_APPLE_IDENTITY": "Developer ID Application: Kilometers (TEAM123456)",
    "KM_APPLE_CERT_P12": base64.b64encode(P12).decode(),
    "KM_APPLE_CERT_PASSWORD": "p12-password-do-not-print",
    "KM_APPLE_API_KEY": base64.b64encode(KEY).decode(),
    "KM_APPLE_API_KEY_ID": "ABCDE12345",
    "KM_APPLE_API_ISSUER": "69a6de7e-0000-0000-0000-000000000000",
}
STAND_IN = """#!{python}
import json, os, sys
with open(os.environ["KM_TOOL_LOG"], "a") as log:
    log.write(json.dumps([os.path.basename(sys.argv[0]), *sys.argv[1:]]) + "\\n")
if sys.argv[1:3] == ["notarytool", "submit"]:
    print("Conducting pre-submission checks...\\n  id: 2efe2717\\n  status: In Progress\\n  status: "
          + os.environ.get("KM_NOTARY_STATUS", "Accepted"))
"""


@pytest.fixture
def tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.jsonl"
    bin_dir.mkdir()
    for name in ("codesign", "ditto", "xcrun", "security"):
        tool = bin_dir / name
        tool.write_text(STAND_IN.format(python=sys.executable))
        tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("KM_TOOL_LOG", str(log))
    return log


@pytest.fixture
def prebuilt(tmp_path: Path) -> Path:
    d = tmp_path / "prebuilt"
    d.mkdir()
    for name in ("km-darwin-arm64", "km-darwin-amd64", "km-linux-amd64", "km-windows-amd64.exe"):
        (d / name).write_bytes(b"\xcf\xfa\xed\xfe" + name.encode())
    (d / "km-darwin-arm64.sha256").write_text("x\n")
    return d


def calls(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_each_darwin_binary_is_signed_with_the_hardened_runtime_then_notarized(
    tools: Path, prebuilt: Path
) -> None:
    said: list[str] = []
    rep = Reporter(quiet=True)
    rep.info = said.append  # type: ignore[method-assign]
    names = sign_macos(prebuilt, "km", rep, dry_run=False, environ=GOOD)
    assert names == ["km-darwin-amd64", "km-darwin-arm64"]
    seq = calls(tools)
    signs = [c for c in seq if c[0] == "codesign" and "--sign" in c]
    assert [c[-1].rsplit("/", 1)[1] for c in signs] == names
    for c in signs:
        assert {"--timestamp", "--force"} <= set(c) and c[c.index("--options") + 1] == "runtime"
        assert c[c.index("--sign") + 1] == GOOD["KM_APPLE_IDENTITY"]
    submits = [c for c in seq if c[:3] == ["xcrun", "notarytool", "submit"]]
    assert [Path(c[3]).name for c in submits] == [f"{n}.zip" for n in names]
    assert all("--wait" in c for c in submits)
    # the keychain exists only around the signing
    assert seq[0][:2] == ["security", "create-keychain"] and seq[-1][:2] == ["security", "delete-keychain"]
    assert said == [f"{n}: signed, notarized (Accepted)" for n in names]


def test_a_rejected_notarization_is_one_line_and_the_keychain_is_removed(
    tools: Path, prebuilt: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KM_NOTARY_STATUS", "Invalid")
    rejected = r"^notarization of km-darwin-amd64 was not accepted \(status: Invalid\)$"
    with pytest.raises(KmError, match=rejected):
        sign_macos(prebuilt, "km", Reporter(quiet=True), dry_run=False, environ=GOOD)
    assert calls(tools)[-1][:2] == ["security", "delete-keychain"]


def test_missing_and_malformed_credentials_are_named(prebuilt: Path) -> None:
    with pytest.raises(KmError, match="needs KM_APPLE_CERT_PASSWORD, KM_APPLE_API_ISSUER in the environment"):
        absent = ("KM_APPLE_CERT_PASSWORD", "KM_APPLE_API_ISSUER")
        credentials({k: v for k, v in GOOD.items() if k not in absent})
    with pytest.raises(KmError, match="^KM_APPLE_API_KEY is not base64"):
        credentials({**GOOD, "KM_APPLE_API_KEY": "not base64!"})
    assert set(ENV.values()) == set(GOOD)
    assert "password" not in repr(credentials(GOOD)) and "secret" not in repr(credentials(GOOD))


def test_off_macos_it_refuses_in_one_line(prebuilt: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    off = "^Developer ID signing runs on macOS: codesign, ditto, xcrun, security not found$"
    with pytest.raises(KmError, match=off):
        sign_macos(prebuilt, "km", Reporter(quiet=True), dry_run=False, environ=GOOD)


def test_the_task_dry_run_names_the_binaries_and_never_a_secret(prebuilt: Path) -> None:
    env = {**os.environ, **GOOD, "CI": "true"}
    cmd = [sys.executable, "-m", "invoke", "sign.macos", "--dir", str(prebuilt), "--dry-run"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout + proc.stderr
    assert "km-darwin-amd64, km-darwin-arm64" in out and "nothing sent to Apple" in out
    for name in ("KM_APPLE_CERT_PASSWORD", "KM_APPLE_CERT_P12", "KM_APPLE_API_KEY"):
        assert GOOD[name] not in out
    assert "secret" not in out
    bad = subprocess.run([*cmd[:-3], "--dir", str(prebuilt / "nope")], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert bad.returncode != 0
    assert bad.stderr.strip().splitlines() == [f"error: {prebuilt / 'nope'} is not a directory"]
