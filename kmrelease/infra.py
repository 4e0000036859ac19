"""The Azure infrastructure in ``terraform/``: the terraform wrapper behind ``inv infra.*``,
the release-configuration writer fed by ``terraform output -json``, and the check that
the Front Door rule set implements exactly the URL space of :mod:`kmrelease.urlspace`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import urlspace
from .config import ROOT, config_path
from .errors import KmError
from .ui import Reporter

TERRAFORM_DIR = ROOT / "terraform"
PLAN_FILE = "tfplan"

# ---------------------------------------------------------------------------
# terraform wrapper
# ---------------------------------------------------------------------------


def find_terraform() -> str:
    """The terraform binary: ``$KM_TERRAFORM`` or ``terraform`` on PATH."""
    explicit = os.environ.get("KM_TERRAFORM")
    if explicit:
        if not Path(explicit).is_file():
            raise KmError(f"KM_TERRAFORM={explicit} is not a file")
        return explicit
    found = shutil.which("terraform")
    if not found:
        raise KmError("terraform is not installed: install Terraform >= 1.9 (see terraform/README.md)")
    return found


def terraform_command(*args: str, terraform: str = "terraform", chdir: Path = TERRAFORM_DIR) -> list[str]:
    """A terraform command line that runs in the configuration directory, whatever the cwd."""
    return [terraform, f"-chdir={chdir}", *args]


def terraform_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("TF_IN_AUTOMATION", "1")
    env.setdefault("TF_INPUT", "0")
    # A TF_CLI_CONFIG_FILE that does not exist only makes terraform warn on every call.
    cli_config = env.get("TF_CLI_CONFIG_FILE")
    if cli_config and not Path(cli_config).exists():
        del env["TF_CLI_CONFIG_FILE"]
    return env


def _run(cmd: Sequence[str], reporter: Reporter, *, capture: bool = False) -> str:
    reporter.info("$ " + " ".join(cmd))
    try:
        proc = subprocess.run(
            list(cmd),
            env=terraform_env(),
            check=False,
            text=True,
            stdout=subprocess.PIPE if capture else None,
        )
    except OSError as exc:
        raise KmError(f"cannot run {cmd[0]}: {exc}") from None
    if proc.returncode != 0:
        raise KmError(f"terraform {cmd[2] if len(cmd) > 2 else ''} failed (exit {proc.returncode})")
    return proc.stdout or ""


def _var_file_args(var_file: str | None, chdir: Path) -> list[str]:
    if var_file:
        path = Path(var_file).absolute()
        if not path.is_file():
            raise KmError(f"variables file {var_file} does not exist")
        return [f"-var-file={path}"]
    if (chdir / "terraform.tfvars").is_file():
        return []  # terraform reads it by itself
    raise KmError(
        f"no {chdir / 'terraform.tfvars'}: copy terraform.tfvars.example to terraform.tfvars "
        "and fill it in, or pass --var-file"
    )


def plan_commands(
    *,
    terraform: str = "terraform",
    chdir: Path = TERRAFORM_DIR,
    var_file: str | None = None,
    destroy: bool = False,
) -> list[list[str]]:
    """``init`` then ``plan -out=tfplan``: what ``inv infra.plan`` runs."""
    plan = ["plan", "-input=false", f"-out={PLAN_FILE}", *_var_file_args(var_file, chdir)]
    if destroy:
        plan.append("-destroy")
    return [
        terraform_command("init", "-input=false", terraform=terraform, chdir=chdir),
        terraform_command(*plan, terraform=terraform, chdir=chdir),
    ]


def apply_commands(*, terraform: str = "terraform", chdir: Path = TERRAFORM_DIR) -> list[list[str]]:
    """``apply tfplan``: apply exactly what ``infra.plan`` showed, nothing newer."""
    if not (chdir / PLAN_FILE).is_file():
        raise KmError(f"no saved plan {chdir / PLAN_FILE}: run `inv infra.plan` first and review it")
    return [terraform_command("apply", "-input=false", PLAN_FILE, terraform=terraform, chdir=chdir)]


def _run_all(what: str, cmds: list[list[str]], reporter: Reporter, *, dry_run: bool) -> None:
    """Run terraform commands in order, or print them in a dry run."""
    reporter.step(what + (" (dry run: printing the commands)" if dry_run else ""))
    for cmd in cmds:
        if dry_run:
            reporter.info("would run: " + " ".join(cmd))
        else:
            _run(cmd, reporter)


def plan(
    reporter: Reporter, *, var_file: str | None = None, destroy: bool = False, dry_run: bool = False
) -> None:
    cmds = plan_commands(
        terraform="terraform" if dry_run else find_terraform(), var_file=var_file, destroy=destroy
    )
    _run_all("terraform plan", cmds, reporter, dry_run=dry_run)
    if not dry_run:
        reporter.step(f"plan saved to terraform/{PLAN_FILE}: review it, then `inv infra.apply`")


def apply(reporter: Reporter, *, dry_run: bool = False) -> None:
    cmds = apply_commands(terraform="terraform" if dry_run else find_terraform())
    _run_all("terraform apply", cmds, reporter, dry_run=dry_run)
    if not dry_run:
        (TERRAFORM_DIR / PLAN_FILE).unlink(missing_ok=True)  # a plan is applied once
        reporter.step("applied; `inv infra.outputs` writes the names into the release configuration")


# ---------------------------------------------------------------------------
# terraform outputs -> build/release.toml [azure]
# ---------------------------------------------------------------------------

# [azure] key -> terraform output name
OUTPUT_FOR_KEY: dict[str, str] = {
    "storage_account": "storage_account_name",
    "storage_account_url": "storage_account_url",
    "subscription_id": "subscription_id",
    "resource_group": "resource_group_name",
    "frontdoor_profile": "frontdoor_profile_name",
    "frontdoor_endpoint": "frontdoor_endpoint_name",
    "custom_domains": "custom_domains",
}

_GUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_HOST = re.compile(r"^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,}$")
_VALID: dict[str, re.Pattern[str]] = {
    "storage_account": re.compile(r"^[a-z0-9]{3,24}$"),
    "storage_account_url": re.compile(r"^https://[a-z0-9.-]+(?::\d+)?(?:/[A-Za-z0-9._~-]*)*$"),
    "subscription_id": _GUID,
    "resource_group": re.compile(r"^[A-Za-z0-9._()-]{1,89}[A-Za-z0-9_()-]$"),
    "frontdoor_profile": re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,258}[A-Za-z0-9]$"),
    "frontdoor_endpoint": re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,44}[A-Za-z0-9]$"),
}

AzureValue = str | list[str]


def parse_outputs(document: str) -> dict[str, Any]:
    """``terraform output -json`` → ``{name: value}``."""
    try:
        data = json.loads(document)
    except json.JSONDecodeError as exc:
        raise KmError(f"terraform output is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise KmError("terraform output -json did not return an object")
    values: dict[str, Any] = {}
    for name, entry in data.items():
        if not isinstance(entry, dict) or "value" not in entry:
            raise KmError(f"terraform output {name!r} has no value")
        if entry.get("sensitive"):
            continue  # never copied into a file
        values[name] = entry["value"]
    return values


def azure_settings(outputs: Mapping[str, Any]) -> dict[str, AzureValue]:
    """The ``[azure]`` values of the release configuration, checked, from the outputs."""
    missing = [out for out in OUTPUT_FOR_KEY.values() if out not in outputs]
    if missing:
        raise KmError(
            f"terraform outputs lack {', '.join(missing)}: run `inv infra.apply` first "
            "(an empty state has no outputs)"
        )
    settings: dict[str, AzureValue] = {}
    for key, out in OUTPUT_FOR_KEY.items():
        value = outputs[out]
        if key == "custom_domains":
            if not isinstance(value, list) or not all(isinstance(d, str) and _HOST.match(d) for d in value):
                raise KmError(f"terraform output {out} is not a list of host names: {value!r}")
            settings[key] = [str(d) for d in value]
            continue
        if not isinstance(value, str):
            raise KmError(f"terraform output {out} is not a string: {value!r}")
        if key == "storage_account_url":
            value = value.rstrip("/")
        if not _VALID[key].match(value):
            raise KmError(f"terraform output {out} has an unexpected form: {value!r}")
        settings[key] = value
    return settings


def _toml_string(value: str) -> str:
    out = ['"']
    for ch in value:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def toml_value(value: AzureValue) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_toml_string(v) for v in value) + "]"
    return _toml_string(value)


_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(r"^(\s*)([A-Za-z0-9_-]+)(\s*=\s*)(.*)$")


def _value_extent(lines: list[str], start: int, first: str) -> int:
    """Index after the last line of the value that begins with ``first`` on line ``start``."""
    depth, i, text = 0, start, first
    in_str: str | None = None
    while True:
        j = 0
        while j < len(text):
            ch = text[j]
            if in_str:
                if ch == "\\" and in_str == '"':
                    j += 1
                elif ch == in_str:
                    in_str = None
            elif ch in "\"'":
                in_str = ch
            elif ch == "#":
                break
            elif ch in "[{":
                depth += 1
            elif ch in "]}":
                depth -= 1
            j += 1
        in_str = None  # basic and literal strings end on their line
        if depth <= 0 or i + 1 >= len(lines):
            return i + 1
        i += 1
        text = lines[i]


def update_table(text: str, table: str, values: Mapping[str, AzureValue]) -> str:
    """Set ``values`` in ``[table]`` of a TOML document, keeping every other line as it was.

    Existing keys are rewritten in place (their comments before them stay), missing ones are
    appended to the table, a missing table is appended to the document.
    """
    lines = text.splitlines()
    start = next(
        (i for i, line in enumerate(lines) if (m := _HEADER.match(line)) and m.group(1) == table), None
    )
    pending = dict(values)
    if start is None:
        block = ["", f"[{table}]", *(f"{k} = {toml_value(v)}" for k, v in pending.items())]
        while lines and not lines[-1].strip():
            lines.pop()
        return "\n".join(lines + block) + "\n"
    out = lines[: start + 1]
    i = start + 1
    last_value_line = len(out)
    while i < len(lines):
        line = lines[i]
        if _HEADER.match(line):
            break
        m = _KEY.match(line)
        if m:
            end = _value_extent(lines, i, m.group(4))
            key = m.group(2)
            if key in pending:
                out.append(f"{m.group(1)}{key}{m.group(3)}{toml_value(pending.pop(key))}")
            else:
                out.extend(lines[i:end])
            i = end
            last_value_line = len(out)
            continue
        out.append(line)
        i += 1
    tail = out[last_value_line:]
    out = out[:last_value_line] + [f"{k} = {toml_value(v)}" for k, v in pending.items()] + tail
    out.extend(lines[i:])
    return "\n".join(out) + "\n"


@dataclass(frozen=True)
class ConfigUpdate:
    path: Path
    old: str
    new: str
    changed: dict[str, tuple[Any, Any]]


def plan_config_update(path: Path, settings: Mapping[str, AzureValue]) -> ConfigUpdate:
    """Compute the new release configuration and check it parses to what was meant."""
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    try:
        before = tomllib.loads(old)
    except tomllib.TOMLDecodeError as exc:
        raise KmError(f"cannot parse {path}: {exc}") from None
    new = update_table(old, "azure", settings)
    try:
        after = tomllib.loads(new)
    except tomllib.TOMLDecodeError as exc:  # a bug here must never reach the file
        raise KmError(f"refusing to write {path}: the update would not parse ({exc})") from None
    expected_azure = {**before.get("azure", {}), **settings}
    if after.get("azure") != expected_azure or {k: v for k, v in after.items() if k != "azure"} != {
        k: v for k, v in before.items() if k != "azure"
    }:
        raise KmError(f"refusing to write {path}: the update would change more than [azure]")
    old_azure = before.get("azure", {})
    changed = {k: (old_azure.get(k), v) for k, v in settings.items() if old_azure.get(k) != v}
    return ConfigUpdate(path, old, new, changed)


def write_outputs(
    outputs_json: str, reporter: Reporter, *, path: Path | None = None, dry_run: bool = False
) -> ConfigUpdate:
    """Write the ``[azure]`` names from ``terraform output -json`` into the release configuration."""
    path = path or config_path()
    update = plan_config_update(path, azure_settings(parse_outputs(outputs_json)))
    if not update.changed:
        reporter.step(f"{path}: [azure] already matches the terraform outputs")
        return update
    for key, (old, new) in update.changed.items():
        reporter.info(f"[azure] {key}: {old!r} -> {new!r}")
    if dry_run:
        reporter.step(f"dry run: {path} not written")
        return update
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(update.new, encoding="utf-8")
    os.replace(tmp, path)
    reporter.step(f"wrote [azure] of {path}")
    return update


def outputs(reporter: Reporter, *, from_file: str | None = None, dry_run: bool = False) -> ConfigUpdate:
    """``inv infra.outputs``: read the outputs (terraform, or a saved JSON file) and write them."""
    if from_file:
        document = Path(from_file).read_text(encoding="utf-8")
    else:
        cmd = terraform_command("output", "-json", terraform=find_terraform())
        document = _run(cmd, reporter, capture=True)
    return write_outputs(document, reporter, dry_run=dry_run)


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


_DURATION = re.compile(r"^(?:(\d+)\.)?(\d\d):(\d\d):(\d\d)$")


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
