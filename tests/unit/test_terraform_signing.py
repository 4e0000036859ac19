"""terraform/keyvault.tf: the release key in an HSM, and the release identity may only read and sign."""

from __future__ import annotations

from tools import tfcheck


def test_release_identity_may_only_read_and_sign_with_the_one_key() -> None:
    found = tfcheck.resources(tfcheck.load_terraform())
    key = found["azurerm_key_vault_key.release"]
    assert (key["key_type"], key["curve"]) == ("EC-HSM", "P-256")
    assert sorted(key["key_opts"]) == ["sign", "verify"]
    vault = found["azurerm_key_vault.release"]
    assert vault["enable_rbac_authorization"] is True and vault["purge_protection_enabled"] is True
    role = found["azurerm_role_definition.release_signer"]
    perms = role["permissions"][0] if isinstance(role["permissions"], list) else role["permissions"]
    assert perms["actions"] == []
    assert sorted(perms["data_actions"]) == [
        "Microsoft.KeyVault/vaults/keys/read",
        "Microsoft.KeyVault/vaults/keys/sign/action",
    ]
    grant = found["azurerm_role_assignment.release_signer"]
    assert grant["scope"].endswith("/keys/${azurerm_key_vault_key.release.name}")
    assert "github_release" in grant["principal_id"]
    # no other role on the vault for the release identity (the Authenticode ones only when asked for)
    others = [
        name
        for name, body in found.items()
        if name.startswith("azurerm_role_assignment.")
        and "key_vault" in str(body.get("scope"))
        and "github_release" in str(body.get("principal_id"))
    ]
    authenticode = [f"azurerm_role_assignment.authenticode_{r}" for r in ("reader", "signer")]
    assert sorted(others) == sorted(["azurerm_role_assignment.release_signer", *authenticode])
    for name in authenticode:
        assert found[name]["count"] == '${var.authenticode_certificate_name == "" ? 0 : 1}'
    assert found["azurerm_role_assignment.authenticode_signer"]["role_definition_id"] == (
        "${azurerm_role_definition.release_signer.role_definition_resource_id}"
    )  # the sign-only role, on the certificate's key
    assert found["azurerm_role_assignment.authenticode_reader"]["scope"].endswith(
        "/certificates/${var.authenticode_certificate_name}"
    )
    reader = found["azurerm_role_definition.authenticode_reader"]
    perms = reader["permissions"][0] if isinstance(reader["permissions"], list) else reader["permissions"]
    assert perms["actions"] == [] and perms["data_actions"] == ["Microsoft.KeyVault/vaults/certificates/read"]
