"""install.sh where there is no ``timeout`` command (macOS): the new ``km --version`` runs
under the watchdog (through ``sh -c``) instead, with the same 10 s bound and messages.

The PATH here is /usr/bin without ``timeout``; the rest of the installer's fixtures are
test_install_sh.py's and test_install_hostile.py's.
"""

# ruff: noqa: F811  (the fixtures of test_install_sh are imported, then requested by name)
from __future__ import annotations

import os
from pathlib import Path

from tests.integration.test_install_hostile import assert_untouched, truncated_binary, with_earlier_km
from tests.integration.test_install_sh import (  # noqa: F401  (fixtures)
    ASSET,
    CURRENT,
    Env,
    assert_installed,
    env,
    release_key,
    site,
)


def without_timeout(e: Env) -> str:
    """A PATH: the fakes, then every program of /usr/bin but ``timeout``."""
    tools = e.tmp / "tools-no-timeout"
    tools.mkdir()
    for name in os.listdir("/usr/bin"):
        if name != "timeout":
            (tools / name).symlink_to(Path("/usr/bin") / name)
    return f"{e.fakes}:{tools}"


def test_installs_without_timeout(env: Env) -> None:
    r = env.run("--install-dir", str(env.bindir), path=without_timeout(env))
    assert_installed(env, r, CURRENT)


def test_a_release_that_hangs_is_stopped_after_10_s_without_timeout(env: Env) -> None:
    with_earlier_km(env)
    env.publish(CURRENT, {ASSET: b"#!/bin/sh\nsleep 30\n"})
    r = env.run("--install-dir", str(env.bindir), path=without_timeout(env))
    r.assert_failed("did not answer --version within 10 s", "the earlier")
    assert 9 < r.seconds < 20
    assert_untouched(env)


def test_a_release_that_cannot_run_without_timeout(env: Env) -> None:
    with_earlier_km(env)
    env.publish(CURRENT, {ASSET: truncated_binary()})
    r = env.run("--install-dir", str(env.bindir), path=without_timeout(env))
    r.assert_failed("does not run on this linux/amd64 machine", f"the earlier {env.bindir}/km is kept")
    assert_untouched(env)
