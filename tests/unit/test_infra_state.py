"""``inv infra.backup`` and ``inv infra.restore`` against a stand-in terraform that records its calls."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from kmrelease import infra_state
from kmrelease.errors import KmError
from kmrelease.ui import Reporter
from tests.support.fake_terraform import install, read_calls, state_doc
from tests.support.releases import ROOT

SECRET = "s3cr3t-connection-string"
V1 = {
    "azurerm_resource_group.release": {"name": "rg-km-release"},
    "azurerm_storage_account.release": {"name": "kmrelease", "primary_access_key": SECRET},
}
V2 = {
    **V1,
    "azurerm_storage_account.release": {
        "name": "kmrelease",
        "min_tls_version": "TLS1_0",
        "primary_access_key": SECRET,
    },
    "azurerm_monitor_metric_alert.errors_5xx": {"name": "km-release-5xx-ratio"},
}


@dataclass
class Tf:
    state: Path
    calls: Path
    backups: Path

    def pushes(self) -> list[list[str]]:
        return [c for c in read_calls(self.calls) if c[1:3] == ["state", "push"]]


@pytest.fixture
def tf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Tf:
    bin_dir = tmp_path / "bin"
    t = Tf(tmp_path / "current.tfstate", tmp_path / "calls.jsonl", tmp_path / "backups")
    install(bin_dir, t.state, t.calls)
    monkeypatch.delenv("KM_TERRAFORM", raising=False)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return t


def test_backup_saves_the_pulled_state_privately_with_its_serial(
    tf: Tf, capsys: pytest.CaptureFixture[str]
) -> None:
    tf.state.write_text(state_doc(7, resources=V1))
    path = infra_state.backup(Reporter(), directory=tf.backups)
    assert path is not None and path.parent == tf.backups and path.name.endswith("-serial7.tfstate")
    assert path.read_text() == tf.state.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_calls(tf.calls) == [[f"-chdir={infra_state.terraform_dir()}", "state", "pull"]]
    assert SECRET not in capsys.readouterr().err


def test_backup_dry_run_runs_nothing(tf: Tf) -> None:
    tf.state.write_text(state_doc(7, resources=V1))
    assert infra_state.backup(Reporter(), dry_run=True, directory=tf.backups) is None
    assert read_calls(tf.calls) == [] and not tf.backups.exists()


def test_backup_of_no_state_is_one_line(tf: Tf) -> None:
    with pytest.raises(KmError, match="returned no state: nothing is deployed yet"):
        infra_state.backup(Reporter(), directory=tf.backups)
    assert not tf.backups.exists()


def test_restore_refuses_an_older_state_then_pushes_it_when_forced(
    tf: Tf, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = tmp_path / "good.tfstate"
    saved.write_text(state_doc(7, resources=V1))
    tf.state.write_text(state_doc(9, resources=V2))  # the bad change was applied since
    with pytest.raises(KmError) as exc:
        infra_state.restore(Reporter(), str(saved))
    assert str(exc.value) == (
        "the backup (serial 7) is older than the current state (serial 9): pushing it rolls the state back; "
        "re-run with --force to do that"
    )
    err = capsys.readouterr().err
    assert "- azurerm_monitor_metric_alert.errors_5xx" in err and "~ azurerm_storage_account.release" in err
    assert "  azurerm_resource_group.release" not in err.replace("+ ", "").replace("- ", "").replace("~ ", "")
    assert SECRET not in err and "TLS1_0" not in err  # addresses only, never values
    assert tf.pushes() == []

    assert infra_state.restore(Reporter(), str(saved), force=True, dry_run=True)
    assert tf.pushes() == [] and '"serial": 9' in tf.state.read_text()  # a dry run pushes nothing

    assert infra_state.restore(Reporter(), str(saved), force=True)
    assert tf.pushes() == [[f"-chdir={infra_state.terraform_dir()}", "state", "push", "-force", str(saved)]]
    assert tf.state.read_text() == saved.read_text()


def test_restore_refuses_another_lineage_unless_forced(tf: Tf, tmp_path: Path) -> None:
    saved = tmp_path / "other.tfstate"
    saved.write_text(state_doc(12, lineage="other-lineage", resources=V1))
    tf.state.write_text(state_doc(9, resources=V2))
    with pytest.raises(
        KmError, match=r"^the backup is of another state \(lineage other-lineage, the current"
    ):
        infra_state.restore(Reporter(), str(saved))
    assert tf.pushes() == []


def test_restore_of_a_newer_state_of_the_same_lineage_needs_no_force(tf: Tf, tmp_path: Path) -> None:
    saved = tmp_path / "newer.tfstate"
    saved.write_text(state_doc(10, resources=V1))
    tf.state.write_text(state_doc(9, resources=V2))
    assert infra_state.restore(Reporter(), str(saved))
    assert tf.pushes() == [[f"-chdir={infra_state.terraform_dir()}", "state", "push", str(saved)]]


def test_restore_of_the_current_state_pushes_nothing(tf: Tf, tmp_path: Path) -> None:
    tf.state.write_text(state_doc(9, resources=V2))
    saved = tmp_path / "same.tfstate"
    saved.write_text(tf.state.read_text())
    assert not infra_state.restore(Reporter(), str(saved))
    assert tf.pushes() == []


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("not json", "is not a Terraform state (not JSON"),
        ('{"version": 4}', "is not a Terraform state (no lineage and serial)"),
        ('{"version": 3, "lineage": "x", "serial": 1}', "has state format 3"),
    ],
)
def test_restore_refuses_what_is_not_a_state(tf: Tf, tmp_path: Path, content: str, needle: str) -> None:
    saved = tmp_path / "bad.tfstate"
    saved.write_text(content)
    with pytest.raises(KmError, match=re.escape(needle)):
        infra_state.restore(Reporter(), str(saved))
    assert read_calls(tf.calls) == []


def test_inv_tasks_end_in_one_line(tf: Tf, tmp_path: Path) -> None:
    env = {**os.environ, "CI": "true"}
    proc = subprocess.run(
        [sys.executable, "-m", "invoke", "infra.restore"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 1 and proc.stderr.strip() == (
        "error: give the saved state to restore: --from terraform/backups/<file>.tfstate"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "invoke", "infra.restore", "--from", str(tmp_path / "missing.tfstate")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 1 and proc.stderr.strip().startswith("error: cannot read ")
    proc = subprocess.run(
        [sys.executable, "-m", "invoke", "infra.backup", "--dry-run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0 and "would run: terraform -chdir=" in proc.stderr
    assert read_calls(tf.calls) == []
