"""The engine's Invoke collection (SPEC §7): ``ns``. Thin: flags and help; the work is in kmrelease.

A repository's ``tasks.py`` is two lines::

    # Release tasks: the kmrelease engine's Invoke collection.
    from kmrelease.tasks import ns  # noqa: F401

Every task works on the project found from the current directory (the nearest
``build/release.toml`` upward, or ``KM_RELEASE_CONFIG``).
"""

from __future__ import annotations

import atexit
import gc
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

from invoke.collection import Collection
from invoke.context import Context
from invoke.tasks import task

from .errors import KmError
from .ui import Reporter

F = TypeVar("F", bound=Callable[..., Any])

# At exit the interpreter's last cyclic collections would walk every object a run made (a tenth
# of a second after a release's last line): frozen, they are left to the process's end.
atexit.register(gc.freeze)


def expected_failures(fn: F) -> F:
    """Print an expected failure as one line on stderr and exit non-zero; no traceback."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with _digest_store():
                return fn(*args, **kwargs)
        except KmError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(exc.exit_code) from None
        except KeyboardInterrupt:
            print("error: interrupted; re-run the same command to finish", file=sys.stderr)
            raise SystemExit(130) from None

    return wrapper  # type: ignore[return-value]


def _digest_store() -> AbstractContextManager[None]:
    """The project's remembered file digests (``.cache/kmrelease/digests.json``; see
    :mod:`kmrelease.hashing` for what is trusted), or none outside a project."""
    from .config import find_config
    from .gocheck import cache_dir
    from .hashing import persistent

    try:
        root, _ = find_config()
    except KmError:
        return nullcontext()
    return persistent(cache_dir(root) / "digests.json")


def _version(v: str | None) -> Any:
    from .version import parse_version

    return parse_version(v)


def _context(version: str, **flags: bool) -> Any:
    """The release context of a build-side task (no destination)."""
    from .config import load_project
    from .context import ReleaseContext

    v = _version(version)
    return ReleaseContext.create(load_project(), v, Reporter(), **flags)


# The flags that choose and change a destination, shared by release and promote.
DESTINATION_HELP = {
    "dest": "local (default) or azure",
    "site": "local site directory (default: $KM_SITE_DIR or <project>/site)",
    "skip_purge": "do not purge the CDN",
    "dry_run": "validate and print the plan; change nothing",
}


@task(
    help={
        "version": "release version, e.g. v1.2.3",
        "targets": "comma list like linux/amd64,darwin/arm64",
        "dry_run": "print the plan, build nothing",
    }
)
@expected_failures
def build(c: Context, version: str = "", targets: str = "", dry_run: bool = False) -> None:
    """Cross-compile the configured Go package into dist/<version>/ and check every binary."""
    from .build import build as run_build

    ctx = _context(version, dry_run=dry_run)
    run_build(ctx, ctx.build.parse_targets(targets))


@task(help={"version": "release version", "dry_run": "print what would be written"})
@expected_failures
def checksums(c: Context, version: str = "", dry_run: bool = False) -> None:
    """Write <binary>.sha256, SHA256SUMS and manifest.json in dist/<version>/."""
    from .checksums import write_checksums

    write_checksums(_context(version, dry_run=dry_run))


@task(
    help={
        "version": "release version, e.g. v1.2.3",
        **DESTINATION_HELP,
        "force": "replace versioned files that differ (versions are otherwise immutable)",
        "promote": "make a pre-release current",
        "prebuilt": "assemble the release from binaries built elsewhere (a directory)",
        "check_reproducible": "with --prebuilt: rebuild locally and require identical bytes",
        "skip_packages": "no .deb, APT index, Homebrew, Scoop or winget packages this time",
    }
)
@expected_failures
def release(
    c: Context,
    version: str = "",
    dest: str = "local",
    site: str = "",
    dry_run: bool = False,
    skip_purge: bool = False,
    force: bool = False,
    promote: bool = False,
    prebuilt: str = "",
    check_reproducible: bool = False,
    skip_packages: bool = False,
) -> None:
    """Build, checksum, publish, promote, purge and verify a release."""
    from .release import ReleaseRequest
    from .release import release as run_release

    req = ReleaseRequest(
        _version(version),
        dest=dest,
        site=site or None,
        dry_run=dry_run,
        skip_purge=skip_purge,
        force=force,
        promote=promote,
        prebuilt=Path(prebuilt) if prebuilt else None,
        check_reproducible=check_reproducible,
        skip_packages=skip_packages,
    )
    run_release(req, Reporter())


@task(help={"version": "release version (already built)", "dry_run": "print the plan; write nothing"})
@expected_failures
def packages(c: Context, version: str = "", dry_run: bool = False) -> None:
    """The .deb files, package builds, km.rb, km.json and winget manifests into dist/<version>/packages/."""
    from .packages.stage import make_packages

    make_packages(_context(version, dry_run=dry_run))


@task(
    help={
        "version": "release version whose dist/<version>/packages/ to push",
        "only": "comma list of brew, scoop, winget (default: all)",
        "dry_run": "print the plan; push nothing",
    }
)
@expected_failures
def mirrors(c: Context, version: str = "", only: str = "", dry_run: bool = False) -> None:
    """Commit km.rb to the Homebrew tap, km.json to the Scoop bucket, open the winget PR (tokens: README)."""
    from .packages.mirrors import MIRRORS, push_mirrors
    from .packages.settings import load_settings
    from .packages.stage import packages_dir

    ctx = _context(version, dry_run=dry_run)
    chosen = [p.strip() for p in only.split(",") if p.strip()] or list(MIRRORS)
    settings = load_settings(ctx.project)
    push_mirrors(settings, ctx.version, packages_dir(ctx.dist), ctx.reporter, only=chosen, dry_run=dry_run)


@task(
    help={
        "version": "an already published version",
        **DESTINATION_HELP,
    }
)
@expected_failures
def promote(
    c: Context,
    version: str = "",
    dest: str = "local",
    site: str = "",
    skip_purge: bool = False,
    dry_run: bool = False,
) -> None:
    """Make an already published version current (rollback)."""
    from .release import promote as run_promote

    run_promote(_version(version), dest, site or None, Reporter(), skip_purge=skip_purge, dry_run=dry_run)


@task(help={"dry_run": "print the paths and domains; purge nothing"})
@expected_failures
def purge(c: Context, dry_run: bool = False) -> None:
    """Purge the CDN paths of SPEC §6 (Azure Front Door from build/release.toml)."""
    from .config import load_project
    from .extras import needs_extra

    with needs_extra("azure", "inv purge"):
        from . import cdn

    cdn.purge(load_project(), Reporter(), dry_run=dry_run)


@task(
    help={
        "base_url": "public base URL (default: $KM_BASE_URL, else the configured one)",
        "version": "version to check (default: the current one)",
    }
)
@expected_failures
def verify(c: Context, base_url: str = "", version: str = "") -> None:
    """Check /health, /version, every artifact's hash and the release signatures through the public URL."""
    from .config import load_project, public_base_url
    from .sign.trust import verify_trust
    from .verify import verify as run_verify

    project = load_project()
    base = public_base_url(project, base_url or None)
    if not base:
        raise KmError(
            "no base URL: pass --base-url, set KM_BASE_URL, or set public_base_url in build/release.toml"
        )
    if version:
        _version(version)
    trusted = verify_trust(project.root, project.path, base)
    run_verify(base, Reporter(), project.build, version=version or None, trusted=trusted)


@task(
    help={
        "site": "site directory to serve (default: $KM_SITE_DIR or <project>/site)",
        "origin": "blob endpoint to front instead, e.g. http://127.0.0.1:10000/devstoreaccount1",
        "host": "address to listen on (default 127.0.0.1)",
        "port": "port (default 8080; 0 picks one)",
        "access_log": "JSON-lines access log (default logs/access.jsonl; `off` writes none)",
    }
)
@expected_failures
def serve(
    c: Context,
    site: str = "",
    origin: str = "",
    host: str = "127.0.0.1",
    port: int = 8080,
    access_log: str = "",
) -> None:
    """Serve the public URL space of SPEC §5 from a local site or in front of a blob endpoint."""
    from .accesslog import log_for
    from .config import load_project
    from .layout import site_dir
    from .serve import backend_for, make_server

    site_path = None if origin else site_dir(load_project(), site or None)
    backend = backend_for(site_path, origin or None)
    server = make_server(backend, host, port, log_for(access_log))
    h, p = str(server.server_address[0]), server.server_address[1]
    print(f"serving {origin or site_path} on http://{h}:{p}/ (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@task(
    help={
        "source": "local (the access log of inv serve, default) or azure (Front Door logs in Log Analytics)",
        "log": "local: the access log (default logs/access.jsonl)",
        "since": "start: a duration before --until (7d, 12h, 30m; default 7d) or an RFC 3339 time",
        "until": "end: an RFC 3339 time (default now)",
        "format": "table (default), json or html",
        "out": "write the report to this file instead of stdout",
        "workspace": "azure: Log Analytics workspace ID (default $KM_LOG_ANALYTICS_WORKSPACE)",
    }
)
@expected_failures
def metrics(
    c: Context,
    source: str = "local",
    log: str = "",
    since: str = "7d",
    until: str = "",
    format: str = "table",
    out: str = "",
    workspace: str = "",
) -> None:
    """Report downloads, installs, update checks, failures, cache and speed from the CDN access log."""
    from .config import load_project
    from .metrics import MetricsRequest, run

    binary = load_project().build.binary  # binary names and the User-Agent of update checks
    req = MetricsRequest(
        source,
        Path(log) if log else None,
        since,
        until,
        format,
        Path(out) if out else None,
        workspace,
        binary,
    )
    text = run(req, lambda line: print(line, file=sys.stderr))
    sys.stdout.write(text)


# --- infra: terraform/ (kmrelease/infra.py) -------------------------------------------


@task(
    name="plan",
    help={
        "var_file": "variables file (default: terraform/terraform.tfvars)",
        "destroy": "plan the destruction instead",
        "dry_run": "print the terraform commands; run nothing",
    },
)
@expected_failures
def infra_plan(c: Context, var_file: str = "", destroy: bool = False, dry_run: bool = False) -> None:
    """terraform init + plan in terraform/, saving the plan to terraform/tfplan."""
    from . import infra

    infra.plan(Reporter(), var_file=var_file or None, destroy=destroy, dry_run=dry_run)


@task(name="apply", help={"dry_run": "print the terraform command; apply nothing"})
@expected_failures
def infra_apply(c: Context, dry_run: bool = False) -> None:
    """terraform apply of the plan saved by infra.plan (nothing else)."""
    from . import infra

    infra.apply(Reporter(), dry_run=dry_run)


@task(
    name="outputs",
    help={
        "from_file": "read a saved `terraform output -json` document instead of running terraform",
        "dry_run": "print the changes; write nothing",
    },
)
@expected_failures
def infra_outputs(c: Context, from_file: str = "", dry_run: bool = False) -> None:
    """Write the terraform outputs (storage account, Front Door names...) into build/release.toml [azure]."""
    from . import infra

    infra.outputs(Reporter(), from_file=from_file or None, dry_run=dry_run)


@task(name="backup", help={"dry_run": "print the command and the file name; write nothing"})
@expected_failures
def infra_backup(c: Context, dry_run: bool = False) -> None:
    """Save `terraform state pull` as terraform/backups/<UTC time>-serial<N>.tfstate (gitignored, 0600)."""
    from . import infra_state

    infra_state.backup(Reporter(), dry_run=dry_run)


@task(
    name="restore",
    help={
        "from": "a saved state (e.g. terraform/backups/....tfstate)",
        "force": "push even an older state (a rollback) or one of another lineage",
        "dry_run": "show what differs and the push command; change nothing",
    },
)
@expected_failures
def infra_restore(c: Context, from_: str = "", force: bool = False, dry_run: bool = False) -> None:
    """Show how a saved state differs from the current one, then `terraform state push` it."""
    from . import infra_state

    if not from_:
        raise KmError("give the saved state to restore: --from terraform/backups/<file>.tfstate")
    infra_state.restore(Reporter(), from_, force=force, dry_run=dry_run)


# --- keys: the trusted release keys (kmrelease/sign/) -----------------------------------


@task(
    name="export",
    help={
        "key_id": "Key Vault key id https://<vault>.vault.azure.net/keys/<name>/<version> "
        "(terraform output release_signing_key_id)",
        "name": "file name in build/keys/ (without .pem), e.g. km-release-2027a",
        "dry_run": "print what would be written",
    },
)
@expected_failures
def keys_export(c: Context, key_id: str = "", name: str = "", dry_run: bool = False) -> None:
    """Write a Key Vault key's public half into build/keys/ (the keys km and the install scripts trust)."""
    from .config import load_project
    from .sign.export import export_public_key
    from .sign.settings import SigningSettings, configured_signer, read_settings

    if not key_id or not name:
        raise KmError("give --key-id and --name")
    project = load_project()
    signer = configured_signer(SigningSettings(key_vault_key=key_id), project.root)
    assert signer is not None
    folder = read_settings(project.path).keys_path(project.root)
    export_public_key(signer, folder, name, Reporter(), dry_run=dry_run)


@task(
    name="macos",
    help={
        "dir": "directory of the prebuilt binaries (its <binary>-darwin-* files are signed in place)",
        "dry_run": "check the credentials and print the plan; sign nothing, send nothing to Apple",
    },
)
@expected_failures
def sign_macos(c: Context, dir: str = "", dry_run: bool = False) -> None:
    """Developer ID-sign and notarize the darwin binaries (macOS; credentials from KM_APPLE_*)."""
    from .config import load_project
    from .macsign import sign_macos as run

    if not dir:
        raise KmError("give --dir DIR (the prebuilt binaries)")
    run(Path(dir), load_project().build.binary, Reporter(), dry_run=dry_run)


# --- ci: GitHub Actions glue (kmrelease/ci.py) ----------------------------------------


@task(name="prepare")
@expected_failures
def ci_prepare(c: Context) -> None:
    """Compute and validate the release version from the GitHub event; write job outputs."""
    from . import ci

    version = ci.prepare()
    print(f"release version {version}", file=sys.stderr)


ns = Collection(build, checksums, packages, mirrors, release, promote, purge, verify, serve, metrics)


ns.add_collection(Collection("infra", infra_plan, infra_apply, infra_outputs, infra_backup, infra_restore))
ns.add_collection(Collection("ci", ci_prepare))
ns.add_collection(Collection("keys", keys_export))
ns.add_collection(Collection("sign", sign_macos))
