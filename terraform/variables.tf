variable "subscription_id" {
  description = "Azure subscription that holds the release infrastructure."
  type        = string

  validation {
    condition     = can(regex("^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", var.subscription_id))
    error_message = "subscription_id must be a GUID, e.g. 00000000-0000-0000-0000-000000000000."
  }
}

variable "location" {
  description = "Azure region of the resource group, the storage account and the identity (Front Door is global)."
  type        = string
  default     = "westeurope"

  validation {
    condition     = can(regex("^[a-z][a-z0-9]+$", var.location))
    error_message = "location must be an Azure region name such as westeurope or eastus2 (lowercase, no spaces)."
  }
}

variable "resource_group_name" {
  description = "Resource group created for the release infrastructure."
  type        = string
  default     = "rg-km-release"

  validation {
    condition     = can(regex("^[A-Za-z0-9._()-]{1,89}[A-Za-z0-9_()-]$", var.resource_group_name))
    error_message = "resource_group_name: 2-90 letters, digits, . _ - ( ), not ending with a period."
  }
}

variable "storage_account_name" {
  description = "Globally unique name of the storage account (the origin behind Front Door)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]{3,24}$", var.storage_account_name))
    error_message = "storage_account_name must be 3-24 lowercase letters and digits."
  }
}

variable "storage_replication_type" {
  description = "Replication of the storage account. Geo-redundant by default: the origin of every install."
  type        = string
  default     = "GRS"

  validation {
    condition     = contains(["LRS", "ZRS", "GRS", "RAGRS", "GZRS", "RAGZRS"], var.storage_replication_type)
    error_message = "storage_replication_type must be one of LRS, ZRS, GRS, RAGRS, GZRS, RAGZRS."
  }
}

variable "soft_delete_retention_days" {
  description = "Days a deleted or overwritten blob (and a deleted container) can be recovered."
  type        = number
  default     = 30

  validation {
    condition     = var.soft_delete_retention_days >= 7 && var.soft_delete_retention_days <= 365
    error_message = "soft_delete_retention_days must be between 7 and 365."
  }
}

variable "frontdoor_profile_name" {
  description = "Name of the Azure Front Door Standard profile."
  type        = string
  default     = "afd-km-release"

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9-]{0,258}[A-Za-z0-9]$", var.frontdoor_profile_name))
    error_message = "frontdoor_profile_name: 2-260 letters, digits and hyphens, starting and ending with a letter or digit."
  }
}

variable "frontdoor_endpoint_name" {
  description = "Name of the Front Door endpoint (its host is <name>-<hash>.z01.azurefd.net)."
  type        = string
  default     = "km-get"

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9-]{0,44}[A-Za-z0-9]$", var.frontdoor_endpoint_name))
    error_message = "frontdoor_endpoint_name: 2-46 letters, digits and hyphens, starting and ending with a letter or digit."
  }
}

variable "custom_domain" {
  description = "Public host name of the install and download service."
  type        = string
  default     = "get.kilometers.ai"

  validation {
    condition     = can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z]{2,}$", var.custom_domain))
    error_message = "custom_domain must be a lowercase DNS host name such as get.kilometers.ai."
  }
}

variable "placeholder_subdomains" {
  description = "Other host names of the product, listed in the outputs as not served by this Front Door yet."
  type        = list(string)
  default     = ["api", "app"]

  validation {
    condition     = alltrue([for s in var.placeholder_subdomains : can(regex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", s))])
    error_message = "placeholder_subdomains must be single DNS labels such as api or app."
  }
}

variable "dns_zone_name" {
  description = "Azure DNS zone of the custom domain (e.g. kilometers.ai). Empty: DNS is elsewhere, create the records from the outputs by hand."
  type        = string
  default     = ""

  validation {
    condition     = var.dns_zone_name == "" || can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z]{2,}$", var.dns_zone_name))
    error_message = "dns_zone_name must be empty or a lowercase DNS zone name such as kilometers.ai."
  }

  # Cross-variable validation needs Terraform >= 1.9 (pinned in versions.tf).
  validation {
    condition     = var.dns_zone_name == "" || endswith(var.custom_domain, ".${var.dns_zone_name}")
    error_message = "custom_domain must be a subdomain of dns_zone_name (a CNAME cannot sit at the zone apex)."
  }
}

variable "dns_zone_resource_group_name" {
  description = "Resource group of the Azure DNS zone (only used when dns_zone_name is set)."
  type        = string
  default     = ""
}

variable "github_repository" {
  description = "GitHub repository (owner/name) whose release workflow may sign in as the release identity."
  type        = string
  default     = "kilometers-ai/kilometers-cli"

  validation {
    condition     = can(regex("^[A-Za-z0-9-]+/[A-Za-z0-9._-]+$", var.github_repository))
    error_message = "github_repository must be owner/name."
  }
}

variable "github_environment" {
  description = "GitHub Actions environment of the publish job; the federated credential trusts only this environment."
  type        = string
  default     = "release"

  validation {
    condition     = can(regex("^[A-Za-z0-9._-]{1,255}$", var.github_environment))
    error_message = "github_environment must be 1-255 letters, digits, . _ or -."
  }
}

variable "log_analytics_workspace_id" {
  description = "Log Analytics workspace that receives blob access logs and Front Door access logs. Empty: no diagnostic settings."
  type        = string
  default     = ""

  validation {
    condition     = var.log_analytics_workspace_id == "" || can(regex("(?i)^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft.OperationalInsights/workspaces/[^/]+$", var.log_analytics_workspace_id))
    error_message = "log_analytics_workspace_id must be empty or the resource ID of a Log Analytics workspace."
  }
}

variable "tags" {
  description = "Tags applied to every resource that takes tags."
  type        = map(string)
  default = {
    project = "km"
    purpose = "release-distribution"
  }
}

variable "alert_action_group_id" {
  description = "Action group (resource ID) told when an alert fires: origin health, 5xx ratio, /health. Empty: the alerts fire in the portal only."
  type        = string
  default     = ""

  validation {
    condition     = var.alert_action_group_id == "" || can(regex("(?i)^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft.Insights/actionGroups/[^/]+$", var.alert_action_group_id))
    error_message = "alert_action_group_id must be empty or the resource ID of an action group (/subscriptions/.../resourceGroups/.../providers/Microsoft.Insights/actionGroups/NAME)."
  }
}

variable "key_vault_name" {
  description = "Key Vault holding the release signing key (globally unique, 3-24 characters)."
  type        = string
  default     = "kv-km-release"

  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$", var.key_vault_name))
    error_message = "A Key Vault name is 3-24 letters, digits and hyphens, starting with a letter."
  }
}

variable "release_key_expiration" {
  description = "Expiry of the release signing key (RFC 3339 UTC); rotate before it (README.md, \"Signed releases\")."
  type        = string
  default     = "2028-12-31T00:00:00Z"
}

variable "authenticode_certificate_name" {
  description = "Name of the Authenticode code-signing certificate an operator imported into the release Key Vault (its key non-exportable); empty: Windows binaries are not Authenticode-signed in releases. The release identity may then read that certificate and sign with its key, nothing else."
  type        = string
  default     = ""

  validation {
    condition     = var.authenticode_certificate_name == "" || can(regex("^[a-zA-Z0-9-]{1,127}$", var.authenticode_certificate_name))
    error_message = "A Key Vault certificate name is 1-127 letters, digits and hyphens."
  }
}
