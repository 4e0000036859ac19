# Azure Front Door Standard in front of the storage account: the public URL
# space of SPEC section 5. Not the classic azurerm_cdn_profile/azurerm_cdn_endpoint:
# Azure CDN Standard from Microsoft (classic) takes no new profiles.
#
# The rule set below is one rule per row of kmrelease/urlspace.py ROUTES (paths
# rewritten to their origin key, edge cache duration = the route's max_age).
# tests/unit/test_terraform.py checks both directions against that table.

resource "azurerm_cdn_frontdoor_profile" "release" {
  name                     = var.frontdoor_profile_name
  resource_group_name      = azurerm_resource_group.release.name
  sku_name                 = "Standard_AzureFrontDoor"
  response_timeout_seconds = 60
  tags                     = var.tags
}

resource "azurerm_cdn_frontdoor_endpoint" "get" {
  name                     = var.frontdoor_endpoint_name
  cdn_frontdoor_profile_id = azurerm_cdn_frontdoor_profile.release.id
  enabled                  = true
  tags                     = var.tags
}

resource "azurerm_cdn_frontdoor_origin_group" "blob" {
  name                     = "blob-origin"
  cdn_frontdoor_profile_id = azurerm_cdn_frontdoor_profile.release.id
  session_affinity_enabled = false

  restore_traffic_time_to_healed_or_new_endpoint_in_minutes = 10

  # /health is served from the blob meta/health; probe that blob on the origin.
  health_probe {
    path                = "/meta/health"
    protocol            = "Https"
    request_type        = "HEAD"
    interval_in_seconds = 100
  }

  load_balancing {
    sample_size                        = 4
    successful_samples_required        = 3
    additional_latency_in_milliseconds = 50
  }
}

resource "azurerm_cdn_frontdoor_origin" "blob" {
  name                          = "blob"
  cdn_frontdoor_origin_group_id = azurerm_cdn_frontdoor_origin_group.blob.id
  enabled                       = true

  # The blob endpoint only answers for its own host name.
  host_name                      = azurerm_storage_account.release.primary_blob_host
  origin_host_header             = azurerm_storage_account.release.primary_blob_host
  certificate_name_check_enabled = true
  http_port                      = 80
  https_port                     = 443
  priority                       = 1
  weight                         = 1000
}

resource "azurerm_cdn_frontdoor_rule_set" "urlspace" {
  name                     = "kmurlspace"
  cdn_frontdoor_profile_id = azurerm_cdn_frontdoor_profile.release.id
}

# One rule per public path: rewrite to the origin key (when the public path is
# not the key itself) and set the edge cache duration. Each rule stops the
# evaluation, so exactly one rule applies to a request. The url_path_condition
# values carry no leading slash (Front Door's convention).

locals {
  # name => { public paths (no leading slash; "" is "/"), operator, origin path or
  # null (no rewrite), edge cache duration or null (never cached) }
  urlspace_rules = {
    root = {
      order       = 1
      paths       = [""]
      operator    = "Equal"
      destination = "/install/install.sh"
      cache       = "00:10:00"
    }
    installsh = {
      order       = 2
      paths       = ["install.sh"]
      operator    = "Equal"
      destination = "/install/install.sh"
      cache       = "00:10:00"
    }
    installps1 = {
      order       = 3
      paths       = ["install.ps1"]
      operator    = "Equal"
      destination = "/install/install.ps1"
      cache       = "00:10:00"
    }
    installdir = {
      order       = 4
      paths       = ["install/install.sh", "install/install.ps1"]
      operator    = "Equal"
      destination = null
      cache       = "00:10:00"
    }
    version = {
      order       = 5
      paths       = ["version"]
      operator    = "Equal"
      destination = "/meta/version"
      cache       = "00:05:00"
    }
    health = {
      order       = 6
      paths       = ["health"]
      operator    = "Equal"
      destination = "/meta/health"
      cache       = null
    }
    releases = {
      order       = 7
      paths       = ["releases/"]
      operator    = "BeginsWith"
      destination = null
      cache       = "1.00:00:00"
    }
    # The APT repository (SPEC section 14): the pool is immutable, the signed index
    # and the keyring are short-lived (the index is purged on release).
    aptpool = {
      order       = 8
      paths       = ["apt/pool/"]
      operator    = "BeginsWith"
      destination = null
      cache       = "1.00:00:00"
    }
    aptdists = {
      order       = 9
      paths       = ["apt/dists/"]
      operator    = "BeginsWith"
      destination = null
      cache       = "00:05:00"
    }
    aptkeyring = {
      order       = 10
      paths       = ["apt/kilometers-archive-keyring.gpg"]
      operator    = "Equal"
      destination = null
      cache       = "00:05:00"
    }
    keys = {
      order       = 11
      paths       = ["keys/allowed_signers", "keys/release-keys.pem"]
      operator    = "Equal"
      destination = null
      cache       = "00:05:00"
    }
  }
}

resource "azurerm_cdn_frontdoor_rule" "urlspace" {
  for_each = local.urlspace_rules

  # Required by the provider: rules reference the origin group implicitly.
  depends_on = [azurerm_cdn_frontdoor_origin_group.blob, azurerm_cdn_frontdoor_origin.blob]

  name                      = each.key
  cdn_frontdoor_rule_set_id = azurerm_cdn_frontdoor_rule_set.urlspace.id
  order                     = each.value.order
  behavior_on_match         = "Stop"

  conditions {
    url_path_condition {
      operator         = each.value.operator
      negate_condition = false
      match_values     = each.value.paths
      transforms       = []
    }
  }

  actions {
    dynamic "url_rewrite_action" {
      for_each = each.value.destination == null ? [] : [each.value.destination]
      content {
        source_pattern          = "/"
        destination             = url_rewrite_action.value
        preserve_unmatched_path = false
      }
    }

    route_configuration_override_action {
      cache_behavior                = each.value.cache == null ? "Disabled" : "OverrideAlways"
      cache_duration                = each.value.cache
      query_string_caching_behavior = each.value.cache == null ? null : "IgnoreQueryString"
      compression_enabled           = each.value.cache == null ? null : false
    }
  }
}

resource "azurerm_cdn_frontdoor_route" "public" {
  name                          = "public"
  cdn_frontdoor_endpoint_id     = azurerm_cdn_frontdoor_endpoint.get.id
  cdn_frontdoor_origin_group_id = azurerm_cdn_frontdoor_origin_group.blob.id
  cdn_frontdoor_origin_ids      = [azurerm_cdn_frontdoor_origin.blob.id]
  cdn_frontdoor_rule_set_ids    = [azurerm_cdn_frontdoor_rule_set.urlspace.id]
  enabled                       = true

  # Plain HTTP is answered with a redirect to HTTPS; the origin is always HTTPS.
  supported_protocols    = ["Http", "Https"]
  https_redirect_enabled = true
  forwarding_protocol    = "HttpsOnly"
  patterns_to_match      = ["/*"]

  cdn_frontdoor_custom_domain_ids = [azurerm_cdn_frontdoor_custom_domain.get.id]
  link_to_default_domain          = true

  cache {
    query_string_caching_behavior = "IgnoreQueryString"
    compression_enabled           = false
  }
}

resource "azurerm_cdn_frontdoor_custom_domain" "get" {
  name                     = replace(var.custom_domain, ".", "-")
  cdn_frontdoor_profile_id = azurerm_cdn_frontdoor_profile.release.id
  dns_zone_id              = var.dns_zone_name == "" ? null : data.azurerm_dns_zone.public[0].id
  host_name                = var.custom_domain

  tls {
    certificate_type    = "ManagedCertificate"
    minimum_tls_version = "TLS12"
  }
}

resource "azurerm_cdn_frontdoor_custom_domain_association" "get" {
  cdn_frontdoor_custom_domain_id = azurerm_cdn_frontdoor_custom_domain.get.id
  cdn_frontdoor_route_ids        = [azurerm_cdn_frontdoor_route.public.id]
}
