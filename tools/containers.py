"""Container machinery for the end-to-end session (``nox -s e2e``, SPEC §11).

One engine (``KM_CONTAINER_ENGINE``: ``podman``, the default, or ``docker``) and a
handful of images, each described by a recipe:

* built locally from ``debootstrap --variant=minbase`` (or the host's
  busybox-static), cached as a rootfs tarball under ``$KM_E2E_CACHE/images``
  keyed by the recipe, so a second run imports (or finds) it and builds nothing;
* or, with ``KM_E2E_PULL=1`` (hosted CI with docker), pulled from a registry and
  provisioned there.

Podman is pointed at ``build/containers/containers.conf`` and at a copy of
``build/containers/storage.conf`` whose graphroot and runroot live in the cache,
so nothing machine-wide is used or changed. The one machine-wide change, the
binfmt_misc entry for arm64 emulation, is made by :func:`arm64_emulation`, a
context manager that undoes it.

``python -m tools.containers env`` prints the environment for running podman
by hand; ``python -m tools.containers build [NAME...]`` builds images.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kmrelease.errors import KmError

ROOT = Path(__file__).resolve().parent.parent

CONFIG_DIR = ROOT / "build" / "containers"
ENGINES = ("podman", "docker")
MIRROR = "http://deb.debian.org/debian"
# Bump when a recipe changes in a way its fields do not capture.
RECIPE_REVISION = 1

Progress = Callable[[str], None]


def _stderr_progress(message: str) -> None:
    print(f"[e2e {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def cache_dir() -> Path:
    """``$KM_E2E_CACHE``, else ``.cache/e2e`` in the repository."""
    return Path(os.environ.get("KM_E2E_CACHE") or ROOT / ".cache" / "e2e").absolute()


def pull_mode() -> bool:
    return os.environ.get("KM_E2E_PULL", "") not in ("", "0", "false", "no")


# --------------------------------------------------------------------------- engine


@dataclass
class Result:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def last_stderr_line(self) -> str:
        lines = [ln for ln in self.stderr.splitlines() if ln.strip()]
        return lines[-1].strip() if lines else ""

    def describe(self) -> str:
        return (
            f"$ {' '.join(self.args)}\nexit {self.returncode}\n"
            f"--- stdout\n{self.stdout[-4000:]}\n--- stderr\n{self.stderr[-4000:]}"
        )


@dataclass
class Engine:
    """A container engine CLI with the project's configuration applied."""

    name: str
    binary: str
    cache: Path
    env: dict[str, str] = field(default_factory=dict)

    def command(self, *args: str) -> list[str]:
        return [self.binary, *args]

    def _run(
        self,
        args: Sequence[str],
        *,
        timeout: float | None = None,
        input: str | None = None,
        check: bool = True,
    ) -> Result:
        cmd = self.command(*args)
        env = {**os.environ, **self.env}
        try:
            proc = subprocess.run(
                cmd,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
                input=input,
                stdin=None if input is not None else subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            raise KmError(f"{' '.join(cmd[:4])}…: timed out after {timeout} s") from None
        except OSError as exc:
            raise KmError(f"{self.binary}: {exc}") from None
        res = Result(cmd, proc.returncode, proc.stdout, proc.stderr)
        if check and proc.returncode != 0:
            raise KmError(f"{self.name} failed:\n{res.describe()}")
        return res

    def check(self) -> None:
        """Raise :class:`KmError` with the reason when the engine cannot run containers."""
        res = self._run(["info", "--format", "{{json .}}"], timeout=120, check=False)
        if res.returncode != 0:
            raise KmError(f"{self.name} info failed (exit {res.returncode}): {res.last_stderr_line}")

    def image_exists(self, ref: str) -> bool:
        return self._run(["image", "inspect", ref], timeout=60, check=False).returncode == 0

    def import_tarball(self, tarball: Path, ref: str, *, arch: str) -> None:
        args = ["import", "--change", 'CMD ["/bin/sh"]', "--change", "ENV PATH=" + _PATH]
        if self.name == "podman":
            args += ["--arch", arch, "--os", "linux"]
        else:
            args += ["--platform", f"linux/{arch}"]
        self._run([*args, str(tarball), ref], timeout=600)

    def pull(self, ref: str, *, platform: str) -> None:
        self._run(["pull", "--platform", platform, ref], timeout=900)

    def run(
        self,
        image: str,
        script: str,
        *,
        shell: str = "/bin/sh",
        user: str | None = None,
        env: Mapping[str, str] | None = None,
        volumes: Sequence[tuple[Path, str, str]] = (),
        platform: str | None = None,
        timeout: float = 300,
        name: str | None = None,
        rm: bool = True,
        input: str | None = None,
    ) -> Result:
        """Run ``script`` with ``shell -c`` in a fresh container on the host network."""
        args = [
            "run",
            "--network",
            "host",
            "--pull",
            "never",
            "--name",
            name or f"{PREFIX}{uuid.uuid4().hex[:12]}",
        ]
        if rm:
            args.append("--rm")
        if input is not None:
            args.append("-i")
        if user:
            args += ["--user", user]
        if platform:
            args += ["--platform", platform]
        for key, value in (env or {}).items():
            args += ["--env", f"{key}={value}"]
        for host, guest, mode in volumes:
            args += ["--volume", f"{host}:{guest}:{mode}"]
        return self._run([*args, image, shell, "-c", script], timeout=timeout, check=False, input=input)

    def remove_container(self, name: str) -> None:
        self._run(["rm", "--force", name], timeout=120, check=False)

    def export(self, container: str, tarball: Path) -> None:
        self._run(["export", "--output", str(tarball), container], timeout=1200)

    def cleanup(self) -> int:
        """Remove every container this machinery named (``km-e2e-*``); return how many."""
        res = self._run(["ps", "--all", "--quiet", "--filter", f"name=^{PREFIX}"], timeout=60, check=False)
        ids = res.stdout.split()
        for cid in ids:
            self.remove_container(cid)
        return len(ids)


PREFIX = "km-e2e-"
_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def podman_env(cache: Path) -> dict[str, str]:
    """CONTAINERS_CONF and CONTAINERS_STORAGE_CONF for the repository's configuration."""
    conf_dir = cache / "podman"
    conf_dir.mkdir(parents=True, exist_ok=True)
    template = (CONFIG_DIR / "storage.conf").read_text(encoding="utf-8")
    rendered = template.replace("@CACHE@", str(cache))
    storage = conf_dir / "storage.conf"
    if not storage.exists() or storage.read_text(encoding="utf-8") != rendered:
        storage.write_text(rendered, encoding="utf-8")
    return {
        "CONTAINERS_CONF": str(CONFIG_DIR / "containers.conf"),
        "CONTAINERS_STORAGE_CONF": str(storage),
    }


def engine_from_env(cache: Path | None = None) -> Engine:
    """The engine ``KM_CONTAINER_ENGINE`` names; raises :class:`KmError` when unusable."""
    name = os.environ.get("KM_CONTAINER_ENGINE", "podman").strip() or "podman"
    if name not in ENGINES:
        raise KmError(f"KM_CONTAINER_ENGINE={name!r}: expected one of {', '.join(ENGINES)}")
    binary = shutil.which(name)
    if binary is None:
        raise KmError(f"{name} is not installed (KM_CONTAINER_ENGINE={name})")
    cache = cache or cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    env = podman_env(cache) if name == "podman" else {}
    engine = Engine(name, binary, cache, env)
    engine.check()
    return engine


# --------------------------------------------------------------------------- arm64 emulation

BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")
BINFMT_CONF = Path("/usr/lib/binfmt.d/qemu-aarch64.conf")


def _binfmt_entry_name(rule: str) -> str:
    return rule.split(":")[1]


@contextlib.contextmanager
def arm64_emulation(progress: Progress = _stderr_progress) -> Iterator[None]:
    """Register qemu-aarch64 with binfmt_misc for the duration; undo what was done.

    Machine-wide, so: nothing is touched when the entry is already registered
    (someone else owns it), and whatever this function did (mount, register) is
    undone in ``finally``.
    """
    mounted = registered = False
    entry = BINFMT_DIR / "qemu-aarch64"
    try:
        if not (BINFMT_DIR / "register").exists():
            proc = subprocess.run(
                ["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT_DIR)], capture_output=True, text=True
            )
            if proc.returncode != 0:
                raise KmError(f"cannot mount binfmt_misc: {proc.stderr.strip()}")
            mounted = True
        if entry.exists():
            progress("binfmt: qemu-aarch64 already registered; left as it is")
        else:
            if not BINFMT_CONF.is_file():
                raise KmError(f"{BINFMT_CONF} is missing: install qemu-user-static")
            rule = next(
                ln.strip()
                for ln in BINFMT_CONF.read_text().splitlines()
                if ln.strip() and not ln.startswith("#")
            )
            name = _binfmt_entry_name(rule)
            entry = BINFMT_DIR / name
            (BINFMT_DIR / "register").write_text(rule)
            registered = True
            progress(f"binfmt: registered {name} (will be unregistered)")
        yield
    finally:
        if registered and entry.exists():
            try:
                entry.write_text("-1")
                progress(f"binfmt: unregistered {entry.name}")
            except OSError as exc:
                progress(f"binfmt: could not unregister {entry.name}: {exc}")
        if mounted:
            subprocess.run(["umount", str(BINFMT_DIR)], capture_output=True)


# --------------------------------------------------------------------------- images


@dataclass(frozen=True)
class Image:
    """A recipe for one e2e image."""

    name: str
    arch: str = "amd64"
    suite: str | None = None  # debootstrap suite
    include: tuple[str, ...] = ()  # debootstrap --include
    busybox: bool = False  # a busybox-static rootfs
    base: str | None = None  # another image this one is provisioned from
    provision: str = ""  # shell script run in a container of ``base``
    pull: str | None = None  # registry image used instead with KM_E2E_PULL=1
    pull_provision: str = ""  # run on the pulled image

    @property
    def platform(self) -> str:
        return f"linux/{self.arch}"

    @property
    def needs_emulation(self) -> bool:
        return self.arch != "amd64"


_APT = (
    "export DEBIAN_FRONTEND=noninteractive; "
    "apt-get update -qq && apt-get install -y -qq --no-install-recommends"
)
_APT_CLEAN = "apt-get clean && rm -rf /var/lib/apt/lists/*"
_USER = (
    "mkdir -p /home/user && chown 1000:1000 /home/user && "
    "echo 'user:x:1000:1000::/home/user:/bin/sh' >> /etc/passwd"
)
_CURL = f"{_APT} curl ca-certificates >/dev/null && {_APT_CLEAN} && {_USER}"
_WINE = (
    f"{_APT} wine64 >/dev/null && {_APT_CLEAN} && "
    'ln -sf "$(command -v wine64 || echo /usr/lib/wine/wine64)" /usr/local/bin/wine64 && '
    # initialise the prefix once, in the image, so that every test does not pay for it
    "WINEDEBUG=-all wine64 cmd /c exit >/dev/null 2>&1; test -d /root/.wine"
)

IMAGES: dict[str, Image] = {
    i.name: i
    for i in (
        Image(
            "debian12",
            suite="bookworm",
            include=("curl", "ca-certificates"),
            pull="docker.io/library/debian:12",
            pull_provision=_CURL,
        ),
        Image(
            "debian13",
            suite="trixie",
            include=("curl", "ca-certificates"),
            pull="docker.io/library/debian:13",
            pull_provision=_CURL,
        ),
        Image(
            "busybox",
            busybox=True,
            pull="docker.io/library/busybox:1.36",
            pull_provision=f"mkdir -p /usr/local/bin && {_USER}",
        ),
        Image(
            "debian12-arm64",
            arch="arm64",
            suite="bookworm",
            include=("curl", "ca-certificates"),
            pull="docker.io/library/debian:12",
            pull_provision=_CURL,
        ),
        Image("debian13-wine", base="debian13", provision=_WINE),
        # install.sh's ssh-keygen path (issue 10): Debian 12 with openssh-client
        Image("debian12-ssh", base="debian12", provision=f"{_APT} openssh-client >/dev/null && {_APT_CLEAN}"),
    )
}


def image_key(image: Image) -> str:
    """A hash of everything the image is made from (recursively), for the cache."""
    pulled = pull_mode() and image.pull is not None
    # only what this mode builds from: a local recipe change does not invalidate pulled images
    skip = ("suite", "include", "busybox") if pulled else ("pull", "pull_provision")
    recipe = {k: v for k, v in image.__dict__.items() if k not in skip}
    doc: dict[str, object] = {"revision": RECIPE_REVISION, "recipe": recipe, "pull": pulled}
    if image.base:
        doc["base"] = image_key(IMAGES[image.base])
    if image.busybox and not pulled:
        bb = shutil.which("busybox")
        doc["busybox"] = hashlib.sha256(Path(bb).read_bytes()).hexdigest() if bb else None
        doc["layout"] = _BUSYBOX_LAYOUT
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:16]


def image_ref(image: Image) -> str:
    return f"localhost/km-e2e-{image.name}:{image_key(image)}"


def _sh(cmd: Sequence[str], log: Path, *, timeout: float = 1800) -> None:
    with log.open("a", encoding="utf-8") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        proc = subprocess.run(
            cmd, stdout=out, stderr=subprocess.STDOUT, timeout=timeout, stdin=subprocess.DEVNULL
        )
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-25:])
        raise KmError(f"{' '.join(cmd[:3])}… failed (exit {proc.returncode}); log {log}:\n{tail}")


def _require(tool: str, package: str) -> str:
    path = shutil.which(tool) or next(
        (str(p) for p in (Path("/usr/sbin") / tool, Path("/sbin") / tool) if p.exists()), None
    )
    if path is None:
        raise KmError(f"{tool} is not installed: apt-get install {package}")
    return path


def _tar_rootfs(rootfs: Path, tarball: Path, log: Path) -> None:
    tmp = tarball.with_name(tarball.name + ".part")
    _sh(["tar", "--numeric-owner", "--xattrs", "-C", str(rootfs), "-cf", str(tmp), "."], log)
    os.replace(tmp, tarball)


def _debootstrap(image: Image, rootfs: Path, log: Path) -> None:
    assert image.suite
    tool = _require("debootstrap", "debootstrap")
    args = [tool, "--variant=minbase", f"--arch={image.arch}"]
    if image.include:
        args.append("--include=" + ",".join(image.include))
    if image.needs_emulation:
        args.append("--foreign")
    _sh([*args, image.suite, str(rootfs), MIRROR], log)
    if image.needs_emulation:
        # The second stage runs arm64 binaries: through binfmt_misc, registered by the caller.
        _sh(["chroot", str(rootfs), "/debootstrap/debootstrap", "--second-stage"], log)
    _sh(["chroot", str(rootfs), "/bin/sh", "-c", f"apt-get clean; rm -rf /var/lib/apt/lists/*; {_USER}"], log)


_BUSYBOX_LAYOUT = 2  # bump when _busybox_rootfs changes


def _busybox_rootfs(rootfs: Path, log: Path) -> None:
    bb = _require("busybox", "busybox-static")
    with open(bb, "rb") as fh:
        head = fh.read(8192)
    if b"ld-linux" in head or b"ld-musl" in head:  # a program interpreter: dynamically linked
        raise KmError(f"{bb} is not statically linked: apt-get install busybox-static")
    for d in (
        "bin",
        "sbin",
        "usr/bin",
        "usr/sbin",
        "usr/local/bin",
        "etc",
        "root",
        "home/user",
        "proc",
        "sys",
        "dev",
        "run",
    ):
        (rootfs / d).mkdir(parents=True, exist_ok=True)
    (rootfs / "tmp").mkdir(mode=0o1777, exist_ok=True)
    os.chmod(rootfs / "tmp", 0o1777)
    shutil.copy2(bb, rootfs / "bin" / "busybox")
    _sh(["chroot", str(rootfs), "/bin/busybox", "--install", "-s"], log)
    for forbidden in ("curl", "bash"):
        for d in ("bin", "usr/bin"):
            (rootfs / d / forbidden).unlink(missing_ok=True)
    (rootfs / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n"
    )
    (rootfs / "etc" / "group").write_text("root:x:0:\nuser:x:1000:\n")
    os.chown(rootfs / "home" / "user", 1000, 1000)


class Images:
    """Makes sure the images exist in the engine, building or importing as needed."""

    def __init__(self, engine: Engine, progress: Progress = _stderr_progress) -> None:
        self.engine = engine
        self.progress = progress
        self.dir = engine.cache / "images"
        self.dir.mkdir(parents=True, exist_ok=True)
        self._ready: dict[str, str] = {}

    def tarball(self, image: Image) -> Path:
        return self.dir / f"{image.name}-{image_key(image)}.tar"

    def ensure(self, name: str) -> str:
        """The engine reference of image ``name``, ready to run."""
        if name in self._ready:
            return self._ready[name]
        image = IMAGES[name]
        ref = image_ref(image)
        started = time.monotonic()
        if self.engine.image_exists(ref):
            self._ready[name] = ref
            return ref
        tarball = self.tarball(image)
        if tarball.exists():
            self.progress(f"image {name}: importing the cached {tarball.name}")
        elif pull_mode() and image.pull:
            self._pull(image, ref)
            self._ready[name] = ref
            self.progress(f"image {name}: ready in {time.monotonic() - started:.0f} s")
            return ref
        else:
            self._build(image, tarball)
        self.engine.import_tarball(tarball, ref, arch=image.arch)
        self._prune_engine(ref)
        self.progress(f"image {name}: ready as {ref} in {time.monotonic() - started:.0f} s")
        self._ready[name] = ref
        return ref

    def _log(self, image: Image) -> Path:
        logs = self.engine.cache / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        log = logs / f"image-{image.name}.log"
        log.write_text("", encoding="utf-8")
        return log

    def _pull(self, image: Image, ref: str) -> None:
        assert image.pull
        self.progress(f"image {image.name}: pulling {image.pull} ({image.platform})")
        self.engine.pull(image.pull, platform=image.platform)
        if not image.pull_provision:
            self.engine._run(["tag", image.pull, ref], timeout=60)
            return
        self._provision(image, image.pull, image.pull_provision, ref=ref)

    def _provision(
        self, image: Image, base_ref: str, script: str, *, ref: str | None = None, tarball: Path | None = None
    ) -> None:
        name = f"{PREFIX}build-{image.name}-{os.getpid()}"
        self.engine.remove_container(name)
        self.progress(f"image {image.name}: provisioning from {base_ref}")
        try:
            res = self.engine.run(
                base_ref, script, name=name, rm=False, platform=image.platform, timeout=3600
            )
            if res.returncode != 0:
                raise KmError(f"provisioning {image.name} failed:\n{res.describe()}")
            if ref is not None:
                self.engine._run(["commit", name, ref], timeout=900)
            if tarball is not None:
                part = tarball.with_name(tarball.name + ".part")
                self.engine.export(name, part)
                os.replace(part, tarball)
        finally:
            self.engine.remove_container(name)

    def _build(self, image: Image, tarball: Path) -> None:
        log = self._log(image)
        if image.base:
            base_ref = self.ensure(image.base)
            self.progress(f"image {image.name}: building from {image.base} (log {log})")
            self._provision(image, base_ref, image.provision, tarball=tarball)
            self._prune(image, tarball)
            return
        how = "busybox-static rootfs" if image.busybox else f"debootstrap {image.suite} {image.arch}"
        self.progress(f"image {image.name}: building ({how}; log {log})")
        with tempfile.TemporaryDirectory(prefix=f"build-{image.name}-", dir=self.dir) as tmp:
            rootfs = Path(tmp) / "rootfs"
            rootfs.mkdir()
            if image.busybox:
                _busybox_rootfs(rootfs, log)
            else:
                _debootstrap(image, rootfs, log)
            _tar_rootfs(rootfs, tarball, log)
        self._prune(image, tarball)

    def _prune_engine(self, keep: str) -> None:
        """Remove the engine's images of older recipes of the same image."""
        repo = keep.rsplit(":", 1)[0]
        res = self.engine._run(
            ["images", "--format", "{{.Repository}}:{{.Tag}}", "--filter", f"reference={repo}"],
            timeout=60,
            check=False,
        )
        for ref in res.stdout.split():
            if ref.rsplit(":", 1)[0] == repo and ref != keep:
                self.engine._run(["rmi", ref], timeout=120, check=False)

    def _prune(self, image: Image, keep: Path) -> None:
        """Remove tarballs of older recipes of the same image."""
        for old in self.dir.glob(f"{image.name}-*.tar"):
            if (
                old != keep
                and old.name[len(image.name) + 1 : -4].isalnum()
                and len(old.name) == len(keep.name)
            ):
                old.unlink(missing_ok=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in ("env", "build"):
        print("usage: python -m tools.containers env | build [NAME...]", file=sys.stderr)
        return 2
    cache = cache_dir()
    if args[0] == "env":
        for key, value in podman_env(cache).items():
            print(f"export {key}={value}")
        return 0
    try:
        engine = engine_from_env(cache)
        images = Images(engine)
        names = args[1:] or list(IMAGES)
        emulated = [n for n in names if IMAGES[n].needs_emulation]
        for n in names:
            if n not in emulated:
                images.ensure(n)
        if emulated:
            with arm64_emulation():
                for n in emulated:
                    images.ensure(n)
    except KmError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
