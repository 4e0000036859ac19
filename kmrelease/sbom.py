"""Stage: one CycloneDX SBOM per binary, from the module information Go embeds (``go version -m``).

``dist/<v>/sbom/<binary>.cdx.json`` (published beside the binaries as
``releases/<v>/<binary>.cdx.json`` and listed in ``SHA256SUMS``, so the release signature
covers it). Built with ``cyclonedx-python-lib``: the binary is the BOM's subject (with its
SHA-256), the main module, every dependency module (with its ``h1:`` sum as a property)
and the Go standard library of the toolchain are its components. Serial number and
timestamp derive from the binary and the commit date, so the same binary gives the same bytes.
An SBOM made from the same binary (SHA-256), version, date, Go, this module and library version
(``.build/<sbom>.stamp``) and still holding the bytes made then is not made again.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .errors import KmError
from .gotool import GoToolchain
from .hashing import sha256_file
from .layout import BUILD_META, write_if_changed
from .ui import Reporter

SBOM_DIR = "sbom"  # dist/<v>/sbom/, one of layout.EXTRA_DIRS
SUFFIX = ".cdx.json"


def sbom_name(binary: str) -> str:
    return binary + SUFFIX


@dataclass(frozen=True)
class Module:
    path: str
    version: str
    sum: str = ""


@dataclass(frozen=True)
class BuildModules:
    go: str  # go1.27.3
    main_package: str
    main: Module
    deps: tuple[Module, ...]
    settings: tuple[tuple[str, str], ...]


def parse_go_version_m(text: str) -> BuildModules:
    """The output of ``go version -m <binary>``."""
    lines = text.splitlines()
    if not lines or ": go" not in lines[0]:
        raise ValueError("no Go build information")
    go = lines[0].rsplit(": ", 1)[1].strip()
    path, main, deps, settings = "", Module("", ""), [], []
    for line in lines[1:]:
        fields = line.strip().split("\t")
        kind, rest = fields[0], fields[1:]
        if kind == "path" and rest:
            path = rest[0]
        elif kind == "mod" and len(rest) >= 2:
            main = Module(rest[0], rest[1], rest[2] if len(rest) > 2 else "")
        elif kind == "dep" and len(rest) >= 2:
            deps.append(Module(rest[0], rest[1], rest[2] if len(rest) > 2 else ""))
        elif kind == "build" and rest:
            key, _, value = rest[0].partition("=")
            settings.append((key, value))
    if not main.path:
        raise ValueError("no main module in the build information")
    return BuildModules(go, path, main, tuple(deps), tuple(settings))


def build_modules(go: GoToolchain, binary: Path) -> BuildModules:
    proc = subprocess.run(
        [str(go.go), "version", "-m", str(binary)], capture_output=True, text=True, env=go.env(), timeout=60
    )
    try:
        if proc.returncode != 0:
            raise ValueError(
                proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "go version failed"
            )
        return parse_go_version_m(proc.stdout)
    except ValueError as exc:
        raise KmError(f"{binary.name}: cannot read its Go module information: {exc}") from None


def render_sbom(binary: Path, mods: BuildModules, version: str, date: str) -> str:
    """The CycloneDX 1.6 JSON document of one binary."""
    from cyclonedx.model import HashAlgorithm, HashType, Property
    from cyclonedx.model.bom import Bom, BomMetaData
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.output.json import JsonV1Dot6
    from packageurl import PackageURL

    digest = sha256_file(binary)

    def module(m: Module, *, main: bool = False) -> Component:
        v = version if main else m.version
        props = [Property(name="go:module:sum", value=m.sum)] if m.sum else []
        return Component(
            name=m.path, version=v, type=ComponentType.LIBRARY, bom_ref=f"pkg:golang/{m.path}@{v}",
            purl=PackageURL("golang", None, m.path, v), properties=props,
        )  # fmt: skip

    subject = Component(
        name=binary.name,
        version=version,
        type=ComponentType.APPLICATION,
        bom_ref=f"binary:{binary.name}",
        hashes=[HashType(alg=HashAlgorithm.SHA_256, content=digest)],
        properties=[Property(name=f"go:build:{k}", value=v) for k, v in mods.settings],
    )
    stdlib_version = "v" + mods.go.removeprefix("go")
    stdlib = Component(
        name="stdlib",
        version=stdlib_version,
        type=ComponentType.LIBRARY,
        bom_ref=f"pkg:golang/stdlib@{stdlib_version}",
        purl=PackageURL("golang", None, "stdlib", stdlib_version),
    )
    main = module(mods.main, main=True)
    deps = [module(d) for d in mods.deps]
    when = datetime.fromisoformat(date.replace("Z", "+00:00"))
    bom = Bom(
        serial_number=uuid.uuid5(uuid.NAMESPACE_URL, f"sha256:{digest}"),
        metadata=BomMetaData(component=subject, timestamp=when),
    )
    for c in (main, stdlib, *deps):
        bom.components.add(c)
    bom.register_dependency(subject, [main])
    bom.register_dependency(main, [stdlib, *deps])
    text = JsonV1Dot6(bom).output_as_string(indent=2)
    return json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"


def write_sboms(
    dist: Path,
    binaries: list[str],
    go: GoToolchain,
    version: str,
    date: str,
    reporter: Reporter,
    *,
    dry_run: bool,
) -> list[Path]:
    """``dist/sbom/<binary>.cdx.json`` for each binary; unchanged files are left alone."""
    out = dist / SBOM_DIR
    reporter.step(f"SBOMs (CycloneDX) for {len(binaries)} binaries")
    if dry_run:
        reporter.info(f"would write {out}/<binary>{SUFFIX}")
        return []
    out.mkdir(parents=True, exist_ok=True)
    (dist / BUILD_META).mkdir(exist_ok=True)
    written, kept, engine = [], 0, _engine_fingerprint()
    for name in binaries:
        path, stamp = out / sbom_name(name), dist / BUILD_META / f"{sbom_name(name)}.stamp"
        inputs = _inputs(sha256_file(dist / name), version, date, go.version, engine)
        if _stamped(stamp, path, inputs):
            kept += 1
        else:
            write_if_changed(path, render_sbom(dist / name, build_modules(go, dist / name), version, date))
            write_if_changed(stamp, json.dumps({"inputs": inputs, "sha256": sha256_file(path)}) + "\n")
        written.append(path)
    if kept:
        reporter.info(f"{kept} SBOM(s) already made from these exact binaries: kept")
    return written


def _engine_fingerprint() -> str:
    """What else decides an SBOM's bytes: this module's code and the CycloneDX library's version."""
    from importlib.metadata import version

    return hashlib.sha256(Path(__file__).read_bytes() + version("cyclonedx-python-lib").encode()).hexdigest()


def _inputs(binary_sha256: str, version: str, date: str, go: str, engine: str) -> str:
    doc = [binary_sha256, version, date, go, engine]
    return hashlib.sha256(json.dumps(doc).encode()).hexdigest()


def _stamped(stamp: Path, sbom: Path, inputs: str) -> bool:
    """Whether ``sbom`` is what these inputs made last time (and still holds those bytes)."""
    try:
        doc = json.loads(stamp.read_text(encoding="utf-8"))
        return bool(doc["inputs"] == inputs and sbom.is_file() and sha256_file(sbom) == doc["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        return False


def sbom_stage(dist: Path, binaries: list[str], reporter: Reporter, *, dry_run: bool) -> list[Path]:
    """The SBOM stage of a release: after the build (and Authenticode), before packages and checksums."""
    from .build import BuildInfo
    from .gotool import find_go

    if dry_run:
        reporter.info(f"would write a CycloneDX SBOM per binary into {dist / SBOM_DIR}")
        return []
    info = BuildInfo.load(dist)
    return write_sboms(dist, binaries, find_go(), info.version, info.date, reporter, dry_run=False)
