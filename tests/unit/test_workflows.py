""".github/workflows: parsed YAML (triggers, permissions, concurrency, run steps) and the
CI glue behind them (kmrelease.ci)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from kmrelease import ci
from kmrelease.errors import KmError
from tests.support.releases import PROJECT, ROOT

TARGETS = PROJECT.build.targets

yaml = pytest.importorskip("yaml")

WF = ROOT / ".github" / "workflows"
SHA_PIN = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@[0-9a-f]{40}$")


def load(name: str) -> dict[str, Any]:
    doc = yaml.safe_load((WF / name).read_text())
    assert isinstance(doc, dict)
    # YAML 1.1 reads the key `on` as True.
    if True in doc:
        doc["on"] = doc.pop(True)
    return doc


@pytest.fixture(scope="module")
def ci_wf() -> dict[str, Any]:
    return load("ci.yml")


@pytest.fixture(scope="module")
def release_wf() -> dict[str, Any]:
    return load("release.yml")


def steps(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(job, step) for job, body in doc["jobs"].items() for step in body["steps"]]


ALLOWED_INSTALLS = {"pip install -e .", 'pip install -e ".[azure]"'}


@pytest.mark.parametrize("name", ["ci.yml", "release.yml"])
def test_every_run_step_calls_inv_or_nox(name: str) -> None:
    doc = load(name)
    runs = [step["run"] for _, step in steps(doc) if "run" in step]
    assert runs
    for run in runs:
        line = run.strip()
        assert "\n" not in line, f"multi-line shell in {name}: {run!r}"
        assert not re.search(r"[;&|`]|\$\(", line), f"shell logic in {name}: {run!r}"
        argv = shlex.split(line)
        assert argv[0] in ("inv", "nox") or line in ALLOWED_INSTALLS, f"{name}: {run!r}"


@pytest.mark.parametrize("name", ["ci.yml", "release.yml"])
def test_actions_are_pinned_by_commit_and_checkout_keeps_no_token(name: str) -> None:
    for _, step in steps(load(name)):
        if "uses" in step:
            assert SHA_PIN.match(step["uses"]), step["uses"]
        if str(step.get("uses", "")).startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False


@pytest.mark.parametrize("name", ["ci.yml", "release.yml"])
def test_no_expression_is_expanded_inside_a_run_step(name: str) -> None:
    for _, step in steps(load(name)):
        assert "${{" not in step.get("run", ""), step["run"]


def test_ci_triggers_permissions_and_sessions(ci_wf: dict[str, Any]) -> None:
    assert set(ci_wf["on"]) == {"pull_request", "push"}
    assert ci_wf["permissions"] == {"contents": "read"}
    assert ci_wf["concurrency"]["cancel-in-progress"] is True
    job = ci_wf["jobs"]["nox"]
    assert job["strategy"]["matrix"]["session"] == ["lint", "tests", "gotest", "e2e"]
    runs = [s["run"] for s in job["steps"] if "run" in s]
    assert 'nox -s "$KM_SESSION"' in runs
    caches = [s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/cache@")]
    assert any("go-build" in c["with"]["path"] for c in caches), "the Go build cache is not cached"


def test_release_triggers(release_wf: dict[str, Any]) -> None:
    on = release_wf["on"]
    assert on["push"] == {"tags": ["v*"]}
    version_input = on["workflow_dispatch"]["inputs"]["version"]
    assert version_input["required"] is True
    assert version_input["type"] == "string"


def test_release_permissions_are_minimal(release_wf: dict[str, Any]) -> None:
    assert release_wf["permissions"] == {}
    jobs = release_wf["jobs"]
    assert jobs["prepare"]["permissions"] == {"contents": "read"}
    assert jobs["build"]["permissions"] == {"contents": "read"}
    assert jobs["publish"]["permissions"] == {
        "contents": "write",
        "id-token": "write",
        "attestations": "write",
    }
    only_oidc = [name for name, job in jobs.items() if job.get("permissions", {}).get("id-token") == "write"]
    assert only_oidc == ["publish"]
    assert jobs["publish"]["environment"] == "release"


def test_release_concurrency_is_one_group_for_all_releases_and_never_cancels(
    release_wf: dict[str, Any],
) -> None:
    conc = release_wf["concurrency"]
    # one fixed group: two tags pushed together queue instead of publishing in parallel
    assert conc["group"] == "release"
    assert "${{" not in conc["group"]
    assert conc["cancel-in-progress"] is False
    for name, job in release_wf["jobs"].items():
        assert "concurrency" not in job, f"job {name} has its own concurrency group"


def test_release_computes_the_version_once(release_wf: dict[str, Any]) -> None:
    jobs = release_wf["jobs"]
    prepare = jobs["prepare"]
    assert "needs" not in prepare
    step = next(s for s in prepare["steps"] if s.get("id") == "prepare")
    assert step["run"] == "inv ci.prepare"
    assert step["env"]["KM_INPUT_VERSION"] == "${{ inputs.version }}"
    assert prepare["outputs"]["version"] == "${{ steps.prepare.outputs.version }}"
    # Every later job reads the version from prepare; nobody parses the ref again.
    for name in ("build", "publish"):
        text = json.dumps(jobs[name])
        assert "needs.prepare.outputs.version" in text
        assert "github.ref_name" not in text and "GITHUB_REF" not in text


def test_release_builds_one_target_per_job_and_publishes_once(release_wf: dict[str, Any]) -> None:
    jobs = release_wf["jobs"]
    build = jobs["build"]
    assert build["needs"] == "prepare"
    assert build["strategy"]["matrix"] == "${{ fromJSON(needs.prepare.outputs.matrix) }}"
    runs = [s["run"] for s in build["steps"] if "run" in s]
    assert 'inv build --version "$KM_VERSION" --targets "$KM_TARGET"' in runs
    upload = next(s for s in build["steps"] if str(s.get("uses", "")).startswith("actions/upload-artifact@"))
    assert upload["with"]["if-no-files-found"] == "error"
    assert not any(str(s.get("uses", "")).startswith("actions/cache@") for s in build["steps"])

    publish = jobs["publish"]
    assert publish["needs"] == ["prepare", "build", "sign-macos"]
    # runs when sign-macos was skipped (no Apple credentials), never after a failure
    assert publish["if"] == (
        "${{ !cancelled() && needs.build.result == 'success' && needs.sign-macos.result != 'failure' }}"
    )
    download = next(
        s for s in publish["steps"] if str(s.get("uses", "")).startswith("actions/download-artifact@")
    )
    assert download["with"]["merge-multiple"] is True
    login = next(s for s in publish["steps"] if str(s.get("uses", "")).startswith("azure/login@"))
    assert set(login["with"]) == {"client-id", "tenant-id", "subscription-id"}  # OIDC: no client secret
    release = next(s for s in publish["steps"] if str(s.get("run", "")).startswith("inv release"))
    argv = shlex.split(release["run"])
    assert argv[argv.index("--prebuilt") + 1] == download["with"]["path"]
    assert argv[argv.index("--dest") + 1] == "azure"
    assert release["env"]["GITHUB_TOKEN"] == "${{ secrets.GITHUB_TOKEN }}"
    names = [s["name"] for s in publish["steps"]]
    assert names.index("Sign in to Azure (OIDC)") < names.index("Publish")


# The package publishers' credentials: apt needs an OpenPGP key (not the Key Vault P-256 key),
# and the tap, bucket and winget fork are other repositories than GITHUB_TOKEN's.
PACKAGE_SECRETS = {"KM_APT_SIGNING_KEY", "KM_TAP_TOKEN", "KM_SCOOP_TOKEN", "KM_WINGET_TOKEN"}
# Developer ID signing: a .p12 and an App Store Connect API key (Apple has no OIDC federation).
APPLE_SECRETS = {"KM_APPLE_CERT_P12", "KM_APPLE_CERT_PASSWORD", "KM_APPLE_API_KEY"}


def test_no_secret_other_than_the_github_token(release_wf: dict[str, Any], ci_wf: dict[str, Any]) -> None:
    assert set(re.findall(r"secrets\.([A-Za-z_]+)", json.dumps(ci_wf))) <= {"GITHUB_TOKEN"}
    secrets = set(re.findall(r"secrets\.([A-Za-z0-9_]+)", json.dumps(release_wf)))
    assert secrets <= {"GITHUB_TOKEN", *PACKAGE_SECRETS, *APPLE_SECRETS}, secrets
    publish = next(s for s in release_wf["jobs"]["publish"]["steps"] if s.get("name") == "Publish")
    assert {k for k, v in publish["env"].items() if "secrets." in str(v)} == {
        "GITHUB_TOKEN",
        *PACKAGE_SECRETS,
    }


# --- kmrelease.ci ----------------------------------------------------------------


def test_version_from_a_pushed_tag() -> None:
    assert str(ci.release_version("push", "tag", "v1.2.3", "")) == "v1.2.3"
    assert ci.release_version("push", "tag", "v1.2.0-rc.1", "").is_prerelease


def test_version_from_workflow_dispatch() -> None:
    assert str(ci.release_version("workflow_dispatch", "branch", "main", "v2.0.0")) == "v2.0.0"
    assert str(ci.release_version("workflow_dispatch", "tag", "v2.0.0", "v2.0.0")) == "v2.0.0"


@pytest.mark.parametrize(
    ("event", "ref_type", "ref", "given"),
    [
        ("push", "tag", "v1", ""),
        ("push", "tag", "v1.0.0; rm -rf /", ""),
        ("push", "branch", "main", ""),
        ("workflow_dispatch", "branch", "main", ""),
        ("workflow_dispatch", "branch", "main", "1.0"),
        ("workflow_dispatch", "branch", "main", "../x"),
        ("workflow_dispatch", "tag", "v1.0.0", "v1.0.1"),
        ("pull_request", "branch", "x", "v1.0.0"),
    ],
)
def test_bad_versions_are_refused_before_anything_runs(
    event: str, ref_type: str, ref: str, given: str
) -> None:
    with pytest.raises(KmError):
        ci.release_version(event, ref_type, ref, given)


def test_refusal_says_the_accepted_form() -> None:
    with pytest.raises(KmError, match="vMAJOR.MINOR.PATCH"):
        ci.release_version("workflow_dispatch", "branch", "main", "1.0")


def test_prepare_writes_version_and_matrix_outputs(tmp_path: Path) -> None:
    out = tmp_path / "github_output"
    env = {"GITHUB_EVENT_NAME": "push", "GITHUB_REF_TYPE": "tag", "GITHUB_REF_NAME": "v1.4.0"}
    ci.prepare(env, str(out))
    values = dict(line.split("=", 1) for line in out.read_text().splitlines())
    assert values["version"] == "v1.4.0"
    assert values["prerelease"] == "false"
    matrix = json.loads(values["matrix"])
    assert [leg["target"] for leg in matrix["include"]] == [t.slug for t in TARGETS]
    assert [leg["name"] for leg in matrix["include"]] == PROJECT.build.file_names


def test_output_values_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(KmError):
        ci.write_github_output({"version": "v1.0.0\nother=1"}, str(tmp_path / "o"))


def test_artifact_names_match_the_download_pattern(release_wf: dict[str, Any]) -> None:
    publish = release_wf["jobs"]["publish"]
    pattern = next(s for s in publish["steps"] if "download-artifact" in str(s.get("uses")))["with"][
        "pattern"
    ]
    prefix = pattern.rstrip("*")
    assert all(leg["name"].startswith(prefix) for leg in ci.build_matrix(PROJECT.build)["include"])


def test_release_signs_with_key_vault_and_attests_every_released_file(release_wf: dict[str, Any]) -> None:
    """Issue 10: the key id comes from a repository variable (no private key anywhere); the
    attestation covers every file SHA256SUMS lists, after the release wrote it."""
    steps = release_wf["jobs"]["publish"]["steps"]
    publish = next(s for s in steps if s.get("name") == "Publish")
    assert publish["env"]["KM_SIGNING_KEY"] == "${{ vars.KM_SIGNING_KEY }}"
    attest = [
        i
        for i, s in enumerate(steps)
        if str(s.get("uses", "")).startswith("actions/attest-build-provenance@")
    ]
    assert len(attest) == 1 and attest[0] > steps.index(publish)
    step = steps[attest[0]]
    assert re.fullmatch(r"actions/attest-build-provenance@[0-9a-f]{40}", step["uses"])
    assert step["with"] == {"subject-checksums": "dist/${{ needs.prepare.outputs.version }}/SHA256SUMS"}


def test_darwin_binaries_are_developer_id_signed_only_with_apple_credentials(
    release_wf: dict[str, Any],
) -> None:
    job = release_wf["jobs"]["sign-macos"]
    assert job["needs"] == ["prepare", "build"] and job["if"] == "vars.KM_APPLE_IDENTITY != ''"
    assert job["runs-on"].startswith("macos-") and job["permissions"] == {"contents": "read"}
    sign = next(s for s in job["steps"] if s.get("name") == "Sign and notarize")
    assert sign["run"] == "inv sign.macos --dir prebuilt"
    assert {k for k, v in sign["env"].items() if "secrets." in v} == APPLE_SECRETS
    download = next(s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/download-artifact"))
    uploads = [s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/upload-artifact@")]
    targets = [t for t in TARGETS if t.os == "darwin"]
    # the signed files replace the build job's artifacts under the same names, before publish
    assert sorted(u["with"]["name"] for u in uploads) == sorted(PROJECT.build.file_name(t) for t in targets)
    assert all(u["with"]["overwrite"] is True for u in uploads)
    assert all(u["with"]["path"].startswith(download["with"]["path"] + "/") for u in uploads)
