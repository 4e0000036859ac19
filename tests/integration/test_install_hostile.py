"""install.sh on a hostile network and against broken releases (issues 13 and 14).

Servers that accept and never answer, that trickle, that redirect to plain http
elsewhere, that announce a 200 MiB binary; a 10 MB ``/version``, one with shell
metacharacters and one with terminal escapes; releases whose binary matches its
signed checksums but cannot run (truncated, another CPU); the installer edge cases
of issue 14 point 4. Each row asserts the exit code, the last stderr line, the time
it took and that an earlier km is untouched. The harness (fake CDN and GitHub, a
signed site, shells, downloaders) is test_install_sh.py's.
"""

# ruff: noqa: F811  (the fixtures of test_install_sh are imported, then requested by name)
from __future__ import annotations

import concurrent.futures
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.test_install_sh import (  # noqa: F401  (fixtures)
    ASSET,
    CURRENT,
    GH_PREFIX,
    OLDER,
    SYSTEM_PATH,
    Env,
    Result,
    _ro_bind_supported,
    assert_installed,
    env,
    leftovers,
    make_env,
    release_key,
    shell_argv,
    site,
    tools_path,
)
from tests.support.install_settings import INSTALL_SH
from tests.support.signed_sites import ReleaseKey
from tests.support.sites import Fault, Redirect, fake_km, site_file

# (shell, downloader): curl, GNU wget and busybox wget each bound their waits differently
DOWNLOADERS = [("dash", "curl"), ("bash", "gnu-wget"), ("busybox ash", "busybox-wget")]
EARLIER = fake_km("v0.9.0")


def with_earlier_km(e: Env) -> Path:
    e.bindir.mkdir(exist_ok=True)
    km = e.bindir / "km"
    km.write_bytes(EARLIER)
    km.chmod(0o755)
    return km


def assert_untouched(e: Env) -> None:
    assert (e.bindir / "km").read_bytes() == EARLIER
    assert leftovers(e.bindir) == []


def have(downloader: str) -> None:
    if downloader == "busybox-wget" and shutil.which("busybox") is None:
        pytest.skip("busybox is not installed")


# -- bounded waits: a stalled CDN is down, GitHub within a minute -----------------------


def _stalled_run(
    tmp: Path, site: Path, key: ReleaseKey, fault_path: str, fault: Fault, shell: str, downloader: str
) -> tuple[Result, list[str], bytes]:
    with make_env(tmp, site, key) as e:
        with_earlier_km(e)
        e.cdn.faults[fault_path] = fault
        r = e.run("--install-dir", str(e.bindir), shell=shell, path=tools_path(e, downloader), timeout=90)
        e.cdn.release.set()
        return r, e.gh.asset_host.paths(), (e.bindir / "km").read_bytes()


def test_stalled_cdn_falls_back_to_github_within_a_minute(
    tmp_path: Path, site: Path, release_key: ReleaseKey
) -> None:
    """A CDN that accepts and never answers, and one that trickles the binary a byte at a
    time, under curl, GNU wget and busybox wget: each is down after the 20 s stall bound
    and GitHub installs km. The six runs go in parallel (they mostly wait)."""
    for _, downloader in DOWNLOADERS:
        have(downloader)
    cases = [
        (fault_path, fault, shell, downloader)
        for fault_path, fault in (
            ("/version", Fault.SILENT),
            (f"/releases/{CURRENT}/{ASSET}", Fault.TRICKLE),
        )
        for shell, downloader in DOWNLOADERS
    ]
    with concurrent.futures.ThreadPoolExecutor(len(cases)) as pool:
        futures = [
            pool.submit(_stalled_run, tmp_path / f"case{i}", site, release_key, *case)
            for i, case in enumerate(cases)
        ]
        results = [f.result() for f in futures]
    for (fault_path, fault, shell, downloader), (r, gh_assets, km) in zip(cases, results, strict=True):
        what = f"{fault.name} {fault_path} {shell}/{downloader}"
        assert r.rc == 0, f"{what}:\n{r.stdout}\n{r.stderr}"
        assert "trying GitHub" in r.stderr, what
        assert any(p.endswith(ASSET) for p in gh_assets), what
        assert f"km {CURRENT} (fake" in r.stdout and km != EARLIER, what
        assert 19 < r.seconds < 45, f"{what}: {r.seconds:.1f} s"


@pytest.mark.parametrize("shell,downloader", DOWNLOADERS)
def test_redirect_to_plain_http_elsewhere_is_refused(env: Env, shell: str, downloader: str) -> None:
    have(downloader)
    with_earlier_km(env)
    env.cdn.faults[f"/releases/{CURRENT}/{ASSET}"] = Redirect("http://km-test.invalid/km-linux-amd64")
    r = env.run("--install-dir", str(env.bindir), shell=shell, path=tools_path(env, downloader))
    r.assert_failed("refusing a download", "http://km-test.invalid/km-linux-amd64", "only https://")
    assert r.seconds < 15
    assert_untouched(env)
    assert env.gh.paths() == []


def test_too_many_redirects_are_refused(env: Env) -> None:
    with_earlier_km(env)
    loop = f"/releases/{CURRENT}/{ASSET}"
    env.cdn.faults[loop] = Redirect(f"{env.cdn.url}{loop}")
    r = env.run("--install-dir", str(env.bindir))
    r.assert_failed("more than 5 redirects")
    assert env.cdn.paths().count(loop) == 6
    assert_untouched(env)


@pytest.mark.parametrize("shell", ["dash", "bash"])
def test_a_redirected_binary_is_hashed_afresh_where_it_leads(env: Env, shell: str) -> None:
    """The fast path's curl stops at the binary's redirect after the asset's hash was started on
    what it wrote: that hash is dropped (a later one of the same path would otherwise be taken for
    the bytes it leads to), the redirect is followed and the binary hashed afresh."""
    with_earlier_km(env)
    binary = site_file(env.site, CURRENT, ASSET)
    env.cdn.faults[f"/releases/{CURRENT}/{ASSET}"] = Redirect(f"{env.cdn.url}/releases/latest/{ASSET}")
    r = env.run("--install-dir", str(env.bindir), shell=shell)
    assert_installed(env, r)
    assert (env.bindir / "km").read_bytes() == binary.read_bytes()
    assert f"/releases/latest/{ASSET}" in env.cdn.paths()
    assert env.gh.paths() == []


def test_a_binary_announced_over_the_cap_is_refused(env: Env) -> None:
    with_earlier_km(env)
    env.cdn.faults[f"/releases/{CURRENT}/{ASSET}"] = Fault.HUGE
    r = env.run("--install-dir", str(env.bindir))
    r.assert_failed("refusing a download", "larger than 104857600 bytes")
    assert r.seconds < 10
    assert_untouched(env)
    assert env.gh.paths() == []


# -- hostile /version ---------------------------------------------------------------------


@pytest.mark.parametrize("shell,downloader", DOWNLOADERS)
def test_a_10_mb_version_is_refused_and_github_used(env: Env, shell: str, downloader: str) -> None:
    have(downloader)
    with_earlier_km(env)
    env.gh.latest = CURRENT  # GitHub's latest is its own, not the CDN's /version
    (env.site / "meta" / "version").write_bytes(b"v1.2.3\n" + b"9" * 10_000_000)
    r = env.run("--install-dir", str(env.bindir), shell=shell, path=tools_path(env, downloader))
    assert r.rc == 0, r.stderr
    assert "/version" in r.stderr and "trying GitHub" in r.stderr
    assert "larger than 256 bytes" in r.stderr or "does not hold a version" in r.stderr
    assert r.seconds < 15


HOSTILE_VERSIONS = {
    "semicolon": b"v1.2.3; touch MARKER\n",
    "dollar-paren": b"$(touch MARKER)\n",
    "backticks": b"`touch MARKER`\n",
    "path": b"v1.2.3/../../x\n",
    "ansi": b"\x1b[31mv1.2.3\x1b]0;owned\x07\n",
    "ansi-after": b"v1.2.3\x1b[2K\n",
}


@pytest.mark.parametrize(
    "body,shell",
    [pytest.param(body, "dash", id=f"dash-{name}") for name, body in HOSTILE_VERSIONS.items()]
    + [
        pytest.param(HOSTILE_VERSIONS[name], shell, id=f"{shell}-{name}")
        for name in ("semicolon", "ansi")
        for shell in ("bash", "busybox ash")
    ],
)
def test_hostile_version_document(env: Env, body: bytes, shell: str) -> None:
    """Refused before it is used in a URL, a path or a message; a short sanitised excerpt only."""
    have("busybox-wget" if shell == "busybox ash" else "curl")
    with_earlier_km(env)
    marker = env.tmp / "MARKER"
    (env.site / "meta" / "version").write_bytes(body.replace(b"MARKER", str(marker).encode()))
    r = env.run("--install-dir", str(env.bindir), "--source", "cdn", shell=shell)
    r.assert_failed("does not hold a version")
    assert "\x1b" not in r.stderr and "\x07" not in r.stderr
    assert not marker.exists()
    assert env.cdn.paths() == ["/version"]
    assert_untouched(env)


# -- run before replace ------------------------------------------------------------------


def _elf() -> bytes:
    return Path(shutil.which("true") or "/bin/true").read_bytes()


def truncated_binary() -> bytes:
    return _elf()[:4096]


def other_cpu_binary() -> bytes:
    """A real ELF whose e_machine says another CPU (0x00b7, aarch64 or 0x003e, x86-64 swapped)."""
    data = bytearray(_elf())
    data[18:20] = (0xB7 if data[18] != 0xB7 else 0x3E).to_bytes(2, "little")
    return bytes(data)


@pytest.mark.parametrize(
    "binary,says",
    [
        (truncated_binary, "does not run on this linux/amd64 machine"),
        (other_cpu_binary, "does not run on this linux/amd64 machine"),
        (lambda: fake_km("v1.1.9"), "does not run on this linux/amd64 machine"),
    ],
    ids=["truncated", "other-cpu", "wrong-version"],
)
@pytest.mark.parametrize("shell", ["dash", "bash", "busybox ash"])
def test_a_signed_release_that_cannot_run_leaves_the_earlier_km(
    env: Env, shell: str, binary: object, says: str
) -> None:
    have("busybox-wget" if shell == "busybox ash" else "curl")
    assert callable(binary)
    with_earlier_km(env)
    env.publish(CURRENT, {ASSET: binary()})
    r = env.run("--install-dir", str(env.bindir), shell=shell)
    r.assert_failed(says, f"the earlier {env.bindir}/km is kept")
    assert "verified sha256" in r.stdout  # the checksums and the signature were fine
    assert r.seconds < 20
    assert_untouched(env)


def test_a_release_that_hangs_is_stopped_after_10_s(env: Env) -> None:
    with_earlier_km(env)
    env.publish(CURRENT, {ASSET: b"#!/bin/sh\nsleep 30\n"})
    r = env.run("--install-dir", str(env.bindir))
    r.assert_failed("did not answer --version within 10 s", "the earlier")
    assert 9 < r.seconds < 20
    assert_untouched(env)


def test_first_install_of_a_broken_release_installs_nothing(env: Env) -> None:
    env.publish(CURRENT, {ASSET: truncated_binary()})
    r = env.run("--install-dir", str(env.bindir))
    r.assert_failed("does not run", "nothing was replaced")
    assert not (env.bindir / "km").exists() and leftovers(env.bindir) == []


# -- issue 14 point 4: installer edge cases ------------------------------------------------


@pytest.mark.parametrize("shell", ["dash", "bash", "busybox ash"])
def test_sha256_file_for_another_asset_is_refused(env: Env, shell: str) -> None:
    have("busybox-wget" if shell == "busybox ash" else "curl")
    with_earlier_km(env)
    side = site_file(env.site, CURRENT, ASSET + ".sha256")
    side.write_text(side.read_text().replace(ASSET, "km-linux-arm64"))
    r = env.run("--install-dir", str(env.bindir), shell=shell)
    r.assert_failed("is the checksum of 'km-linux-arm64', not of km-linux-amd64", "refusing")
    assert_untouched(env)


@pytest.mark.parametrize("shell", ["dash", "bash", "busybox ash"])
def test_cdn_version_missing_there_installs_that_version_from_github(env: Env, shell: str) -> None:
    """After a rollback the CDN's word counts: vX from GitHub, not GitHub's latest."""
    have("busybox-wget" if shell == "busybox ash" else "curl")
    env.gh.latest = OLDER
    for name in ("SHA256SUMS", "SHA256SUMS.sig", "SHA256SUMS.p256", ASSET + ".sha256", ASSET):
        env.cdn.faults[f"/releases/{CURRENT}/{name}"] = 404
    r = env.run("--install-dir", str(env.bindir), shell=shell)
    assert_installed(env, r, CURRENT)
    assert "trying GitHub" in r.stderr
    assert f"{GH_PREFIX}/latest/download/SHA256SUMS" not in env.gh.paths()
    assert env.gh.paths()[0] == f"{GH_PREFIX}/download/{CURRENT}/SHA256SUMS"


@pytest.mark.parametrize("shell", ["dash", "bash", "busybox ash"])
@pytest.mark.parametrize("given", ["~/bin", "~"])
def test_tilde_without_home_is_refused(env: Env, shell: str, given: str) -> None:
    have("busybox-wget" if shell == "busybox ash" else "curl")
    r = env.run("--install-dir", given, shell=shell, env={"HOME": None})  # type: ignore[dict-item]
    r.assert_failed(f"--install-dir '{given}' starts with ~ but HOME is not set")
    assert env.all_requests() == []
    assert not Path("/bin/km").exists() or Path("/bin/km").read_bytes() != fake_km(CURRENT)
    assert not (env.tmp / "km").exists()


def test_stale_temporary_directories_are_removed(env: Env) -> None:
    env.bindir.mkdir()
    dead = env.bindir / ".km-install.999999999.AbCdEf"  # a pid no process has
    old_format = env.bindir / ".km-install.Xy12Zw"  # from an earlier installer
    live = env.bindir / f".km-install.{os.getpid()}.LiVe01"  # a run still going
    for d in (dead, old_format, live):
        d.mkdir()
        (d / "km").write_bytes(b"partial")
    r = env.run("--install-dir", str(env.bindir))
    assert_installed_keeping(env, r, live)
    assert not dead.exists() and not old_format.exists()


def assert_installed_keeping(e: Env, r: Result, live: Path) -> None:
    assert r.rc == 0, r.stderr
    assert (e.bindir / "km").read_bytes() == site_file(e.site, CURRENT, ASSET).read_bytes()
    assert live.is_dir()


def _mount_prefix(target: Path, options: str) -> list[str]:
    """Run in a private mount namespace with a tmpfs (``options``) over ``target``."""
    script = 'mount -t tmpfs -o "$1" km-test "$2" && shift 2 && exec "$@"'
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "mnt", options, str(target)]


needs_mounts = pytest.mark.skipif(not _ro_bind_supported(), reason="needs root and unshare -m for mounts")


@needs_mounts
def test_noexec_mount_has_its_own_message(env: Env) -> None:
    env.bindir.mkdir()
    r = env.run("--install-dir", str(env.bindir), prefix=_mount_prefix(env.bindir, "noexec,size=4m"))
    r.assert_failed(f"{env.bindir} is on a file system mounted noexec", "--install-dir")
    assert r.seconds < 20


@needs_mounts
def test_full_disk_has_its_own_message(env: Env) -> None:
    env.bindir.mkdir()
    env.publish(CURRENT, {ASSET: fake_km(CURRENT) + b"#" * 600_000 + b"\n"})
    # 512 KiB of tmpfs: the checksums fit, the 600 KB binary does not
    r = env.run("--install-dir", str(env.bindir), prefix=_mount_prefix(env.bindir, "size=512k"))
    r.assert_failed(f"no space left on the device of {env.bindir}", "--install-dir")
    assert "curl exit" not in r.last_err


@needs_mounts
def test_full_disk_with_gnu_wget(env: Env) -> None:
    env.bindir.mkdir()
    env.publish(CURRENT, {ASSET: fake_km(CURRENT) + b"#" * 600_000 + b"\n"})
    prefix = _mount_prefix(env.bindir, "size=512k")
    r = env.run("--install-dir", str(env.bindir), prefix=prefix, path=tools_path(env, "gnu-wget"))
    r.assert_failed(f"no space left on the device of {env.bindir}")


# -- the version grammar of install.sh ------------------------------------------------------

GOOD = [
    "v1.2.3",
    "1.2.3",
    "v0.0.0",
    "v10.20.30",
    "v1.0.0-0",
    "v1.0.0-rc.1",
    "v1.0.0-alpha-1.x.7z",
    "v1.0.0--",
]
BAD = [
    "v01.0.0",
    "v1.02.0",
    "v1.0.00",
    "v1.0.0-01",
    "v1.0.0-rc.01",
    "v1\u0660.0.0",  # ARABIC-INDIC DIGIT ZERO
    "v1.0.0-\u0661a",
    "v\uff11.0.0",  # FULLWIDTH DIGIT ONE
    "v1.2.3+build",
    "v1.2.3-",
    "v1.2.3-rc..1",
    "v1.2",
    "v1.2.3.4",
    "V1.2.3",
    "v1.2.3 ",
    "",
]


def _functions(tmp: Path) -> Path:
    """install.sh without its last line: the functions, nothing run."""
    lib = tmp / "install-functions.sh"
    lib.write_text(INSTALL_SH.read_text().removesuffix('main "$@" || exit 1\n'))
    return lib


@pytest.mark.parametrize("shell", ["dash", "bash", "busybox ash"])
def test_a_job_killed_as_it_starts_does_not_clean_up_the_install(tmp_path: Path, shell: str) -> None:
    """bash runs the EXIT trap in a background job killed before it has started its command (as
    a hasher or a curl ended right after it was forked): cleanup must then leave the installer's
    temporary directory alone. Twenty such jobs, each killed at once."""
    if not shutil.which(shell.split()[0]):
        pytest.skip(f"{shell} is not installed")
    km_tmp = tmp_path / "km-tmp"
    script = (
        '. "$1"; km_tmp=$2; mkdir "$km_tmp"; trap cleanup EXIT; '
        "i=0; while [ $i -lt 20 ]; do sleep 1 </dev/null 2>/dev/null & kill -TERM $! 2>/dev/null; "
        'wait $! 2>/dev/null; i=$((i + 1)); done; [ -d "$km_tmp" ] && echo kept || echo removed'
    )
    r = subprocess.run(
        [*shell_argv(shell, tmp_path), "-c", script, "sh", str(_functions(tmp_path)), str(km_tmp)],
        capture_output=True,
        env={"PATH": SYSTEM_PATH, "LANG": "C.UTF-8"},
        timeout=60,
    )
    assert r.stdout.decode().splitlines() == ["kept"], r.stderr.decode()[-500:]
    assert not km_tmp.exists()  # the installer's own exit still cleans up


@pytest.mark.parametrize("shell", ["dash", "bash", "busybox ash"])
def test_version_grammar(tmp_path: Path, shell: str) -> None:
    if not shutil.which(shell.split()[0]):
        pytest.skip(f"{shell} is not installed")
    lib = _functions(tmp_path)
    check = (
        '. "$1"; shift; for v do '
        'if normalise_version "$v"; then echo "ok $_nv_version"; else echo no; fi; done'
    )
    out = subprocess.run(
        [*shell_argv(shell, tmp_path), "-c", check, "sh", str(lib), *GOOD, *BAD],
        capture_output=True,
        env={"PATH": SYSTEM_PATH, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"},
        timeout=30,
    ).stdout.decode()
    answers = out.splitlines()
    assert answers[: len(GOOD)] == [f"ok v{g.removeprefix('v')}" for g in GOOD]
    assert answers[len(GOOD) :] == ["no"] * len(BAD)
