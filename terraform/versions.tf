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

  # State is local by default (terraform/terraform.tfstate, gitignored). For a
  # shared state, add a backend "azurerm" block here (see README.md, "State").
}

provider "azurerm" {
  features {}

  subscription_id = var.subscription_id

  # The storage account has shared-key access disabled (the release identity uses
  # RBAC), so Terraform's own data-plane calls must use Entra ID too.
  storage_use_azuread = true
}
