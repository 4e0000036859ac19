# DNS for the custom domain. Front Door issues the managed certificate once the
# domain is validated: a TXT record _dnsauth.<host> with the validation token,
# and a CNAME <host> -> the endpoint's azurefd.net host name.
#
# With dns_zone_name set (an Azure DNS zone), Terraform creates both records.
# Otherwise the outputs dns_cname and dns_validation_txt say what to create at
# the DNS provider by hand.

locals {
  manage_dns = var.dns_zone_name != ""
  # Record names relative to the zone: get.kilometers.ai in kilometers.ai -> "get".
  dns_record_name = local.manage_dns ? trimsuffix(trimsuffix(var.custom_domain, var.dns_zone_name), ".") : ""
}

data "azurerm_dns_zone" "public" {
  count               = local.manage_dns ? 1 : 0
  name                = var.dns_zone_name
  resource_group_name = var.dns_zone_resource_group_name
}

resource "azurerm_dns_txt_record" "frontdoor_validation" {
  count               = local.manage_dns ? 1 : 0
  name                = join(".", compact(["_dnsauth", local.dns_record_name]))
  zone_name           = data.azurerm_dns_zone.public[0].name
  resource_group_name = data.azurerm_dns_zone.public[0].resource_group_name
  ttl                 = 3600

  record {
    value = azurerm_cdn_frontdoor_custom_domain.get.validation_token
  }

  tags = var.tags
}

resource "azurerm_dns_cname_record" "get" {
  count               = local.manage_dns ? 1 : 0
  name                = local.dns_record_name
  zone_name           = data.azurerm_dns_zone.public[0].name
  resource_group_name = data.azurerm_dns_zone.public[0].resource_group_name
  ttl                 = 3600
  record              = azurerm_cdn_frontdoor_endpoint.get.host_name

  # The CNAME must exist only after the route serves the domain.
  depends_on = [azurerm_cdn_frontdoor_route.public]

  tags = var.tags
}
