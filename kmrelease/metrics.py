"""``inv metrics``: what the CDN did, from its access log (SPEC §15).

One streaming aggregation (:class:`Aggregator`) is fed block by block by a source: the
local edge's JSON-lines log (:func:`read_local`, a megabyte at a time) or Azure Front
Door's access log in Log Analytics (:mod:`kmrelease.logquery`, a query result at a time).
Nothing holds the log whole: the aggregation keeps counters (time to first byte counted
per distinct value, for exact percentiles) and the last hour of per-client state.

Counting rules:

- a *download* is a successful GET (200/206) of a release binary under ``/releases/``;
  HEAD is never one, and the same client's GET of the same file within a minute of its
  previous one (a resumed or repeated range) is not counted again;
- an *install started* is a successful GET of an install script; it is *completed* when
  the same client then downloads a binary within ten minutes (each start completes once);
- an *update check* is a successful GET of ``/version`` whose User-Agent is ``km/<v>``;
- a *failure* is any answer with status 4xx/5xx, counted per path (query string dropped);
- the cache hit ratio is HIT (and REMOTE_HIT, PARTIAL_HIT) over HIT + MISS lookups.

Clients are counted, never identified: records carry a salted hash of the address, and
no report holds an address, a hash or a full User-Agent.
"""

from __future__ import annotations

import math
import re
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple, Protocol

import msgspec

from .errors import KmError
from .matrix import TARGETS
from .urlspace import Kind, resolve

REPEAT_WINDOW = 60.0  # seconds: the same client's same file again is not a new download
INSTALL_WINDOW = 600.0  # seconds: an install completes with a binary download within this
PRUNE_EVERY = 3600.0  # seconds of log time between forgetting expired per-client state
PRUNE_SIZE = 200_000  # ... or as soon as this many (client, file) pairs are held
HIT_STATUSES = frozenset({"HIT", "REMOTE_HIT", "PARTIAL_HIT"})
MISS_STATUSES = frozenset({"MISS"})
MAX_FAILING_PATHS = 10_000  # distinct failing paths tracked; the rest count as OTHER_PATHS
OTHER_PATHS = "(other paths)"
TOP_FAILURES = 50
UNKNOWN_COUNTRY = "unknown"

_PLATFORM = {t.file_name("km").split("-", 1)[1]: t for t in TARGETS}  # "linux-amd64" -> Target


class Fields(Protocol):
    """What the aggregation reads of one request (a :class:`Record` or a :class:`LogLine`)."""

    @property
    def time(self) -> datetime: ...
    @property
    def method(self) -> str: ...
    @property
    def uri(self) -> str: ...
    @property
    def status(self) -> int: ...
    @property
    def bytes(self) -> int: ...
    @property
    def cache(self) -> str: ...
    @property
    def agent(self) -> str: ...
    @property
    def country(self) -> str: ...
    @property
    def ttfb(self) -> float: ...
    @property
    def client(self) -> str: ...


class Record(NamedTuple):
    """One request from a source other than the local log."""

    time: datetime  # aware (UTC)
    method: str
    uri: str  # as logged: full URL or path, query included
    status: int
    bytes: int
    cache: str
    agent: str
    country: str
    ttfb: float  # seconds
    client: str  # salted hash of the address


@dataclass(frozen=True)
class Window:
    since: datetime
    until: datetime


# ---------------------------------------------------------------------------
# the window
# ---------------------------------------------------------------------------

_DURATION = re.compile(r"^([0-9]+)([smhdw])$", re.ASCII)
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_instant(text: str, what: str) -> datetime:
    """An RFC 3339 time or a date (UTC when no offset is given)."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise KmError(
            f"{what} {text!r} is not a time: use RFC 3339 (2026-01-31T08:00:00Z), a date (2026-01-31)"
            + (", or a duration such as 7d, 12h, 30m" if what == "--since" else "")
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_window(since: str, until: str, now: datetime | None = None) -> Window:
    """``--since 7d`` (a duration before ``--until``, or a time) and ``--until`` (default now)."""
    end = parse_instant(until, "--until") if until else (now or datetime.now(UTC))
    m = _DURATION.match(since.strip()) if since else _DURATION.match("7d")
    try:
        start = end - timedelta(seconds=int(m.group(1)) * _UNIT[m.group(2)]) if m else None
    except OverflowError:
        raise KmError(f"--since {since!r} reaches before the year 1") from None
    if start is None:
        start = parse_instant(since, "--since")
    if start >= end:
        raise KmError(f"empty window: --since ({fmt_time(start)}) is not before --until ({fmt_time(end)})")
    return Window(start, end)


def fmt_time(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------------
# classification of paths
# ---------------------------------------------------------------------------


class _Class(NamedTuple):
    kind: str  # binary | install | version | other
    version: str = ""
    os: str = ""
    arch: str = ""


_OTHER = _Class("other")
_BYTES = attrgetter("bytes")
_TTFB = attrgetter("ttfb")
_PLACE = attrgetter("country", "cache")
_TIME = attrgetter("time")


def classify(path: str, binary: str = "km") -> _Class:
    """What a public path is for the counting rules."""
    resolved = resolve(path)
    if resolved is None:
        return _OTHER
    if resolved.kind in (Kind.INSTALL_SH, Kind.INSTALL_PS1):
        return _Class("install")
    if resolved.kind is Kind.VERSION:
        return _Class("version")
    if resolved.kind in (Kind.VERSIONED, Kind.LATEST):
        name = resolved.filename
        prefix = binary + "-"
        if name.startswith(prefix):
            target = _PLATFORM.get(name[len(prefix) :])
            if target is not None and name[len(prefix) :] == target.file_name("km").split("-", 1)[1]:
                version = path.split("/")[2]
                return _Class("binary", version, target.os, target.arch)
    return _OTHER


# ---------------------------------------------------------------------------
# the aggregation
# ---------------------------------------------------------------------------


class Aggregator:
    """Counts records as they stream in (in time order, as both sources give them)."""

    def __init__(self, binary: str = "km") -> None:
        self.binary = binary
        self.agent_prefix = binary + "/"
        self.requests = 0
        self.bytes = 0
        self.ttfb_s: Counter[float] = Counter()  # seconds -> requests (few distinct values)
        self.places: Counter[tuple[str, str]] = Counter()  # (country, cacheStatus) -> requests
        self.failures: Counter[tuple[str, int]] = Counter()
        self._served: Counter[tuple[int, _Class]] = Counter()  # (day since the epoch, binary) -> downloads
        self.update_checks = 0
        self.started = 0
        self.completed = 0
        self._classes: dict[str, tuple[_Class, str]] = {}
        self._last_get: dict[tuple[str, str], float] = {}
        self._pending: dict[str, deque[float]] = {}
        self._pruned = 0.0
        # When set (the second half of a log counted by another process, kmrelease.metrics_split):
        # the rules that depend on earlier requests are recorded here in order, for the first
        # half's aggregation to apply after its own: ("f", path, status) | (kind, t, client, uri).
        self.deferred: list[tuple[Any, ...]] | None = None
        self._shared: dict[str, str] = {}

    def feed(self, blocks: Iterable[Sequence[Fields]]) -> Aggregator:
        """Count blocks of requests (in time order): what every request adds is summed a block
        at a time by C loops (``sum``, ``Counter.update``, ``array.extend``); only failures and
        successful GETs of binaries, install scripts and ``/version`` take the Python path."""
        for block in blocks:
            self.requests += len(block)
            self.bytes += sum(map(_BYTES, block))
            self.ttfb_s.update(map(_TTFB, block))
            self.places.update(map(_PLACE, block))  # one pass for two counters: split in report()
            self._count(block)
        return self

    def _count(self, block: Sequence[Fields]) -> None:
        """The counting rules, for the requests of a block that they concern (one loop: hot).
        Expired per-client state is forgotten between blocks (it never changes a count)."""
        classes, deferred, shared, download = self._classes, self.deferred, self._shared, self._download
        agent, t = self.agent_prefix, 0.0
        for r in block:
            status = r.status
            if status >= 400:
                if deferred is not None:
                    deferred.append(("f", path_of(r.uri), status))
                else:
                    self._failure(path_of(r.uri), status)
                continue
            if (status != 200 and status != 206) or r.method != "GET":
                continue
            cls, path = classes.get(r.uri) or self._classify(r.uri)
            kind = cls.kind
            if kind == "binary" or kind == "install":
                t = r.time.timestamp()
                if deferred is None:
                    download(kind, cls, path, r.client, t)
                else:  # one string object per distinct client and URI: small to hold and to send
                    deferred.append(
                        (kind, t, shared.setdefault(r.client, r.client), shared.setdefault(r.uri, r.uri))
                    )
            elif kind == "version" and r.agent.startswith(agent):
                self.update_checks += 1
        if deferred is None and (t > self._pruned + PRUNE_EVERY or len(self._last_get) > PRUNE_SIZE):
            self._prune(t)

    def apply(self, other: Aggregator) -> None:
        """Add what ``other`` counted of the requests that came after this one's, and apply its
        deferred rules in their order: the same counts as one aggregation over both."""
        self.requests += other.requests
        self.bytes += other.bytes
        self.ttfb_s.update(other.ttfb_s)
        self.places.update(other.places)
        self.update_checks += other.update_checks
        for event in other.deferred or ():
            if event[0] == "f":
                self._failure(event[1], event[2])
                continue
            kind, t, client, uri = event
            cls, path = self._classes.get(uri) or self._classify(uri)
            self._download(kind, cls, path, client, t)
            if t > self._pruned + PRUNE_EVERY:
                self._prune(t)

    def _download(self, kind: str, cls: _Class, path: str, client: str, t: float) -> None:
        """The rules that depend on earlier requests: a binary download (the same client's same
        file again within a minute is not counted) completes a pending install; an install
        script starts one."""
        if kind == "install":
            self.started += 1
            self._pending.setdefault(client, deque()).append(t)
            return
        key = (client, path)
        last = self._last_get.get(key, -REPEAT_WINDOW)
        self._last_get[key] = t
        if t - last >= REPEAT_WINDOW:
            self._served[(int(t // 86400), cls)] += 1
            if client in self._pending:
                self._complete(self._pending[client], t)

    def _complete(self, starts: deque[float], t: float) -> None:
        """A download at ``t`` completes the client's oldest install started within ten minutes."""
        while starts and t - starts[0] > INSTALL_WINDOW:
            starts.popleft()
        if starts:
            starts.popleft()
            self.completed += 1

    def _classify(self, uri: str) -> tuple[_Class, str]:
        if len(self._classes) > 4096:
            self._classes.clear()
        path = path_of(uri)
        found = self._classes[uri] = (classify(path, self.binary), path)
        return found

    def _failure(self, path: str, status: int) -> None:
        key = (path, status)
        if key not in self.failures and len(self.failures) >= MAX_FAILING_PATHS:
            key = (OTHER_PATHS, status)
        self.failures[key] += 1

    def _prune(self, now: float) -> None:
        """Forget what no later request can match (in place: :meth:`_count` holds the dicts)."""
        self._pruned = now
        for key in [k for k, t in self._last_get.items() if now - t >= REPEAT_WINDOW]:
            del self._last_get[key]
        for client in [c for c, q in self._pending.items() if not q or now - q[-1] > INSTALL_WINDOW]:
            del self._pending[client]

    def report(self, window: Window) -> dict[str, Any]:
        """The stable JSON shape of SPEC §15 (plus ``requests`` and ``downloads_per_day``)."""
        failures = sorted(self.failures.items(), key=lambda kv: (-kv[1], kv[0][0], kv[0][1]))
        downloads: Counter[tuple[str, str, str]] = Counter()
        per_day: Counter[tuple[int, str, str]] = Counter()
        for (day, cls), n in self._served.items():
            downloads[(cls.version, cls.os, cls.arch)] += n
            per_day[(day, cls.os, cls.arch)] += n
        countries: Counter[str] = Counter()
        caches: Counter[str] = Counter()
        for (country, cache), n in self.places.items():
            countries[country or UNKNOWN_COUNTRY] += n
            caches[cache.upper()] += n
        hits = sum(n for c, n in caches.items() if c in HIT_STATUSES)
        lookups = hits + sum(n for c, n in caches.items() if c in MISS_STATUSES)
        return {
            "window": {"since": fmt_time(window.since), "until": fmt_time(window.until)},
            "downloads": [
                {"version": v, "os": o, "arch": a, "count": n} for (v, o, a), n in sorted(downloads.items())
            ],
            "installs": {"started": self.started, "completed": self.completed},
            "update_checks": self.update_checks,
            "failures": [{"path": p, "status": s, "count": n} for (p, s), n in failures[:TOP_FAILURES]],
            "countries": [
                {"country": c, "count": n}
                for c, n in sorted(countries.items(), key=lambda kv: (-kv[1], kv[0]))
            ],
            "cache_hit_ratio": round(hits / lookups, 4) if lookups else 0.0,
            "bytes": self.bytes,
            "ttfb_ms": percentiles(self.ttfb_s),
            "requests": self.requests,
            "downloads_per_day": [
                {"day": _day(d), "os": o, "arch": a, "count": n} for (d, o, a), n in sorted(per_day.items())
            ],
        }


def _day(index: int) -> str:
    return datetime.fromtimestamp(index * 86400, UTC).strftime("%Y-%m-%d")


def percentiles(counts: Counter[float]) -> dict[str, float]:
    """Nearest-rank p50/p90/p99 of seconds counted by value, in milliseconds (0.0 for none)."""
    n = sum(counts.values())
    if not n:
        return {"p50": 0.0, "p90": 0.0, "p99": 0.0}
    ranks = {name: max(1, math.ceil(p * n)) for name, p in (("p50", 0.50), ("p90", 0.90), ("p99", 0.99))}
    found: dict[str, float] = {}
    seen = 0
    for value in sorted(counts):
        seen += counts[value]
        for name, rank in ranks.items():
            if name not in found and seen >= rank:
                found[name] = round(value * 1000.0, 3)
        if len(found) == len(ranks):
            break
    return found


# ---------------------------------------------------------------------------
# the local source: the edge's JSON-lines log
# ---------------------------------------------------------------------------


def path_of(uri: str) -> str:
    """The path of a request URI (``http://host:port/x?q`` or ``/x?q``)."""
    start = uri.find("://")
    if start >= 0:
        slash = uri.find("/", start + 3)
        uri = uri[slash:] if slash >= 0 else "/"
    cut = uri.find("?")
    return uri[:cut] if cut >= 0 else uri


class LogLine(
    msgspec.Struct,
    gc=False,  # no field can hold a cycle: a million lines never wake the garbage collector
    rename={
        "method": "httpMethod",
        "uri": "requestUri",
        "status": "httpStatusCode",
        "bytes": "responseBytes",
        "cache": "cacheStatus",
        "agent": "userAgent",
        "country": "clientCountry",
        "ttfb": "timeToFirstByte",
        "client": "clientIpHash",
    },
):
    """A line of the local log: Front Door's field names, read into the names of :class:`Record`."""

    time: datetime
    method: str = ""
    uri: str = "/"
    status: int = 0
    bytes: int = 0
    cache: str = ""
    agent: str = ""
    country: str = ""
    ttfb: float = 0.0
    client: str = ""


@dataclass
class LocalStats:
    lines: int = 0
    malformed: int = 0


CHUNK = 1 << 20  # bytes read and decoded at a time


def _chunks(fh: BinaryIO, end: int | None = None) -> Iterator[bytes]:
    """The file from its position in blocks of whole lines (the last one may lack its newline),
    up to ``end`` (a line start) or its end. Read, not memory-mapped: a log truncated or rotated
    while it is read ends the blocks early instead of killing the process with SIGBUS."""
    rest = b""
    while block := fh.read(CHUNK if end is None else max(0, min(CHUNK, end - fh.tell()))):
        block = rest + block
        cut = block.rfind(b"\n") + 1
        rest = block[cut:]
        if cut:
            yield block[:cut]
    if rest:
        yield rest


_STRICT = msgspec.json.Decoder(LogLine)  # numbers as numbers, as the local edge writes them
_LENIENT = msgspec.json.Decoder(LogLine, strict=False)  # "200" is 200, as Front Door writes it


def _decode(chunk: bytes, stats: LocalStats) -> list[LogLine]:
    """A block of lines at once; line by line when one of them is not a record."""
    for decoder in (_STRICT, _LENIENT):
        try:
            lines = decoder.decode_lines(chunk)
        except msgspec.DecodeError:
            continue
        stats.lines += len(lines)
        return lines
    good = []
    for line in bytes(chunk).splitlines():
        if not line.strip():
            continue
        stats.lines += 1
        try:
            good.append(_LENIENT.decode(line))
        except msgspec.DecodeError:
            stats.malformed += 1
    return good


def open_log(path: Path) -> BinaryIO:
    try:
        return path.open("rb")
    except FileNotFoundError:
        raise KmError(f"no access log at {path}: `inv serve` writes one, or pass --log FILE") from None
    except OSError as exc:
        raise KmError(f"cannot read the access log {path}: {exc.strerror or exc}") from None


def read_local(
    path: Path, window: Window, stats: LocalStats | None = None, start: int = 0, end: int | None = None
) -> Iterator[list[LogLine]]:
    """The lines of ``path`` inside the window, a block at a time (those from byte ``start``, a
    line start, up to ``end``, when given)."""
    stats = stats if stats is not None else LocalStats()
    with open_log(path) as fh:
        fh.seek(start)
        for chunk in _chunks(fh, end):
            block = _in_window(_decode(chunk, stats), window)
            if block:
                yield block


def _in_window(block: list[LogLine], window: Window) -> list[LogLine]:
    """The lines of a block inside the window (times without an offset are UTC)."""
    if not block:
        return block
    try:
        first, last = min(map(_TIME, block)), max(map(_TIME, block))
    except TypeError:  # aware and naive times mixed
        first = last = None
    if first is None or first.tzinfo is None or last is None or last.tzinfo is None:
        for r in block:
            if r.time.tzinfo is None:
                r.time = r.time.replace(tzinfo=UTC)
        first, last = min(map(_TIME, block)), max(map(_TIME, block))
    if window.since <= first and last < window.until:
        return block
    if last < window.since or first >= window.until:
        return []
    return [r for r in block if window.since <= r.time < window.until]


# ---------------------------------------------------------------------------
# inv metrics
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricsRequest:
    source: str = "local"  # local | azure
    log: Path | None = None  # local: the access log (default logs/access.jsonl)
    since: str = "7d"
    until: str = ""
    fmt: str = "table"
    out: Path | None = None
    workspace: str = ""  # azure: the Log Analytics workspace ID (GUID)
    binary: str = "km"


def collect(req: MetricsRequest, window: Window, warn: Any, **azure: Any) -> dict[str, Any]:
    """Feed the chosen source through one aggregation; the report."""
    agg = Aggregator(req.binary)
    if req.source == "local":
        from .accesslog import default_log_path
        from .metrics_split import feed_local

        stats = feed_local(agg, req.log or default_log_path(), window)
        if stats.malformed:
            warn(f"{stats.malformed} of {stats.lines} lines of the access log are not records: skipped")
    elif req.source == "azure":
        from .extras import needs_extra

        with needs_extra("azure", "inv metrics --source azure"):
            from .logquery import read_azure

            agg.feed(read_azure(req.workspace, window, **azure))
    else:
        raise KmError(f"--source must be local or azure, not {req.source!r}")
    if agg.requests == 0:
        warn(
            f"no requests between {fmt_time(window.since)} and {fmt_time(window.until)} ({req.source} source)"
        )
    return agg.report(window)


def run(req: MetricsRequest, warn: Any, now: datetime | None = None, **azure: Any) -> str:
    """``inv metrics``: the report in ``req.fmt``, written to ``req.out`` or returned for stdout."""
    from .metrics_render import FORMATS, render

    if req.fmt not in FORMATS:
        raise KmError(f"--format must be one of {', '.join(FORMATS)}, not {req.fmt!r}")
    window = parse_window(req.since, req.until, now)
    text = render(collect(req, window, warn, **azure), req.fmt)
    if req.out is None:
        return text
    try:
        req.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = req.out.with_name(f".{req.out.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(req.out)
    except OSError as exc:
        raise KmError(f"cannot write {req.out}: {exc.strerror or exc}") from None
    warn(f"wrote the {req.fmt} report to {req.out}")
    return ""
