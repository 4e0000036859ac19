# The identity of the GitHub Actions release workflow: a user-assigned managed
# identity with a federated credential (OIDC). No client secret, no storage key,
# no publish profile: nothing long-lived to leak or rotate.
#
# Trust: Entra ID federated credentials match the token subject exactly (no
# wildcards), and a job that declares `environment:` gets the subject
# "repo:<owner>/<name>:environment:<env>" whatever ref triggered it. So the
# credential trusts the `release` environment, and the environment's deployment
# protection rule (GitHub: Settings > Environments > release > "Selected
# branches and tags": v*) is what limits it to version tags. README.md, "GitHub".

locals {
  github_oidc_issuer   = "https://token.actions.githubusercontent.com"
  github_oidc_audience = "api://AzureADTokenExchange"
}

resource "azurerm_user_assigned_identity" "github_release" {
  name                = "id-km-release-github"
  resource_group_name = azurerm_resource_group.release.name
  location            = azurerm_resource_group.release.location
  tags                = var.tags
}

resource "azurerm_federated_identity_credential" "github_release_environment" {
  name                = "github-${replace(var.github_repository, "/", "-")}-env-${var.github_environment}"
  resource_group_name = azurerm_resource_group.release.name
  parent_id           = azurerm_user_assigned_identity.github_release.id
  issuer              = local.github_oidc_issuer
  audience            = [local.github_oidc_audience]
  subject             = "repo:${var.github_repository}:environment:${var.github_environment}"
}

# Publish: read, write and set headers on blobs (the data plane, through RBAC).
resource "azurerm_role_assignment" "release_blob_contributor" {
  scope                = azurerm_storage_account.release.id
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = azurerm_user_assigned_identity.github_release.principal_id
  principal_type       = "ServicePrincipal"
}

# Purge: the built-in "CDN Endpoint Contributor" covers classic CDN endpoints
# (Microsoft.Cdn/profiles/endpoints/*), not Front Door Standard endpoints
# (afdEndpoints), and "CDN Profile Contributor" could rewrite the whole profile.
# This role can read the profile and purge its endpoints, nothing else. It is
# assigned on the resource group because the purge is a long-running operation
# whose status is read from Microsoft.Cdn/operationresults below the group.
resource "azurerm_role_definition" "frontdoor_purge" {
  name        = "km Front Door purge (${azurerm_resource_group.release.name})"
  scope       = azurerm_resource_group.release.id
  description = "Read the km Front Door profile and purge its endpoints' caches."

  permissions {
    actions = [
      "Microsoft.Cdn/profiles/read",
      "Microsoft.Cdn/profiles/afdEndpoints/read",
      "Microsoft.Cdn/profiles/afdEndpoints/purge/action",
      "Microsoft.Cdn/operationresults/read",
      "Microsoft.Cdn/operationresults/*/read",
    ]
    not_actions = []
  }

  assignable_scopes = [azurerm_resource_group.release.id]
}

resource "azurerm_role_assignment" "release_frontdoor_purge" {
  scope              = azurerm_resource_group.release.id
  role_definition_id = azurerm_role_definition.frontdoor_purge.role_definition_resource_id
  principal_id       = azurerm_user_assigned_identity.github_release.principal_id
  principal_type     = "ServicePrincipal"
}
