"""terraform/: parsed with python-hcl2 (no provider, no network) and checked against
kmrelease.urlspace, the one table of public paths, origin keys and cache durations."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from kmrelease import infra as kminfra
from kmrelease import urlspace
from kmrelease.errors import KmError
from tests.support.releases import ROOT
from tools import tfcheck as infra

pytest.importorskip("hcl2")

TF = ROOT / "terraform"


@pytest.fixture(scope="module")
def parsed() -> dict[str, Any]:
    return infra.load_terraform(TF)


@pytest.fixture(scope="module")
def res(parsed: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return infra.resources(parsed)


def one(block: Any) -> dict[str, Any]:
    assert isinstance(block, list) and len(block) == 1, block
    assert isinstance(block[0], dict)
    return block[0]


def test_every_tf_file_parses_and_the_layout_is_split_by_concern(parsed: dict[str, Any]) -> None:
    for name in (
        "versions.tf",
        "variables.tf",
        "storage.tf",
        "frontdoor.tf",
        "identity.tf",
        "dns.tf",
        "outputs.tf",
    ):
        assert name in parsed, name
    assert (TF / "README.md").is_file()
    assert (TF / "terraform.tfvars.example").is_file()


def test_versions_pin_terraform_and_azurerm_4(parsed: dict[str, Any]) -> None:
    tf = one(parsed["versions.tf"]["terraform"])
    assert tf["required_version"] == ">= 1.9"
    azurerm = one(tf["required_providers"])["azurerm"]
    assert azurerm["source"] == "hashicorp/azurerm"
    assert re.fullmatch(r"~> 4\.\d+", azurerm["version"]), azurerm["version"]
    provider = one(parsed["versions.tf"]["provider"])["azurerm"]
    assert provider["storage_use_azuread"] is True  # shared keys are off


def test_every_variable_has_a_description_and_the_names_are_validated(parsed: dict[str, Any]) -> None:
    variables = {k: v for entry in parsed["variables.tf"]["variable"] for k, v in entry.items()}
    for name, body in variables.items():
        assert body.get("description"), name
        assert body.get("type"), name
    for name in (
        "subscription_id",
        "storage_account_name",
        "custom_domain",
        "github_repository",
        "frontdoor_profile_name",
        "frontdoor_endpoint_name",
        "location",
        "dns_zone_name",
    ):
        assert variables[name].get("validation"), f"variable {name} has no validation block"
    assert variables["custom_domain"]["default"] == "get.kilometers.ai"


def test_tfvars_example_sets_the_required_variables(parsed: dict[str, Any]) -> None:
    variables = {k: v for entry in parsed["variables.tf"]["variable"] for k, v in entry.items()}
    required = {k for k, v in variables.items() if "default" not in v}
    text = (TF / "terraform.tfvars.example").read_text()
    assigned = set(re.findall(r"^([a-z_]+)\s*=", text, re.M))
    assert required <= assigned, required - assigned


def test_storage_account_is_locked_down(res: dict[str, dict[str, Any]]) -> None:
    sa = res["azurerm_storage_account.release"]
    assert sa["account_kind"] == "StorageV2"
    assert sa["https_traffic_only_enabled"] is True
    assert sa["min_tls_version"] == "TLS1_2"
    assert sa["shared_access_key_enabled"] is False
    blob = one(sa["blob_properties"])
    assert blob["versioning_enabled"] is True
    assert one(blob["delete_retention_policy"])["days"]
    assert one(blob["container_delete_retention_policy"])["days"]
    assert res["azurerm_management_lock.storage"]["lock_level"] == "CanNotDelete"


def test_containers_are_the_blob_layout_and_only_blobs_are_public(
    parsed: dict[str, Any], res: dict[str, dict[str, Any]]
) -> None:
    assert sorted(infra.locals_of(parsed)["blob_containers"]) == sorted(urlspace.CONTAINERS)
    container = res["azurerm_storage_container.layout"]
    assert container["for_each"] == "${toset(local.blob_containers)}"
    assert container["container_access_type"] == "blob"  # never "container" (listing)
    assert "azurerm_storage_account.release.id" in container["storage_account_id"]


def test_no_classic_cdn_or_front_door_resources(res: dict[str, dict[str, Any]]) -> None:
    types = {name.split(".")[0] for name in res}
    assert not types & {
        "azurerm_cdn_profile",
        "azurerm_cdn_endpoint",
        "azurerm_cdn_endpoint_custom_domain",
        "azurerm_frontdoor",
        "azurerm_frontdoor_rules_engine",
    }
    text = "\n".join(p.read_text() for p in TF.glob("*.tf"))
    assert not re.search(r'resource\s+"azurerm_cdn_(profile|endpoint)"', text)


def test_front_door_standard_profile_endpoint_origin(res: dict[str, dict[str, Any]]) -> None:
    assert res["azurerm_cdn_frontdoor_profile.release"]["sku_name"] == "Standard_AzureFrontDoor"
    assert "azurerm_cdn_frontdoor_endpoint.get" in res
    group = res["azurerm_cdn_frontdoor_origin_group.blob"]
    probe = one(group["health_probe"])
    assert probe["path"] == "/" + urlspace.key_of(urlspace.Kind.HEALTH)
    assert probe["protocol"] == "Https"
    origin = res["azurerm_cdn_frontdoor_origin.blob"]
    blob_host = "${azurerm_storage_account.release.primary_blob_host}"
    assert origin["host_name"] == blob_host
    assert origin["origin_host_header"] == blob_host
    assert origin["certificate_name_check_enabled"] is True


def test_route_redirects_to_https_and_uses_the_rule_set(res: dict[str, dict[str, Any]]) -> None:
    route = res["azurerm_cdn_frontdoor_route.public"]
    assert route["https_redirect_enabled"] is True
    assert sorted(route["supported_protocols"]) == ["Http", "Https"]
    assert route["forwarding_protocol"] == "HttpsOnly"
    assert route["patterns_to_match"] == ["/*"]
    assert route["cdn_frontdoor_rule_set_ids"] == ["${azurerm_cdn_frontdoor_rule_set.urlspace.id}"]
    assert route["cdn_frontdoor_custom_domain_ids"] == ["${azurerm_cdn_frontdoor_custom_domain.get.id}"]


def test_rule_resource_applies_the_table(res: dict[str, dict[str, Any]]) -> None:
    rule = res["azurerm_cdn_frontdoor_rule.urlspace"]
    assert rule["for_each"] == "${local.urlspace_rules}"
    assert rule["behavior_on_match"] == "Stop"  # exactly one rule per request
    cond = one(one(rule["conditions"])["url_path_condition"])
    assert cond["match_values"] == "${each.value.paths}"
    assert cond["operator"] == "${each.value.operator}"
    actions = one(rule["actions"])
    rewrite = one(one(actions["dynamic"])["url_rewrite_action"]["content"])
    assert rewrite["source_pattern"] == "/"
    assert rewrite["preserve_unmatched_path"] is False
    override = one(actions["route_configuration_override_action"])
    assert override["cache_duration"] == "${each.value.cache}"
    assert "Disabled" in override["cache_behavior"] and "OverrideAlways" in override["cache_behavior"]
    # The provider requires the explicit dependency on origin and origin group.
    assert len(rule["depends_on"]) == 2


def test_rule_paths_have_no_leading_slash_and_durations_are_front_door_format(parsed: dict[str, Any]) -> None:
    table = infra.locals_of(parsed)["urlspace_rules"]
    for name, row in table.items():
        assert re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", name), name
        for path in row["paths"]:
            assert not path.startswith("/"), (name, path)  # the provider refuses it
        if row["cache"] is not None:
            assert re.fullmatch(r"(?:[1-9]\d*\.)?\d\d:\d\d:\d\d", row["cache"]), row["cache"]


def test_rule_set_equals_the_urlspace_table_both_ways(parsed: dict[str, Any]) -> None:
    rules = infra.edge_rules(parsed)
    assert infra.check_rule_set(rules) == []
    # urlspace -> terraform, spelled out: every route with its max_age.
    for route in urlspace.ROUTES:
        want = urlspace.OBJECT[route.kind].max_age
        probe = route.pattern.split("{", 1)[0]
        matching = [r for r in rules if r.matches(probe)]
        assert len(matching) == 1, route.pattern
        assert matching[0].max_age == want, route.pattern
    # terraform -> urlspace: every rule path resolves, rewritten to its key.
    for rule in rules:
        for path in rule.paths:
            probe = path if rule.operator == "Equal" else path + "v1.0.0/SHA256SUMS"
            resolved = urlspace.resolve(probe)
            assert resolved is not None, path
            assert urlspace.OBJECT[resolved.kind].max_age == rule.max_age
            assert (rule.destination or probe) == "/" + resolved.key


def test_spec_durations() -> None:
    assert infra.duration_seconds("00:10:00") == 600
    assert infra.duration_seconds("00:05:00") == 300
    assert infra.duration_seconds("1.00:00:00") == 86400
    with pytest.raises(KmError):
        infra.duration_seconds("10m")


def _rules(parsed: dict[str, Any]) -> list[infra.EdgeRule]:
    return infra.edge_rules(parsed)


def test_check_catches_a_wrong_duration(parsed: dict[str, Any]) -> None:
    rules = [dataclasses.replace(r, max_age=900) if r.name == "version" else r for r in _rules(parsed)]
    assert any("/version cached 900s" in p for p in infra.check_rule_set(rules))


def test_check_catches_a_cached_health(parsed: dict[str, Any]) -> None:
    rules = [dataclasses.replace(r, max_age=60) if r.name == "health" else r for r in _rules(parsed)]
    assert any("/health" in p for p in infra.check_rule_set(rules))


def test_check_catches_a_wrong_rewrite(parsed: dict[str, Any]) -> None:
    rules = [
        dataclasses.replace(r, destination="/install/install.ps1") if r.name == "root" else r
        for r in _rules(parsed)
    ]
    assert any("reaches /install/install.ps1" in p for p in infra.check_rule_set(rules))


def test_check_catches_a_missing_route(parsed: dict[str, Any]) -> None:
    rules = [r for r in _rules(parsed) if r.name != "installps1"]
    assert "route /install.ps1 has no Front Door rule" in infra.check_rule_set(rules)


def test_check_catches_a_path_outside_the_urlspace(parsed: dict[str, Any]) -> None:
    extra = infra.EdgeRule("extra", 99, "Equal", ("/meta/version",), None, 300)
    problems = infra.check_rule_set([*_rules(parsed), extra])
    assert any("/meta/version is not a fixed route" in p for p in problems)


def test_check_catches_a_urlspace_change(parsed: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    changed = dict(urlspace.OBJECT)
    changed[urlspace.Kind.LATEST] = dataclasses.replace(changed[urlspace.Kind.LATEST], max_age=3600)
    monkeypatch.setattr(urlspace, "OBJECT", changed)
    assert any("/releases/latest/{file} cached 86400s" in p for p in infra.check_rule_set(_rules(parsed)))


def test_check_terraform_is_clean() -> None:
    assert infra.check_terraform(TF) == []


def test_check_terraform_catches_classic_cdn(tmp_path: Path) -> None:
    for f in TF.glob("*.tf"):
        shutil.copy(f, tmp_path / f.name)
    (tmp_path / "classic.tf").write_text(
        'resource "azurerm_cdn_profile" "old" {\n  sku = "Standard_Microsoft"\n}\n'
    )
    assert any("azurerm_cdn_profile.old" in p for p in infra.check_terraform(tmp_path))


def test_identity_is_oidc_with_least_privilege(
    parsed: dict[str, Any], res: dict[str, dict[str, Any]]
) -> None:
    assert "azurerm_user_assigned_identity.github_release" in res
    cred = res["azurerm_federated_identity_credential.github_release_environment"]
    assert cred["issuer"] == "${local.github_oidc_issuer}"
    assert cred["subject"] == "repo:${var.github_repository}:environment:${var.github_environment}"
    loc = infra.locals_of(parsed)
    assert loc["github_oidc_issuer"] == "https://token.actions.githubusercontent.com"
    assert loc["github_oidc_audience"] == "api://AzureADTokenExchange"
    blob_role = res["azurerm_role_assignment.release_blob_contributor"]
    assert blob_role["role_definition_name"] == "Storage Blob Data Contributor"
    assert blob_role["scope"] == "${azurerm_storage_account.release.id}"
    purge = res["azurerm_role_definition.frontdoor_purge"]
    actions = one(purge["permissions"])["actions"]
    assert "Microsoft.Cdn/profiles/afdEndpoints/purge/action" in actions
    assert not any(a.endswith("/*") and "operationresults" not in a for a in actions), actions
    assert "azurerm_role_assignment.release_frontdoor_purge" in res
    # No long-lived secret anywhere: no app password, no client secret, no keys in outputs.
    text = "\n".join(p.read_text() for p in TF.glob("*.tf"))
    for forbidden in (
        "azuread_application_password",
        "client_secret",
        "primary_access_key",
        "primary_connection_string",
    ):
        assert forbidden not in text


def test_custom_domain_managed_certificate_and_association(res: dict[str, dict[str, Any]]) -> None:
    domain = res["azurerm_cdn_frontdoor_custom_domain.get"]
    assert domain["host_name"] == "${var.custom_domain}"
    tls = one(domain["tls"])
    assert tls["certificate_type"] == "ManagedCertificate"
    assert tls["minimum_tls_version"] == "TLS12"
    assoc = res["azurerm_cdn_frontdoor_custom_domain_association.get"]
    assert assoc["cdn_frontdoor_route_ids"] == ["${azurerm_cdn_frontdoor_route.public.id}"]


def test_outputs_give_dns_records_and_the_release_config_names(parsed: dict[str, Any]) -> None:
    outputs = {k: v for entry in parsed["outputs.tf"]["output"] for k, v in entry.items()}
    for needed in kminfra.OUTPUT_FOR_KEY.values():
        assert needed in outputs, needed
    assert "azurerm_cdn_frontdoor_endpoint.get.host_name" in str(outputs["dns_cname"]["value"])
    assert "validation_token" in str(outputs["dns_validation_txt"]["value"])
    assert "_dnsauth." in str(outputs["dns_validation_txt"]["value"])
    assert "placeholder_domains" in outputs
    assert "AZURE_CLIENT_ID" in str(outputs["github_actions"]["value"])


@pytest.mark.skipif(shutil.which("terraform") is None, reason="no terraform binary")
def test_terraform_fmt_is_clean() -> None:
    proc = subprocess.run(
        ["terraform", "fmt", "-check", "-recursive", str(TF)],
        env=kminfra.terraform_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
