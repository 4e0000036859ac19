# Access logs, when a Log Analytics workspace is given: who read, wrote or
# deleted which blob (the publish audit trail) and what Front Door served.

locals {
  diagnostics = var.log_analytics_workspace_id != ""
}

resource "azurerm_monitor_diagnostic_setting" "blob" {
  count                      = local.diagnostics ? 1 : 0
  name                       = "km-release-blob-logs"
  target_resource_id         = "${azurerm_storage_account.release.id}/blobServices/default"
  log_analytics_workspace_id = var.log_analytics_workspace_id

  enabled_log {
    category = "StorageRead"
  }

  enabled_log {
    category = "StorageWrite"
  }

  enabled_log {
    category = "StorageDelete"
  }
}

resource "azurerm_monitor_diagnostic_setting" "frontdoor" {
  count                      = local.diagnostics ? 1 : 0
  name                       = "km-release-frontdoor-logs"
  target_resource_id         = azurerm_cdn_frontdoor_profile.release.id
  log_analytics_workspace_id = var.log_analytics_workspace_id

  enabled_log {
    category = "FrontDoorAccessLog"
  }

  enabled_log {
    category = "FrontDoorHealthProbeLog"
  }
}
