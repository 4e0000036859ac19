"""Packaging benchmark (issue 11), every figure from one run on this machine.

On a real release (six targets built by the engine, the ten package builds made once):

1. raw baseline: ``dpkg-deb --build`` of the two package trees + ``gpg`` signing two suites
   (detached + inline), the tools alone;
2. cold packages + signed index: every package file of ``dist/<v>/packages/`` from scratch
   (the package builds up to date) and the APT pool + signed index into a fresh site
   (goal ≤ 2 s), and its ratio to the raw baseline;
3. warm: the same again with nothing changed (goal ≤ 0.8 s, 0 bytes rewritten).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kmrelease.destinations.local import LocalSite
from kmrelease.layout import BUILD_META
from kmrelease.packages import openpgp
from kmrelease.packages.apt import AptRepository, deb_inputs
from kmrelease.packages.settings import load_settings
from kmrelease.packages.stage import make_packages, packages_dir
from kmrelease.ui import Reporter
from kmrelease.urlspace import Kind, key_of
from kmrelease.version import parse_version

VERSION = "v0.0.1"
QUIET = Reporter(quiet=True)


def files_state(*roots: Path) -> dict[Path, tuple[int, int, int]]:
    return {
        p: (p.stat().st_ino, p.stat().st_mtime_ns, p.stat().st_size)
        for root in roots
        if root.exists()
        for p in root.rglob("*")
        if p.is_file()
    }


def rewritten(before: dict[Path, tuple[int, int, int]], after: dict[Path, tuple[int, int, int]]) -> int:
    return sum(st[2] for p, st in after.items() if before.get(p) != st)


def raw_baseline(dist: Path, gpg_root: Path) -> float:
    trees = sorted((dist / BUILD_META / "deb").glob("*/root"))
    release = b"Origin: x\n" * 40
    with tempfile.TemporaryDirectory() as out, openpgp.signer(QUIET, production=False, root=gpg_root) as sg:
        started = time.perf_counter()
        for i, tree in enumerate(trees):
            subprocess.run(
                ["dpkg-deb", "--build", "--root-owner-group", "-Zgzip", "-z6", str(tree), f"{out}/{i}.deb"],
                check=True,
                capture_output=True,
            )
        for _ in ("stable", "unstable"):
            sg.detach_sign(release)
            sg.clearsign(release)
        return time.perf_counter() - started


def packages_and_index(dist: Path, site: Path, gpg_root: Path) -> float:
    """Seconds spent making the packages, then publishing the APT pool and signed index."""
    v = parse_version(VERSION)
    started = time.perf_counter()
    outcome = make_packages(v, dist, QUIET)
    packaging = time.perf_counter() - started
    dest = LocalSite(site)
    for name in outcome.files:  # the release's upload of releases/<v>/: not part of packaging (untimed)
        key = key_of(Kind.VERSIONED, version=VERSION, file=name)
        if name.endswith(".deb") and dest.stat(key) is None:
            dest.put_bytes(key, (packages_dir(dist) / name).read_bytes(), {})
    started = time.perf_counter()
    with openpgp.signer(QUIET, production=False, root=gpg_root) as sg:
        inputs = deb_inputs(v, outcome.files, lambda n: (packages_dir(dist) / n).read_bytes())
        AptRepository(dest, load_settings(), QUIET).publish(v, inputs, sg)
    return packaging + time.perf_counter() - started


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="km-bench-pkg-") as tmp_s:
        tmp = Path(tmp_s)
        dist_root = tmp / "dist"
        env = {**os.environ, "KM_DIST_DIR": str(dist_root), "CI": "true"}
        inv = Path(sys.executable).with_name("inv")
        print("preparing: inv build + the ten package builds (not timed)", flush=True)
        subprocess.run([str(inv), "build", "--version", VERSION], env=env, check=True, capture_output=True)
        dist = dist_root / VERSION
        started = time.perf_counter()
        make_packages(parse_version(VERSION), dist, QUIET)
        first = time.perf_counter() - started
        print(f"first packages run (ten package builds, linked): {first:.2f} s", flush=True)
        raw = min(raw_baseline(dist, tmp) for _ in range(3))
        colds = []
        for i in range(3):
            shutil.rmtree(packages_dir(dist))
            shutil.rmtree(dist / BUILD_META / "deb")
            colds.append(packages_and_index(dist, tmp / f"site{i}", tmp))
        cold = min(colds)
        before = files_state(packages_dir(dist), dist / BUILD_META / "deb", tmp / "site0" / "apt")
        warm = min(packages_and_index(dist, tmp / "site0", tmp) for _ in range(3))
        written = rewritten(
            before, files_state(packages_dir(dist), dist / BUILD_META / "deb", tmp / "site0" / "apt")
        )
    ok = cold <= 2.0 and warm <= 0.8 and written == 0
    print(f"raw tools (dpkg-deb x2, gpg x4): {raw:.2f} s")
    print(f"cold packages + signed index:  {cold:.2f} s (goal <= 2.0), ratio to raw {cold / raw:.2f}")
    print(f"warm, nothing changed:         {warm:.2f} s (goal <= 0.8), {written} bytes rewritten (goal 0)")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
