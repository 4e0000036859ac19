"""Install benchmark (issue 3): ``curl | sh`` against the cost of fetching and checking by hand.

Both sides are measured in the same run, interleaved, against the same local CDN on
loopback (tests/support/sites.py) serving the real ``km-linux-amd64`` built with the
pinned Go (a same-sized stand-in when Go cannot build here):

- install:  ``curl -fsSL <cdn>/install.sh | sh`` (KM_INSTALL_DIR set): the script,
  ``/version``, ``SHA256SUMS`` and its signature checked with ``ssh-keygen -Y verify``
  (the site is signed with a throwaway key the published script trusts, as a release
  is), the ``.sha256``, the binary, verification, ``km --version`` from the temporary
  path, the rename;
- raw:      ``curl -fsS -O <binary> -O <binary>.sha256 && sha256sum -c``: one curl for
  both files, then the check; the least work that still verifies.

Reported: the median wall time of each over the rounds and their ratio (goal ≤ 1.10), with the
load average (the machine is shared). A second line measures the same through a shaped link
(tests/support/shaper.py: 100 Mbit/s, 20 ms round trip) for information: on loopback the fixed
costs (two more curl start-ups than the raw side: the script itself and ``/version``) weigh
far more than they do behind a real link.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout: tests.support

from kmrelease.urlspace import Kind, key_of
from tests.support.install_settings import write_install_sh
from tests.support.shaper import ShapedLink
from tests.support.signed_sites import make_key, sign_site
from tests.support.sites import CdnServer, build_site

ROOT = Path(__file__).resolve().parents[1]  # this checkout
VERSION = "v0.0.1"
ASSET = "km-linux-amd64"
ROUNDS = int(os.environ.get("KM_BENCH_ROUNDS", "25"))
GOAL = 1.10
# The second line: the same through tests/support/shaper.py, a link as users have one.
LINK_RATE = 12_500_000  # bytes/s: 100 Mbit/s
LINK_RTT = 0.02  # s
LINK_ROUNDS = int(os.environ.get("KM_BENCH_LINK_ROUNDS", "7"))


def real_binary(tmp: Path) -> tuple[bytes, str]:
    """The real linux/amd64 km from the engine's build, or a stand-in of the same size."""
    try:
        from kmrelease.build import build
        from tests.support.releases import context

        ctx = context(VERSION, tmp / "dist")
        build(ctx, ctx.build.parse_targets("linux/amd64"))
        return (tmp / "dist" / VERSION / ASSET).read_bytes(), "real km built with the pinned Go"
    except Exception as exc:  # the benchmark still means something with a stand-in
        stand_in = b"#!/bin/sh\necho 'km " + VERSION.encode() + b" (bench, -, linux/amd64)'\nexit 0\n"
        return stand_in + b"#" * 1_500_000 + b"\n", f"stand-in of 1.5 MB ({type(exc).__name__}: {exc})"


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"benchmark command failed: {' '.join(argv)}\n{proc.stderr.decode()}")
    return elapsed


def measure(base: str, tmp: Path, rounds: int) -> tuple[float, float]:
    """Medians (s) of the install and of the raw download + check, interleaved, against ``base``."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp),
        "KM_BASE_URL": base,
        "NO_COLOR": "1",
    }
    install_dir = tmp / "install"
    raw_dir = tmp / "raw"
    install = ["sh", "-c", f'curl -fsSL "{base}/install.sh" | sh']
    url = f"{base}/releases/{VERSION}/{ASSET}"
    raw = [
        "sh",
        "-c",
        f'curl -fsS -O "{url}" -O "{url}.sha256" && sha256sum -c --quiet {ASSET}.sha256',
    ]
    installs, raws = [], []
    for i in range(rounds + 2):
        for d in (install_dir, raw_dir):
            shutil.rmtree(d, ignore_errors=True)
            d.mkdir()
        a = timed(install, {**env, "KM_INSTALL_DIR": str(install_dir)}, tmp)
        b = timed(raw, env, raw_dir)
        if i >= 2:  # two warm-up rounds: page cache, server threads
            installs.append(a)
            raws.append(b)
    return statistics.median(installs), statistics.median(raws)


def report(label: str, install_med: float, raw_med: float, goal: float | None) -> None:
    ratio = install_med / raw_med
    print(f"{label}")
    print(f"  {'curl | sh install (signature, verify, run, rename)':52} {install_med * 1000:9.1f} ms")
    print(f"  {'raw curl -O binary + .sha256, sha256sum -c':52} {raw_med * 1000:9.1f} ms")
    shown = f"goal ≤ {goal}" if goal is not None else "(for information; the goal is the loopback line)"
    print(f"  {'ratio install ÷ raw':52} {ratio:9.2f}     {shown}")


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    for tool in ("curl", "sha256sum", "sh"):
        if shutil.which(tool) is None:
            print(f"install benchmark: skipped ({tool} is not installed)")
            return 0
    with tempfile.TemporaryDirectory(prefix="km-bench-install-") as t:
        tmp = Path(t)
        binary, what = real_binary(tmp)
        site = tmp / "site"
        build_site(site, VERSION, {ASSET: binary})
        key = make_key(tmp / "key")
        sign_site(site, VERSION, key)
        script = site.joinpath(*key_of(Kind.INSTALL_SH).split("/"))
        write_install_sh(script, TRUSTED_KEYS=key.public_pem.strip())
        print(f"binary: {ASSET}, {len(binary)} bytes ({what}); medians")
        with CdnServer(site) as cdn:
            before = load()
            install_med, raw_med = measure(cdn.url, tmp, ROUNDS)
            report(
                f"loopback, {ROUNDS} rounds (load average {before} before, {load()} after)",
                install_med,
                raw_med,
                GOAL,
            )
            met = install_med / raw_med <= GOAL
            assert (tmp / "install" / "km").read_bytes() == binary
            with ShapedLink(cdn.port, rate=LINK_RATE, rtt=LINK_RTT) as link:
                before = load()
                shaped = measure(link.url, tmp, LINK_ROUNDS)
                report(
                    f"through a shaped link: {LINK_RATE * 8 / 1e6:.0f} Mbit/s, {LINK_RTT * 1000:.0f} ms RTT, "
                    f"{LINK_ROUNDS} rounds (load average {before} before, {load()} after)",
                    *shaped,
                    None,
                )
    print("install benchmark:", "goal met" if met else "goal missed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
