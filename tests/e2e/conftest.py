"""Session fixtures of the e2e matrix (SPEC §11): engine, images, two real releases, the edge.

One release build per session (two versions, so that updates have an older one),
published by the real engine (`inv release`) into one site and served by the real
edge (`inv serve`) on 127.0.0.1; every container runs on the host network.

When the container engine cannot run: a clear skip locally, a failure in CI
(``CI=true``), so that a broken runner never passes by skipping everything.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kmrelease.errors import KmError
from tests.support.sites import dead_url
from tools.containers import Engine, Images, Result, arm64_emulation, engine_from_env

ROOT = Path(__file__).resolve().parents[2]  # this checkout
OLD, NEW = "v1.0.0", "v1.1.0"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


_config: pytest.Config | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _config
    _config = config


def progress(message: str) -> None:
    """A progress line on the terminal, even while pytest captures output."""
    line = f"[e2e {time.strftime('%H:%M:%S')}] {message}"
    capman = _config.pluginmanager.getplugin("capturemanager") if _config else None
    if capman is None:
        print(line, file=sys.stderr, flush=True)
        return
    with capman.global_and_fixture_disabled():
        print(line, file=sys.stderr, flush=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.path).replace(os.sep, "/"):
            item.add_marker(pytest.mark.e2e)


_session_started = time.monotonic()


def pytest_sessionfinish(session: pytest.Session) -> None:
    if any("tests/e2e" in str(a) for a in session.config.args):
        progress(f"e2e session: {time.monotonic() - _session_started:.0f} s in all")


# --------------------------------------------------------------------------- engine and images


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    started = time.monotonic()
    try:
        eng = engine_from_env()
    except KmError as exc:
        message = f"container engine unavailable: {exc}"
        if in_ci():
            pytest.fail(f"{message} (CI=true: the e2e session must run, not skip)", pytrace=False)
        pytest.skip(f"{message}; set KM_CONTAINER_ENGINE=podman|docker (see build/containers/README.md)")
    progress(f"engine {eng.name} ready ({time.monotonic() - started:.1f} s); cache {eng.cache}")
    try:
        yield eng
    finally:
        left = eng.cleanup()
        if left:
            progress(f"removed {left} container(s) left behind")


@pytest.fixture(scope="session")
def images(engine: Engine) -> Images:
    return Images(engine, progress)


@pytest.fixture(scope="session")
def arm64(images: Images) -> Iterator[str]:
    """The arm64 Debian image, with qemu-aarch64 registered in binfmt_misc for the session only."""
    try:
        with arm64_emulation(progress):
            yield images.ensure("debian12-arm64")
    except KmError as exc:
        pytest.fail(f"arm64 emulation: {exc}", pytrace=False)


# --------------------------------------------------------------------------- releases and the edge


def _inv(*args: str, dist: Path, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    inv = Path(sys.executable).with_name("inv")
    cmd = [str(inv), *args]
    env = {**os.environ, "KM_PLAIN": "1", "KM_DIST_DIR": str(dist)}
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


@dataclass(frozen=True)
class Published:
    site: Path
    versions: tuple[str, ...]
    current: str
    manifests: dict[str, dict[str, Any]]
    dist: Path | None = None  # where `inv release` built them (KM_DIST_DIR)

    def artifact(self, version: str, name: str) -> dict[str, Any]:
        return next(a for a in self.manifests[version]["artifacts"] if a["name"] == name)

    def version_line(self, version: str, os_arch: str) -> str:
        m = self.manifests[version]
        return f"km {version} ({m['commit'] or 'none'}, {m['date']}, {os_arch})"

    def file(self, version: str, name: str) -> Path:
        return self.site / "releases" / version / name


@pytest.fixture(scope="session")
def published(tmp_path_factory: pytest.TempPathFactory) -> Published:
    """v1.0.0 then v1.1.0 (current), built and published by `inv release` into a fresh site.

    Fresh per session: the binaries carry the commit, so a site from another commit would
    (rightly) refuse the same version with other content. The builds themselves are cached.
    """
    site = tmp_path_factory.mktemp("site")
    dist = tmp_path_factory.mktemp("dist")  # never the work tree's dist/
    for v in (OLD, NEW):
        started = time.monotonic()
        progress(f"inv release --version {v} --site {site}")
        proc = _inv("release", "--version", v, "--site", str(site), dist=dist)
        if proc.returncode != 0:
            pytest.fail(
                f"inv release --version {v} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}",
                pytrace=False,
            )
        progress(f"released {v} in {time.monotonic() - started:.0f} s")
    current = (site / "meta" / "version").read_text().strip()
    if current != NEW:
        pytest.fail(
            f"after releasing {OLD} and {NEW} the site's current version is {current!r}", pytrace=False
        )
    manifests = {v: json.loads((site / "releases" / v / "manifest.json").read_text()) for v in (OLD, NEW)}
    return Published(site, (OLD, NEW), current, manifests, dist)


@contextlib.contextmanager
def edge(site: Path, log: Path, expect_version: str | None = None) -> Iterator[str]:
    """The real edge (`inv serve`) in front of ``site`` on 127.0.0.1 (a free port); its URL."""
    inv = Path(sys.executable).with_name("inv")
    probe = "/version" if expect_version else "/no-such-path"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(inv), "serve", "--site", str(site), "--host", "127.0.0.1", "--port", "0"],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    url = ""
    try:
        deadline = time.monotonic() + 30
        while True:
            if not url:
                m = re.search(r"on (http://127\.0\.0\.1:\d+)/", log.read_text())
                url = m.group(1) if m else ""
            if url and _answers(url + probe, expect_version):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"inv serve did not come up:\n{log.read_text()[-2000:]}", pytrace=False)
            time.sleep(0.2)
        progress(f"inv serve: {url} (site {site})")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _answers(url: str, expect: str | None) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return expect is None or resp.read().decode().strip() == expect
    except urllib.error.HTTPError:
        return expect is None  # any HTTP answer: the server is up
    except OSError:
        return False


@pytest.fixture(scope="session")
def cdn(published: Published, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real edge (`inv serve`) in front of the published site, on 127.0.0.1 (a free port)."""
    with edge(published.site, tmp_path_factory.mktemp("serve") / "serve.log", published.current) as url:
        yield url


# --------------------------------------------------------------------------- running things in containers

DEAD_URL = dead_url()  # nothing listens there: a connection is refused (a CDN that is down)
MARK = "@@"


@dataclass
class Box:
    """Runs scripts in containers with the e2e defaults (host network, the site's URLs)."""

    engine: Engine
    images: Images
    cdn: str

    def run(
        self,
        image: str,
        script: str,
        *,
        env: dict[str, str] | None = None,
        user: str | None = None,
        platform: str | None = None,
        timeout: float = 300,
        input: str | None = None,
        ref: str | None = None,
    ) -> Result:
        full_env = {
            "KM_BASE_URL": self.cdn,
            "KM_GITHUB_BASE_URL": DEAD_URL,
            "KM_E2E_SCRIPT_URL": f"{self.cdn}/install.sh",  # where the installer itself comes from
            "NO_COLOR": "1",
            **(env or {}),
        }
        started = time.monotonic()
        res = self.engine.run(
            ref or self.images.ensure(image),
            script,
            env=full_env,
            user=user,
            platform=platform,
            timeout=timeout,
            input=input,
        )
        last = res.last_stderr_line
        progress(
            f"  {image}: exit {res.returncode} in {time.monotonic() - started:.1f} s"
            + (f": {last}" if last else "")
        )
        return res


@pytest.fixture(scope="session")
def box(engine: Engine, images: Images, cdn: str) -> Box:
    return Box(engine, images, cdn)


def marked(res: Result, key: str) -> str:
    """The value printed by ``echo "@@key=value"`` in a container script."""
    prefix = f"{MARK}{key}="
    for line in res.stdout.splitlines():
        if line.startswith(prefix):
            return line[len(prefix) :].strip()
    raise AssertionError(f"no {prefix} line in the output:\n{res.describe()}")


# How each row fetches the script, and the shells it is run with.
CURL_GET = 'curl -fsSL "$KM_E2E_SCRIPT_URL" -o /tmp/install.sh'
WGET_GET = 'wget -q -O /tmp/install.sh "$KM_E2E_SCRIPT_URL"'
CURL_PIPE = 'curl -fsSL "$KM_E2E_SCRIPT_URL" | sh'
WGET_PIPE = 'wget -q -O - "$KM_E2E_SCRIPT_URL" | sh'


def report(install_dir: str = "/usr/local/bin") -> str:
    """Shell lines printing what an install left behind (stdout only: stderr stays the installer's)."""
    d = install_dir
    return f"""
echo "{MARK}exit=$rc"
echo "{MARK}uname=$(uname -m)"
echo "{MARK}version=$("{d}/km" --version 2>&1)"
echo "{MARK}sha256=$(sha256sum "{d}/km" 2>/dev/null | cut -d' ' -f1)"
echo "{MARK}listing=$(ls -A "{d}" 2>/dev/null | tr '\\n' ' ')"
"""


def install_script(how: str, install_dir: str = "/usr/local/bin", before: str = "") -> str:
    """Run the installer ``how`` (e.g. ``dash /tmp/install.sh``) and report what it left."""
    return f"set +e\n{before}\n{how}\nrc=$?\n{report(install_dir)}"
