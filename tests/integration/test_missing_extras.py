"""A missing optional part (issue 13 point 4): the Azure SDK hidden from the interpreter gives one
line naming the extra, a non-zero exit and no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

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


@pytest.fixture(scope="module")
def signing_key(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A release key file, so that a release to Azure gets past its signing check."""
    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path_factory.mktemp("key") / "release.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return str(path)


def test_key_vault_signing_without_the_sdk_is_one_line(tmp_path: Path) -> None:
    key_id = "https://kv-km.vault.azure.net/keys/release/0123456789abcdef0123456789abcdef"
    args = ("release", "--version", "v1.0.0", "--site", str(tmp_path / "site"), "--dry-run")
    proc = inv(*args, pre=HIDE_AZURE, env={"KM_SIGNING_KEY": key_id})
    line = one_error_line(proc)
    assert line.startswith(f"error: signing with a Key Vault key needs the Azure SDK: {HINT}"), line


@pytest.mark.parametrize(
    ("args", "purpose"),
    [
        (("release", "--dest", "azure", "--version", "v1.0.0", "--dry-run"), "--dest azure"),
        (("release", "--dest", "azure", "--version", "v1.0.0"), "--dest azure"),
        (("promote", "--dest", "azure", "--version", "v1.0.0"), "--dest azure"),
        (("purge", "--dry-run"), "inv purge"),
    ],
)
def test_missing_azure_sdk_is_one_line(args: tuple[str, ...], purpose: str, signing_key: str) -> None:
    env = {"AZURE_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true", "KM_SIGNING_KEY": signing_key}
    proc = inv(*args, pre=HIDE_AZURE, env=env)
    line = one_error_line(proc)
    assert line.startswith(f"error: {purpose} needs the Azure SDK: {HINT}"), line
    assert "./dev" in line


def test_local_release_does_not_need_the_sdk(tmp_path: Path) -> None:
    proc = inv("release", "--version", "v1.0.0", "--dry-run", "--site", str(tmp_path), pre=HIDE_AZURE)
    assert proc.returncode == 0, proc.stderr
    assert "Azure SDK" not in proc.stderr
