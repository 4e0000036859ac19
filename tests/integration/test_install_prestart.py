"""install.sh's early start of the curl for the release's four files (fast_prestart).

That curl starts before ``/version`` is asked for and waits for its URLs on two FIFOs. One
that ends before reading them (here: a curl that fails the first time it is given them) must
not leave the installer waiting forever on the FIFO: it falls back to starting that curl
again, and installs. Where there is no /proc to tell whether it ended (macOS), it is not started
early. The rest of the installer's fixtures are test_install_sh.py's.
"""

# ruff: noqa: F811  (the fixtures of test_install_sh are imported, then requested by name)
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.integration.test_install_hostile import _mount_prefix, needs_mounts
from tests.integration.test_install_sh import (  # noqa: F401  (fixtures)
    CURRENT,
    Env,
    assert_installed,
    env,
    release_key,
    site,
)


def _curl_logged(env: Env) -> Path:
    """curl, each start and end of a transfer of /version or of the four files (fast.1) recorded as
    an empty file named by the time (the installer's file size limit stops a growing log)."""
    real = shutil.which("curl")
    if real is None:
        pytest.skip("curl is not installed")
    log = env.tmp / "curl-log"
    log.mkdir()
    mark = f': >"{log}/$(date +%s%N).$1.$what"'
    env.write_tool(
        "curl",
        f'#!/bin/sh\ncase "$*" in *fast.1*) what=fast ;; */version*) what=version ;; *) what=other ;; esac\n'
        f"mark() {{ {mark}; }}\nmark start\n"
        f'"{real}" "$@"\nrc=$?\nmark end\nexit $rc\n',
    )
    return log


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


@needs_mounts
@pytest.mark.parametrize("shell", ["dash", "bash"])
def test_without_proc_the_four_files_curl_starts_after_version(env: Env, shell: str) -> None:
    log = _curl_logged(env)
    hide_proc = _mount_prefix(Path("/proc"), "size=1m")  # an empty /proc
    r = env.run("--install-dir", str(env.bindir), shell=shell, prefix=hide_proc, timeout=30)
    assert_installed(env, r, CURRENT)
    events = [name.split(".", 1)[1] for name in sorted(p.name for p in log.iterdir())]
    assert events.index("end.version") < events.index("start.fast"), events
