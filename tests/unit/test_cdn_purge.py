"""The Front Door purge against a local ARM server speaking the long-running-operation protocol."""

from __future__ import annotations

import time
from typing import Any

import pytest
from azure.core.credentials import AccessToken

from kmrelease import cdn
from kmrelease.config import AzureConfig
from kmrelease.errors import KmError
from kmrelease.ui import Reporter
from kmrelease.urlspace import purge_paths
from tests.support.fake_arm import fake_arm
from tests.support.releases import PROJECT, project_at

CONFIG = project_at(
    PROJECT.root,
    azure=AzureConfig(
        subscription_id="00000000-0000-0000-0000-000000000001",
        resource_group="rg-km",
        frontdoor_profile="fd-km",
        frontdoor_endpoint="km-edge",
        custom_domains=("get.kilometers.ai",),
    ),
)


class Token:
    def __init__(self) -> None:
        self.calls = 0

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.calls += 1
        assert scopes == ("https://management.azure.com/.default",)
        return AccessToken("arm-token", int(time.time()) + 3600)


def run(arm_url: str, **kwargs: Any) -> None:
    cdn.purge(CONFIG, Reporter(), base_url=arm_url, credential=Token(), polling_interval=0.01, **kwargs)


def test_purge_succeeds_after_polling(capfd: pytest.CaptureFixture[str]) -> None:
    with fake_arm("succeed") as arm:
        run(arm.url)
    assert len(arm.calls) == 1
    call = arm.calls[0]
    assert call.path == (
        "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-km/providers/"
        "Microsoft.Cdn/profiles/fd-km/afdEndpoints/km-edge/purge"
    )
    assert "api-version=" in call.query
    assert call.body == {"contentPaths": purge_paths(), "domains": ["get.kilometers.ai"]}
    assert call.body["contentPaths"] == [
        "/", "/install.sh", "/install/*", "/install.ps1", "/version", "/health", "/releases/latest/*",
        "/keys/*", "/apt/dists/*",
    ]  # fmt: skip
    assert call.authorization == "Bearer arm-token"
    assert arm.polls == 3  # InProgress, InProgress, Succeeded
    err = capfd.readouterr().err
    assert "CDN purge finished in" in err and "arm-token" not in err


def test_failed_operation_names_the_rerun_command() -> None:
    with fake_arm("fail") as arm, pytest.raises(KmError) as err:
        run(arm.url)
    msg = str(err.value)
    assert "PurgeFailed" in msg and "Purge request failed on the edge nodes" in msg
    assert "the release is in place" in msg and "`inv purge`" in msg and "\n" not in msg


def test_forbidden_names_the_rerun_command() -> None:
    with fake_arm("forbidden") as arm, pytest.raises(KmError) as err:
        run(arm.url)
    msg = str(err.value)
    assert "HTTP 403 AuthorizationFailed" in msg and "does not have authorization" in msg
    assert "`inv purge`" in msg and "\n" not in msg
    assert arm.polls == 0


def test_timeout_says_it_may_still_complete() -> None:
    with fake_arm("hang") as arm, pytest.raises(KmError, match=r"did not finish within 1s.*`inv purge`"):
        run(arm.url, timeout=1)


def test_skipped_with_a_note_when_no_front_door(capfd: pytest.CaptureFixture[str]) -> None:
    cdn.purge(project_at(PROJECT.root, azure=AzureConfig()), Reporter(), credential=Token())
    assert "CDN purge skipped" in capfd.readouterr().err


def test_dry_run_sends_nothing(capfd: pytest.CaptureFixture[str]) -> None:
    with fake_arm("succeed") as arm:
        cdn.purge(CONFIG, Reporter(), dry_run=True, base_url=arm.url, credential=Token())
    assert arm.calls == []
    assert "/releases/latest/*" in capfd.readouterr().err


def test_unreachable_arm_is_one_line() -> None:
    with pytest.raises(KmError, match="`inv purge`"):
        cdn.purge(CONFIG, Reporter(), base_url="http://127.0.0.1:1", credential=Token(), timeout=5)


def test_an_arm_endpoint_that_never_answers_is_bounded() -> None:
    """Connect + read timeouts and bounded retries reach the SDK client (issue 13 point 1)."""
    from tests.support import hostile

    limits = cdn.ArmLimits(connect=1, read=1, retries=1)
    with hostile.HostileServer(hostile.black_hole) as srv:
        took, exc = hostile.elapsed(
            lambda: cdn.purge(CONFIG, Reporter(), base_url=srv.url, credential=Token(), limits=limits)
        )
        assert 1 <= srv.accepted <= 2  # the POST (the SDK retries a read timeout of a POST at most once)
    assert isinstance(exc, KmError) and "`inv purge`" in str(exc)
    assert took < 8, took
