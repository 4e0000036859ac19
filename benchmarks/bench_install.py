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
from tests.support.install_settings import sh_settings, ssh_lines, write_install_sh
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
PRINCIPAL = sh_settings((ROOT / "scripts" / "install.sh").read_text())["KEY_PRINCIPAL"]
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


# The processes of install.sh's fast path, in its order, and nothing else (no checks, no
# watchdogs, no messages): the least any installer that resolves /version first and checks the
# signature could cost. Measured beside the two others on loopback, for information.
BARE = """
t=$(uname -sm) && t=$(mktemp -d "$KM_INSTALL_DIR/.bare.XXXXXX") || exit 1
v=$(curl -fsS "$KM_BASE_URL/version") || exit 1
r="$KM_BASE_URL/releases/$v"
curl -fsS -o "$t/SHA256SUMS" "$r/SHA256SUMS" -o "$t/sig" "$r/SHA256SUMS.sig" \\
    -o "$t/a.sha256" "$r/{asset}.sha256" -o "$t/km" "$r/{asset}" || exit 1
openssl dgst -sha256 <"$t/km" >"$t/hash" &
printf '%s\\n' "{signer}" >"$t/allowed"
ssh-keygen -Y verify -f "$t/allowed" -I {principal} -n "km-release-$v" -s "$t/sig" \\
    <"$t/SHA256SUMS" >/dev/null || exit 1
wait
chmod 755 "$t/km" && "$t/km" --version >/dev/null && mv -f "$t/km" "$KM_INSTALL_DIR/km" && rm -rf "$t"
"""


def measure(base: str, tmp: Path, rounds: int, bare: str = "") -> tuple[float, ...]:
    """Medians (s) of the install, of the raw download + check (and of ``bare``, a script), interleaved,
    against ``base``."""
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
    sides: list[tuple[list[str], Path]] = [(install, install_dir), (raw, raw_dir)]
    if bare:
        sides.append((["sh", "-c", bare], install_dir))
    times: list[list[float]] = [[] for _ in sides]
    for i in range(rounds + 2):
        for n, (argv, d) in enumerate(sides):
            shutil.rmtree(d, ignore_errors=True)
            d.mkdir()
            took = timed(argv, {**env, "KM_INSTALL_DIR": str(install_dir)}, d if d == raw_dir else tmp)
            if i >= 2:  # two warm-up rounds: page cache, server threads
                times[n].append(took)
    return tuple(statistics.median(t) for t in times)


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
        bare = BARE.format(
            asset=ASSET, signer=f"{PRINCIPAL} {ssh_lines(key.public_pem)}", principal=PRINCIPAL
        )
        with CdnServer(site) as cdn:
            before = load()
            install_med, raw_med, bare_med = measure(cdn.url, tmp, ROUNDS, bare)
            report(
                f"loopback, {ROUNDS} rounds (load average {before} before, {load()} after)",
                install_med,
                raw_med,
                GOAL,
            )
            print(f"  {'the same processes, no checks or watchdogs (bare)':52} {bare_med * 1000:9.1f} ms")
            print(f"  {'ratio bare ÷ raw':52} {bare_med / raw_med:9.2f}     (the floor of this design)")
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
