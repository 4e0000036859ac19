"""Credentials: both ways of giving them, one clear line without any, and no secret ever shown."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import CredentialUnavailableError
from azure.storage.blob import (
    AccountSasPermissions,
    BlobServiceClient,
    ResourceTypes,
    generate_account_sas,
)

from kmrelease.config import AzureConfig
from kmrelease.destinations.azure import NO_CREDENTIALS, AzureBlobDestination, RetrySettings
from kmrelease.errors import KmError
from kmrelease.ui import Reporter
from tests.integration.azure.conftest import FAST, assert_consistent
from tests.support.azurite import SECRET_ACCOUNT, Azurite
from tests.support.releases import PROJECT, project_at, publish
from tests.support.tcpproxy import TcpProxy

pytestmark = pytest.mark.azurite
R = Reporter()


@pytest.fixture
def secret_service(azurite: Azurite) -> BlobServiceClient:
    service = BlobServiceClient.from_connection_string(azurite.connection_string(account=SECRET_ACCOUNT))
    for c in service.list_containers():
        service.delete_container(c.name)
    return service


@pytest.fixture
def loud(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Everything the SDK would log, at DEBUG: secrets must not be there either."""
    caplog.set_level(logging.DEBUG)
    logging.getLogger("azure").setLevel(logging.DEBUG)
    return caplog


def _no_secret(secrets: list[str], *texts: str) -> None:
    for secret in secrets:
        for text in texts:
            assert secret not in text


def test_no_credentials_is_one_line_naming_both_ways() -> None:
    with pytest.raises(KmError) as err:
        AzureBlobDestination.from_environment(project_at(PROJECT.root, azure=AzureConfig()), R, environ={})
    msg = str(err.value)
    assert msg == NO_CREDENTIALS and "\n" not in msg
    assert "AZURE_STORAGE_CONNECTION_STRING" in msg and "DefaultAzureCredential" in msg


def test_default_credential_that_finds_nothing(azurite: Azurite) -> None:
    class Nothing:
        def get_token(self, *scopes: str, **kwargs: Any) -> Any:
            raise CredentialUnavailableError("EnvironmentCredential: not configured\nManagedIdentity: ...")

    config = project_at(PROJECT.root, azure=AzureConfig(storage_account_url="https://127.0.0.1:1/kmtest"))
    dest = AzureBlobDestination.from_environment(config, R, environ={}, credential=Nothing(), retry=FAST)
    assert dest.label == "Azure Storage https://127.0.0.1:1/kmtest"
    with pytest.raises(KmError) as err:
        dest.check_writable()
    assert NO_CREDENTIALS in str(err.value) and "\n" not in str(err.value)
    assert issubclass(CredentialUnavailableError, ClientAuthenticationError)


def test_connection_string_wins_over_default_credential(azurite: Azurite) -> None:
    config = project_at(PROJECT.root, azure=AzureConfig(storage_account="kmprod"))
    dest = AzureBlobDestination.from_environment(
        config, R, environ={"AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string()}
    )
    assert dest.label == f"Azure Storage {azurite.blob_endpoint}"
    assert dest.create_containers  # loopback: an emulator
    dest.check_writable()


def test_wrong_key_is_refused_without_showing_it(
    azurite: Azurite, capfd: pytest.CaptureFixture[str], loud: pytest.LogCaptureFixture
) -> None:
    import base64

    wrong = base64.b64encode(b"not the key" * 6).decode()
    conn = azurite.connection_string(account=SECRET_ACCOUNT).replace(azurite.secret_key, wrong)
    dest = AzureBlobDestination.from_connection_string(conn, R, retry=FAST)
    with pytest.raises(KmError, match="refused the credentials") as err:
        dest.check_writable()
    out, errout = capfd.readouterr()
    _no_secret([wrong, conn, azurite.secret_key], str(err.value), repr(err.value), out, errout, loud.text)


def test_malformed_connection_string_is_not_echoed() -> None:
    conn = "AccountName=x;AccountKey"  # malformed: a key without value
    with pytest.raises(KmError, match="not a valid storage connection string") as err:
        AzureBlobDestination.from_connection_string(conn, R)
    assert conn not in str(err.value)


def test_secret_never_in_output_logs_or_errors(
    azurite: Azurite,
    secret_service: BlobServiceClient,
    release_of: Any,
    scripts: Path,
    capfd: pytest.CaptureFixture[str],
    loud: pytest.LogCaptureFixture,
) -> None:
    """A full release with a real (per-session random) account key, then failures, all captured."""
    conn = azurite.connection_string(account=SECRET_ACCOUNT)
    rel = release_of("v1.0.0")
    dest = AzureBlobDestination.from_connection_string(conn, R, retry=FAST)
    publish(rel, dest, R, scripts=scripts)
    assert assert_consistent(secret_service, {"v1.0.0": rel}) == "v1.0.0"

    errors = []
    proxy = TcpProxy("127.0.0.1", azurite.port).start()
    try:
        via = AzureBlobDestination.from_connection_string(
            azurite.connection_string(f"{proxy.url}/{SECRET_ACCOUNT}", account=SECRET_ACCOUNT),
            R,
            retry=RetrySettings(total=1, initial_backoff=0.01, increment_base=0.01, jitter=0),
        )
        proxy.fail_next(100)
        with pytest.raises(KmError) as e1:
            publish(release_of("v1.1.0"), via, R, scripts=scripts)
        errors.append(e1.value)
        proxy.fail_next(0)
        proxy.kill_at(1)
        with pytest.raises(KmError) as e2:
            via.check_writable()
        errors.append(e2.value)
    finally:
        proxy.stop()
    out, err = capfd.readouterr()
    texts = [out, err, loud.text, *(str(e) for e in errors), *(repr(e) for e in errors)]
    texts += [repr(e.__cause__) + repr(e.__context__) for e in errors if not e.__suppress_context__]
    assert all(e.__suppress_context__ for e in errors)  # `from None`: no SDK exception chained
    _no_secret([azurite.secret_key, conn], *texts)
    assert "cannot reach" in str(errors[1])


def test_sas_connection_string_publishes_and_stays_hidden(
    azurite: Azurite,
    secret_service: BlobServiceClient,
    release_of: Any,
    scripts: Path,
    capfd: pytest.CaptureFixture[str],
    loud: pytest.LogCaptureFixture,
) -> None:
    """A SAS connection string: the copy source URL carries the SAS, which is redacted everywhere."""
    sas = generate_account_sas(
        SECRET_ACCOUNT,
        azurite.secret_key,
        ResourceTypes(service=True, container=True, object=True),
        AccountSasPermissions(read=True, write=True, delete=True, list=True, add=True, create=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    conn = f"BlobEndpoint={azurite.url}/{SECRET_ACCOUNT};SharedAccessSignature={sas}"
    v1, v2 = release_of("v1.0.0"), release_of("v1.1.0")
    dest = AzureBlobDestination.from_connection_string(conn, R, retry=FAST)
    publish(v1, dest, R, scripts=scripts)
    publish(v2, dest, R, scripts=scripts)
    assert assert_consistent(secret_service, {"v1.0.0": v1, "v1.1.0": v2}) == "v1.1.0"
    # a refused copy (source missing) and a failed request: messages without the SAS
    with pytest.raises(KmError) as err:
        dest.copy("releases/v0.0.1/x", "releases/latest/x", {})
    bad = conn.replace("sig=", "sig=AAAA")
    with pytest.raises(KmError) as err2:
        AzureBlobDestination.from_connection_string(bad, R, retry=FAST).check_writable()
    out, errout = capfd.readouterr()
    sig = next(p for p in sas.split("&") if p.startswith("sig=")).removeprefix("sig=")
    from urllib.parse import unquote

    _no_secret(
        [sig, unquote(sig), sas, conn, bad],
        out,
        errout,
        loud.text,
        str(err.value),
        str(err2.value),
    )
