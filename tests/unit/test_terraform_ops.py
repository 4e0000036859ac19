"""terraform/ for operations: the alerts, the state backend and its bootstrap (python-hcl2, no provider)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kmrelease import infra, urlspace
from tests.support.releases import ROOT
from tools import tfcheck

pytest.importorskip("hcl2")

TF = ROOT / "terraform"


@pytest.fixture(scope="module")
def parsed() -> dict[str, Any]:
    return tfcheck.load_terraform(TF)


@pytest.fixture(scope="module")
def res(parsed: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return tfcheck.resources(parsed)


@pytest.fixture(scope="module")
def boot() -> dict[str, dict[str, Any]]:
    return tfcheck.resources(tfcheck.load_terraform(TF / "bootstrap"))


def one(block: Any) -> dict[str, Any]:
    assert isinstance(block, list) and len(block) == 1, block
    assert isinstance(block[0], dict)
    return block[0]


def action_source(alert: dict[str, Any]) -> str:
    action = one(alert["dynamic"])["action"]
    assert one(action["content"])["action_group_id"] == "${action.value}"
    return str(action["for_each"])


@pytest.mark.parametrize(
    ("name", "metric", "operator", "threshold", "window"),
    [
        ("origin_health", "OriginHealthPercentage", "LessThan", 100, "PT5M"),
        ("errors_5xx", "Percentage5XX", "GreaterThan", 1, "PT10M"),
    ],
)
def test_front_door_metric_alerts(
    res: dict[str, dict[str, Any]], name: str, metric: str, operator: str, threshold: int, window: str
) -> None:
    alert = res[f"azurerm_monitor_metric_alert.{name}"]
    assert alert["scopes"] == ["${azurerm_cdn_frontdoor_profile.release.id}"]
    assert alert["window_size"] == window
    criteria = one(alert["criteria"])
    assert criteria["metric_namespace"] == "Microsoft.Cdn/profiles"
    assert (criteria["metric_name"], criteria["operator"], criteria["threshold"]) == (
        metric,
        operator,
        threshold,
    )
    assert criteria["aggregation"] == "Average"
    assert action_source(alert) == "${local.alert_actions}"


def test_health_web_test_and_its_alert(parsed: dict[str, Any], res: dict[str, dict[str, Any]]) -> None:
    test = res["azurerm_application_insights_standard_web_test.health"]
    health = "/" + urlspace.key_of(urlspace.Kind.HEALTH).split("/")[-1]
    assert one(test["request"])["url"] == "${local.health_url}"
    health_url = tfcheck.locals_of(parsed)["health_url"]
    assert health_url == "https://${var.custom_domain}" + health
    assert urlspace.resolve(health) is not None and urlspace.resolve(health).kind is urlspace.Kind.HEALTH  # type: ignore[union-attr]
    rules = one(test["validation_rules"])
    assert rules["expected_status_code"] == 200
    assert (
        one(rules["content"])["content_match"] == json.dumps({"status": "ok"})[1:-1]
    )  # as publish writes it
    assert len(test["geo_locations"]) >= 3
    alert = res["azurerm_monitor_metric_alert.health"]
    criteria = one(alert["application_insights_web_test_location_availability_criteria"])
    assert criteria["failed_location_count"] == 2
    assert action_source(alert) == "${local.alert_actions}"
    insights = res["azurerm_application_insights.health"]
    assert insights["workspace_id"] == "${var.log_analytics_workspace_id}"
    assert insights["local_authentication_disabled"] is True


def test_alerts_go_to_the_action_group_variable(parsed: dict[str, Any]) -> None:
    actions = tfcheck.locals_of(parsed)["alert_actions"]
    assert "var.alert_action_group_id" in actions
    variables = {k: v for entry in parsed["variables.tf"]["variable"] for k, v in entry.items()}
    var = variables["alert_action_group_id"]
    assert var["default"] == "" and "actionGroups" in one(var["validation"])["condition"]


def test_state_backend_is_azure_storage_with_entra_id(parsed: dict[str, Any]) -> None:
    tf = one(parsed["versions.tf"]["terraform"])
    backend = one(tf["backend"])["azurerm"]
    assert backend == {"use_azuread_auth": True}  # the names come from backend.hcl
    example = (TF / "backend.hcl.example").read_text()
    for key in ("resource_group_name", "storage_account_name", "container_name", "key"):
        assert f"{key} " in example, key
    assert infra.plan_commands(terraform="tf", var_file=__file__)[0][-1] == "-backend-config=backend.hcl"


def test_state_account_is_its_own_with_versioning_soft_delete_and_no_public_access(
    res: dict[str, dict[str, Any]], boot: dict[str, dict[str, Any]]
) -> None:
    account = boot["azurerm_storage_account.state"]
    assert account["name"] == "${var.storage_account_name}"
    props = one(account["blob_properties"])
    assert props["versioning_enabled"] is True
    assert one(props["delete_retention_policy"])["days"] == "${var.state_retention_days}"
    assert one(props["container_delete_retention_policy"])["days"] == "${var.state_retention_days}"
    assert account["shared_access_key_enabled"] is False
    assert account["allow_nested_items_to_be_public"] is False
    assert one(account["network_rules"])["default_action"] == "Deny"
    container = boot["azurerm_storage_container.state"]
    assert container["container_access_type"] == "private"
    assert boot["azurerm_management_lock.state"]["lock_level"] == "CanNotDelete"
    # never the release account or one of its containers
    assert not any(r.startswith("azurerm_storage_account.state") for r in res)
    boot_locals = tfcheck.locals_of(tfcheck.load_terraform(TF / "bootstrap"))
    assert boot_locals["container"] not in urlspace.CONTAINERS
    assert 'container_name       = "tfstate"' in (TF / "backend.hcl.example").read_text()


def test_backups_and_backend_names_stay_out_of_git() -> None:
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "/terraform/backups/" in ignored and "/logs/" in ignored
    assert "*.tfstate" in (TF / ".gitignore").read_text().splitlines()  # the bootstrap's local state too
