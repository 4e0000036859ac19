# Outputs. `inv infra.outputs` reads `terraform output -json` and writes the
# names the Azure destination needs into build/release.toml ([azure] table):
# subscription_id, resource_group_name, storage_account_name, storage_account_url,
# frontdoor_profile_name, frontdoor_endpoint_name, custom_domains.

output "subscription_id" {
  description = "Subscription of the release infrastructure."
  value       = var.subscription_id
}

output "resource_group_name" {
  description = "Resource group of the release infrastructure."
  value       = azurerm_resource_group.release.name
}

output "storage_account_name" {
  description = "Storage account (the origin)."
  value       = azurerm_storage_account.release.name
}

output "storage_account_url" {
  description = "Blob endpoint of the storage account, e.g. https://<account>.blob.core.windows.net/."
  value       = azurerm_storage_account.release.primary_blob_endpoint
}

output "blob_containers" {
  description = "Containers of the blob layout (kmrelease.urlspace.CONTAINERS)."
  value       = sort([for c in azurerm_storage_container.layout : c.name])
}

output "frontdoor_profile_name" {
  description = "Front Door Standard profile."
  value       = azurerm_cdn_frontdoor_profile.release.name
}

output "frontdoor_endpoint_name" {
  description = "Front Door endpoint (purged after each promotion)."
  value       = azurerm_cdn_frontdoor_endpoint.get.name
}

output "frontdoor_endpoint_host_name" {
  description = "Default host of the endpoint: the CNAME target of the custom domain."
  value       = azurerm_cdn_frontdoor_endpoint.get.host_name
}

output "custom_domains" {
  description = "Custom domains served by the endpoint."
  value       = [azurerm_cdn_frontdoor_custom_domain.get.host_name]
}

output "public_base_url" {
  description = "Public base URL of the install and download service."
  value       = "https://${azurerm_cdn_frontdoor_custom_domain.get.host_name}"
}

output "dns_cname" {
  description = "CNAME record to create for the custom domain (created by Terraform when dns_zone_name is set)."
  value = {
    name   = var.custom_domain
    type   = "CNAME"
    target = azurerm_cdn_frontdoor_endpoint.get.host_name
  }
}

output "dns_validation_txt" {
  description = "TXT record that proves domain ownership to Front Door (managed certificate issuance)."
  value = {
    name  = "_dnsauth.${var.custom_domain}"
    type  = "TXT"
    value = azurerm_cdn_frontdoor_custom_domain.get.validation_token
  }
}

output "dns_managed_by_terraform" {
  description = "Whether the two records above were created in an Azure DNS zone by this configuration."
  value       = local.manage_dns
}

output "placeholder_domains" {
  description = "Other product host names (api., app.): reserved, not served by this Front Door endpoint."
  value = {
    for s in var.placeholder_subdomains :
    "${s}.${join(".", slice(split(".", var.custom_domain), 1, length(split(".", var.custom_domain))))}" => "not provisioned here: no route, no DNS record"
  }
}

output "github_actions" {
  description = "Values for the GitHub repository variables AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_SUBSCRIPTION_ID (not secrets)."
  value = {
    AZURE_CLIENT_ID       = azurerm_user_assigned_identity.github_release.client_id
    AZURE_TENANT_ID       = azurerm_user_assigned_identity.github_release.tenant_id
    AZURE_SUBSCRIPTION_ID = var.subscription_id
    environment           = var.github_environment
    oidc_subject          = azurerm_federated_identity_credential.github_release_environment.subject
  }
}

output "release_signing_key_id" {
  description = "Versioned id of the release signing key: KM_SIGNING_KEY / [signing] key_vault_key, and `inv keys.export --key-id`."
  value       = azurerm_key_vault_key.release.id
}
