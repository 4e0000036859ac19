"""A missing optional part (issue 13 point 4): the Azure SDK hidden from the interpreter gives one
line naming the extra, a non-zero exit and no traceback."""

from __future__ import annotations

import pytest

from tests.integration.test_tasks_cli import inv, one_error_line

# Hide every ``azure`` package the way an install without the extra would.
HIDE_AZURE = """
import sys
class _HideAzure:
    def find_spec(self, name, path=None, target=None):
        if name == "azure" or name.startswith("azure."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, _HideAzure())
for _m in [m for m in sys.modules if m == "azure" or m.startswith("azure.")]:
    del sys.modules[_m]
"""

HINT = "pip install 'kmrelease[azure]'"


@pytest.mark.parametrize(
    ("args", "purpose"),
    [
        (("release", "--dest", "azure", "--version", "v1.0.0", "--dry-run"), "--dest azure"),
        (("release", "--dest", "azure", "--version", "v1.0.0"), "--dest azure"),
        (("promote", "--dest", "azure", "--version", "v1.0.0"), "--dest azure"),
        (("purge", "--dry-run"), "inv purge"),
    ],
)
def test_missing_azure_sdk_is_one_line(args: tuple[str, ...], purpose: str) -> None:
    proc = inv(*args, pre=HIDE_AZURE, env={"AZURE_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true"})
    line = one_error_line(proc)
    assert line.startswith(f"error: {purpose} needs the Azure SDK: {HINT}"), line
    assert "./dev" in line


def test_local_release_does_not_need_the_sdk(tmp_path: object) -> None:
    proc = inv("release", "--version", "v1.0.0", "--dry-run", "--site", str(tmp_path), pre=HIDE_AZURE)
    assert proc.returncode == 0, proc.stderr
    assert "Azure SDK" not in proc.stderr
