"""The Homebrew formula and the Scoop manifest of a real release resolve against the local edge.

The manifests name the public base URL; here it is swapped for the local edge serving the
same URL space, and every URL, hash and autoupdate template is followed for the current
version (v1.0.0's manifest) and the next one (v1.1.0, through the templates).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess

import pytest
import requests

from kmrelease.packages.settings import load_settings
from tests.e2e.conftest import NEW, OLD, Published


def _get(url: str) -> bytes:
    resp = requests.get(url, timeout=30)
    assert resp.status_code == 200, url
    return resp.content


def test_scoop_manifest_urls_hashes_and_autoupdate_resolve(published: Published, cdn: str) -> None:
    base = load_settings().base_url
    doc = json.loads(published.file(OLD, "km.json").read_text())
    assert doc["version"] == OLD[1:]
    for arch in ("64bit", "arm64"):
        entry = doc["architecture"][arch]
        url = entry["url"].replace(base, cdn).split("#", 1)[0]
        assert hashlib.sha256(_get(url)).hexdigest() == entry["hash"]
        auto = doc["autoupdate"]["architecture"][arch]
        for version in (OLD[1:], NEW[1:]):  # the current version, and the next through the templates
            url = auto["url"].replace(base, cdn).replace("$version", version).split("#", 1)[0]
            body = _get(url)
            text = _get(auto["hash"]["url"].replace(base, cdn).replace("$version", version)).decode()
            m = re.search(auto["hash"]["regex"].replace("$sha256", "([a-fA-F0-9]{64})"), text, re.M)
            assert m is not None and m.group(1) == hashlib.sha256(body).hexdigest()
    checkver = _get(doc["checkver"]["url"].replace(base, cdn)).decode()
    m = re.search(doc["checkver"]["regex"], checkver, re.M)
    assert m is not None and m.group(1) == published.current[1:]


def test_formula_parses_and_its_urls_and_hashes_match(
    published: Published, cdn: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    base = load_settings().base_url
    formula = published.file(NEW, "km.rb").read_text()
    pairs = re.findall(r'url "([^"]+)"\n\s+sha256 "([0-9a-f]{64})"', formula)
    assert len(pairs) == 4
    for url, sha in pairs:
        assert url.startswith(f"{base}/releases/{NEW}/km-") and url.endswith("-brew")
        assert hashlib.sha256(_get(url.replace(base, cdn))).hexdigest() == sha
    if shutil.which("ruby"):
        path = tmp_path_factory.mktemp("formula") / "km.rb"
        path.write_text(formula)
        proc = subprocess.run(["ruby", "-c", str(path)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
