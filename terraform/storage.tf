# The origin: one storage account whose containers hold the blob layout of
# kmrelease/urlspace.py (origin key "<container>/<blob>"):
#
#   install/install.sh, install/install.ps1      the install scripts
#   meta/version, meta/health                    the version pointer and health document
#   releases/<version>/<file>, releases/latest/<file>
#
# Headers (Content-Type, Cache-Control, Content-MD5) are set on the blobs by the
# publisher, so Front Door relays them unchanged.

locals {
  # Must equal kmrelease.urlspace.CONTAINERS (tests/unit/test_terraform.py checks it).
  blob_containers = ["install", "meta", "releases", "apt", "keys"]
}

resource "azurerm_resource_group" "release" {
  name     = var.resource_group_name
  location = var.location
  tags     = var.tags
}

resource "azurerm_storage_account" "release" {
  #checkov:skip=CKV_AZURE_35:Front Door Standard reaches the origin over the public blob endpoint (Private Link origins need Premium), so the network default cannot be Deny.
  #checkov:skip=CKV_AZURE_59:Same reason: public network access is how Front Door Standard reaches the origin; every object is public release content.
  #checkov:skip=CKV2_AZURE_33:No private endpoint: Front Door Standard cannot use Private Link origins, and no private client reads this account.
  #checkov:skip=CKV_AZURE_190:Blob-level anonymous read is the purpose: the containers hold only public release files that Front Door serves (container access "blob", listing stays denied).
  #checkov:skip=CKV2_AZURE_47:Same reason as CKV_AZURE_190: anonymous blob read (not container listing) for public release files.
  #checkov:skip=CKV2_AZURE_1:Customer-managed keys add a Key Vault for public, checksum-verified binaries; Microsoft-managed encryption at rest (plus infrastructure encryption) is kept.
  #checkov:skip=CKV_AZURE_33:No queue service is used; queue logging would log nothing.
  name                     = var.storage_account_name
  resource_group_name      = azurerm_resource_group.release.name
  location                 = azurerm_resource_group.release.location
  account_kind             = "StorageV2"
  account_tier             = "Standard"
  account_replication_type = var.storage_replication_type
  access_tier              = "Hot"

  https_traffic_only_enabled        = true
  min_tls_version                   = "TLS1_2"
  shared_access_key_enabled         = false
  default_to_oauth_authentication   = true
  allow_nested_items_to_be_public   = true
  public_network_access_enabled     = true
  infrastructure_encryption_enabled = true
  cross_tenant_replication_enabled  = false

  blob_properties {
    versioning_enabled  = true
    change_feed_enabled = true

    delete_retention_policy {
      days = var.soft_delete_retention_days
    }

    container_delete_retention_policy {
      days = var.soft_delete_retention_days
    }
  }

  # Shared keys are disabled, so no SAS can be signed with them; the policy
  # bounds any user-delegation SAS someone creates by hand.
  sas_policy {
    expiration_period = "00.01:00:00"
    expiration_action = "Log"
  }

  tags = var.tags
}

resource "azurerm_storage_container" "layout" {
  #checkov:skip=CKV2_AZURE_21:The check wants azurerm_log_analytics_storage_insights, which reads the account with a shared key (disabled here); blob read/write/delete logs go through the diagnostic setting in monitoring.tf.
  #checkov:skip=CKV_AZURE_34:Anonymous read of single blobs is the purpose: Front Door Standard fetches public release files without credentials; "blob" access never allows listing.
  for_each = toset(local.blob_containers)

  name                  = each.key
  storage_account_id    = azurerm_storage_account.release.id
  container_access_type = "blob"
}

# Deleting the account would delete every published version (rollback needs
# them) and break every install; a lock makes that a deliberate two-step act.
resource "azurerm_management_lock" "storage" {
  name       = "km-release-origin-no-delete"
  scope      = azurerm_storage_account.release.id
  lock_level = "CanNotDelete"
  notes      = "Origin of get.kilometers.ai: every published km version lives here. Remove this lock deliberately before deleting."
}
