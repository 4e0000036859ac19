# Alerts: the three signals that mean installs are failing now.
#
#   origin health   Front Door's health probes of the storage origin below 100 % for 5 minutes
#   5xx ratio       more than 1 % of the answers are 5xx, over 10 minutes
#   /health         a standard web test from three regions fails in at least two
#
# Each goes to the action group named by alert_action_group_id (e-mail, SMS, a webhook...
# made outside this configuration, often shared with other services). Without one the
# alerts still fire and show in the portal, but nobody is told. The /health test lives
# in a workspace-based Application Insights, so it needs log_analytics_workspace_id.

locals {
  alert_actions = var.alert_action_group_id == "" ? [] : [var.alert_action_group_id]
  health_test   = var.log_analytics_workspace_id != ""
  health_url    = "https://${var.custom_domain}/health"
}

resource "azurerm_monitor_metric_alert" "origin_health" {
  name                = "km-release-origin-health"
  resource_group_name = azurerm_resource_group.release.name
  scopes              = [azurerm_cdn_frontdoor_profile.release.id]
  description         = "Front Door health probes of the storage origin below 100 % for 5 minutes: installs and downloads may fail."
  severity            = 1
  frequency           = "PT1M"
  window_size         = "PT5M"

  criteria {
    metric_namespace = "Microsoft.Cdn/profiles"
    metric_name      = "OriginHealthPercentage"
    aggregation      = "Average"
    operator         = "LessThan"
    threshold        = 100
  }

  dynamic "action" {
    for_each = local.alert_actions
    content {
      action_group_id = action.value
    }
  }

  tags = var.tags
}

resource "azurerm_monitor_metric_alert" "errors_5xx" {
  name                = "km-release-5xx-ratio"
  resource_group_name = azurerm_resource_group.release.name
  scopes              = [azurerm_cdn_frontdoor_profile.release.id]
  description         = "More than 1 % of Front Door answers were 5xx over 10 minutes."
  severity            = 1
  frequency           = "PT5M"
  window_size         = "PT10M"

  criteria {
    metric_namespace = "Microsoft.Cdn/profiles"
    metric_name      = "Percentage5XX"
    aggregation      = "Average"
    operator         = "GreaterThan"
    threshold        = 1
  }

  dynamic "action" {
    for_each = local.alert_actions
    content {
      action_group_id = action.value
    }
  }

  tags = var.tags
}

resource "azurerm_application_insights" "health" {
  count                         = local.health_test ? 1 : 0
  name                          = "appi-km-release-health"
  location                      = azurerm_resource_group.release.location
  resource_group_name           = azurerm_resource_group.release.name
  workspace_id                  = var.log_analytics_workspace_id
  application_type              = "other"
  local_authentication_disabled = true
  internet_ingestion_enabled    = true # availability results of the web test come in over the public endpoint
  internet_query_enabled        = true
  tags                          = var.tags
}

resource "azurerm_application_insights_standard_web_test" "health" {
  count                   = local.health_test ? 1 : 0
  name                    = "km-release-health"
  location                = azurerm_resource_group.release.location
  resource_group_name     = azurerm_resource_group.release.name
  application_insights_id = azurerm_application_insights.health[0].id
  description             = "GET ${local.health_url}: 200 with status ok, from three regions every 5 minutes."
  geo_locations           = ["emea-nl-ams-azr", "us-va-ash-azr", "apac-sg-sin-azr"]
  frequency               = 300
  timeout                 = 30
  enabled                 = true
  retry_enabled           = true

  request {
    url                              = local.health_url
    http_verb                        = "GET"
    parse_dependent_requests_enabled = false
  }

  validation_rules {
    expected_status_code        = 200
    ssl_check_enabled           = true
    ssl_cert_remaining_lifetime = 7

    content {
      content_match      = "\"status\": \"ok\"" # json.dumps of the health document (kmrelease/publish.py)
      pass_if_text_found = true
      ignore_case        = false
    }
  }

  tags = var.tags
}

resource "azurerm_monitor_metric_alert" "health" {
  count               = local.health_test ? 1 : 0
  name                = "km-release-health-failing"
  resource_group_name = azurerm_resource_group.release.name
  scopes              = [azurerm_application_insights_standard_web_test.health[0].id, azurerm_application_insights.health[0].id]
  description         = "GET /health failed from at least 2 of 3 regions."
  severity            = 1
  frequency           = "PT1M"
  window_size         = "PT5M"

  application_insights_web_test_location_availability_criteria {
    web_test_id           = azurerm_application_insights_standard_web_test.health[0].id
    component_id          = azurerm_application_insights.health[0].id
    failed_location_count = 2
  }

  dynamic "action" {
    for_each = local.alert_actions
    content {
      action_group_id = action.value
    }
  }

  tags = var.tags
}
