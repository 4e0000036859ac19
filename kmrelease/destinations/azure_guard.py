"""The publisher lock and the conditional commit point of an Azure destination (issue 13 point 6).

- The lock is a lease on the blob ``meta/.publisher-lock`` (``LEASE_SECONDS``, renewed every
  ``RENEW_SECONDS`` by a daemon thread; the blob is deleted at the end; a publisher that dies
  leaves its lease to expire). Its holder line is the blob's metadata, read by the loser for its message.
  A lease left by a publisher of this machine that is gone (its process died, or this very process
  after a failed run: the interrupted-and-re-run case of SPEC §6) is broken at once instead of
  making the re-run wait ``LEASE_SECONDS``.
- ``meta/version`` is written with ``If-Match`` on the ETag it had when its content was last
  read (``If-None-Match: *`` when absent): a 412/409 means another publisher wrote it first.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from azure.core import MatchConditions
from azure.core.exceptions import AzureError, HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobClient, BlobLeaseClient, ContentSettings

from .guard import busy, holder_line, moved

LOCK_KEY = "meta/.publisher-lock"
LEASE_SECONDS = 60
RENEW_SECONDS = 15.0
_HELD: set[str] = set()  # tokens of the leases this process holds right now


def _token(lease: BlobLeaseClient) -> str:
    """Names a lease in the public metadata without revealing its id (which grants writes)."""
    return hashlib.sha256(str(lease.id).encode()).hexdigest()[:32]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, not ours to signal
    return True


def _stale(meta: dict[str, str]) -> bool:
    """Whether the lease belongs to a publisher of this machine that is no longer publishing."""
    if meta.get("host") != socket.gethostname() or not meta.get("pid", "").isdigit():
        return False
    pid = int(meta["pid"])
    if pid == os.getpid():
        return meta.get("token", "") not in _HELD
    return not _alive(pid)


def _break_if_stale(lock: BlobClient) -> bool:
    with suppress(AzureError):
        if _stale(dict(lock.get_blob_properties().metadata)):
            BlobLeaseClient(lock).break_lease(lease_break_period=0)
            return True
    return False


def _holder_of(lock: BlobClient) -> str:
    with suppress(AzureError):
        return str(lock.get_blob_properties().metadata.get("holder", ""))
    return ""


def acquire(lock: BlobClient, label: str, what: str) -> BlobLeaseClient:
    """Take the lease, or raise a KmError naming the holder."""
    for _ in range(3):
        with suppress(ResourceExistsError):
            lock.upload_blob(b"", overwrite=False)
        try:
            lease = lock.acquire_lease(lease_duration=LEASE_SECONDS)
        except ResourceNotFoundError:
            continue  # its holder deleted it between our create and our lease: create it again
        except HttpResponseError as exc:
            if exc.status_code == 409:  # LeaseAlreadyPresent
                if _break_if_stale(lock):
                    continue
                raise busy(label, _holder_of(lock)) from None
            raise
        meta = {"holder": holder_line(what), "host": socket.gethostname(), "pid": str(os.getpid())}
        lock.set_blob_metadata({**meta, "token": _token(lease)}, lease=lease)
        _HELD.add(_token(lease))
        return lease
    raise busy(label, "")


def _renew(lease: BlobLeaseClient, stop: threading.Event) -> None:
    while not stop.wait(RENEW_SECONDS):
        with suppress(AzureError):  # a lost lease is caught by the conditional commit point
            lease.renew()


@contextmanager
def holding(lock: BlobClient, lease: BlobLeaseClient) -> Iterator[None]:
    """Keep the lease renewed for the block; then delete the lock blob (nothing stays behind)."""
    stop = threading.Event()
    renewer = threading.Thread(target=_renew, args=(lease, stop), name="km-lease", daemon=True)
    renewer.start()
    try:
        yield
    finally:
        _HELD.discard(_token(lease))
        stop.set()
        renewer.join(timeout=5)
        with suppress(AzureError):
            lock.delete_blob(lease=lease)
        with suppress(AzureError):
            lease.release()  # when the delete failed: free it now rather than in LEASE_SECONDS


def replace_if(
    client: BlobClient, key: str, data: bytes, settings: ContentSettings, expected: bytes | None
) -> None:
    """Compare-and-swap on one small blob by ETag."""
    try:
        download = client.download_blob()
        found: bytes | None = download.readall()
        etag: str | None = download.properties.etag
    except ResourceNotFoundError:
        found, etag = None, None
    if found != expected:
        raise moved(key, found)
    try:
        if etag is None:
            client.upload_blob(data, length=len(data), overwrite=False, content_settings=settings)
        else:
            client.upload_blob(
                data,
                length=len(data),
                overwrite=True,
                content_settings=settings,
                etag=etag,
                match_condition=MatchConditions.IfNotModified,
            )
    except (ResourceExistsError, HttpResponseError) as exc:
        if isinstance(exc, ResourceExistsError) or exc.status_code in (409, 412):
            raise moved(key, _current(client)) from None
        raise


def _current(client: BlobClient) -> bytes | None:
    with suppress(AzureError):
        return bytes(client.download_blob().readall())
    return None
