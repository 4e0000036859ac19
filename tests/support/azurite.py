"""Azurite (the Azure Storage emulator) for the tests: installed by npm into a cache, one per session.

``azurite@3.35.0`` goes into ``$KM_AZURITE_DIR``, else ``$XDG_CACHE_HOME/km/azurite-3.35.0``,
else ``<repo>/.cache/azurite`` when missing; it listens on a free loopback port
(``--blobPort 0``, the real port read from its output) and is stopped by pid.
Azurite has no static website and no Put-Blob-From-URL: nothing here needs them.
"""

from __future__ import annotations

import base64
import fcntl
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

VERSION = "3.35.0"
ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "devstoreaccount1"
# The emulator's published well-known key (not a secret; Azurite accepts nothing else by default).
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
# A second account whose key is a real secret for this session (tests grep output for it).
SECRET_ACCOUNT = "kmsecret"
LISTENING = re.compile(r"listens on (https?://[^\s]+)")


def cache_dir() -> Path:
    if os.environ.get("KM_AZURITE_DIR"):
        return Path(os.environ["KM_AZURITE_DIR"])
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "km" / f"azurite-{VERSION}"
    return ROOT / ".cache" / "azurite"


def _installed_version(directory: Path) -> str | None:
    pkg = directory / "node_modules" / "azurite" / "package.json"
    if not pkg.is_file():
        return None
    import json

    return str(json.loads(pkg.read_text()).get("version"))


def ensure_installed(directory: Path | None = None) -> Path:
    """The ``azurite-blob`` executable, after ``npm install azurite@VERSION`` when missing."""
    directory = directory or cache_dir()
    exe = directory / "node_modules" / ".bin" / "azurite-blob"
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one installer at a time (parallel test runs)
        if exe.exists() and _installed_version(directory) == VERSION:
            return exe
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError(
                "Azurite is needed and npm is not on PATH: install Node.js (apt-get install npm)"
            )
        result = subprocess.run(
            [
                npm,
                "install",
                "--no-audit",
                "--no-fund",
                "--no-save",
                "--prefix",
                str(directory),
                f"azurite@{VERSION}",
            ],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if result.returncode != 0 or not exe.exists():
            raise RuntimeError(f"npm install azurite@{VERSION} failed:\n{result.stdout}\n{result.stderr}")
    return exe


@dataclass
class Azurite:
    """A running Azurite blob service."""

    process: subprocess.Popen[str]
    url: str  # http://127.0.0.1:PORT
    location: Path
    secret_key: str = ""
    output: list[str] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def blob_endpoint(self) -> str:
        return f"{self.url}/{ACCOUNT}"

    def connection_string(self, endpoint: str | None = None, *, account: str = ACCOUNT) -> str:
        key = self.secret_key if account == SECRET_ACCOUNT else KEY
        return (
            f"DefaultEndpointsProtocol=http;AccountName={account};AccountKey={key};"
            f"BlobEndpoint={endpoint or f'{self.url}/{account}'};"
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, 15)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, 9)
                self.process.wait(10)


def start(location: Path | None = None, *, timeout: float = 60.0, in_memory: bool = False) -> Azurite:
    """Start Azurite; ``in_memory`` keeps blobs in RAM (benchmarks: no disk noise)."""
    exe = ensure_installed()
    location = location or Path(tempfile.mkdtemp(prefix="km-azurite-"))
    secret_key = base64.b64encode(secrets.token_bytes(64)).decode()
    env = {**os.environ, "AZURITE_ACCOUNTS": f"{ACCOUNT}:{KEY};{SECRET_ACCOUNT}:{secret_key}"}
    proc = subprocess.Popen(
        [
            str(exe),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            "0",
            *([] if in_memory else ["--location", str(location)]),
            "--silent",
            "--skipApiVersionCheck",
            "--disableTelemetry",
            *(["--inMemoryPersistence"] if in_memory else []),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    found: list[str] = []
    ready = threading.Event()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:  # keep draining so Azurite never blocks on a full pipe
            lines.append(line.rstrip())
            m = LISTENING.search(line)
            if m and not found:
                found.append(m.group(1).rstrip("/"))
                ready.set()
        ready.set()

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout
    while not ready.wait(0.1):
        if time.monotonic() > deadline:
            break
    if not found:
        if proc.poll() is None:
            proc.kill()
        raise RuntimeError("Azurite did not start:\n" + "\n".join(lines))
    return Azurite(proc, found[0], location, secret_key, lines)
