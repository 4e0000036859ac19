"""A stand-in ``terraform`` on PATH for the state tasks: records its calls, keeps one state file.

``install(bin_dir, state, calls)`` writes an executable ``terraform`` into ``bin_dir``:
``state pull`` prints ``state`` (nothing when it does not exist), ``state push [-force] FILE``
replaces it, refusing like Terraform a state of another lineage or an older serial
without ``-force``; every call's arguments are appended to ``calls`` as a JSON line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

SCRIPT = """#!{python}
import json, shutil, sys
from pathlib import Path
state, calls = Path({state!r}), Path({calls!r})
with calls.open("a") as fh:
    fh.write(json.dumps(sys.argv[1:]) + "\\n")
args = [a for a in sys.argv[1:] if not a.startswith("-chdir=")]
if args[:2] == ["state", "pull"]:
    sys.stdout.write(state.read_text() if state.exists() else "")
    sys.exit(0)
if args[:2] == ["state", "push"]:
    new = json.loads(Path(args[-1]).read_text())
    if state.exists() and "-force" not in args:
        cur = json.loads(state.read_text())
        if new["lineage"] != cur["lineage"]:
            sys.exit("Failed to write state: cannot import state with lineage " + new["lineage"])
        if new["serial"] < cur["serial"]:
            sys.exit("Failed to write state: cannot import state with serial %d over newer state "
                     "with serial %d" % (new["serial"], cur["serial"]))
    shutil.copyfile(args[-1], state)
    sys.exit(0)
sys.exit("fake terraform: unsupported " + " ".join(args))
"""


def install(bin_dir: Path, state: Path, calls: Path) -> Path:
    bin_dir.mkdir(parents=True, exist_ok=True)
    exe = bin_dir / "terraform"
    exe.write_text(SCRIPT.format(python=sys.executable, state=str(state), calls=str(calls)))
    exe.chmod(0o755)
    return exe


def state_doc(serial: int, lineage: str = "1f0c-lineage", resources: dict[str, Any] | None = None) -> str:
    """A format-4 state with ``{"type.name": attributes}`` resources."""
    res = [
        {
            "mode": "managed",
            "type": address.split(".")[0],
            "name": address.split(".")[1],
            "provider": 'provider["registry.terraform.io/hashicorp/azurerm"]',
            "instances": [{"schema_version": 0, "attributes": attrs}],
        }
        for address, attrs in (resources or {}).items()
    ]
    doc = {"version": 4, "terraform_version": "1.9.8", "serial": serial, "lineage": lineage, "outputs": {}}
    return json.dumps({**doc, "resources": res}, indent=2) + "\n"


def read_calls(calls: Path) -> list[list[str]]:
    if not calls.exists():
        return []
    return [json.loads(line) for line in calls.read_text().splitlines()]
