"""Azure Blob Storage: origin key ``<container>/<blob>`` → container + blob name.

The blob layout is the table of :mod:`kmrelease.urlspace` (one container per
first path segment of an origin key); Front Door and ``inv serve --origin``
implement its inverse. Every blob carries the Content-Type and Cache-Control of
SPEC §5 and an explicit Content-MD5, so any edge relays them unchanged.

Uploads: each file up to ``SINGLE_PUT`` is one Put Blob streamed from disk (the SDK's
generated operation: ``upload_blob`` would read it whole), larger ones go in 4 MiB blocks
(``max_concurrency`` at a time); ``parallel_uploads`` files at once; ``If-None-Match: *``
unless overwriting. A file that changes while it is sent is refused: a Put Blob carries the
known MD5 as its transactional ``Content-MD5``, which the service checks against the body it
received (400 ``Md5Mismatch``), so those bytes are never hashed again on the client; the
blocks of a larger file are hashed on the way and must match the Content-MD5 set. Transient
failures (408, 5xx, timeouts, resets) are retried by the SDK's retry policy
with exponential backoff. ``stat`` of a ``releases/<folder>/`` key is answered by one List
Blobs per folder, forgotten before and after every write and at :meth:`check_writable`.

Credentials come from the environment: ``AZURE_STORAGE_CONNECTION_STRING`` when
set (Azurite, an account key or a SAS), otherwise ``DefaultAzureCredential`` with
the account URL of ``build/release.toml``. No secret (account key, SAS, connection
string) ever reaches output, logs or exception text: every SDK failure becomes a
one-line :class:`~kmrelease.errors.KmError` run through :meth:`_redact`.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
import random
import re
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import (
    BlobClient,
    BlobSasPermissions,
    BlobServiceClient,
    ContentSettings,
    ExponentialRetry,
    PublicAccess,
    UserDelegationKey,
    generate_blob_sas,
)

# Private to the SDK: pyproject.toml pins azure-storage-blob exactly, and
# tests/unit/test_azure_sdk_pin.py fails naming what moved when the pin changes.
from azure.storage.blob._generated.models import BlobHTTPHeaders, ModifiedAccessConditions
from azure.storage.blob._shared.response_handlers import process_storage_error

from ..config import ReleaseConfig, public_base_url
from ..errors import KmError
from ..hashing import FileDigest
from ..ui import Bar, Reporter
from ..urlspace import CONTAINERS, Kind, public_path, resolve
from . import azure_guard
from .base import Cdn, ObjectInfo

CONNECTION_STRING_ENV = "AZURE_STORAGE_CONNECTION_STRING"
NO_CREDENTIALS = (
    "no Azure Storage credentials: set AZURE_STORAGE_CONNECTION_STRING (Azurite, account key or SAS), "
    "or set [azure] storage_account in build/release.toml and sign in for DefaultAzureCredential "
    "(az login, a managed identity, or AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET)"
)

LISTED_CONTAINER = "releases"
SINGLE_PUT = 64 * 1024 * 1024  # up to this size a file is one streamed Put Blob; beyond, 4 MiB blocks
BLOCK = 4 * 1024 * 1024  # bytes per request: memory per upload is max_concurrency × BLOCK
_SECRET_PATTERNS = (
    re.compile(r"(?i)(AccountKey=)[^;\s]+"),
    re.compile(r"(?i)(SharedAccessSignature=)[^;\s]+"),
    re.compile(r"(?i)([?&;]sig=)[^&;\s'\"]+"),
    re.compile(r"(?i)(Authorization:?\s*(?:SharedKey|Bearer)\s+)[^\s'\"]+"),
)


def redact(text: str) -> str:
    """Blank the secret-bearing parts of a text: SAS signatures, account keys, Authorization values."""
    for rx in _SECRET_PATTERNS:
        text = rx.sub(r"\1***", text)
    return text


class _RedactingFilter(logging.Filter):
    """urllib3 logs request lines (with a SAS ``sig=`` in the query) at DEBUG: blank them."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_FILTER = _RedactingFilter()
for _name in ("urllib3.connectionpool", "urllib3.util.retry", "azure"):
    _logger = logging.getLogger(_name)
    if not any(isinstance(f, _RedactingFilter) for f in _logger.filters):
        _logger.addFilter(_FILTER)


@dataclass(frozen=True)
class RetrySettings:
    """The SDK retry policy: exponential backoff on 408, 500, 503…, timeouts and connection resets."""

    total: int = 6
    initial_backoff: float = 1.0
    increment_base: float = 2.0
    jitter: float = 0.5
    connection_timeout: float = 20.0
    read_timeout: float = 120.0


class _Backoff(ExponentialRetry):
    """``ExponentialRetry`` with sub-second backoff (tests) and a small jitter."""

    def __init__(self, settings: RetrySettings) -> None:
        super().__init__(
            initial_backoff=0,
            increment_base=0,
            retry_total=settings.total,
            random_jitter_range=0,
            retry_connect=settings.total,
            retry_read=settings.total,
            retry_status=settings.total,
        )
        self._settings = settings

    def get_backoff_time(self, settings: dict[str, Any]) -> float:
        s = self._settings
        count = int(settings["count"])
        backoff = s.initial_backoff + (0.0 if count == 0 else s.increment_base**count)
        low = max(0.0, backoff - s.jitter)
        return random.uniform(low, backoff + s.jitter)


def _client_options(retry: RetrySettings) -> dict[str, Any]:
    return {
        "retry_policy": _Backoff(retry),
        "connection_timeout": retry.connection_timeout,
        "read_timeout": retry.read_timeout,
        "max_single_put_size": BLOCK,
        "max_block_size": BLOCK,
        "logging_enable": False,
    }


def _parse_connection_string(conn: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in conn.strip().rstrip(";").split(";"):
        k, sep, v = part.partition("=")
        if sep:
            out[k.strip().lower()] = v.strip()
    return out


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _mutable_headers(key: str) -> dict[str, str] | None:
    """The headers urlspace stores on a mutable object (not ``releases/<v>/``), else None."""
    try:
        resolved = resolve(public_path(key))
    except ValueError:
        return None
    if resolved is None or resolved.kind is Kind.VERSIONED:
        return None
    return resolved.headers


class _Progress:
    """Turn the SDK's cumulative ``progress_hook(current, total)`` into ``bar.advance`` deltas."""

    def __init__(self, bar: Bar) -> None:
        self._bar, self._done, self._lock = bar, 0, threading.Lock()

    def __call__(self, current: int, total: int | None) -> None:
        with self._lock:
            delta = current - self._done
            if delta > 0:
                self._done = current
                self._bar.advance(delta)

    def finish(self, size: int) -> None:
        self(size, size)


class _Reader:
    """A file wrapper that reports what the SDK has read as progress (a Put Blob body)."""

    def __init__(self, fh: BinaryIO, progress: _Progress | None = None, size: int = 0) -> None:
        self._fh = fh
        self._pos = 0
        self._progress, self._size = progress, size

    def read(self, size: int = -1) -> bytes:
        data = self._fh.read(size)
        self._pos += len(data)
        if self._progress is not None:
            self._progress(self._pos, self._size)  # counts only new ground after a retry
        return data

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        self._pos = self._fh.seek(offset, whence)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def seekable(self) -> bool:
        return True


class _HashingReader(_Reader):
    """A file wrapper that hashes what the SDK reads, to prove the bytes sent are the bytes hashed
    (the blocks of a chunked upload: Put Block List cannot check the whole blob's MD5).

    A retry seeks back to where its request body started: back to 0 starts the hash
    again; anywhere else (a block of a chunked upload) the hash proves nothing.
    """

    def __init__(self, fh: BinaryIO) -> None:
        super().__init__(fh)
        self._md5 = hashlib.md5(usedforsecurity=False)
        self.sequential = True

    def read(self, size: int = -1) -> bytes:
        data = super().read(size)
        if self.sequential:
            self._md5.update(data)
        return data

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        before = self._pos
        pos = super().seek(offset, whence)
        if pos == 0:
            self._md5, self.sequential = hashlib.md5(usedforsecurity=False), True
        elif pos != before:
            self.sequential = False
        return pos

    def digest(self) -> bytes | None:
        return self._md5.digest() if self.sequential else None


class AzureBlobDestination:
    """The :class:`~kmrelease.destinations.Destination` of one storage account."""

    def __init__(
        self,
        service: BlobServiceClient,
        *,
        label: str,
        secrets: tuple[str, ...] = (),
        token_credential: bool = False,
        create_containers: bool = False,
        reporter: Reporter | None = None,
        max_concurrency: int = 2,
        parallel_uploads: int = 4,
        copy_timeout: float = 600.0,
    ) -> None:
        self.service = service
        self.label = label
        self.max_concurrency = max_concurrency  # requests per file (blocks of one upload)
        self.parallel_uploads = parallel_uploads  # files at once (read by publish.py)
        self.copy_timeout = copy_timeout
        self.create_containers = create_containers
        self.cdn: Cdn | None = None  # Front Door, set by from_environment from [azure]
        self.mirrors_to_github = True  # the installers' fallback: the GitHub Release of the tag
        self.public = True  # what users install from: only release keys sign here
        self.public_base_url: str | None = None  # verified through after a release
        self._reporter = reporter
        self._secrets: list[str] = [s for s in secrets if s]
        self._token_credential = token_credential
        self._delegation: tuple[UserDelegationKey, datetime] | None = None
        self._checked: set[str] = set()
        self._lock = threading.Lock()
        self._listed: dict[str, dict[str, ObjectInfo]] = {}
        self._generation = 0

    # construction -----------------------------------------------------------------

    @classmethod
    def from_environment(
        cls,
        config: ReleaseConfig,
        reporter: Reporter,
        *,
        environ: Mapping[str, str] | None = None,
        retry: RetrySettings | None = None,
        credential: TokenCredential | None = None,
    ) -> AzureBlobDestination:
        from ..cdn import FrontDoor

        env = os.environ if environ is None else environ
        conn = env.get(CONNECTION_STRING_ENV, "").strip()
        if conn:
            dest = cls.from_connection_string(conn, reporter, retry=retry)
        else:
            url = config.azure.account_url
            if not url:
                raise KmError(NO_CREDENTIALS)
            if credential is None:
                from azure.identity import DefaultAzureCredential

                credential = DefaultAzureCredential()
            dest = cls.from_credential(url, credential, reporter, retry=retry)
        dest.cdn = FrontDoor(config)
        dest.public_base_url = public_base_url(config, environ=env)
        return dest

    @contextmanager
    def verify_url(self) -> Iterator[str | None]:
        """The public base URL (``KM_BASE_URL`` or ``public_base_url``): the CDN users download from."""
        yield self.public_base_url

    @classmethod
    def from_connection_string(
        cls,
        conn: str,
        reporter: Reporter | None = None,
        *,
        retry: RetrySettings | None = None,
        max_concurrency: int = 2,
    ) -> AzureBlobDestination:
        settings = _parse_connection_string(conn)
        secrets = (conn, settings.get("accountkey", ""), settings.get("sharedaccesssignature", ""))
        try:
            options = _client_options(retry or RetrySettings())
            service = BlobServiceClient.from_connection_string(conn, **options)
        except (ValueError, AzureError):
            raise KmError(
                f"{CONNECTION_STRING_ENV} is not a valid storage connection string "
                "(expected e.g. DefaultEndpointsProtocol=…;AccountName=…;AccountKey=…;BlobEndpoint=…)"
            ) from None
        url = service.primary_endpoint.split("?", 1)[0].rstrip("/")
        return cls(
            service,
            label=f"Azure Storage {url}",
            secrets=secrets,
            create_containers=_is_loopback(url),
            reporter=reporter,
            max_concurrency=max_concurrency,
        )

    @classmethod
    def from_credential(
        cls,
        account_url: str,
        credential: TokenCredential,
        reporter: Reporter | None = None,
        *,
        retry: RetrySettings | None = None,
        max_concurrency: int = 2,
    ) -> AzureBlobDestination:
        options = _client_options(retry or RetrySettings())
        service = BlobServiceClient(account_url, credential=credential, **options)
        return cls(
            service,
            label=f"Azure Storage {account_url.rstrip('/')}",
            token_credential=True,
            create_containers=_is_loopback(account_url),
            reporter=reporter,
            max_concurrency=max_concurrency,
        )

    # secrets and errors -------------------------------------------------------------

    def _redact(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return redact(text)

    @contextmanager
    def _sdk(self, action: str) -> Iterator[None]:
        """Turn SDK failures into one redacted line; never chain the original (it may hold secrets)."""
        try:
            yield
        except KmError:
            raise
        except ClientAuthenticationError as exc:
            if exc.status_code is None:  # the credential itself: DefaultAzureCredential found nothing
                raise KmError(f"{action}: {NO_CREDENTIALS}") from None
            raise KmError(
                self._redact(
                    f"{action}: {self.label} refused the credentials (HTTP {exc.status_code} {_code(exc)}): "
                    f"check {CONNECTION_STRING_ENV} or the identity's role assignments"
                )
            ) from None
        except HttpResponseError as exc:
            if exc.status_code in (401, 403):
                raise KmError(
                    self._redact(
                        f"{action}: {self.label} refused the credentials (HTTP {exc.status_code} "
                        f"{_code(exc)}): check {CONNECTION_STRING_ENV} or the identity's role assignments "
                        "(Storage Blob Data Contributor)"
                    )
                ) from None
            raise KmError(
                self._redact(f"{action}: HTTP {exc.status_code} {_code(exc)}: {_first_line(exc)}")
            ) from None
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise KmError(
                self._redact(f"{action}: cannot reach {self.label} after retries: {_first_line(exc)}")
            ) from None
        except AzureError as exc:
            raise KmError(self._redact(f"{action}: {type(exc).__name__}: {_first_line(exc)}")) from None

    # keys -------------------------------------------------------------------------------

    def _blob(self, key: str) -> BlobClient:
        container, sep, blob = key.partition("/")
        if not sep or not container or not blob or any(p in ("", ".", "..") for p in key.split("/")):
            raise KmError(f"refusing unsafe key {key!r}")
        return self.service.get_blob_client(container, blob)

    def _ensure_container(self, container: str) -> None:
        """Create a container on first write when missing (emulators only; terraform owns production)."""
        with self._lock:
            if container in self._checked:
                return
            cc = self.service.get_container_client(container)
            with self._sdk(f"check container {container}"):
                if not cc.exists():
                    if not self.create_containers:
                        raise KmError(_missing_message(self.label, [container]))
                    # anonymous blob reads: what the edge (Front Door, `inv serve --origin`) fetches
                    with suppress(ResourceExistsError):
                        cc.create_container(public_access=PublicAccess.BLOB)
                    if self._reporter:
                        self._reporter.info(f"created container {container} on {self.label}")
            self._checked.add(container)

    # the Destination protocol ---------------------------------------------------------

    def check_writable(self) -> None:
        """Prove the credentials work and the containers exist (or can be created). Changes nothing.

        Every run starts here: listings cached by an earlier run of this object are dropped.
        """
        self._changed()
        missing = []
        for container in CONTAINERS:
            cc = self.service.get_container_client(container)
            with self._sdk(f"check container {container} on {self.label}"):
                try:
                    cc.get_container_properties()
                except ResourceNotFoundError:
                    missing.append(container)
                    continue
            self._checked.add(container)
        if missing and not self.create_containers:
            raise KmError(_missing_message(self.label, missing))
        if missing and self._reporter:
            self._reporter.info(f"containers {', '.join(missing)} will be created on first write")

    def stat(self, key: str) -> ObjectInfo | None:
        client = self._blob(key)
        folder = key.rsplit("/", 1)[0] + "/"
        if client.container_name == LISTED_CONTAINER and folder.count("/") == 2:
            # releases/<v>/ and releases/latest/ hold ~14 blobs: one List Blobs answers every stat
            # of the folder until this destination next writes (validation, read-back, promotion)
            return self._listing(folder).get(key)
        with self._sdk(f"read properties of {key}"):
            try:
                props = client.get_blob_properties()
            except ResourceNotFoundError:
                return None
        return _info(key, int(props.size), props.content_settings)

    def _listing(self, folder: str) -> dict[str, ObjectInfo]:
        with self._lock:
            cached = self._listed.get(folder)
            generation = self._generation
        if cached is not None:
            return cached
        container, _, prefix = folder.partition("/")
        cc = self.service.get_container_client(container)
        found: dict[str, ObjectInfo] = {}
        with self._sdk(f"list {folder}"):
            try:
                for b in cc.list_blobs(name_starts_with=prefix):
                    key = f"{container}/{b.name}"
                    if key.rsplit("/", 1)[0] + "/" == folder:
                        found[key] = _info(key, int(b.size), b.content_settings)
            except ResourceNotFoundError:
                pass
        with self._lock:
            if generation == self._generation:  # no write of ours started meanwhile
                self._listed[folder] = found
        return found

    def _changed(self) -> None:
        """Forget listings: called before and after every write."""
        with self._lock:
            self._generation += 1
            self._listed.clear()

    def read_bytes(self, key: str) -> bytes | None:
        client = self._blob(key)
        with self._sdk(f"read {key}"):
            try:
                return client.download_blob().readall()
            except ResourceNotFoundError:
                return None

    # writes: every one forgets the cached listings before and after it runs

    @contextmanager
    def _writing(self) -> Iterator[None]:
        self._changed()
        try:
            yield
        finally:
            self._changed()

    def upload(
        self, key: str, path: Path, digest: FileDigest, headers: dict[str, str], *, overwrite: bool, bar: Bar
    ) -> None:
        with self._writing():
            self._upload(key, path, digest, headers, overwrite=overwrite, bar=bar)

    def put_bytes(self, key: str, data: bytes, headers: dict[str, str]) -> None:
        with self._writing():
            self._put_bytes(key, data, headers)

    def copy(self, src: str, dst: str, headers: dict[str, str]) -> None:
        with self._writing():
            self._copy(src, dst, headers)

    def delete(self, key: str) -> None:
        with self._writing():
            self._delete(key)

    def sha256(self, key: str) -> str | None:
        h = hashlib.sha256()
        with self._sdk(f"read {key}"):
            try:
                for chunk in self._blob(key).download_blob().chunks():
                    h.update(chunk)
            except ResourceNotFoundError:
                return None
        return h.hexdigest()

    def replace_if(self, key: str, data: bytes, headers: dict[str, str], expected: bytes | None) -> None:
        client = self._blob(key)
        self._ensure_container(client.container_name)
        md5 = hashlib.md5(data, usedforsecurity=False).digest()
        with self._writing(), self._sdk(f"write {key}"):
            azure_guard.replace_if(client, key, data, _settings(headers, md5), expected)

    @contextmanager
    def publishing(self, holder: str) -> Iterator[None]:
        client = self._blob(azure_guard.LOCK_KEY)
        self._ensure_container(client.container_name)
        with self._sdk(f"lock {self.label}"):
            lease = azure_guard.acquire(client, self.label, holder)
        with azure_guard.holding(client, lease):
            yield

    def _upload(
        self, key: str, path: Path, digest: FileDigest, headers: dict[str, str], *, overwrite: bool, bar: Bar
    ) -> None:
        client = self._blob(key)
        self._ensure_container(client.container_name)
        settings = _settings(headers, digest.md5)
        progress = _Progress(bar)
        changed = KmError(f"{path} changed while it was uploaded to {key}: run the release again")
        reader: _HashingReader | None = None
        with path.open("rb") as fh, self._sdk(f"upload {key}"):
            try:
                if digest.size <= SINGLE_PUT:
                    # the service checks the body against digest.md5 (Content-MD5): nothing is
                    # created or replaced when the file changed since it was hashed
                    self._put_blob(
                        client, _Reader(fh, progress, digest.size), digest, headers, overwrite=overwrite
                    )
                else:
                    reader = _HashingReader(fh)
                    client.upload_blob(
                        reader,  # type: ignore[arg-type]
                        length=digest.size,
                        overwrite=overwrite,
                        content_settings=settings,
                        max_concurrency=self.max_concurrency,
                        progress_hook=progress,
                    )
            except (ResourceExistsError, ResourceModifiedError):
                # If-None-Match: * refused: either an earlier attempt of ours landed (its response
                # was lost and the SDK retried) or the key holds something else.
                info = self.stat(key)
                if info is not None and info.size == digest.size and info.md5 == digest.md5:
                    progress.finish(digest.size)
                    return
                raise KmError(
                    f"{key} already exists on {self.label} with other content (versions are immutable)"
                ) from None
            except HttpResponseError as exc:
                if _md5_mismatch(exc):
                    raise changed from None
                raise
        sent = reader.digest() if reader is not None else None
        if sent is not None and sent != digest.md5:
            if not overwrite:
                with self._sdk(f"delete {key}"):
                    client.delete_blob()
            raise changed
        progress.finish(digest.size)

    @staticmethod
    def _put_blob(
        client: BlobClient,
        body: _Reader,
        digest: FileDigest,
        headers: dict[str, str],
        *,
        overwrite: bool,
    ) -> None:
        """One Put Blob that streams the file from disk.

        ``upload_blob`` reads a file of up to ``max_single_put_size`` whole into memory, and
        splits anything larger into blocks (three requests for a 7 MB binary). The SDK's own
        generated Put Blob operation takes a stream: the pipeline, its retry policy (which seeks
        the body back) and its error mapping are the same. ``transactional_content_md5`` is the
        request's ``Content-MD5``: the service refuses a body with another MD5 (400 ``Md5Mismatch``),
        every retry included; ``blob_content_md5`` is the property stored on the blob.
        """
        try:
            _upload_op(client)(
                content_length=digest.size,
                body=body,
                transactional_content_md5=digest.md5,
                blob_http_headers=BlobHTTPHeaders(
                    blob_content_type=headers.get("Content-Type"),
                    blob_cache_control=headers.get("Cache-Control"),
                    blob_content_md5=digest.md5,
                ),
                modified_access_conditions=None if overwrite else ModifiedAccessConditions(if_none_match="*"),
            )
        except HttpResponseError as exc:
            process_storage_error(exc)  # the typed errors and error codes upload_blob would raise

    def _put_bytes(self, key: str, data: bytes, headers: dict[str, str]) -> None:
        client = self._blob(key)
        self._ensure_container(client.container_name)
        md5 = hashlib.md5(data, usedforsecurity=False).digest()
        with self._sdk(f"write {key}"):
            client.upload_blob(
                data, length=len(data), overwrite=True, content_settings=_settings(headers, md5)
            )

    def _copy(self, src: str, dst: str, headers: dict[str, str]) -> None:
        source, target = self._blob(src), self._blob(dst)
        self._ensure_container(target.container_name)
        with self._sdk(f"copy {src} → {dst}"):
            try:
                md5 = source.get_blob_properties().content_settings.content_md5
            except ResourceNotFoundError:
                raise KmError(f"cannot copy {src} → {dst}: {src} does not exist") from None
            target.start_copy_from_url(self._source_url(source))
            self._wait_for_copy(target, src, dst)
            try:
                # set_http_headers replaces every property: give Content-MD5 again or it is lost
                target.set_http_headers(content_settings=_settings(headers, bytes(md5) if md5 else None))
            except AzureError:
                # never leave a latest/ blob with the versioned headers behind: a re-run copies again
                with suppress(AzureError):
                    target.delete_blob()
                raise

    def _wait_for_copy(self, target: BlobClient, src: str, dst: str) -> None:
        deadline = time.monotonic() + self.copy_timeout
        delay = 0.05
        while True:
            copy = target.get_blob_properties().copy
            status = copy.status or "success"
            if status == "success":
                return
            if status != "pending":
                raise KmError(
                    self._redact(
                        f"copy {src} → {dst} {status}: {copy.status_description or 'no reason given'}"
                    )
                )
            if time.monotonic() > deadline:
                with suppress(AzureError):
                    target.abort_copy(copy.id or "")
                raise KmError(f"copy {src} → {dst} still pending after {self.copy_timeout:.0f}s: run again")
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    def _source_url(self, source: BlobClient) -> str:
        """The copy source: same-account copies authorise with the account key or SAS of the request;
        with an Entra ID token the source needs a user-delegation SAS."""
        if not self._token_credential:
            return str(source.url)
        now = datetime.now(UTC)
        if self._delegation is None or self._delegation[1] < now + timedelta(minutes=10):
            expiry = now + timedelta(hours=1)
            key = self.service.get_user_delegation_key(now - timedelta(minutes=5), expiry)
            self._delegation = (key, expiry)
        key, expiry = self._delegation
        sas = generate_blob_sas(
            account_name=str(self.service.account_name),
            container_name=source.container_name,
            blob_name=source.blob_name,
            user_delegation_key=key,
            permission=BlobSasPermissions(read=True),
            expiry=expiry,
        )
        self._secrets.append(sas)
        return f"{source.url}?{sas}"

    def list(self, prefix: str) -> list[str]:
        container, _, blob_prefix = prefix.partition("/")
        cc = self.service.get_container_client(container)
        with self._sdk(f"list {prefix}"):
            try:
                return sorted(f"{container}/{b}" for b in cc.list_blob_names(name_starts_with=blob_prefix))
            except ResourceNotFoundError:
                return []

    def _delete(self, key: str) -> None:
        client = self._blob(key)
        with self._sdk(f"delete {key}"), suppress(ResourceNotFoundError):
            client.delete_blob()


def _upload_op(client: BlobClient) -> Any:
    """The generated Put Blob operation of a BlobClient (``client._client.block_blob.upload``)."""
    return client._client.block_blob.upload


def _info(key: str, size: int, cs: ContentSettings) -> ObjectInfo:
    md5 = bytes(cs.content_md5) if cs.content_md5 else None
    expected = _mutable_headers(key)
    if expected is not None and (cs.content_type, cs.cache_control) != (
        expected["Content-Type"],
        expected["Cache-Control"],
    ):
        # A mutable object with the wrong headers (e.g. a copy whose headers were never set):
        # report it as different so that a re-run rewrites it.
        return ObjectInfo(size, b"")
    return ObjectInfo(size, md5)


def _settings(headers: dict[str, str], md5: bytes | None) -> ContentSettings:
    return ContentSettings(
        content_type=headers.get("Content-Type"),
        cache_control=headers.get("Cache-Control"),
        content_md5=bytearray(md5) if md5 is not None else None,
    )


def _md5_mismatch(exc: HttpResponseError) -> bool:
    """The service refused a body whose MD5 is not the Content-MD5 sent (Azurite: InvalidOperation)."""
    code = _code(exc)
    return exc.status_code == 400 and (
        code == "Md5Mismatch" or (code == "InvalidOperation" and "md5" in _first_line(exc).lower())
    )


def _code(exc: HttpResponseError) -> str:
    code = getattr(exc, "error_code", None) or ""
    return str(getattr(code, "value", code))


def _first_line(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return str(message).strip().splitlines()[0] if str(message).strip() else type(exc).__name__


def _missing_message(label: str, missing: list[str]) -> str:
    return (
        f"{label} has no container {', '.join(missing)}: the terraform in terraform/ creates the "
        f"containers {', '.join(CONTAINERS)} (apply it, then run `inv infra.outputs`)"
    )
