"""A scripted morning against the real local edge, then ``inv metrics`` in all three forms.

The edge is :mod:`kmrelease.serve` in-process with its access log; each "user" is its own
loopback address (a ``curl`` on PATH that adds ``--interface 127.0.0.N``) and its own
platform (a ``uname`` on PATH: the installer's asset choice); the update check is a real
``km update --check`` (built from this repository with the pinned Go). The report must hold exactly
the counts the morning makes; the HTML is drawn by Debian's headless chromium and the
screenshot must show each chart's colours.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kmrelease.accesslog import AccessLog
from kmrelease.metrics import MetricsRequest, run
from kmrelease.metrics_render import FAILURE_COLOUR, HIT_COLOUR, MISS_COLOUR, PLATFORM_COLOURS
from kmrelease.serve import SiteBackend, running
from tests.integration.test_serve_access_log import settled
from tests.support.install_settings import write_install_sh
from tests.support.signed_sites import make_key, sign_site
from tests.support.sites import build_site, dead_url, site_file

ROOT = Path(__file__).resolve().parents[2]
INSTALL_SH = ROOT / "scripts" / "install.sh"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CURRENT, OLDER = "v1.2.3", "v1.1.0"
CURL = shutil.which("curl", path=SYSTEM_PATH)

pytestmark = pytest.mark.skipif(CURL is None, reason="curl is not installed")


@dataclass
class Morning:
    log: Path
    results: dict[str, int]  # installer exit codes by user


def user_tools(tmp: Path, n: int, uname: tuple[str, str]) -> Path:
    """A PATH directory for user ``n``: curl from 127.0.0.n, and its platform's uname."""
    d = tmp / f"user{n}"
    d.mkdir()
    (d / "curl").write_text(f'#!/bin/sh\nexec {CURL} --interface 127.0.0.{n} "$@"\n')
    s, m = uname
    (d / "uname").write_text(
        f'#!/bin/sh\ncase "$1" in -sm) echo "{s} {m}" ;; -m) echo "{m}" ;; *) echo "{s}" ;; esac\n'
    )
    for tool in ("curl", "uname"):
        (d / tool).chmod(0o755)
    return d


def install(base: str, tools: Path, home: Path, *extra_env: tuple[str, str]) -> int:
    """``curl -fsSL <base>/install.sh | sh`` as the user whose tools come first on PATH."""
    env = {
        "PATH": f"{tools}:{SYSTEM_PATH}",
        "HOME": str(home),
        "KM_BASE_URL": base,
        "KM_GITHUB_BASE_URL": dead_url(),
        "KM_INSTALL_DIR": str(home / "bin"),
        "LANG": "C",
        **dict(extra_env),
    }
    home.mkdir(exist_ok=True)
    proc = subprocess.run(
        ["sh", "-c", 'curl -fsSL "$KM_BASE_URL/install.sh" | sh'],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=120,
    )
    return proc.returncode


def curl(tools: Path, *args: str) -> None:
    subprocess.run([str(tools / "curl"), "-s", "-o", os.devnull, *args], check=True, timeout=30)


def build_km(out: Path, version: str) -> Path:
    """The real km (this repository's Go source, the pinned Go), reporting ``version``."""
    from kmrelease.gotool import find_go

    go = find_go()
    km = out / "km"
    env = {**os.environ, "CGO_ENABLED": "0", "GOTOOLCHAIN": "local"}
    subprocess.run(
        [
            str(go.go),
            "build",
            "-trimpath",
            "-ldflags",
            f"-s -w -X main.Version={version}",
            "-o",
            str(km),
            "./cmd/km",
        ],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=600,
    )
    return km


def km_update_check(km: Path, base: str, home: Path) -> str:
    """``km update --check``: km's own GET /version (``User-Agent: km/<v>``)."""
    home.mkdir(exist_ok=True)
    env = {"KM_BASE_URL": base, "HOME": str(home), "PATH": SYSTEM_PATH}
    proc = subprocess.run([str(km), "update", "--check"], env=env, capture_output=True, text=True, timeout=60)
    return proc.stdout.strip()


def version_read(base: str, agent: str) -> str:
    """A GET /version with a given User-Agent (another km, or not km at all)."""
    req = urllib.request.Request(base + "/version", headers={"User-Agent": agent})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return str(resp.read().decode().strip())


@pytest.fixture(scope="module")
def morning(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Morning]:
    tmp = tmp_path_factory.mktemp("morning")
    site = tmp / "site"
    build_site(site, OLDER, current=False)
    build_site(site, CURRENT)
    # signed as a release is, with a throwaway key the served install.sh trusts
    key = make_key(tmp / "key")
    for v in (OLDER, CURRENT):
        sign_site(site, v, key)
    write_install_sh(site / "install" / "install.sh", TRUSTED_KEYS=key.public_pem.strip())
    # the tampered file: bytes that do not match their published hash
    tampered = site_file(site, CURRENT, "km-darwin-amd64")
    tampered.write_bytes(tampered.read_bytes() + b"# tampered\n")
    km = build_km(tmp, OLDER)
    log = AccessLog(tmp / "logs" / "access.jsonl", "test-salt")
    results: dict[str, int] = {}
    with running(SiteBackend(site), access=log) as base:
        a = user_tools(tmp, 2, ("Linux", "x86_64"))
        b = user_tools(tmp, 3, ("Darwin", "arm64"))
        c = user_tools(tmp, 4, ("Linux", "aarch64"))
        d = user_tools(tmp, 5, ("Linux", "x86_64"))
        e = user_tools(tmp, 6, ("Darwin", "x86_64"))
        results["linux/amd64"] = install(base, a, tmp / "home-a")
        results["darwin/arm64"] = install(base, b, tmp / "home-b")
        results["linux/arm64"] = install(base, c, tmp / "home-c")
        curl(c, f"{base}/releases/{CURRENT}/km-linux-arm64")  # the same file again: a CDN cache hit
        curl(c, "-I", f"{base}/releases/{CURRENT}/km-linux-arm64")  # HEAD: never a download
        curl(c, "-r", "0-99", f"{base}/releases/{CURRENT}/km-linux-arm64")  # a range of it: not again
        results["missing"] = install(base, d, tmp / "home-d", ("KM_VERSION", "v9.9.9"))
        curl(d, f"{base}/releases/v9.9.9/SHA256SUMS")
        results["tampered"] = install(base, e, tmp / "home-e")
        assert (
            km_update_check(km, base, tmp / "home-km")
            == f"update available: {OLDER} -> {CURRENT} (run 'km update')"
        )
        assert version_read(base, "km/v1.2.0") == CURRENT  # another km's check
        assert version_read(base, "Mozilla/5.0") == CURRENT  # a browser: not an update check
        settled(log.path)
    log.close()
    yield Morning(log.path, results)


def _splittable_cap(rows: list[dict[str, object]]) -> int:
    """The most rows in any 2 s of ``rows`` (by TimeGenerated), or all of them."""
    from tests.support.fake_loganalytics import _time

    times = sorted(_time(str(r["TimeGenerated"])).timestamp() for r in rows)
    densest = max(sum(1 for u in times if t <= u < t + 2) for t in times)
    return min(len(rows), max(densest, 1))


def lines(m: Morning) -> list[dict[str, object]]:
    return [json.loads(line) for line in m.log.read_text().splitlines()]


def assert_anonymous(m: Morning, text: str) -> None:
    """No address, no client hash, no User-Agent in a report."""
    assert "127.0.0." not in text
    for line in lines(m):
        assert str(line["clientIpHash"]) not in text
        assert str(line["userAgent"]) not in text


def report(m: Morning, fmt: str, out: Path | None = None) -> str:
    return run(MetricsRequest(log=m.log, since="1d", fmt=fmt, out=out), lambda line: None)


def test_the_installers_did_what_the_morning_expects(morning: Morning) -> None:
    assert morning.results["linux/amd64"] == 0
    assert morning.results["darwin/arm64"] == 0
    assert morning.results["linux/arm64"] == 0
    assert morning.results["missing"] != 0  # v9.9.9 is nowhere (GitHub is down too)
    assert morning.results["tampered"] != 0  # the hash does not match: refused


def test_access_log_has_front_door_fields_and_no_address(morning: Morning) -> None:
    text = morning.log.read_text()
    assert "127.0.0." not in text.replace('"requestUri":"http://127.0.0.1', "").replace(
        '"hostName":"127.0.0.1', ""
    )
    first = lines(morning)[0]
    for field in (
        "time",
        "httpMethod",
        "requestUri",
        "httpStatusCode",
        "responseBytes",
        "cacheStatus",
        "userAgent",
        "clientCountry",
        "timeToFirstByte",
        "clientIpHash",
    ):
        assert field in first, field
    hashes = {str(line["clientIpHash"]) for line in lines(morning)}
    assert len(hashes) == 5 + 1  # five users and the update checks from 127.0.0.1


def test_json_report_counts_exactly(morning: Morning) -> None:
    r = json.loads(report(morning, "json"))
    assert r["downloads"] == [
        {"version": CURRENT, "os": "darwin", "arch": "amd64", "count": 1},  # tampered: served all the same
        {"version": CURRENT, "os": "darwin", "arch": "arm64", "count": 1},
        {"version": CURRENT, "os": "linux", "arch": "amd64", "count": 1},
        {"version": CURRENT, "os": "linux", "arch": "arm64", "count": 1},  # the repeat and HEAD: not again
    ]
    # five scripts fetched; four users then fetched a binary (the tampered one too: the edge
    # cannot know the client refused it); v9.9.9 never got one
    assert r["installs"] == {"started": 5, "completed": 4}
    assert r["update_checks"] == 2
    raw = lines(morning)
    assert [x["httpMethod"] for x in raw if x["httpStatusCode"] == 206] == ["GET"]  # the range was served
    failing = [(str(x["requestUri"]).split("/", 3)[3], x["httpStatusCode"]) for x in raw]
    failing = [("/" + p, s) for p, s in failing if int(str(s)) >= 400]
    assert failing and all(p.startswith("/releases/v9.9.9/") and s == 404 for p, s in failing)
    assert sum(f["count"] for f in r["failures"]) == len(failing)
    assert {"path": "/releases/v9.9.9/SHA256SUMS", "status": 404, "count": 2} in r["failures"]
    assert r["countries"] == [{"country": "unknown", "count": len(raw)}]
    assert r["requests"] == len(raw)
    assert r["bytes"] == sum(int(str(x["responseBytes"])) for x in raw)
    hits = sum(1 for x in raw if x["cacheStatus"] == "HIT")
    misses = sum(1 for x in raw if x["cacheStatus"] == "MISS")
    assert hits > 0 and r["cache_hit_ratio"] == round(hits / (hits + misses), 4)
    ttfb = sorted(float(str(x["timeToFirstByte"])) * 1000 for x in raw)
    assert r["ttfb_ms"]["p50"] == round(ttfb[(len(ttfb) + 1) // 2 - 1], 3)
    assert_anonymous(morning, json.dumps(r))


def test_table_report_shows_the_same_counts(morning: Morning) -> None:
    text = report(morning, "table")
    rows = {" ".join(line.replace("│", " ").split()) for line in text.splitlines()}
    assert "installs started 5" in rows
    assert "installs completed 4" in rows
    assert "update checks 2" in rows
    for platform in ("darwin/amd64", "darwin/arm64", "linux/amd64", "linux/arm64"):
        assert f"{CURRENT} {platform} 1" in rows
    assert "/releases/v9.9.9/SHA256SUMS 404 2" in rows
    assert_anonymous(morning, text)


def _colour_pixels(png: Path) -> dict[tuple[int, int, int], int]:
    from PIL import Image

    with Image.open(png) as img:
        counts = img.convert("RGB").getcolors(maxcolors=1 << 20)
    assert counts is not None
    return {rgb: n for n, rgb in counts}


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return int(hex_colour[1:3], 16), int(hex_colour[3:5], 16), int(hex_colour[5:7], 16)


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
def test_html_report_draws_its_charts_in_chromium(morning: Morning, tmp_path: Path) -> None:
    pytest.importorskip("PIL")
    page = tmp_path / "report.html"
    report(morning, "html", page)
    html = page.read_text()
    assert "http://" not in html and "https://" not in html and "<script" not in html  # self-contained
    assert_anonymous(morning, html)
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1000,1400",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=90,
    )
    pixels = _colour_pixels(shot)
    for platform in ("darwin/amd64", "darwin/arm64", "linux/amd64", "linux/arm64"):
        assert pixels.get(_rgb(PLATFORM_COLOURS[platform]), 0) > 500, platform  # a bar of its own
    for platform in ("windows/amd64", "windows/arm64"):
        assert pixels.get(_rgb(PLATFORM_COLOURS[platform]), 0) == 0, platform  # no downloads, no bar
    assert pixels.get(_rgb(HIT_COLOUR), 0) > 100 and pixels.get(_rgb(MISS_COLOUR), 0) > 100
    assert pixels.get(_rgb(FAILURE_COLOUR), 0) > 200


def test_azure_source_gives_the_same_report_for_the_same_requests(morning: Morning) -> None:
    """The morning's requests as Front Door rows in a Log Analytics stand-in: the same report."""
    from tests.support.fake_loganalytics import FakeLogAnalytics, StaticCredential, diagnostics_row, serving

    rows = [diagnostics_row(line, address=str(line["clientIpHash"])) for line in lines(morning)]
    window = {"since": "1d", "until": str(lines(morning)[-1]["time"]).replace("Z", "") + "1"}
    local = run(MetricsRequest(log=morning.log, fmt="json", **window), lambda line: None)
    # A row cap below the total forces split queries; the split stops at 1 s slices, so the cap
    # must hold the densest 2 s of the morning (a fast machine may do it all within a second:
    # then no split is asked for here; test_metrics_azure covers the splitting on its own).
    cap = _splittable_cap(rows)
    with serving(FakeLogAnalytics(rows, max_rows=cap)) as fake:
        azure = run(
            MetricsRequest(source="azure", workspace=WORKSPACE, fmt="json", **window),
            lambda line: None,
            credential=StaticCredential(),
            endpoint=fake.url,
        )
    assert json.loads(azure) == json.loads(local)
    assert len(fake.calls) > (2 if cap < len(rows) else 0)
    assert all(c["workspace"] == WORKSPACE for c in fake.calls)


WORKSPACE = "00000000-1111-2222-3333-444444444444"
