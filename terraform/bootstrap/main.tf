# Bootstrap of the Terraform state: the storage account and container that hold the
# state of ../ (the release infrastructure). Applied once, by hand, with local state
# (this directory's terraform.tfstate, gitignored; keep a copy: `terraform state pull`).
# Its own account: never the release account, so nothing that publishes releases can
# read or overwrite the state, and deleting release content never touches it.
#
#   terraform -chdir=terraform/bootstrap init
#   terraform -chdir=terraform/bootstrap apply -var subscription_id=... -var storage_account_name=...
#   terraform -chdir=terraform/bootstrap output -raw backend_hcl > terraform/backend.hcl
#   inv infra.plan        # init now moves any local state into the account (answer yes once)

terraform {
  required_version = ">= 1.9"

  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 4.30"
    }
  }
}

provider "azurerm" {
  features {}

  subscription_id     = var.subscription_id
  storage_use_azuread = true
}

variable "subscription_id" {
  description = "Azure subscription of the release infrastructure."
  type        = string

  validation {
    condition     = can(regex("^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", var.subscription_id))
    error_message = "subscription_id must be a GUID."
  }
}

variable "location" {
  description = "Azure region of the state account."
  type        = string
  default     = "westeurope"
}

variable "resource_group_name" {
  description = "Resource group of the state account (not the release resource group)."
  type        = string
  default     = "rg-km-tfstate"
}

variable "storage_account_name" {
  description = "Globally unique name of the state account (3-24 lowercase letters and digits)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]{3,24}$", var.storage_account_name))
    error_message = "storage_account_name must be 3-24 lowercase letters and digits."
  }
}

variable "state_retention_days" {
  description = "Days a deleted or overwritten state blob (and a deleted container) can be recovered."
  type        = number
  default     = 90

  validation {
    condition     = var.state_retention_days >= 7 && var.state_retention_days <= 365
    error_message = "state_retention_days must be between 7 and 365."
  }
}

variable "allowed_ip_ranges" {
  description = "Public IP ranges (CIDR) of the operators who run terraform; every other network is refused."
  type        = list(string)
  default     = []
}

locals {
  container = "tfstate"
  state_key = "km-release.tfstate"
  tags = {
    project = "km"
    purpose = "terraform-state"
  }
}

resource "azurerm_resource_group" "state" {
  name     = var.resource_group_name
  location = var.location
  tags     = local.tags
}

resource "azurerm_storage_account" "state" {
  #checkov:skip=CKV_AZURE_59:Operators run terraform from their own machines; access is limited by network_rules to allowed_ip_ranges and by Entra ID (shared keys off).
  #checkov:skip=CKV2_AZURE_33:No private endpoint: the operators reach the account over the internet, restricted to allowed_ip_ranges.
  #checkov:skip=CKV2_AZURE_1:Microsoft-managed keys with infrastructure encryption; a customer-managed key would need a Key Vault the state then depends on.
  #checkov:skip=CKV_AZURE_33:No queue service is used; queue logging would log nothing.
  name                     = var.storage_account_name
  resource_group_name      = azurerm_resource_group.state.name
  location                 = azurerm_resource_group.state.location
  account_kind             = "StorageV2"
  account_tier             = "Standard"
  account_replication_type = "GRS"

  https_traffic_only_enabled        = true
  min_tls_version                   = "TLS1_2"
  shared_access_key_enabled         = false
  default_to_oauth_authentication   = true
  allow_nested_items_to_be_public   = false
  public_network_access_enabled     = true
  infrastructure_encryption_enabled = true
  cross_tenant_replication_enabled  = false

  network_rules {
    default_action = "Deny"
    bypass         = ["AzureServices"]
    ip_rules       = var.allowed_ip_ranges
  }

  blob_properties {
    versioning_enabled  = true
    change_feed_enabled = true

    delete_retention_policy {
      days = var.state_retention_days
    }

    container_delete_retention_policy {
      days = var.state_retention_days
    }
  }

  sas_policy {
    expiration_period = "00.01:00:00"
    expiration_action = "Log"
  }

  tags = local.tags
}

resource "azurerm_storage_container" "state" {
  #checkov:skip=CKV2_AZURE_21:Blob logging via azurerm_log_analytics_storage_insights needs shared keys, which are off; Terraform's own lease records who writes.
  name                  = local.container
  storage_account_id    = azurerm_storage_account.state.id
  container_access_type = "private"
}

resource "azurerm_management_lock" "state" {
  name       = "km-tfstate-no-delete"
  scope      = azurerm_storage_account.state.id
  lock_level = "CanNotDelete"
  notes      = "Terraform state of the km release infrastructure. Remove this lock deliberately before deleting."
}

output "backend_hcl" {
  description = "The contents of terraform/backend.hcl for the release configuration."
  value       = <<-EOT
    resource_group_name  = "${azurerm_resource_group.state.name}"
    storage_account_name = "${azurerm_storage_account.state.name}"
    container_name       = "${azurerm_storage_container.state.name}"
    key                  = "${local.state_key}"
  EOT
}
