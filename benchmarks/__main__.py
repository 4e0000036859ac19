"""``python -m benchmarks [NAME...]``: the benchmarks (release, goreleaser, install, azure, metrics, edge,
packages, sign)."""

from __future__ import annotations

import importlib
import sys

ALL = ("release", "goreleaser", "install", "azure", "metrics", "edge", "packages", "sign")


def main(argv: list[str]) -> int:
    names = argv or list(ALL)
    status = 0
    for name in names:
        if name not in ALL:
            print(f"unknown benchmark {name!r}: one of {', '.join(ALL)}", file=sys.stderr)
            return 2
        module = importlib.import_module(f"benchmarks.bench_{name}")
        print(f"\n### benchmark: {name}", flush=True)
        status |= int(module.main() or 0)
    return status


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
