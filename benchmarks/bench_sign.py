"""Signing benchmark (issue 10): what signing adds to a warm release, measured in one run.

On a real six-target dist (built once with the warm Go cache):

- baseline: the warm checksum stage (``write_checksums``, nothing changed), median of 5;
- signing a fresh ``SHA256SUMS`` (both signatures) with the key file signer, and with the
  Key Vault signer against the local Key Vault over loopback HTTPS (two sign calls, the
  challenge and the public key read included);
- a warm re-run of the signing stage (signatures kept) and of the SBOM stage (nothing changed).

Goal: signing adds ≤ 1 s to a warm release.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from kmrelease.build import build
from kmrelease.checksums import write_checksums
from kmrelease.sbom import sbom_stage
from kmrelease.sign.keyvault import KeyVaultSigner
from kmrelease.sign.signers import KeyFileSigner, Signer
from kmrelease.sign.stage import sign_release
from kmrelease.sign.statement import SIGNATURE_FILES
from kmrelease.ui import Reporter

VERSION = "v0.0.1"
QUIET = Reporter(quiet=True)


def median(fn: Callable[[], object], runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def fresh_signing(dist: Path, signer: Signer) -> Callable[[], object]:
    def run() -> object:
        for name in SIGNATURE_FILES:
            (dist / name).unlink(missing_ok=True)
        return sign_release(dist, VERSION, signer, QUIET)

    return run


def main() -> int:
    from tests.support.fake_keyvault import fake_keyvault
    from tests.support.signing import new_key

    with tempfile.TemporaryDirectory(prefix="km-bench-sign-") as tmp:
        root = Path(tmp)
        from tests.support.releases import context

        ctx = context(VERSION, root)
        build(ctx)
        dist = ctx.dist
        names = ctx.build.file_names
        sbom_stage(dist, names, QUIET, dry_run=False)
        write_checksums(ctx)
        baseline = median(lambda: write_checksums(ctx))
        new_key(root / "key.pem")
        key_file = median(fresh_signing(dist, KeyFileSigner(root / "key.pem")))
        warm_sign = median(lambda: sign_release(dist, VERSION, KeyFileSigner(root / "key.pem"), QUIET))
        warm_sbom = median(lambda: sbom_stage(dist, names, QUIET, dry_run=False))
        with fake_keyvault() as kv:
            from tests.support.fake_keyvault import Token

            options = {"connection_verify": kv.ca_file, "verify_challenge_resource": False}

            def vault_run() -> object:
                return fresh_signing(dist, KeyVaultSigner(kv.key_id, Token(), client_options=options))()

            vault = median(vault_run, runs=3)
    rows = [
        ("warm checksum stage (baseline)", baseline),
        ("sign, key file (fresh signatures)", key_file),
        ("sign, Key Vault over loopback HTTPS", vault),
        ("sign, warm re-run (signatures kept)", warm_sign),
        ("SBOM stage, warm (nothing changed)", warm_sbom),
    ]
    for label, secs in rows:
        print(f"{label:40} {secs * 1000:8.1f} ms  ({secs / baseline:6.2f}x baseline)")
    added = warm_sign + warm_sbom
    worst = max(key_file, vault) + warm_sbom
    print(f"added to a warm release: {added:.3f} s (re-run), {worst:.3f} s (fresh signatures); goal ≤ 1 s")
    return 0 if worst <= 1.0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
