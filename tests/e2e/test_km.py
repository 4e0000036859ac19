"""km itself inside containers (issue 6): self-update from the older published version, the MCP proxy.

`km update --check` exits 10 when an update is available and 0 when up to date (km --help).
"""

from __future__ import annotations

import json

from .conftest import CURL_GET, MARK, NEW, OLD, Box, Published, marked

INSTALL_OLD = (
    f"{CURL_GET}\nKM_VERSION={OLD} sh /tmp/install.sh >/dev/null 2>&1 || echo '{MARK}install=failed'\n"
)


def test_km_update_from_old_to_current_debian12(box: Box, published: Published) -> None:
    """km v1.0.0, installed by install.sh, updates itself to the current v1.1.0 from the CDN."""
    script = f"""{INSTALL_OLD}
echo "{MARK}before=$(km --version)"
km update --check; echo "{MARK}check=$?"
km update; echo "{MARK}update=$?"
echo "{MARK}after=$(km --version)"
echo "{MARK}sha256=$(sha256sum /usr/local/bin/km | cut -d' ' -f1)"
echo "{MARK}listing=$(ls -A /usr/local/bin | tr '\\n' ' ')"
km update --check; echo "{MARK}recheck=$?"
"""
    res = box.run("debian12", script)
    assert f"{MARK}install=failed" not in res.stdout, res.describe()
    assert marked(res, "before") == published.version_line(OLD, "linux/amd64"), res.describe()
    assert marked(res, "check") == "10", f"--check must exit 10 (update available):\n{res.describe()}"
    assert f"{OLD} -> {NEW}" in res.stdout, res.describe()
    assert marked(res, "update") == "0", res.describe()
    assert marked(res, "after") == published.version_line(NEW, "linux/amd64"), res.describe()
    assert marked(res, "sha256") == published.artifact(NEW, "km-linux-amd64")["sha256"], res.describe()
    assert marked(res, "listing") == "km", f"leftovers next to km:\n{res.describe()}"
    assert marked(res, "recheck") == "0", f"--check after the update must say up to date:\n{res.describe()}"


def test_km_update_under_wine(box: Box, published: Published) -> None:
    """The Windows binary updates itself under Wine: renamed aside, replaced, leftover removed next run."""
    script = f"""
set -e
export WINEDEBUG=-all
d=/root/.wine/drive_c/km && mkdir -p $d
curl -fsS -o $d/km.exe "$KM_BASE_URL/releases/{OLD}/km-windows-amd64.exe"
echo "{MARK}before=$(wine64 $d/km.exe --version | tr -d '\\r')"
set +e
wine64 $d/km.exe update; echo "{MARK}update=$?"
echo "{MARK}after=$(wine64 $d/km.exe --version | tr -d '\\r')"
echo "{MARK}sha256=$(sha256sum $d/km.exe | cut -d' ' -f1)"
wine64 $d/km.exe --version >/dev/null
echo "{MARK}listing=$(ls -A $d | tr '\\n' ' ')"
"""
    res = box.run("debian13-wine", script, timeout=300)
    assert marked(res, "before") == published.version_line(OLD, "windows/amd64"), res.describe()
    assert marked(res, "update") == "0", res.describe()
    assert marked(res, "after") == published.version_line(NEW, "windows/amd64"), res.describe()
    assert marked(res, "sha256") == published.artifact(NEW, "km-windows-amd64.exe")["sha256"], res.describe()
    assert marked(res, "listing") == "km.exe", f"the renamed-aside binary was not removed:\n{res.describe()}"


SERVER = (
    "#!/bin/sh\n"
    "# a minimal MCP server: answer initialize, swallow the initialized notification\n"
    "while IFS= read -r line; do\n"
    '  case "$line" in\n'
    '    *\'"method":"initialize"\'*) printf \'%s\\n\' "$REPLY" ;;\n'
    "  esac\n"
    "done\n"
)
INIT = (
    '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18",'
    '"capabilities":{},"clientInfo":{"name":"e2e","version":"1"}}}'
)
NOTE = '{"jsonrpc":"2.0","method":"notifications/initialized"}'
REPLY = (
    '{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-06-18","capabilities":{},'
    '"serverInfo":{"name":"fake","version":"1.0.0"}}}'
)


def test_km_proxy_relays_initialize(box: Box, published: Published) -> None:
    """`km /tmp/server.sh`: the initialize exchange passes byte for byte and is logged as JSON lines."""
    script = f"""{CURL_GET}
sh /tmp/install.sh >/dev/null 2>&1 || echo '{MARK}install=failed'
printf '%s' "$SERVER" > /tmp/server.sh && chmod +x /tmp/server.sh
printf '%s\\n%s\\n' "$INIT" "$NOTE" | km --log /tmp/km.jsonl /tmp/server.sh > /tmp/out
echo "{MARK}exit=$?"
echo "{MARK}out=$(cat /tmp/out)"
echo "{MARK}lines=$(wc -l < /tmp/out)"
echo "{MARK}log-begin"
cat /tmp/km.jsonl
"""
    env = {"SERVER": SERVER, "INIT": INIT, "NOTE": NOTE, "REPLY": REPLY}
    res = box.run("debian12", script, env=env, timeout=60)
    assert f"{MARK}install=failed" not in res.stdout, res.describe()
    assert marked(res, "exit") == "0", res.describe()
    assert marked(res, "out") == REPLY, res.describe()
    assert marked(res, "lines") == "1", res.describe()
    log = res.stdout.split(f"{MARK}log-begin", 1)[1].strip().splitlines()
    records = [json.loads(line) for line in log]
    seen = [(r.get("direction"), r.get("kind"), r.get("method"), r.get("id")) for r in records]
    assert ("to_server", "request", "initialize", 1) in seen, seen
    assert ("to_server", "notification", "notifications/initialized", None) in seen, seen
    assert any(d == "to_client" and k == "response" and i == 1 for d, k, _, i in seen), seen
    init = next(r for r in records if r.get("method") == "initialize")
    assert init.get("bytes") == len(INIT), init
