"""build/release.toml: root discovery, the [build] table, and one clear line for every mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from kmrelease.build import BuildInfo, recipe
from kmrelease.config import BuildConfig, load_project
from kmrelease.context import BuildVariant
from kmrelease.errors import KmError
from kmrelease.gocheck import check_build_config
from kmrelease.gotool import find_go
from kmrelease.matrix import TARGETS, Target
from tests.support.releases import PROJECT, ROOT, context, project_at

PROJECT_TABLE = '[project]\ngithub_repository = "acme/hello"\npublic_base_url = "https://get.hello.test"\n'


def write(root: Path, text: str) -> Path:
    (root / "build").mkdir(parents=True, exist_ok=True)
    path = root / "build" / "release.toml"
    path.write_text(text)
    return path


def load(root: Path, build: str = "", rest: str = "") -> object:
    write(root, PROJECT_TABLE + ("\n[build]\n" + build if build else "") + rest)
    return load_project(cwd=root, environ={})


# --- the default configuration is exactly the former km build --------------------------


def test_defaults_build_what_the_engine_always_built() -> None:
    """A drift here changes every km binary: ldflags, version line and file names are pinned."""
    project = project_at(ROOT, build=BuildConfig())
    ctx = context("v1.2.3", ROOT / "dist", project=project)
    info = BuildInfo("v1.2.3", "0123abcd" * 5, "2026-01-02T03:04:05Z", "go1.27.3")
    r = recipe(ctx, info, Target("linux", "arm64"))
    assert r.ldflags == (
        "-s -w -buildid= -X main.Version=v1.2.3 -X main.Commit="
        + "0123abcd" * 5
        + " -X main.Date=2026-01-02T03:04:05Z"
    )
    assert r.version_line == f"km v1.2.3 ({'0123abcd' * 5}, 2026-01-02T03:04:05Z, linux/arm64)"
    assert r.go_args == ["build", "-trimpath", "-ldflags", r.ldflags]
    assert r.main == "./cmd/km"
    assert r.env["CGO_ENABLED"] == "0" and r.env["GOOS"] == "linux" and r.env["GOARCH"] == "arm64"
    assert project.build.file_names == [
        "km-linux-amd64",
        "km-linux-arm64",
        "km-darwin-amd64",
        "km-darwin-arm64",
        "km-windows-amd64.exe",
        "km-windows-arm64.exe",
    ]
    outside_git = recipe(ctx, BuildInfo("v1.2.3", None, "2026-01-02T03:04:05Z", "go1.27.3"), TARGETS[0])
    assert "-X main.Commit=none" in outside_git.ldflags and "(none, " in outside_git.version_line


def test_no_build_table_gives_the_defaults(tmp_path: Path) -> None:
    project = load(tmp_path)
    assert project.build == BuildConfig()  # type: ignore[attr-defined]


def test_this_repository_builds_km_from_cmd_km() -> None:
    assert PROJECT.root == ROOT and PROJECT.build.binary == "km" and PROJECT.build.main == "./cmd/km"
    assert PROJECT.build.targets == TARGETS


def test_a_project_of_its_own(tmp_path: Path) -> None:
    project = load(
        tmp_path,
        'main = "./cmd"\nbinary = "hello"\ntargets = ["linux/amd64", "windows/arm64"]\n'
        'ldflags = ["-X main.version={version}", "-X main.commit={commit}"]\ntags = ["netgo"]\n'
        'env = { GOFLAGS = "-mod=mod" }\nversion_output = "{binary} {version} {os}/{arch}"\n',
    )
    build = project.build  # type: ignore[attr-defined]
    assert build.file_names == ["hello-linux-amd64", "hello-windows-arm64.exe"]
    ctx = context("v0.1.0", tmp_path / "dist", project=project)  # type: ignore[arg-type]
    info = BuildInfo("v0.1.0", None, "2026-01-02T03:04:05Z", "go1.27.3")
    r = recipe(ctx, info, build.targets[1], BuildVariant("scoop"))
    assert r.ldflags == "-s -w -buildid= -X main.version=v0.1.0 -X main.commit=none"
    assert r.go_args == ["build", "-trimpath", "-tags", "netgo", "-ldflags", r.ldflags]
    assert r.env["GOFLAGS"] == "-mod=mod" and r.version_line == "hello v0.1.0 windows/arm64"


def test_extension_placeholders_are_filled_from_the_context(tmp_path: Path) -> None:
    project = load(
        tmp_path, 'ldflags = ["-X main.TrustedKeys={trusted_keys}", "-X main.Via={install_method}"]\n'
    )
    ctx = context("v0.1.0", tmp_path, project=project)  # type: ignore[arg-type]
    info = BuildInfo("v0.1.0", None, "2026-01-02T03:04:05Z", "go1.27.3")
    assert recipe(ctx, info, TARGETS[0]).ldflags.endswith("-X main.TrustedKeys= -X main.Via=")
    signed = ctx.replace(trusted_keys=(b"\x01\x02", b"\xff"))
    assert recipe(signed, info, TARGETS[0], BuildVariant("apt")).ldflags.endswith(
        "-X main.TrustedKeys=AQI=,/w== -X main.Via=apt"
    )
    assert signed.variant_dir(BuildVariant("apt")) == signed.dist / ".build" / "variants" / "apt"
    assert signed.trusted_keys_pem is not None and signed.trusted_keys_pem.count("BEGIN PUBLIC KEY") == 2


# --- finding the configuration -------------------------------------------------------------


def test_root_is_the_nearest_directory_upward(tmp_path: Path) -> None:
    write(tmp_path, PROJECT_TABLE)
    deep = tmp_path / "cmd" / "hello"
    deep.mkdir(parents=True)
    project = load_project(cwd=deep, environ={})
    assert project.root == tmp_path and project.path == tmp_path / "build" / "release.toml"


def test_missing_configuration_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(KmError) as exc:
        load_project(cwd=tmp_path, environ={})
    assert str(exc.value) == (
        f"no build/release.toml in {tmp_path} or any directory above it: run from the repository "
        "being released, or set KM_RELEASE_CONFIG"
    )


def test_named_configuration(tmp_path: Path) -> None:
    other = tmp_path / "elsewhere.toml"
    other.write_text(PROJECT_TABLE)
    project = load_project(cwd=tmp_path, environ={"KM_RELEASE_CONFIG": str(other)})
    assert project.path == other and project.root == tmp_path
    with pytest.raises(
        KmError, match=r"^KM_RELEASE_CONFIG=nope.toml: no such file \(looked for .*/nope.toml\)$"
    ):
        load_project(cwd=tmp_path, environ={"KM_RELEASE_CONFIG": "nope.toml"})


def test_invalid_toml(tmp_path: Path) -> None:
    path = write(tmp_path, "[project\n")
    with pytest.raises(KmError, match=rf"^{path}: not valid TOML: "):
        load_project(cwd=tmp_path, environ={})


# --- every mistake: one line, naming the file and the key ----------------------------------

MISTAKES = [
    ('colour = "red"\n', r"\[build\] has unknown key\(s\): colour"),
    (
        'main = "cmd/km"\n',
        r"\[build\] main: 'cmd/km' must be a path relative to the module root, like ./cmd/km",
    ),
    ('main = "./../other"\n', r"\[build\] main: './../other' must name one package inside the module"),
    ('main = "./cmd/..."\n', r"\[build\] main: './cmd/...' must name one package inside the module"),
    ('binary = "bin/km"\n', r"\[build\] binary: 'bin/km' is not a plain file name"),
    ('binary = "km.exe"\n', r"\[build\] binary: 'km.exe' is not a plain file name"),
    ('binary = ""\n', r"\[build\] binary: '' is not a plain file name"),
    ("binary = 3\n", r"\[build\] binary: must be a string, not int"),
    ('targets = ["linux-amd64"]\n', r"\[build\] targets: 'linux-amd64' is not <os>/<arch>, e.g. linux/amd64"),
    ('targets = ["linux/amd64", "linux/amd64"]\n', r"\[build\] targets: linux/amd64 is listed twice"),
    ("targets = []\n", r"\[build\] targets: must name at least one target"),
    ('ldflags = ["-X main.Version={vesion}"]\n', r"\[build\] ldflags: unknown placeholder \{vesion\} in"),
    ('ldflags = ["-X main.Version={version!r}"]\n', r"\[build\] ldflags: unknown placeholder \{version!r\}"),
    (
        'ldflags = ["-X main.Version={version"]\n',
        r"\[build\] ldflags: '-X main.Version=\{version' is not a valid",
    ),
    ('ldflags = "-X main.Version={version}"\n', r"\[build\] ldflags: must be a list of strings"),
    (
        'version_output = "{binary} {trusted_keys}"\n',
        r"\[build\] version_output: unknown placeholder \{trusted_keys\}",
    ),
    ('tags = ["a b"]\n', r"\[build\] tags: 'a b' is not one build tag"),
    ('env = { CGO_ENABLED = "1" }\n', r"\[build\] env: CGO_ENABLED is set by the engine"),
    ('env = { GOOS = "plan9" }\n', r"\[build\] env: GOOS is set by the engine"),
    ('env = { GOARCH = "386" }\n', r"\[build\] env: GOARCH is set by the engine"),
    ('env = { "A-B" = "1" }\n', r"\[build\] env: 'A-B' is not an environment variable name"),
    ("env = { GOFLAGS = 1 }\n", r"\[build\] env: must be a table of strings"),
    ('version_check = "no"\n', r"\[build\] version_check: must be true or false"),
    (
        'version_output = "{version} {binary}"\n',
        r"\[build\] version_output: '\{version\} \{binary\}' must start with",
    ),
]


@pytest.mark.parametrize(("build", "message"), MISTAKES)
def test_build_mistakes(tmp_path: Path, build: str, message: str) -> None:
    with pytest.raises(KmError, match=rf"^{tmp_path}/build/release.toml: {message}"):
        load(tmp_path, build)


@pytest.mark.parametrize(
    ("rest", "message"),
    [
        (
            "\n[signin]\nkey = 1\n",
            r"unknown table\(s\) or key\(s\): signin \(known: project, build, azure, signing, packages\)",
        ),
        ("\n[azure]\nstorage = 1\n", r"\[azure\] has unknown key\(s\): storage"),
        ('\n[project]\nname = "x"\n', r"not valid TOML"),  # a second [project] table
    ],
)
def test_other_table_mistakes(tmp_path: Path, rest: str, message: str) -> None:
    with pytest.raises(KmError, match=message):
        load(tmp_path, rest=rest)


@pytest.mark.parametrize(
    ("project", "message"),
    [
        ('github_repository = "nope"\n', r"\[project\] github_repository: 'nope' is not <owner>/<name>"),
        (
            'public_base_url = "get.hello.test"\n',
            r"\[project\] public_base_url: 'get.hello.test' is not an http",
        ),
        ("owner = 1\n", r"\[project\] has unknown key\(s\): owner"),
    ],
)
def test_project_mistakes(tmp_path: Path, project: str, message: str) -> None:
    write(tmp_path, "[project]\n" + project)
    with pytest.raises(KmError, match=message):
        load_project(cwd=tmp_path, environ={})


# --- the checks that ask the pinned Go ---------------------------------------------------


def go_project(root: Path, build: str, package: str = "main") -> object:
    (root / "go.mod").write_text("module example.test/hello\n\ngo 1.22\n")
    (root / "cmd").mkdir()
    (root / "cmd" / "main.go").write_text(
        f"// Package {package} says hello.\npackage {package}\n\nfunc main() {{}}\n"
    )
    return load(root, build)


@pytest.mark.parametrize(
    ("build", "package", "message"),
    [
        (
            'main = "./cmd"\ntargets = ["linux/z80"]\n',
            "main",
            r"targets: linux/z80 is not a target go1.27.3 supports",
        ),
        (
            'main = "./cmd"\ntargets = ["freebsd/amd64"]\n',
            "main",
            r"targets: freebsd/amd64 is supported by Go, but the engine checks only linux, darwin and",
        ),
        ('main = "./cmd"\n', "hello", r"main './cmd': is package hello, not a main package"),
        ('main = "./nowhere"\n', "main", r"main './nowhere': no such directory in "),
    ],
)
def test_go_checks(tmp_path: Path, build: str, package: str, message: str) -> None:
    project = go_project(tmp_path, build, package)
    with pytest.raises(KmError, match=message):
        check_build_config(project, find_go())  # type: ignore[arg-type]


def test_a_main_package_passes(tmp_path: Path) -> None:
    check_build_config(go_project(tmp_path, 'main = "./cmd"\n'), find_go())  # type: ignore[arg-type]
    assert any((tmp_path / ".cache" / "kmrelease").glob("dist-list-go*.txt"))  # Go is asked once
