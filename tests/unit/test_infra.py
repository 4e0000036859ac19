"""kmrelease.infra: terraform outputs -> build/release.toml, and the terraform wrapper."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from kmrelease import infra
from kmrelease.config import load_config
from kmrelease.errors import KmError
from kmrelease.ui import Reporter
from tests.support.releases import PROJECT

DEFAULT_CONFIG = PROJECT.path

SUB = "11111111-2222-3333-4444-555555555555"


def tf_output(**overrides: Any) -> str:
    """A `terraform output -json` document like the one outputs.tf produces."""
    values: dict[str, Any] = {
        "subscription_id": SUB,
        "resource_group_name": "rg-km-release",
        "storage_account_name": "kmreleaseorigin",
        "storage_account_url": "https://kmreleaseorigin.blob.core.windows.net/",
        "blob_containers": ["install", "meta", "releases"],
        "frontdoor_profile_name": "afd-km-release",
        "frontdoor_endpoint_name": "km-get",
        "frontdoor_endpoint_host_name": "km-get-abc123.z01.azurefd.net",
        "custom_domains": ["get.kilometers.ai"],
        "public_base_url": "https://get.kilometers.ai",
        "dns_cname": {
            "name": "get.kilometers.ai",
            "type": "CNAME",
            "target": "km-get-abc123.z01.azurefd.net",
        },
        "github_actions": {"AZURE_CLIENT_ID": "c", "AZURE_TENANT_ID": "t"},
    }
    values.update(overrides)
    doc = {k: {"sensitive": False, "type": "string", "value": v} for k, v in values.items()}
    doc["secret_thing"] = {"sensitive": True, "type": "string", "value": "hunter2"}
    return json.dumps(doc)


CONFIG = """\
# Release configuration of km (a comment that must survive).
[project]
github_repository = "kilometers-ai/kilometers-cli"
public_base_url = "https://get.kilometers.ai"

[azure]
# the storage account (comment kept)
storage_account = ""
storage_account_url = ""
subscription_id = ""
resource_group = ""
frontdoor_profile = ""
frontdoor_endpoint = ""
custom_domains = [
  "old.example.com",
]  # a comment after a value stays

[build]
binary = "km"  # the engine's own tables stay as they are
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "release.toml"
    path.write_text(CONFIG)
    return path


def test_outputs_are_written_into_azure_and_nothing_else_changes(config: Path) -> None:
    update = infra.write_outputs(tf_output(), Reporter(quiet=True), path=config)
    text = config.read_text()
    data = tomllib.loads(text)
    assert data["azure"] == {
        "storage_account": "kmreleaseorigin",
        "storage_account_url": "https://kmreleaseorigin.blob.core.windows.net",
        "subscription_id": SUB,
        "resource_group": "rg-km-release",
        "frontdoor_profile": "afd-km-release",
        "frontdoor_endpoint": "km-get",
        "custom_domains": ["get.kilometers.ai"],
    }
    assert data["project"] == tomllib.loads(CONFIG)["project"]
    assert data["build"] == {"binary": "km"}
    assert "# Release configuration of km (a comment that must survive)." in text
    assert "# the storage account (comment kept)" in text
    assert text.replace(text[text.index("[azure]") : text.index("[build]")], "") == CONFIG.replace(
        CONFIG[CONFIG.index("[azure]") : CONFIG.index("[build]")], ""
    )  # every byte outside [azure] is as it was
    assert 'binary = "km"  # the engine\'s own tables stay as they are' in text
    assert "hunter2" not in text  # sensitive outputs are never copied
    assert set(update.changed) == set(infra.OUTPUT_FOR_KEY)
    # The engine reads it back as the Azure destination expects.
    azure = load_config(config).azure
    assert azure.account_url == "https://kmreleaseorigin.blob.core.windows.net"
    assert azure.has_frontdoor
    assert azure.custom_domains == ("get.kilometers.ai",)


def test_second_write_is_a_no_op(config: Path) -> None:
    infra.write_outputs(tf_output(), Reporter(quiet=True), path=config)
    before = config.read_text()
    update = infra.write_outputs(tf_output(), Reporter(quiet=True), path=config)
    assert update.changed == {}
    assert config.read_text() == before


def test_dry_run_writes_nothing(config: Path) -> None:
    update = infra.write_outputs(tf_output(), Reporter(quiet=True), path=config, dry_run=True)
    assert config.read_text() == CONFIG
    assert update.changed["storage_account"] == ("", "kmreleaseorigin")


def test_missing_azure_table_is_appended(tmp_path: Path) -> None:
    path = tmp_path / "release.toml"
    path.write_text('[project]\npublic_base_url = "https://get.kilometers.ai"\n')
    infra.write_outputs(tf_output(), Reporter(quiet=True), path=path)
    data = tomllib.loads(path.read_text())
    assert data["project"] == {"public_base_url": "https://get.kilometers.ai"}
    assert data["azure"]["frontdoor_endpoint"] == "km-get"


def test_missing_keys_are_added_to_the_table_before_the_next_one(tmp_path: Path) -> None:
    path = tmp_path / "release.toml"
    path.write_text('[azure]\nstorage_account = "x"\n\n[later]\na = 1\n')
    infra.write_outputs(tf_output(), Reporter(quiet=True), path=path)
    data = tomllib.loads(path.read_text())
    assert data["later"] == {"a": 1}
    assert data["azure"]["resource_group"] == "rg-km-release"


def test_the_project_config_file_round_trips() -> None:
    text = DEFAULT_CONFIG.read_text()
    new = infra.update_table(text, "azure", infra.azure_settings(infra.parse_outputs(tf_output())))
    before, after = tomllib.loads(text), tomllib.loads(new)
    assert after["project"] == before["project"]
    assert after["azure"]["storage_account"] == "kmreleaseorigin"
    assert new.splitlines()[:3] == text.splitlines()[:3]  # the header comment stays


def test_an_empty_state_is_refused(config: Path) -> None:
    with pytest.raises(KmError, match=r"infra\.apply"):
        infra.write_outputs("{}", Reporter(quiet=True), path=config)
    assert config.read_text() == CONFIG


@pytest.mark.parametrize(
    "override",
    [
        {"storage_account_name": 'evil"\n[project]\nx = "'},
        {"storage_account_name": "Not_Valid"},
        {"subscription_id": "not-a-guid"},
        {"storage_account_url": "http://kmreleaseorigin.blob.core.windows.net"},
        {"custom_domains": "get.kilometers.ai"},
        {"custom_domains": ["bad domain"]},
        {"frontdoor_endpoint_name": 42},
    ],
)
def test_unexpected_values_are_refused_and_nothing_is_written(config: Path, override: dict[str, Any]) -> None:
    with pytest.raises(KmError):
        infra.write_outputs(tf_output(**override), Reporter(quiet=True), path=config)
    assert config.read_text() == CONFIG


def test_not_json_is_refused() -> None:
    with pytest.raises(KmError, match="not JSON"):
        infra.parse_outputs("Warning: no outputs")


def test_toml_strings_are_escaped() -> None:
    value = 'a"b\\c\u0001'
    new = infra.update_table("[azure]\nk = 1\n", "azure", {"k": value, "l": ["x", "y"]})
    assert tomllib.loads(new)["azure"] == {"k": value, "l": ["x", "y"]}


def test_outputs_from_a_saved_file(config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    saved = tmp_path / "outputs.json"
    saved.write_text(tf_output())
    monkeypatch.setenv("KM_RELEASE_CONFIG", str(config))
    infra.outputs(Reporter(quiet=True), from_file=str(saved))
    assert tomllib.loads(config.read_text())["azure"]["storage_account"] == "kmreleaseorigin"


# --- the terraform wrapper ---------------------------------------------------------


def test_commands_run_in_the_terraform_directory(tmp_path: Path) -> None:
    (tmp_path / "terraform.tfvars").write_text('subscription_id = "x"\n')
    init, plan = infra.plan_commands(terraform="tf", chdir=tmp_path)
    assert init == ["tf", f"-chdir={tmp_path}", "init", "-input=false"]
    assert plan[:3] == ["tf", f"-chdir={tmp_path}", "plan"]
    assert f"-out={infra.PLAN_FILE}" in plan


def test_plan_needs_variables(tmp_path: Path) -> None:
    with pytest.raises(KmError, match=r"terraform\.tfvars\.example"):
        infra.plan_commands(terraform="tf", chdir=tmp_path)
    varfile = tmp_path / "prod.tfvars"
    varfile.write_text("")
    _, plan = infra.plan_commands(terraform="tf", chdir=tmp_path, var_file=str(varfile))
    assert f"-var-file={varfile}" in plan


def test_apply_only_applies_a_saved_plan(tmp_path: Path) -> None:
    with pytest.raises(KmError, match=r"infra\.plan"):
        infra.apply_commands(terraform="tf", chdir=tmp_path)
    (tmp_path / infra.PLAN_FILE).write_text("plan")
    assert infra.apply_commands(terraform="tf", chdir=tmp_path) == [
        ["tf", f"-chdir={tmp_path}", "apply", "-input=false", infra.PLAN_FILE]
    ]


def test_dry_run_plan_prints_and_runs_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    varfile = tmp_path / "x.tfvars"
    varfile.write_text("")
    infra.plan(Reporter(), var_file=str(varfile), dry_run=True)
    err = capsys.readouterr().err
    assert "would run" in err and "-chdir=" in err


def test_dry_run_apply_needs_a_plan_first() -> None:
    if (infra.terraform_dir() / infra.PLAN_FILE).exists():
        pytest.skip("a real saved plan exists")
    with pytest.raises(KmError, match=r"infra\.plan"):
        infra.apply(Reporter(quiet=True), dry_run=True)
