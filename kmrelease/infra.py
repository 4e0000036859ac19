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

from .config import find_config
from .errors import KmError
from .ui import Reporter


def terraform_dir() -> Path:
    """``terraform/`` of the project being released."""
    return find_config()[0] / "terraform"


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


def terraform_command(*args: str, terraform: str = "terraform", chdir: Path | None = None) -> list[str]:
    """A terraform command line that runs in the configuration directory, whatever the cwd."""
    return [terraform, f"-chdir={chdir or terraform_dir()}", *args]


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
    chdir: Path | None = None,
    var_file: str | None = None,
    destroy: bool = False,
) -> list[list[str]]:
    """``init`` then ``plan -out=tfplan``: what ``inv infra.plan`` runs."""
    chdir = chdir or terraform_dir()
    plan = ["plan", "-input=false", f"-out={PLAN_FILE}", *_var_file_args(var_file, chdir)]
    if destroy:
        plan.append("-destroy")
    return [
        terraform_command("init", "-input=false", *_backend_args(chdir), terraform=terraform, chdir=chdir),
        terraform_command(*plan, terraform=terraform, chdir=chdir),
    ]


BACKEND_FILE = "backend.hcl"


def _backend_args(chdir: Path) -> list[str]:
    """``-backend-config=backend.hcl`` when the configuration keeps its state in Azure Storage."""
    if (chdir / BACKEND_FILE).is_file() or _declares_backend(chdir):
        return [f"-backend-config={BACKEND_FILE}"]
    return []


def _declares_backend(chdir: Path) -> bool:
    return any('backend "azurerm"' in tf.read_text(encoding="utf-8") for tf in chdir.glob("*.tf"))


def check_backend(chdir: Path | None = None) -> str | None:
    """Why ``terraform init`` cannot find its state, or None."""
    chdir = chdir or terraform_dir()
    if _declares_backend(chdir) and not (chdir / BACKEND_FILE).is_file():
        return (
            f"no {chdir / BACKEND_FILE}: the state lives in Azure Storage; make the state account once "
            "with terraform/bootstrap/ and copy backend.hcl.example to backend.hcl (README: State)"
        )
    return None


def apply_commands(*, terraform: str = "terraform", chdir: Path | None = None) -> list[list[str]]:
    chdir = chdir or terraform_dir()
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
    missing = check_backend()
    if missing and not dry_run:
        raise KmError(missing)
    if missing:
        reporter.warn(missing)
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
        (terraform_dir() / PLAN_FILE).unlink(missing_ok=True)  # a plan is applied once
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
    "storage_account_url": re.compile(r"^https://[a-z0-9.-]+(?::[0-9]+)?(?:/[A-Za-z0-9._~-]*)*$"),
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


def update_table(text: str, table: str, values: Mapping[str, AzureValue]) -> str:
    """Set ``values`` in ``[table]`` of a TOML document with tomlkit, keeping everything else as it was.

    Comments, key order and layout stay; existing keys get their new value in place,
    missing ones are added to the table, a missing table is added to the document.
    """
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    try:
        doc = tomlkit.parse(text)
    except TOMLKitError as exc:
        raise KmError(f"cannot parse the release configuration: {exc}") from None
    section = doc.get(table)
    if section is None:
        section = tomlkit.table()
        doc.add(table, section)
    for key, value in values.items():
        section[key] = value
    return tomlkit.dumps(doc)


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
    path = path or find_config()[1]
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
