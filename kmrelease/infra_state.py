"""``inv infra.backup`` and ``inv infra.restore``: copies of the Terraform state, and putting one back.

A backup is ``terraform state pull`` saved as ``terraform/backups/<UTC time>-serial<N>.tfstate``
(mode 0600: a state can hold secrets; the folder is gitignored). A restore reads a saved
state, pulls the current one, shows what differs by resource address (never a value),
and pushes the saved one with ``terraform state push``. Like Terraform itself it refuses
a state of another lineage, and one older than the current state (a rollback), unless
``--force`` says that is meant; then it pushes with ``-force``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .errors import KmError
from .infra import _run, find_terraform, terraform_command, terraform_dir
from .ui import Reporter


@dataclass(frozen=True)
class State:
    """The parts of a state document that a restore compares."""

    lineage: str
    serial: int
    resources: dict[str, str]  # address -> hash of its instances
    raw: str

    @property
    def summary(self) -> str:
        return f"lineage {self.lineage}, serial {self.serial}, {len(self.resources)} resources"


def parse_state(text: str, what: str) -> State:
    """A state document (format version 4), checked; ``what`` names it in messages."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise KmError(f"{what} is not a Terraform state (not JSON: {exc.msg})") from None
    if (
        not isinstance(doc, dict)
        or not isinstance(doc.get("lineage"), str)
        or not isinstance(doc.get("serial"), int)
    ):
        raise KmError(f"{what} is not a Terraform state (no lineage and serial)")
    if doc.get("version") != 4:
        raise KmError(
            f"{what} has state format {doc.get('version')!r}; this tool reads format 4 (Terraform >= 0.12)"
        )
    resources: dict[str, str] = {}
    for res in doc.get("resources") or []:
        address = ".".join(
            p
            for p in (
                res.get("module"),
                "data" if res.get("mode") == "data" else None,
                res.get("type"),
                res.get("name"),
            )
            if p
        )
        body = json.dumps(res.get("instances"), sort_keys=True).encode()
        resources[address] = hashlib.sha256(body).hexdigest()
    return State(doc["lineage"], doc["serial"], resources, text)


def differences(current: State, saved: State) -> list[str]:
    """What pushing ``saved`` changes, by resource address: ``+`` back, ``-`` gone, ``~`` changed."""
    lines = [f"+ {a}" for a in sorted(saved.resources.keys() - current.resources.keys())]
    lines += [f"- {a}" for a in sorted(current.resources.keys() - saved.resources.keys())]
    lines += [
        f"~ {a}"
        for a in sorted(current.resources.keys() & saved.resources.keys())
        if current.resources[a] != saved.resources[a]
    ]
    return lines


def _pull(terraform: str, reporter: Reporter) -> str:
    return _run(terraform_command("state", "pull", terraform=terraform), reporter, capture=True)


def backup(reporter: Reporter, *, dry_run: bool = False, directory: Path | None = None) -> Path | None:
    """``terraform state pull`` into a new timestamped file; its path (None in a dry run)."""
    directory = directory or terraform_dir() / "backups"
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    if dry_run:
        reporter.step("terraform state backup (dry run: printing the command)")
        reporter.info("would run: " + " ".join(terraform_command("state", "pull")))
        reporter.info(f"would write: {directory}/{stamp}-serial<N>.tfstate")
        return None
    text = _pull(find_terraform(), reporter)
    if not text.strip():
        raise KmError("terraform state pull returned no state: nothing is deployed yet, nothing to back up")
    state = parse_state(text, "the pulled state")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{stamp}-serial{state.serial}.tfstate"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    reporter.step(f"state backed up to {path} ({state.summary})")
    return path


def _refusal(current: State, saved: State) -> str | None:
    if saved.lineage != current.lineage:
        return (
            f"the backup is of another state (lineage {saved.lineage}, the current state is "
            f"{current.lineage}): refusing; --force pushes it anyway"
        )
    if saved.serial < current.serial:
        return (
            f"the backup (serial {saved.serial}) is older than the current state (serial {current.serial}): "
            "pushing it rolls the state back; re-run with --force to do that"
        )
    return None


def restore(reporter: Reporter, from_file: str, *, force: bool = False, dry_run: bool = False) -> bool:
    """Push a saved state back after showing what differs; True when it was (or would be) pushed."""
    path = Path(from_file)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise KmError(f"cannot read {from_file}: {exc.strerror or exc}") from None
    saved = parse_state(text, from_file)
    terraform = find_terraform()
    current = parse_state(_pull(terraform, reporter), "the current state")
    reporter.step(f"current state: {current.summary}")
    reporter.step(f"{path.name}: {saved.summary}")
    changes = differences(current, saved)
    if not changes and saved.serial == current.serial:
        reporter.step("the backup is the current state: nothing to push")
        return False
    for line in changes or ["(same resources; only the serial differs)"]:
        reporter.info(line)
    refusal = _refusal(current, saved)
    if refusal and not force:
        raise KmError(refusal)
    push = terraform_command(
        "state", "push", *(["-force"] if refusal else []), str(path.absolute()), terraform=terraform
    )
    if dry_run:
        reporter.step("dry run: the state is not changed")
        reporter.info("would run: " + " ".join(push))
        return True
    if refusal:
        reporter.warn(refusal.split(":")[0] + ": pushing with -force as asked")
    _run(push, reporter)
    reporter.step(f"state restored from {path}; run `inv infra.plan` to see how Azure differs from it")
    return True
