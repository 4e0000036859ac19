"""km's package-manager refusal names the packages the engine builds (issue 15 point 2)."""

from __future__ import annotations

import re
from pathlib import Path

from kmrelease.packages.settings import PackageSettings

UPDATE_GO = Path(__file__).resolve().parents[2] / "cmd" / "km" / "update.go"


def _commands() -> dict[str, str]:
    text = UPDATE_GO.read_text(encoding="utf-8")
    block = text.split("var packageCommands = map[string]string{", 1)[1].split("}", 1)[0]
    return dict(re.findall(r'"([a-z]+)":\s*"([^"]+)"', block))


def test_km_names_the_packages_the_engine_builds() -> None:
    s = PackageSettings()
    assert _commands() == {
        "apt": f"sudo apt-get install --only-upgrade {s.package}",
        "brew": f"brew upgrade {s.formula}",
        "scoop": f"scoop update {s.binary}",
        "winget": f"winget upgrade --id {s.winget_identifier}",
    }
