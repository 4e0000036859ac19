"""Stage: purge Azure Front Door for the mutable public paths (SPEC §6 step 5).

``afd_endpoints.begin_purge_content`` (a long-running ARM operation) for
:func:`kmrelease.urlspace.purge_paths` on the configured custom domains, waited
for with a timeout. A purge failure never undoes a release: the message says
which command runs the purge again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError, ClientAuthenticationError, HttpResponseError

from .config import ReleaseConfig
from .errors import KmError
from .ui import Reporter
from .urlspace import purge_paths

RERUN = "`inv purge`"
DEFAULT_TIMEOUT = 900.0  # Front Door purges usually take 1–10 minutes


@dataclass(frozen=True)
class ArmLimits:
    """Every ARM request of the purge (the start and each poll): bounded waits and retries."""

    connect: float = 10.0  # seconds to connect
    read: float = 60.0  # seconds without a byte of the answer
    retries: int = 3  # on connection errors, timeouts, 408/429/5xx (the SDK's policy)


class FrontDoor:
    """The :class:`~kmrelease.destinations.base.Cdn` of an Azure destination: ``[azure]`` Front Door."""

    def __init__(self, config: ReleaseConfig) -> None:
        self.config = config
        self.label = f"Front Door {config.azure.frontdoor_endpoint or '(not configured)'}"

    def purge(self, reporter: Reporter, *, dry_run: bool = False) -> None:
        purge(self.config, reporter, dry_run=dry_run)


def purge(
    config: ReleaseConfig,
    reporter: Reporter,
    *,
    dry_run: bool = False,
    base_url: str | None = None,
    credential: TokenCredential | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    polling_interval: float = 10.0,
    limits: ArmLimits | None = None,
) -> None:
    """Purge the CDN paths of SPEC §6; a note and nothing else when no Front Door is configured."""
    az = config.azure
    if not az.has_frontdoor:
        reporter.info(
            "no Front Door configured ([azure] subscription_id, resource_group, frontdoor_profile, "
            "frontdoor_endpoint in build/release.toml): CDN purge skipped"
        )
        return
    paths = purge_paths()
    domains = list(az.custom_domains)
    target = f"Front Door endpoint {az.frontdoor_endpoint} (profile {az.frontdoor_profile})"
    reporter.step(f"purge {target}: {', '.join(paths)}" + (f" on {', '.join(domains)}" if domains else ""))
    if dry_run:
        reporter.info("dry run: nothing purged")
        return

    from azure.mgmt.cdn import CdnManagementClient
    from azure.mgmt.cdn.models import AfdPurgeParameters

    if credential is None:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    options: dict[str, Any] = {"polling_interval": polling_interval}
    if base_url and urlsplit(base_url).scheme == "http":
        options["enforce_https"] = False  # a local ARM endpoint in tests; bearer tokens need TLS otherwise
    started = time.monotonic()
    try:
        bounds = limits or ArmLimits()
        client = CdnManagementClient(
            credential,
            az.subscription_id,
            base_url=base_url,
            connection_timeout=bounds.connect,
            read_timeout=bounds.read,
            retry_total=bounds.retries,
        )
        poller = client.afd_endpoints.begin_purge_content(
            az.resource_group,
            az.frontdoor_profile,
            az.frontdoor_endpoint,
            AfdPurgeParameters(content_paths=paths, domains=domains or None),
            **options,
        )
        poller.wait(timeout)
        if not poller.done():
            raise KmError(
                f"CDN purge of {target} did not finish within {timeout:.0f}s (it may still complete); "
                f"the release is in place: run {RERUN} to purge again"
            )
        poller.result()
    except KmError:
        raise
    except ClientAuthenticationError as exc:
        if exc.status_code is None:
            raise KmError(
                "CDN purge: no Azure credentials for Front Door (az login, a managed identity, or "
                f"AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET); the release is in place: run {RERUN}"
            ) from None
        raise KmError(_failure(target, exc)) from None
    except HttpResponseError as exc:
        raise KmError(_failure(target, exc)) from None
    except AzureError as exc:
        raise KmError(
            f"CDN purge of {target} failed: {_first_line(exc)}; the release is in place: run {RERUN} to retry"
        ) from None
    elapsed = time.monotonic() - started
    reporter.info(f"CDN purge finished in {elapsed:.1f}s")


def _failure(target: str, exc: HttpResponseError) -> str:
    code = ""
    err = getattr(exc, "error", None)
    if err is not None and getattr(err, "code", None):
        code = f" {err.code}"
    if exc.status_code and exc.status_code >= 300:
        status = f"HTTP {exc.status_code}{code}"
    else:  # the long-running operation itself ended in Failed or Canceled
        status = f"operation failed{code}"
    return (
        f"CDN purge of {target} failed ({status}): {_first_line(exc).rstrip('.')}; "
        f"the release is in place: run {RERUN} to retry"
    )


def _first_line(exc: BaseException) -> str:
    err = getattr(exc, "error", None)
    message = getattr(err, "message", None) or getattr(exc, "message", None) or str(exc)
    text = str(message).strip()
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("Code:", "Message:")):
            return line.removeprefix("(").split(") ", 1)[-1] if line.startswith("(") else line
    return type(exc).__name__
