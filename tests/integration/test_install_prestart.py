"""install.sh's early start of the curl for the release's four files (fast_prestart).

That curl starts before ``/version`` is asked for and waits for its URLs on two FIFOs. One
that ends before reading them (here: a curl that fails the first time it is given them) must
not leave the installer waiting forever on the FIFO: it falls back to starting that curl
again, and installs. The rest of the installer's fixtures are test_install_sh.py's.
"""

# ruff: noqa: F811  (the fixtures of test_install_sh are imported, then requested by name)
from __future__ import annotations

import shutil

import pytest

from tests.integration.test_install_sh import (  # noqa: F401  (fixtures)
    CURRENT,
    Env,
    assert_installed,
    env,
    release_key,
    site,
)


@pytest.mark.parametrize("shell", ["dash", "bash", "ksh"])
def test_an_early_curl_that_died_is_started_again(env: Env, shell: str) -> None:
    real = shutil.which("curl")
    if real is None:
        pytest.skip("curl is not installed")
    marker = env.tmp / "curl-failed-once"
    env.write_tool(
        "curl",
        f'#!/bin/sh\ncase "$*" in *fast.1*) [ -e "{marker}" ] || {{ : >"{marker}"; exit 9; }} ;; esac\n'
        f'exec "{real}" "$@"\n',
    )
    r = env.run("--install-dir", str(env.bindir), shell=shell, timeout=30)
    assert marker.exists()  # the early curl did end before its URLs came
    assert_installed(env, r, CURRENT)
    assert r.seconds < 15
