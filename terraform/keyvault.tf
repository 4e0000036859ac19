# The release signing key (SPEC section 13): ECDSA P-256 in a Key Vault HSM, never
# exportable. The release workflow's identity may read the key's public half and
# sign digests with it, nothing else (a custom role scoped to this one key); no
# private key exists in any secret, file or CI variable.
#
# After `inv infra.apply`: `inv keys.export --key-id <release_signing_key_id>` writes
# the public key into build/keys/ (commit it: km and the install scripts trust only
# the keys there), and the release reads the key id from KM_SIGNING_KEY (the
# repository variable of the same name) or [signing] key_vault_key in build/release.toml.
# Rotation: README.md, "Signed releases".

data "azurerm_client_config" "current" {}

resource "azurerm_key_vault" "release" {
  #checkov:skip=CKV_AZURE_109:GitHub-hosted runners have no fixed addresses; access is RBAC on one key, sign and read only.
  #checkov:skip=CKV_AZURE_189:Same reason as CKV_AZURE_109: the release workflow reaches the vault over the internet.
  #checkov:skip=CKV2_AZURE_32:No private endpoint: GitHub-hosted runners are outside any virtual network.
  name                          = var.key_vault_name
  resource_group_name           = azurerm_resource_group.release.name
  location                      = azurerm_resource_group.release.location
  tenant_id                     = data.azurerm_client_config.current.tenant_id
  sku_name                      = "premium" # HSM-backed keys (EC-HSM)
  enable_rbac_authorization     = true
  purge_protection_enabled      = true
  soft_delete_retention_days    = 90
  public_network_access_enabled = true

  network_acls {
    bypass         = "AzureServices"
    default_action = "Allow"
  }

  tags = var.tags
}

# Whoever runs terraform creates and rotates the key (data plane, through RBAC).
resource "azurerm_role_assignment" "operator_crypto_officer" {
  scope                = azurerm_key_vault.release.id
  role_definition_name = "Key Vault Crypto Officer"
  principal_id         = data.azurerm_client_config.current.object_id
}

resource "azurerm_key_vault_key" "release" {
  name            = "km-release"
  key_vault_id    = azurerm_key_vault.release.id
  key_type        = "EC-HSM"
  curve           = "P-256"
  key_opts        = ["sign", "verify"]
  expiration_date = var.release_key_expiration
  tags            = var.tags

  depends_on = [azurerm_role_assignment.operator_crypto_officer]
}

# Sign-only: read the public key, sign a digest. Not encrypt, decrypt, wrap, import,
# delete or create (the built-in "Key Vault Crypto User" allows far more).
resource "azurerm_role_definition" "release_signer" {
  name        = "km release signer (${azurerm_key_vault.release.name})"
  scope       = azurerm_key_vault.release.id
  description = "Read the km release key's public half and sign digests with it."

  permissions {
    actions     = []
    not_actions = []
    data_actions = [
      "Microsoft.KeyVault/vaults/keys/read",
      "Microsoft.KeyVault/vaults/keys/sign/action",
    ]
    not_data_actions = []
  }

  assignable_scopes = [azurerm_key_vault.release.id]
}

resource "azurerm_role_assignment" "release_signer" {
  scope              = "${azurerm_key_vault.release.id}/keys/${azurerm_key_vault_key.release.name}"
  role_definition_id = azurerm_role_definition.release_signer.role_definition_resource_id
  principal_id       = azurerm_user_assigned_identity.github_release.principal_id
  principal_type     = "ServicePrincipal"
}

# Authenticode through Key Vault (jsign, kmrelease/jsign.py): with authenticode_certificate_name
# set, the release identity may read that one certificate and sign with its key: the same
# sign-only custom role on the key, and reading the certificate (jsign fetches the chain).
resource "azurerm_role_definition" "authenticode_reader" {
  count       = var.authenticode_certificate_name == "" ? 0 : 1
  name        = "km authenticode certificate reader (${azurerm_key_vault.release.name})"
  scope       = azurerm_key_vault.release.id
  description = "Read the km Authenticode certificate (its public chain) and nothing else."

  permissions {
    actions          = []
    not_actions      = []
    data_actions     = ["Microsoft.KeyVault/vaults/certificates/read"]
    not_data_actions = []
  }

  assignable_scopes = [azurerm_key_vault.release.id]
}

resource "azurerm_role_assignment" "authenticode_reader" {
  count              = var.authenticode_certificate_name == "" ? 0 : 1
  scope              = "${azurerm_key_vault.release.id}/certificates/${var.authenticode_certificate_name}"
  role_definition_id = azurerm_role_definition.authenticode_reader[0].role_definition_resource_id
  principal_id       = azurerm_user_assigned_identity.github_release.principal_id
  principal_type     = "ServicePrincipal"
}

resource "azurerm_role_assignment" "authenticode_signer" {
  count              = var.authenticode_certificate_name == "" ? 0 : 1
  scope              = "${azurerm_key_vault.release.id}/keys/${var.authenticode_certificate_name}"
  role_definition_id = azurerm_role_definition.release_signer.role_definition_resource_id
  principal_id       = azurerm_user_assigned_identity.github_release.principal_id
  principal_type     = "ServicePrincipal"
}
