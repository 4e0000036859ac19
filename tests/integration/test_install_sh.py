"""scripts/install.sh run on the host under every shell of SPEC §8, against local fake sites.

The CDN and GitHub are the servers of tests/support/sites.py on loopback; the
"binaries" are tiny shell scripts that answer ``--version`` like km does. Every
failure case asserts the exit code, the one ``error:`` line stderr ends with, and
what the install directory holds afterwards.
"""

from __future__ import annotations

import contextlib
import os
import pty
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.install_settings import write_install_sh
from tests.support.signed_sites import ReleaseKey, make_key, sign_site
from tests.support.sites import CdnServer, Fault, GitHubServer, build_site, dead_url, fake_km, site_file

ROOT = Path(__file__).resolve().parents[2]
INSTALL_SH = ROOT / "scripts" / "install.sh"
CURRENT = "v1.2.3"
OLDER = "v1.1.0"
ASSET = "km-linux-amd64"
GH_PREFIX = "/kilometers-ai/kilometers-cli/releases"

SHELLS = ("dash", "bash", "busybox ash", "zsh", "mksh", "ksh", "yash", "posh")
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _shell_available(shell: str) -> bool:
    return shutil.which(shell.split()[0]) is not None


def shell_params() -> list[object]:
    return [
        pytest.param(
            s, marks=pytest.mark.skipif(not _shell_available(s), reason=f"{s} is not installed"), id=s
        )
        for s in SHELLS
    ]


def shell_argv(shell: str, tmp: Path) -> list[str]:
    """How to start ``shell`` as sh: zsh only emulates sh when it is called ``sh``."""
    if shell == "zsh":
        link = tmp / "zsh-as-sh" / "sh"
        link.parent.mkdir(exist_ok=True)
        if not link.exists():
            link.symlink_to(shutil.which("zsh") or "/usr/bin/zsh")
        return [str(link)]
    name, *rest = shell.split()
    return [shutil.which(name, path=SYSTEM_PATH) or name, *rest]


@dataclass
class Result:
    rc: int
    stdout: str
    stderr: str
    seconds: float = 0.0

    @property
    def last_err(self) -> str:
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        return lines[-1] if lines else ""

    def assert_failed(self, *needles: str) -> str:
        """Non-zero, stderr ends with exactly one ``error:`` line holding every needle."""
        assert self.rc != 0, f"expected a failure:\n{self.stdout}\n{self.stderr}"
        errors = [line for line in self.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, self.stderr
        assert self.last_err == errors[0], self.stderr
        for needle in needles:
            assert needle in self.last_err, f"{needle!r} not in {self.last_err!r}"
        return self.last_err


@dataclass
class Env:
    tmp: Path
    site: Path
    cdn: CdnServer
    gh: GitHubServer
    home: Path
    bindir: Path
    fakes: Path  # first on PATH: fake uname, sysctl ...
    key: ReleaseKey  # the release key: the site is signed with it, the script trusts it
    script: Path  # install.sh with TRUSTED_KEYS set to that key

    def publish(
        self, version: str, binaries: dict[str, bytes] | None = None, *, current: bool = True
    ) -> None:
        """Publish (and sign) a release into the site."""
        build_site(self.site, version, binaries, current=current)
        sign_site(self.site, version, self.key)

    def run(
        self,
        *args: str,
        shell: str = "dash",
        env: dict[str, str] | None = None,
        piped: bool = False,
        path: str | None = None,
        prefix: Sequence[str] = (),
        timeout: float = 60,
        script: Path | None = None,
    ) -> Result:
        script = script or self.script
        full_env = {
            "PATH": path if path is not None else f"{self.fakes}:{SYSTEM_PATH}",
            "HOME": str(self.home),
            "KM_BASE_URL": self.cdn.url,
            "KM_GITHUB_BASE_URL": self.gh.url,
            "NO_COLOR": "1",
            "LANG": "C",
        }
        full_env.update(env or {})
        full_env = {k: v for k, v in full_env.items() if v is not None}
        start = time.monotonic()
        argv = [*prefix, *shell_argv(shell, self.tmp)]
        if piped:  # cat install.sh | sh -s -- args: the script arrives on stdin, no terminal
            # posh has no -s: with no arguments, plain `| sh` as the README says
            proc = subprocess.run(
                [*argv, "-s", "--", *args] if args else argv,
                input=script.read_bytes(),
                env=full_env,
                capture_output=True,
                timeout=timeout,
                cwd=self.tmp,
            )
        else:
            proc = subprocess.run(
                [*argv, str(script), *args],
                stdin=subprocess.DEVNULL,
                env=full_env,
                capture_output=True,
                timeout=timeout,
                cwd=self.tmp,
            )
        return Result(proc.returncode, proc.stdout.decode(), proc.stderr.decode(), time.monotonic() - start)

    def fake_uname(self, s: str, m: str) -> None:
        script = f'#!/bin/sh\ncase "$1" in -sm) echo "{s} {m}" ;; -m) echo "{m}" ;; *) echo "{s}" ;; esac\n'
        self.write_tool("uname", script)

    def write_tool(self, name: str, script: str) -> None:
        tool = self.fakes / name
        tool.write_text(script)
        tool.chmod(0o755)

    def all_requests(self) -> list[str]:
        return self.cdn.paths() + self.gh.paths() + self.gh.asset_host.paths()


def leftovers(directory: Path) -> list[str]:
    return (
        sorted(p.name for p in directory.iterdir() if p.name.startswith(".km-install"))
        if directory.exists()
        else []
    )


@pytest.fixture(scope="module")
def release_key(tmp_path_factory: pytest.TempPathFactory) -> ReleaseKey:
    return make_key(tmp_path_factory.mktemp("key"))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, release_key: ReleaseKey) -> Path:
    root = tmp_path_factory.mktemp("site")
    build_site(root, OLDER, current=False)
    sign_site(root, OLDER, release_key)
    build_site(root, CURRENT)
    sign_site(root, CURRENT, release_key)
    return root


@contextlib.contextmanager
def make_env(tmp_path: Path, site: Path, key: ReleaseKey) -> Iterator[Env]:
    """A private copy of the signed site behind a CDN and a GitHub, and install.sh trusting ``key``."""
    own_site = tmp_path / "site"
    shutil.copytree(site, own_site)
    home = tmp_path / "home"
    home.mkdir()
    fakes = tmp_path / "fakes"
    fakes.mkdir()
    with CdnServer(own_site) as cdn, GitHubServer(own_site) as gh:
        script = write_install_sh(tmp_path / "install.sh", TRUSTED_KEYS=key.public_pem.strip())
        yield Env(tmp_path, own_site, cdn, gh, home, tmp_path / "bin", fakes, key, script)


@pytest.fixture
def env(tmp_path: Path, site: Path, release_key: ReleaseKey) -> Iterator[Env]:
    with make_env(tmp_path, site, release_key) as e:
        yield e


def release_paths(version: str = CURRENT, asset: str = ASSET, *, sig: str | None = "sig") -> list[str]:
    """What install.sh fetches of one release: SHA256SUMS (and its signature), the .sha256, the asset."""
    signature = [f"/releases/{version}/SHA256SUMS.{sig}"] if sig else []
    return [
        f"/releases/{version}/SHA256SUMS",
        *signature,
        f"/releases/{version}/{asset}.sha256",
        f"/releases/{version}/{asset}",
    ]


def cdn_paths(version: str = CURRENT, asset: str = ASSET, *, sig: str | None = "sig") -> list[str]:
    return ["/version", *release_paths(version, asset, sig=sig)]


def assert_installed(
    e: Env, r: Result, version: str = CURRENT, name: str = "km", os_arch: str = "linux/amd64"
) -> None:
    assert r.rc == 0, f"{r.stdout}\n{r.stderr}"
    km = e.bindir / name
    assert km.is_file()
    assert stat.S_IMODE(km.stat().st_mode) == 0o755
    assert (
        f"km {version} (fake, 2026-01-01T00:00:00Z, {os_arch})" in r.stdout
    )  # the installed km --version ran
    assert leftovers(e.bindir) == []


# -- the main path, every shell ------------------------------------------------------


@pytest.mark.parametrize("shell", shell_params())
def test_installs_under_each_shell(env: Env, shell: str) -> None:
    r = env.run("--install-dir", str(env.bindir), shell=shell)
    assert_installed(env, r)
    assert env.cdn.paths() == cdn_paths()  # /version first, then the immutable versioned path
    assert env.gh.paths() == []
    assert (env.bindir / "km").read_bytes() == site_file(env.site, CURRENT, ASSET).read_bytes()


@pytest.mark.parametrize("shell", shell_params())
def test_piped_with_no_terminal(env: Env, shell: str) -> None:
    """`curl ... | sh`: the script comes on stdin; nothing is asked, it completes."""
    r = env.run(shell=shell, piped=True, env={"KM_INSTALL_DIR": str(env.bindir)})
    assert_installed(env, r)


@pytest.mark.parametrize("shell", shell_params())
def test_help_downloads_nothing(env: Env, shell: str) -> None:
    r = env.run("--help", shell=shell)
    assert r.rc == 0
    assert "--install-dir" in r.stdout and "KM_BASE_URL" in r.stdout and "KM_INSTALL_SOURCE" in r.stdout
    assert env.all_requests() == []
    r = env.run("--install-dir", str(env.bindir), "-h", shell=shell)
    assert r.rc == 0 and env.all_requests() == [] and not env.bindir.exists()


def test_version_flag_env_and_normalisation(env: Env) -> None:
    r = env.run("--install-dir", str(env.bindir), "--version", OLDER)
    assert_installed(env, r, OLDER)
    assert env.cdn.paths() == cdn_paths(OLDER)[1:]  # a given version needs no /version
    r = env.run(env={"KM_VERSION": "1.1.0", "KM_INSTALL_DIR": str(env.bindir)})
    assert_installed(env, r, OLDER)
    r = env.run(f"--install-dir={env.bindir}", f"--version={CURRENT}")
    assert_installed(env, r, CURRENT)


@pytest.mark.parametrize("bad", ["1.0", "v1", "v1.0.0; rm -rf /", "../x", "v1.2.3-", "vx.y.z"])
def test_bad_version_refused_before_any_download(env: Env, bad: str) -> None:
    r = env.run("--install-dir", str(env.bindir), "--version", bad)
    r.assert_failed("not a version", "v1.2.3")
    assert env.all_requests() == []


def test_unknown_option_and_source(env: Env) -> None:
    env.run("--bogus").assert_failed("unknown option '--bogus'")
    env.run("--source", "ftp").assert_failed("--source cdn or --source github")
    env.run("--version").assert_failed("--version needs a value")
    assert env.all_requests() == []


def test_replaces_an_earlier_km(env: Env) -> None:
    env.bindir.mkdir()
    (env.bindir / "km").write_bytes(fake_km("v0.9.0"))
    r = env.run("--install-dir", str(env.bindir))
    assert_installed(env, r)
    assert "v1.2.3" in subprocess.run([env.bindir / "km", "--version"], capture_output=True, text=True).stdout


# -- failures ------------------------------------------------------------------------


@pytest.mark.parametrize("shell", shell_params())
def test_hash_mismatch_refused_without_fallback(env: Env, shell: str) -> None:
    env.bindir.mkdir()
    earlier = fake_km("v0.9.0")
    (env.bindir / "km").write_bytes(earlier)
    binary = site_file(env.site, CURRENT, ASSET)
    want = site_file(env.site, CURRENT, ASSET + ".sha256").read_text().split()[0]
    binary.write_bytes(binary.read_bytes() + b"# tampered\n")
    import hashlib

    got = hashlib.sha256(binary.read_bytes()).hexdigest()
    r = env.run("--install-dir", str(env.bindir), shell=shell)
    line = r.assert_failed("checksum mismatch", want, got, "refusing")
    assert "GitHub" not in r.stderr.replace(line, "")
    assert (env.bindir / "km").read_bytes() == earlier
    assert leftovers(env.bindir) == []
    assert env.gh.paths() == []  # a mismatch is a red flag, not an outage


def test_bad_checksum_file_refused(env: Env) -> None:
    site_file(env.site, CURRENT, ASSET + ".sha256").write_text("<html>not a checksum</html>\n")
    r = env.run("--install-dir", str(env.bindir))
    r.assert_failed("not a SHA-256 checksum file")
    assert not (env.bindir / "km").exists() and env.gh.paths() == []


def test_no_hash_tool_refused_before_download(env: Env) -> None:
    tools = env.tmp / "nohash"
    tools.mkdir()
    for tool in ("uname", "curl", "mkdir", "mktemp", "chmod", "mv", "rm", "cat", "tr", "grep", "pwd"):
        found = shutil.which(tool)
        if found:
            (tools / tool).symlink_to(found)
    r = env.run("--install-dir", str(env.bindir), path=str(tools))
    r.assert_failed("cannot verify downloads", "sha256sum", "shasum", "openssl")
    assert env.all_requests() == []


def test_missing_version_pinned_to_cdn(env: Env) -> None:
    r = env.run("--install-dir", str(env.bindir), "--version", "v9.9.9", "--source", "cdn")
    r.assert_failed("km v9.9.9", "not published", "404")
    assert env.gh.paths() == []
    assert not (env.bindir / "km").exists() and leftovers(env.bindir) == []


def test_missing_version_everywhere(env: Env) -> None:
    r = env.run("--install-dir", str(env.bindir), "--version", "v9.9.9")
    r.assert_failed("km v9.9.9", "not published", "CDN failed too")
    assert "trying GitHub" in r.stderr
    assert env.gh.paths() == [f"{GH_PREFIX}/download/v9.9.9/SHA256SUMS"]


def test_missing_version_on_the_cdn_and_github_unreachable(env: Env) -> None:
    r = env.run(
        "--install-dir", str(env.bindir), "--version", "v9.9.9", env={"KM_GITHUB_BASE_URL": dead_url()}
    )
    r.assert_failed("km v9.9.9", "not published on the CDN", "HTTP 404", "GitHub could not be asked")


def test_no_version_published_and_github_down(env: Env) -> None:
    site_file(env.site, CURRENT, ASSET).parents[2].joinpath("meta", "version").unlink()
    r = env.run("--install-dir", str(env.bindir), env={"KM_GITHUB_BASE_URL": dead_url()})
    r.assert_failed("cannot reach GitHub")
    assert env.cdn.paths() == ["/version"]


@pytest.mark.parametrize(
    "shell,downloader",
    [("dash", "curl"), ("bash", "gnu-wget"), ("busybox ash", "busybox-wget"), ("posh", "curl")],
)
def test_cdn_down_falls_back_to_github(env: Env, shell: str, downloader: str) -> None:
    path = tools_path(env, downloader)
    r = env.run("--install-dir", str(env.bindir), shell=shell, path=path, env={"KM_BASE_URL": dead_url()})
    assert_installed(env, r)
    assert "CDN failed" in r.stderr and "trying GitHub" in r.stderr
    # with no version: GitHub's latest/download/SHA256SUMS names the version by its redirect;
    # then every file from that version's path (one release, however "latest" moves meanwhile)
    sig = None if downloader == "busybox-wget" else "sig"  # busybox alone: no ssh-keygen, no openssl
    assert env.gh.paths() == [
        f"{GH_PREFIX}/latest/download/SHA256SUMS",
        f"{GH_PREFIX}/download/{CURRENT}/SHA256SUMS",
        *(p.replace("/releases/", f"{GH_PREFIX}/download/") for p in release_paths(sig=sig)),
    ]
    assert [p.rsplit("/", 1)[-1] for p in env.gh.asset_host.paths()] == [
        "SHA256SUMS",
        *(p.rsplit("/", 1)[-1] for p in release_paths(sig=sig)),
    ]


@pytest.mark.parametrize(
    "fault_path,fault",
    [
        ("/version", 503),
        ("/version", 404),
        (f"/releases/{CURRENT}/{ASSET}.sha256", 404),
        (f"/releases/{CURRENT}/{ASSET}", 500),
    ],
)
def test_cdn_errors_fall_back_to_github(env: Env, fault_path: str, fault: int) -> None:
    env.cdn.faults[fault_path] = fault
    r = env.run("--install-dir", str(env.bindir))
    assert_installed(env, r)
    assert f"HTTP {fault}" in r.stderr and "trying GitHub" in r.stderr
    assert env.gh.asset_host.paths()


def test_given_version_falls_back_to_github_versioned_path(env: Env) -> None:
    r = env.run("--install-dir", str(env.bindir), "--version", OLDER, env={"KM_BASE_URL": dead_url()})
    assert_installed(env, r, OLDER)
    assert env.gh.paths() == [p.replace("/releases/", f"{GH_PREFIX}/download/") for p in release_paths(OLDER)]


def test_source_github_never_asks_the_cdn(env: Env) -> None:
    r = env.run("--install-dir", str(env.bindir), env={"KM_INSTALL_SOURCE": "github"})
    assert_installed(env, r)
    assert env.cdn.requests == []
    assert env.gh.paths()[0] == f"{GH_PREFIX}/latest/download/SHA256SUMS"


def test_source_cdn_never_falls_back(env: Env) -> None:
    r = env.run("--install-dir", str(env.bindir), "--source", "cdn", env={"KM_BASE_URL": dead_url()})
    r.assert_failed("cannot reach the CDN")
    assert env.gh.paths() == []


def test_bad_version_document_falls_back(env: Env) -> None:
    (env.site / "meta" / "version").write_text("<html>captive portal</html>\n")
    env.gh.latest = CURRENT
    r = env.run("--install-dir", str(env.bindir))
    assert_installed(env, r)
    assert "does not hold a version" in r.stderr


@pytest.mark.parametrize(
    "shell,downloader",
    [("dash", "curl"), ("bash", "gnu-wget"), ("busybox ash", "busybox-wget"), ("mksh", "curl")],
)
def test_interrupted_download_leaves_earlier_km(env: Env, shell: str, downloader: str) -> None:
    env.bindir.mkdir()
    earlier = fake_km("v0.9.0")
    (env.bindir / "km").write_bytes(earlier)
    (env.bindir / "km").chmod(0o755)
    big = fake_km(CURRENT) + b"#" * 2_000_000 + b"\n"
    env.publish(CURRENT, {ASSET: big})
    env.cdn.faults[f"/releases/{CURRENT}/{ASSET}"] = Fault.TRUNCATE
    r = env.run("--install-dir", str(env.bindir), shell=shell, path=tools_path(env, downloader))
    r.assert_failed("broke off", "nothing was installed")
    assert (env.bindir / "km").read_bytes() == earlier
    assert "v0.9.0" in subprocess.run([env.bindir / "km", "--version"], capture_output=True, text=True).stdout
    assert leftovers(env.bindir) == []
    assert env.gh.paths() == []


@pytest.mark.parametrize("shell", shell_params())
def test_ctrl_c_mid_download_cleans_up(env: Env, shell: str) -> None:
    """Ctrl-C (SIGINT to the process group) during the download: exit 130, no temp files left."""
    env.bindir.mkdir()
    earlier = fake_km("v0.9.0")
    (env.bindir / "km").write_bytes(earlier)
    env.publish(CURRENT, {ASSET: fake_km(CURRENT) + b"#" * 1_000_000 + b"\n"})
    binary_path = f"/releases/{CURRENT}/{ASSET}"
    env.cdn.faults[binary_path] = Fault.STALL
    proc = subprocess.Popen(
        [*shell_argv(shell, env.tmp), str(env.script), "--install-dir", str(env.bindir)],
        env={
            "PATH": f"{env.fakes}:{SYSTEM_PATH}",
            "HOME": str(env.home),
            "KM_BASE_URL": env.cdn.url,
            "NO_COLOR": "1",
        },
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while binary_path not in env.cdn.paths() or not any(
            (d / "km").exists() for d in env.bindir.glob(".km-install.*")
        ):
            assert time.monotonic() < deadline, "the download never started"
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.02)
        assert leftovers(env.bindir)  # the partial download is in the private temp directory
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        env.cdn.release.set()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, err
    assert err.decode().splitlines()[-1] == "error: interrupted (SIGINT): nothing was installed"
    assert leftovers(env.bindir) == []
    assert (env.bindir / "km").read_bytes() == earlier


def _ro_bind_supported() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    return probe.returncode == 0


def ro_mount_prefix(target: Path) -> list[str]:
    """Run the installer in a private mount namespace where ``target`` is a read-only bind mount.

    Root ignores permission bits, not a read-only file system; the namespace dies with the
    process, so nothing stays mounted even if the test is killed.
    """
    script = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" "$1" && shift && exec "$@"'
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "ro-mount", str(target)]


@pytest.mark.skipif(not _ro_bind_supported(), reason="needs root and unshare -m for a read-only bind mount")
def test_unwritable_directory(env: Env) -> None:
    env.bindir.mkdir()
    earlier = fake_km("v0.9.0")
    (env.bindir / "km").write_bytes(earlier)
    before = sorted(p.name for p in env.bindir.iterdir())
    r = env.run("--install-dir", str(env.bindir), prefix=ro_mount_prefix(env.bindir))
    r.assert_failed(f"cannot write to {env.bindir}", "read-only", "--install-dir")
    assert sorted(p.name for p in env.bindir.iterdir()) == before
    assert (env.bindir / "km").read_bytes() == earlier
    assert env.all_requests() == []  # found out before anything was downloaded


def test_directory_under_a_regular_file(env: Env) -> None:
    blocker = env.tmp / "file"
    blocker.write_text("a file, not a directory\n")
    r = env.run("--install-dir", str(blocker / "bin"))
    r.assert_failed(f"cannot write to {blocker / 'bin'}", "sudo", "--install-dir")
    r = env.run("--install-dir", str(blocker))
    r.assert_failed("not a directory", "--install-dir")
    assert blocker.read_text() == "a file, not a directory\n"
    assert env.all_requests() == []


@pytest.mark.skipif(not _ro_bind_supported(), reason="needs root and unshare -m for bind mounts")
def test_default_directory(env: Env) -> None:
    """/usr/local/bin when writable (here a private bind mount over it), else $HOME/.local/bin."""
    fake_usr_local_bin = env.tmp / "usr-local-bin"
    fake_usr_local_bin.mkdir()
    over = (
        f'mount --bind "{fake_usr_local_bin}" /usr/local/bin && '
        '{ [ -z "$KM_RO" ] || mount -o remount,bind,ro /usr/local/bin /usr/local/bin; } && exec "$@"'
    )
    prefix = ["unshare", "-m", "--propagation", "private", "sh", "-c", over, "over"]
    r = env.run(prefix=prefix, env={"KM_RO": ""})
    assert r.rc == 0, r.stderr
    assert (fake_usr_local_bin / "km").is_file()
    assert "installed /usr/local/bin/km" in r.stdout
    r = env.run(prefix=prefix, env={"KM_RO": "1"})
    assert r.rc == 0, r.stderr
    assert (env.home / ".local" / "bin" / "km").is_file()
    assert "is not on your PATH" in r.stderr  # $HOME/.local/bin is not on this PATH


@pytest.mark.parametrize(
    "s,m,named",
    [
        ("FreeBSD", "amd64", "FreeBSD/amd64"),
        ("Linux", "riscv64", "Linux/riscv64"),
        ("SunOS", "sparc64", "SunOS"),
    ],
)
@pytest.mark.parametrize("shell", ["dash", "posh", "mksh"])  # busybox ash runs its own uname, not PATH's
def test_unsupported_platform(env: Env, shell: str, s: str, m: str, named: str) -> None:
    env.fake_uname(s, m)
    r = env.run("--install-dir", str(env.bindir), shell=shell)
    r.assert_failed("unsupported platform", named, f"{env.gh.url}/kilometers-ai/kilometers-cli/releases")
    assert env.all_requests() == [] and not env.bindir.exists()


@pytest.mark.parametrize(
    "base",
    ["http://get.kilometers.ai", "http://10.0.0.1:8080", "http://127.0.0.1.evil.example", "ftp://127.0.0.1/"],
)
def test_plain_http_refused_off_loopback(env: Env, base: str) -> None:
    r = env.run("--install-dir", str(env.bindir), env={"KM_BASE_URL": base})
    r.assert_failed(base.rstrip("/"))
    assert "refusing plain http://" in r.last_err or "must be an https:// URL" in r.last_err
    r = env.run("--install-dir", str(env.bindir), "--source", "github", env={"KM_GITHUB_BASE_URL": base})
    r.assert_failed()
    assert env.all_requests() == []


@pytest.mark.parametrize("host", ["localhost", "[::1]", "127.0.0.1", "127.1.2.3"])
def test_loopback_http_accepted(env: Env, host: str) -> None:
    """Plain http is fine on loopback; here nothing listens, so it fails on the connection instead."""
    r = env.run("--install-dir", str(env.bindir), "--source", "cdn", env={"KM_BASE_URL": f"http://{host}:9"})
    r.assert_failed("cannot reach the CDN")
    assert "refusing" not in r.stderr


# -- platforms -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "s,m,asset,name,os_arch",
    [
        ("Linux", "x86_64", "km-linux-amd64", "km", "linux/amd64"),
        ("Linux", "aarch64", "km-linux-arm64", "km", "linux/arm64"),
        ("Linux", "arm64", "km-linux-arm64", "km", "linux/arm64"),
        ("Darwin", "x86_64", "km-darwin-amd64", "km", "darwin/amd64"),
        ("Darwin", "arm64", "km-darwin-arm64", "km", "darwin/arm64"),
        ("MINGW64_NT-10.0-19045", "x86_64", "km-windows-amd64.exe", "km.exe", "windows/amd64"),
        ("MSYS_NT-10.0", "x86_64", "km-windows-amd64.exe", "km.exe", "windows/amd64"),
        ("CYGWIN_NT-10.0", "aarch64", "km-windows-arm64.exe", "km.exe", "windows/arm64"),
    ],
)
def test_platform_detection(env: Env, s: str, m: str, asset: str, name: str, os_arch: str) -> None:
    env.fake_uname(s, m)
    r = env.run("--install-dir", str(env.bindir))
    assert_installed(env, r, name=name, os_arch=os_arch)
    assert env.cdn.paths() == cdn_paths(asset=asset)


def test_rosetta_gets_arm64(env: Env) -> None:
    env.fake_uname("Darwin", "x86_64")
    env.write_tool("sysctl", '#!/bin/sh\n[ "$2" = sysctl.proc_translated ] && echo 1\n')
    r = env.run("--install-dir", str(env.bindir))
    assert_installed(env, r, os_arch="darwin/arm64")
    assert env.cdn.paths() == cdn_paths(asset="km-darwin-arm64")


def test_windows_on_arm_under_x64_emulation(env: Env) -> None:
    env.fake_uname("MINGW64_NT-10.0", "x86_64")
    r = env.run("--install-dir", str(env.bindir), env={"PROCESSOR_ARCHITEW6432": "ARM64"})
    assert_installed(env, r, name="km.exe", os_arch="windows/arm64")


# -- PATH advice, colour ------------------------------------------------------------------


def test_path_advice_and_shadow_warning(env: Env) -> None:
    other = env.tmp / "other"
    other.mkdir()
    (other / "km").write_bytes(fake_km("v0.1.0"))
    (other / "km").chmod(0o755)
    r = env.run("--install-dir", str(env.bindir), path=f"{env.fakes}:{SYSTEM_PATH}")
    assert r.rc == 0 and f"{env.bindir} is not on your PATH" in r.stderr
    r = env.run("--install-dir", str(env.bindir), path=f"{other}:{env.bindir}/:{SYSTEM_PATH}")
    assert r.rc == 0
    assert f"another km at {other}/km comes earlier on PATH" in r.stderr
    assert "not on your PATH" not in r.stderr
    r = env.run("--install-dir", str(env.bindir), path=f"{env.bindir}:{other}:{SYSTEM_PATH}")
    assert r.rc == 0 and "warning" not in r.stderr


def _run_with_tty_stderr(env: Env, extra: dict[str, str]) -> str:
    master, slave = pty.openpty()
    try:
        full = {
            "PATH": f"{env.fakes}:{SYSTEM_PATH}",
            "HOME": str(env.home),
            "KM_BASE_URL": env.cdn.url,
            "TERM": "xterm",
            **extra,
        }
        proc = subprocess.run(
            [
                "dash",
                str(env.script),
                "--version",
                "v9.9.9",
                "--source",
                "cdn",
                "--install-dir",
                str(env.bindir),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=slave,
            env=full,
            timeout=60,
        )
        assert proc.returncode == 1
        os.close(slave)
        slave = -1
        out = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        return out.decode()
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)


def test_colour_only_on_a_terminal_and_never_with_no_color(env: Env) -> None:
    assert "\x1b[" in _run_with_tty_stderr(env, {})
    assert "\x1b[" not in _run_with_tty_stderr(env, {"NO_COLOR": "1"})
    r = env.run("--version", "v9.9.9", "--source", "cdn", env={"NO_COLOR": None})  # type: ignore[dict-item]
    assert "\x1b[" not in r.stderr  # stderr is a pipe here


# -- the script itself ------------------------------------------------------------------


def test_truncated_script_runs_nothing(env: Env, tmp_path: Path) -> None:
    """Cut anywhere before the last line, the script defines functions and does nothing."""
    text = INSTALL_SH.read_text()
    marker = tmp_path / "ran"
    env.write_tool("uname", f"#!/bin/sh\ntouch {marker}\necho Linux\n")
    cuts = sorted({len(text) * i // 40 for i in range(1, 40)} | {text.rindex("main ")})
    for cut in cuts:
        proc = subprocess.run(
            ["dash", "-s"],
            input=text[:cut].encode(),
            env={"PATH": f"{env.fakes}:{SYSTEM_PATH}", "HOME": str(env.home), "KM_BASE_URL": env.cdn.url},
            capture_output=True,
            timeout=30,
        )
        assert not marker.exists(), f"cut at {cut} ran something"
        assert env.all_requests() == []
        del proc


def tools_path(env: Env, downloader: str) -> str:
    """A PATH whose downloader is curl, GNU wget or busybox wget (and only busybox tools)."""
    if downloader == "curl":
        return f"{env.fakes}:{SYSTEM_PATH}"
    tools = env.tmp / f"tools-{downloader}"
    if tools.exists():
        return str(tools)
    tools.mkdir()
    if downloader == "busybox-wget":
        busybox = shutil.which("busybox")
        if busybox is None:
            pytest.skip("busybox is not installed")
        applets = subprocess.run(
            [busybox, "--list"], capture_output=True, text=True, check=True
        ).stdout.split()
        for applet in applets:
            (tools / applet).symlink_to(busybox)
        return str(tools)
    for name in os.listdir("/usr/bin"):
        if name not in ("curl",):
            (tools / name).symlink_to(Path("/usr/bin") / name)
    if not (tools / "wget").exists():
        pytest.skip("GNU wget is not installed")
    return str(tools)
