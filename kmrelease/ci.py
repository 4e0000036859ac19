"""Glue for the GitHub Actions release workflow (``inv ci.*``): no logic lives in YAML.

The version is computed once, in the first job, from the tag (or the
``workflow_dispatch`` input), validated by :func:`kmrelease.version.parse_version`, and
handed to every later job as a job output together with the build matrix
(from :data:`kmrelease.matrix.TARGETS`, the one list of platforms).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from .config import BuildConfig, load_project
from .errors import KmError
from .version import Version, parse_version


def release_version(event_name: str, ref_type: str, ref_name: str, input_version: str) -> Version:
    """The release version of a workflow run.

    - ``push`` of a tag: the tag name (``v1.2.3``).
    - ``workflow_dispatch``: the ``version`` input; when a tag is also the ref it must agree.
    Anything else is refused, before anything is built.
    """
    if event_name == "workflow_dispatch":
        if not input_version:
            raise KmError("workflow_dispatch needs the version input, e.g. v1.2.3")
        version = parse_version(input_version)
        if ref_type == "tag" and ref_name != str(version):
            raise KmError(
                f"the version input {version} differs from the tag {ref_name!r} the run was started on"
            )
        return version
    if event_name == "push" and ref_type == "tag":
        return parse_version(ref_name)
    raise KmError(
        f"a release runs on a pushed version tag or workflow_dispatch, not on {event_name} of a {ref_type}"
    )


def build_matrix(build: BuildConfig) -> dict[str, list[dict[str, str]]]:
    """The matrix of the split build jobs: one leg per configured target."""
    return {"include": [{"target": t.slug, "name": build.file_name(t)} for t in build.targets]}


def write_github_output(values: Mapping[str, str], path: str | None = None) -> None:
    """Append ``name=value`` lines to ``$GITHUB_OUTPUT`` (printed when not in Actions)."""
    for name, value in values.items():
        if "\n" in value or "\r" in value:
            raise KmError(f"output {name} must be one line")
    target = path or os.environ.get("GITHUB_OUTPUT")
    lines = "".join(f"{name}={value}\n" for name, value in values.items())
    if not target:
        print(lines, end="")
        return
    with Path(target).open("a", encoding="utf-8") as fh:
        fh.write(lines)


def prepare(env: Mapping[str, str] | None = None, output: str | None = None) -> Version:
    """Compute the version and the matrix from the GitHub event and publish them as outputs."""
    env = os.environ if env is None else env
    version = release_version(
        env.get("GITHUB_EVENT_NAME", ""),
        env.get("GITHUB_REF_TYPE", ""),
        env.get("GITHUB_REF_NAME", ""),
        env.get("KM_INPUT_VERSION", ""),
    )
    write_github_output(
        {
            "version": str(version),
            "prerelease": "true" if version.is_prerelease else "false",
            "matrix": json.dumps(build_matrix(load_project().build), separators=(",", ":")),
        },
        output,
    )
    return version
