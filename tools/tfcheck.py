"""Checks of ``terraform/`` (development only): the HCL parsed with python-hcl2 and held
against :mod:`kmrelease.urlspace`, and checkov in a virtualenv of its own."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kmrelease import urlspace
from kmrelease.errors import KmError
from kmrelease.ui import Reporter

ROOT = Path(__file__).resolve().parent.parent
TERRAFORM_DIR = ROOT / "terraform"

# ---------------------------------------------------------------------------
# the terraform configuration, parsed (python-hcl2), and its URL-space check
# ---------------------------------------------------------------------------

Blocks = dict[str, Any]


def load_terraform(directory: Path = TERRAFORM_DIR) -> dict[str, Blocks]:
    """Every ``.tf`` file of ``directory`` parsed: ``{file name: document}``, quotes stripped."""
    try:
        import hcl2
        from hcl2.utils import SerializationOptions
    except ImportError:
        raise KmError("python-hcl2 is not installed: pip install -e '.[lint]'") from None
    options = SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)
    files = sorted(directory.glob("*.tf"))
    if not files:
        raise KmError(f"no .tf files in {directory}")
    parsed: dict[str, Blocks] = {}
    for path in files:
        try:
            with path.open(encoding="utf-8") as fh:
                parsed[path.name] = hcl2.load(fh, serialization_options=options)
        except Exception as exc:  # the parser raises lark errors of many kinds
            raise KmError(f"{path.name} does not parse as HCL: {str(exc).splitlines()[0]}") from None
    return parsed


def resources(parsed: Mapping[str, Blocks]) -> dict[str, dict[str, Any]]:
    """``{"azurerm_x.name": body}`` over all files."""
    found: dict[str, dict[str, Any]] = {}
    for doc in parsed.values():
        for entry in doc.get("resource", []):
            for rtype, named in entry.items():
                for name, body in named.items():
                    found[f"{rtype}.{name}"] = body
    return found


def locals_of(parsed: Mapping[str, Blocks]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for doc in parsed.values():
        for block in doc.get("locals", []):
            merged.update(block)
    return merged


_DURATION = re.compile(r"^(?:([0-9]+)\.)?([0-9]{2}):([0-9]{2}):([0-9]{2})$")


def duration_seconds(text: str) -> int:
    """Front Door's ``[d.]HH:MM:SS`` cache duration in seconds."""
    m = _DURATION.match(text)
    if not m:
        raise KmError(f"not a Front Door duration: {text!r}")
    days, hours, minutes, seconds = (int(g) if g else 0 for g in m.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


@dataclass(frozen=True)
class EdgeRule:
    """One rule of the Front Door rule set, in public-path terms."""

    name: str
    order: int
    operator: str  # Equal: exact paths; BeginsWith: prefixes
    paths: tuple[str, ...]  # public paths with their leading slash
    destination: str | None  # origin path after the rewrite; None: no rewrite
    max_age: int | None  # edge cache seconds; None: not cached

    def matches(self, path: str) -> bool:
        if self.operator == "Equal":
            return path in self.paths
        return any(path.startswith(p) for p in self.paths)


def edge_rules(parsed: Mapping[str, Blocks]) -> list[EdgeRule]:
    table = locals_of(parsed).get("urlspace_rules")
    if not isinstance(table, dict) or not table:
        raise KmError("terraform: local.urlspace_rules (the Front Door rule table) is missing")
    rules = []
    for name, row in table.items():
        cache = row.get("cache")
        rules.append(
            EdgeRule(
                name=name,
                order=int(row["order"]),
                operator=str(row["operator"]),
                paths=tuple("/" + str(p) for p in row["paths"]),
                destination=row.get("destination"),
                max_age=None if cache is None else duration_seconds(str(cache)),
            )
        )
    return sorted(rules, key=lambda r: r.order)


def _literal_prefix(pattern: str) -> str:
    return pattern.split("{", 1)[0]


def _route_for(path: str) -> urlspace.Route | None:
    for route in urlspace.ROUTES:
        if route.pattern == path:
            return route
    return None


def check_rule_set(rules: Sequence[EdgeRule]) -> list[str]:
    """Problems between the Front Door rules and ``urlspace.ROUTES``, checked both ways."""
    problems: list[str] = []
    orders = [r.order for r in rules]
    if len(set(orders)) != len(orders):
        problems.append("two Front Door rules share an order")
    # terraform -> urlspace: every rule path is a route, rewritten to its key, with its max_age.
    for rule in rules:
        if rule.operator not in ("Equal", "BeginsWith"):
            problems.append(
                f"rule {rule.name}: operator {rule.operator} is not checked; use Equal or BeginsWith"
            )
            continue
        for path in rule.paths:
            if rule.operator == "Equal":
                route = _route_for(path)
                resolved = urlspace.resolve(path)
                if route is None or resolved is None or "{" in route.pattern:
                    problems.append(f"rule {rule.name}: {path} is not a fixed route of kmrelease.urlspace")
                    continue
                origin = "/" + resolved.key
                served = rule.destination or path
                if served != origin:
                    problems.append(f"rule {rule.name}: {path} reaches {served}, urlspace says {origin}")
                want = urlspace.OBJECT[route.kind].max_age
                if rule.max_age != want:
                    problems.append(f"rule {rule.name}: {path} cached {rule.max_age}s, urlspace says {want}s")
            else:
                covered = [r for r in urlspace.ROUTES if _literal_prefix(r.pattern).startswith(path)]
                if not covered:
                    problems.append(f"rule {rule.name}: prefix {path} covers no route of kmrelease.urlspace")
                if rule.destination is not None:
                    problems.append(f"rule {rule.name}: a prefix rule must not rewrite (public path = key)")
                for route in covered:
                    key_pattern = "/" + urlspace.OBJECT[route.kind].key
                    if key_pattern != route.pattern:
                        problems.append(
                            f"rule {rule.name}: {route.pattern} is not served as-is ({key_pattern})"
                        )
                    want = urlspace.OBJECT[route.kind].max_age
                    if rule.max_age != want:
                        problems.append(
                            f"rule {rule.name}: {route.pattern} cached {rule.max_age}s, urlspace says {want}s"
                        )
    # urlspace -> terraform: every route is matched by exactly one rule (rules stop on match).
    for route in urlspace.ROUTES:
        probe = route.pattern if "{" not in route.pattern else _literal_prefix(route.pattern)
        if "{" in route.pattern:
            matching = [r for r in rules if r.operator == "BeginsWith" and r.matches(probe)]
        else:
            matching = [r for r in rules if r.matches(probe)]
        if not matching:
            problems.append(f"route {route.pattern} has no Front Door rule")
        elif len(matching) > 1:
            problems.append(
                f"route {route.pattern} is matched by several rules: {[r.name for r in matching]}"
            )
    return problems


def check_terraform(directory: Path = TERRAFORM_DIR) -> list[str]:
    """Everything the lint check asserts on the parsed configuration (no provider needed)."""
    parsed = load_terraform(directory)
    found = resources(parsed)
    problems = check_rule_set(edge_rules(parsed))
    classic = sorted(
        r
        for r in found
        if r.split(".")[0] in ("azurerm_cdn_profile", "azurerm_cdn_endpoint", "azurerm_frontdoor")
    )
    if classic:
        problems.append(f"classic CDN/Front Door resources are not allowed: {', '.join(classic)}")
    containers = sorted(str(c) for c in locals_of(parsed).get("blob_containers", []))
    if containers != sorted(urlspace.CONTAINERS):
        problems.append(
            f"blob containers {containers} differ from kmrelease.urlspace {sorted(urlspace.CONTAINERS)}"
        )
    group = found.get("azurerm_cdn_frontdoor_origin_group.blob", {})
    probe = (group.get("health_probe") or [{}])[0].get("path")
    health = "/" + urlspace.key_of(urlspace.Kind.HEALTH)
    if probe != health:
        problems.append(f"Front Door health probe is {probe!r}, the health blob is {health}")
    return problems


def providers_installed(directory: Path = TERRAFORM_DIR) -> bool:
    """Whether ``terraform init`` has installed the providers (so ``validate`` can run)."""
    return (
        directory / ".terraform" / "providers" / "registry.terraform.io" / "hashicorp" / "azurerm"
    ).is_dir()


# ---------------------------------------------------------------------------
# checkov, in a virtualenv of its own
# ---------------------------------------------------------------------------

# checkov pins packaging<24 and its own fork of python-hcl2 (bc-python-hcl2, also the
# module "hcl2"), which conflict with pytest>=8.4 and python-hcl2 in the project's
# environment; so it is not in the `lint` extra but installed here on first use.
CHECKOV_VERSION = "3.3.30"
TOOLS_DIR = ROOT / ".cache" / "tools"


def checkov_binary(reporter: Reporter | None = None) -> Path:
    """checkov ``CHECKOV_VERSION`` from ``.cache/tools/checkov-<v>``, installed from PyPI when missing."""
    venv = TOOLS_DIR / f"checkov-{CHECKOV_VERSION}"
    exe = venv / ("Scripts" if os.name == "nt" else "bin") / ("checkov.exe" if os.name == "nt" else "checkov")
    if exe.is_file():
        return exe
    if reporter:
        reporter.info(f"installing checkov {CHECKOV_VERSION} into {venv} (first run only, about 30 s)")
    import sys
    import venv as venv_mod

    shutil.rmtree(venv, ignore_errors=True)
    venv_mod.create(venv, with_pip=True, clear=True)
    pip = venv / ("Scripts" if os.name == "nt" else "bin") / "pip"
    proc = subprocess.run(
        [str(pip), "install", "--quiet", "--disable-pip-version-check", f"checkov=={CHECKOV_VERSION}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0 or not exe.is_file():
        sys.stderr.write(proc.stdout + proc.stderr)
        shutil.rmtree(venv, ignore_errors=True)
        raise KmError(f"could not install checkov {CHECKOV_VERSION} into {venv}")
    return exe
