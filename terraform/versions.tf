# Terraform and provider pins. Only the azurerm provider is used: the GitHub
# Actions identity is a user-assigned managed identity (no azuread provider, no
# app registration, no client secret).
terraform {
  required_version = ">= 1.9"

  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 4.30"
    }
  }

  # State lives in Azure Storage, in an account and container of its own (never the
  # release account): blob versioning and soft delete keep every earlier state, and
  # Terraform locks it with a blob lease. The names are a partial configuration in
  # terraform/backend.hcl, which `inv infra.plan` passes to `terraform init`; the
  # account itself is made once by terraform/bootstrap/ (see README.md, "State").
  backend "azurerm" {
    use_azuread_auth = true
  }
}

provider "azurerm" {
  features {}

  subscription_id = var.subscription_id

  # The storage account has shared-key access disabled (the release identity uses
  # RBAC), so Terraform's own data-plane calls must use Entra ID too.
  storage_use_azuread = true
}
