"""Azure benchmark (issue 4): publishing to Azurite against a raw concurrent SDK upload.

In one run, against one Azurite on loopback (installed by tests/support/azurite.py),
with the six real binaries of the engine's build (seeded stand-ins of the same size
when Go cannot build here) and their checksum files (``.sha256``, ``SHA256SUMS``,
``manifest.json``: 14 files):

- publish: ``publish_release`` into empty containers through ``AzureBlobDestination``:
  validation, If-None-Match uploads with Content-MD5, read-back — the upload stage
  of SPEC §6 steps 1–3 — measured apart from the promotion (step 4: server-side copies
  into ``latest/``, the pointer), which a raw upload does not do at all;
- raw: the same 14 files with ``azure-storage-blob`` alone, all at once from a thread
  pool (``upload_blob(overwrite=True)``, Content-Type only), into empty containers, in a
  helper process (warm, timed inside) so that the RSS below is the publisher's own;
- republish: the same release again: bytes uploaded (goal 0) and its wall time;
- peak RSS of the publishing process (goal ≤ 150 MB).

Reported: the median of each over the rounds, the ratio publish ÷ raw (goal ≤ 1.15),
and the full publish with promotion for reference.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout: tests.support

from azure.storage.blob import BlobServiceClient, ContentSettings

from kmrelease.artifacts import Release
from kmrelease.destinations.azure import AzureBlobDestination
from kmrelease.publish import install_scripts, publish_scripts
from kmrelease.ui import Reporter
from kmrelease.urlspace import CONTAINERS, Kind, content_type_for, key_of
from tests.support import azurite as azurite_mod
from tests.support.fake_release import NAMES, make_dist, make_scripts
from tests.support.releases import build_release, context, project_at
from tests.support.releases import publish as publish_release

ROOT = Path(__file__).resolve().parents[1]  # this checkout
VERSION = "v0.0.1"
ROUNDS = int(os.environ.get("KM_BENCH_ROUNDS", "7"))
RATIO_GOAL = 1.15
RSS_GOAL_MB = 150


def real_release(tmp: Path) -> tuple[Release, str]:
    """The six real binaries + checksums, or seeded stand-ins of the same size."""
    try:
        return build_release(VERSION, tmp / "dist"), "the six real km binaries (pinned Go)"
    except Exception as exc:  # still meaningful with stand-ins of the real size
        sizes = {name: 6_700_000 for name in NAMES.values()}
        rel = make_dist(tmp / "fake", VERSION, sizes=sizes)
        return rel, f"stand-ins of 6.7 MB ({type(exc).__name__}: {exc})"


def empty(service: BlobServiceClient) -> None:
    for c in service.list_containers():
        service.delete_container(c.name)


def raw_upload(service: BlobServiceClient, rel: Release) -> float:
    empty(service)
    for c in CONTAINERS:
        service.create_container(c)  # the publisher's first write creates them too (not timed apart)
    return float(_raw_child(["go"]))


_CHILD: subprocess.Popen[str] | None = None


def _raw_child(command: list[str]) -> str:
    """The raw side runs in its own process, so the peak RSS below is the publisher's alone."""
    assert _CHILD is not None and _CHILD.stdin is not None and _CHILD.stdout is not None
    _CHILD.stdin.write(" ".join(command) + "\n")
    _CHILD.stdin.flush()
    return _CHILD.stdout.readline().strip()


def _raw_server(conn: str, files: list[str]) -> None:
    """The raw side: all files at once from a thread pool, ``upload_blob(overwrite=True)`` each."""
    service = BlobServiceClient.from_connection_string(conn)

    def one(path: str) -> None:
        name = Path(path).name
        container, _, blob = key_of(Kind.VERSIONED, version=VERSION, file=name).partition("/")
        with open(path, "rb") as fh:
            service.get_blob_client(container, blob).upload_blob(
                fh, overwrite=True, content_settings=ContentSettings(content_type=content_type_for(name))
            )

    for line in sys.stdin:
        if line.strip() != "go":
            break
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=len(files)) as pool:
            list(pool.map(one, files))
        print(time.perf_counter() - start, flush=True)


def publish(dest: AzureBlobDestination, service: BlobServiceClient, rel: Release, scripts: Path) -> float:
    empty(service)
    for c in CONTAINERS:
        service.create_container(c)
    start = time.perf_counter()
    out = publish_release(rel, dest, Reporter(quiet=True), scripts=scripts)
    assert out.promoted
    return time.perf_counter() - start


def publish_upload_stage(
    dest: AzureBlobDestination, service: BlobServiceClient, rel: Release, scripts: Path
) -> float:
    """Steps 1–3 only: ``promote=False`` on a destination that already has a newer current version."""
    empty(service)
    for c in CONTAINERS:
        service.create_container(c)
    service.get_blob_client("meta", "version").upload_blob(b"v99.0.0\n")
    # The install scripts are already there (as in every release after the first), so the
    # timed stage uploads exactly the files the raw side uploads: the release's 14.
    ctx = context(VERSION, scripts.parent / "dist", project=project_at(scripts.parent))
    publish_scripts(dest, install_scripts(ctx), Reporter(quiet=True))
    start = time.perf_counter()
    out = publish_release(rel, dest, Reporter(quiet=True), scripts=scripts)
    elapsed = time.perf_counter() - start
    assert not out.promoted and len(out.uploaded) == len(rel.files)
    return elapsed


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="km-bench-azure-") as t:
        tmp = Path(t)
        rel, what = real_release(tmp)
        scripts = make_scripts(tmp)
        total = sum(f.digest.size for f in rel.files)
        server = azurite_mod.start(in_memory=True)  # blobs in RAM: no disk noise on either side
        try:
            conn = server.connection_string()
            global _CHILD
            _CHILD = subprocess.Popen(
                [sys.executable, __file__, "--raw", conn, *(str(f.path) for f in rel.files)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
            )  # fmt: skip
            service = BlobServiceClient.from_connection_string(conn)
            dest = AzureBlobDestination.from_connection_string(conn, Reporter(quiet=True))
            raw_upload(service, rel)  # warm-up: connections, Azurite's JIT
            publish_upload_stage(dest, service, rel, scripts)
            raws, stages, fulls = [], [], []
            for _ in range(ROUNDS):  # interleaved, so drift hits both sides alike
                raws.append(raw_upload(service, rel))
                stages.append(publish_upload_stage(dest, service, rel, scripts))
                fulls.append(publish(dest, service, rel, scripts))
            before = {b.name: b.last_modified for c in CONTAINERS
                      for b in service.get_container_client(c).list_blobs()}  # fmt: skip
            start = time.perf_counter()
            again = publish_release(rel, dest, Reporter(quiet=True), scripts=scripts)
            republish = time.perf_counter() - start
            after = {b.name: b.last_modified for c in CONTAINERS
                     for b in service.get_container_client(c).list_blobs()}  # fmt: skip
        finally:
            if _CHILD is not None and _CHILD.stdin is not None:
                _CHILD.stdin.close()
                _CHILD.wait(30)
            server.stop()
    raw, stage, full = statistics.median(raws), statistics.median(stages), statistics.median(fulls)
    ratio = stage / raw
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    unchanged = again.bytes_uploaded == 0 and before == after
    rows = [
        f"files: {len(rel.files)} ({total / 1e6:.2f} MB): {what}; {ROUNDS} rounds, medians",
        f"raw concurrent SDK upload: {raw * 1000:8.1f} ms",
        f"publish (validate, upload, read back): {stage * 1000:8.1f} ms",
        f"publish ÷ raw: {ratio:8.2f}    goal ≤ {RATIO_GOAL}: {_ok(ratio <= RATIO_GOAL)}",
        f"full publish incl. promotion: {full * 1000:8.1f} ms (÷ raw {full / raw:.2f}, for reference)",
        f"republish, nothing changed: {republish * 1000:8.1f} ms, {again.bytes_uploaded} bytes "
        f"uploaded, {'no blob rewritten' if before == after else 'BLOBS REWRITTEN'}: {_ok(unchanged)}",
        f"peak RSS: {rss_mb:8.1f} MB    goal ≤ {RSS_GOAL_MB}: {_ok(rss_mb <= 150)}",
    ]
    print("\n".join(rows))
    return 0 if unchanged and rss_mb <= RSS_GOAL_MB else 1


def _ok(good: bool) -> str:
    return "ok" if good else "MISSED"


if __name__ == "__main__":
    if sys.argv[1:2] == ["--raw"]:
        _raw_server(sys.argv[2], sys.argv[3:])
    else:
        raise SystemExit(main())
