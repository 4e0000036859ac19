"""``inv metrics``: what the CDN did, from its access log (SPEC §15).

One streaming aggregation (:class:`Aggregator`) is fed record by record by a source: the
local edge's JSON-lines log (:func:`read_local`) or Azure Front Door's access log in Log
Analytics (:mod:`kmrelease.logquery`). Nothing holds the log whole: the aggregation keeps
counters, one float per request for the time-to-first-byte percentiles, and the last
minutes of per-client state (pruned as time advances).

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

import json
import math
import re
from array import array
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from .errors import KmError
from .matrix import TARGETS
from .urlspace import Kind, resolve

REPEAT_WINDOW = 60.0  # seconds: the same client's same file again is not a new download
INSTALL_WINDOW = 600.0  # seconds: an install completes with a binary download within this
HIT_STATUSES = frozenset({"HIT", "REMOTE_HIT", "PARTIAL_HIT"})
MISS_STATUSES = frozenset({"MISS"})
MAX_FAILING_PATHS = 10_000  # distinct failing paths tracked; the rest count as OTHER_PATHS
OTHER_PATHS = "(other paths)"
TOP_FAILURES = 50
UNKNOWN_COUNTRY = "unknown"

_PLATFORM = {t.filename.split("-", 1)[1]: t for t in TARGETS}  # "linux-amd64" -> Target


class Record(NamedTuple):
    """One request, normalized from either source."""

    time: float  # epoch seconds, UTC
    method: str
    path: str  # no scheme, host or query
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

    @property
    def start(self) -> float:
        return self.since.timestamp()

    @property
    def end(self) -> float:
        return self.until.timestamp()


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
    start = end - timedelta(seconds=int(m.group(1)) * _UNIT[m.group(2)]) if m else None
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
            if target is not None and name[len(prefix) :] == target.filename.split("-", 1)[1]:
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
        self.hits = 0
        self.lookups = 0
        self.ttfb_ms: array[float] = array("d")
        self.countries: Counter[str] = Counter()
        self.failures: Counter[tuple[str, int]] = Counter()
        self.downloads: Counter[tuple[str, str, str]] = Counter()
        self.per_day: Counter[tuple[str, str, str]] = Counter()
        self.update_checks = 0
        self.started = 0
        self.completed = 0
        self._classes: dict[str, _Class] = {}
        self._last_get: dict[tuple[str, str], float] = {}
        self._pending: dict[str, deque[float]] = {}
        self._pruned = 0.0

    def feed(self, records: Iterable[Record]) -> Aggregator:
        add = self.add
        for r in records:
            add(r)
        return self

    def add(self, r: Record) -> None:
        self.requests += 1
        self.bytes += r.bytes
        self.ttfb_ms.append(r.ttfb * 1000.0)
        self.countries[r.country or UNKNOWN_COUNTRY] += 1
        if r.cache in HIT_STATUSES:
            self.hits += 1
            self.lookups += 1
        elif r.cache in MISS_STATUSES:
            self.lookups += 1
        if r.status >= 400:
            self._failure(r.path, r.status)
            return
        if r.method != "GET" or r.status not in (200, 206):
            return
        cls = self._classes.get(r.path)
        if cls is None:
            if len(self._classes) > 4096:
                self._classes.clear()
            cls = self._classes[r.path] = classify(r.path, self.binary)
        if cls.kind == "binary":
            self._download(r, cls)
        elif cls.kind == "install":
            self.started += 1
            self._pending.setdefault(r.client, deque()).append(r.time)
        elif cls.kind == "version" and r.agent.startswith(self.agent_prefix):
            self.update_checks += 1
        if r.time - self._pruned > 2 * REPEAT_WINDOW:
            self._prune(r.time)

    def _failure(self, path: str, status: int) -> None:
        key = (path, status)
        if key not in self.failures and len(self.failures) >= MAX_FAILING_PATHS:
            key = (OTHER_PATHS, status)
        self.failures[key] += 1

    def _download(self, r: Record, cls: _Class) -> None:
        key = (r.client, r.path)
        last = self._last_get.get(key)
        self._last_get[key] = r.time
        if last is not None and r.time - last < REPEAT_WINDOW:
            return
        self.downloads[(cls.version, cls.os, cls.arch)] += 1
        day = datetime.fromtimestamp(r.time, UTC).strftime("%Y-%m-%d")
        self.per_day[(day, cls.os, cls.arch)] += 1
        pending = self._pending.get(r.client)
        while pending and r.time - pending[0] > INSTALL_WINDOW:
            pending.popleft()
        if pending:
            pending.popleft()
            self.completed += 1

    def _prune(self, now: float) -> None:
        self._pruned = now
        self._last_get = {k: t for k, t in self._last_get.items() if now - t < REPEAT_WINDOW}
        for client in [c for c, q in self._pending.items() if not q or now - q[-1] > INSTALL_WINDOW]:
            del self._pending[client]

    def report(self, window: Window) -> dict[str, Any]:
        """The stable JSON shape of SPEC §15 (plus ``requests`` and ``downloads_per_day``)."""
        failures = sorted(self.failures.items(), key=lambda kv: (-kv[1], kv[0][0], kv[0][1]))
        return {
            "window": {"since": fmt_time(window.since), "until": fmt_time(window.until)},
            "downloads": [
                {"version": v, "os": o, "arch": a, "count": n}
                for (v, o, a), n in sorted(self.downloads.items())
            ],
            "installs": {"started": self.started, "completed": self.completed},
            "update_checks": self.update_checks,
            "failures": [{"path": p, "status": s, "count": n} for (p, s), n in failures[:TOP_FAILURES]],
            "countries": [
                {"country": c, "count": n}
                for c, n in sorted(self.countries.items(), key=lambda kv: (-kv[1], kv[0]))
            ],
            "cache_hit_ratio": round(self.hits / self.lookups, 4) if self.lookups else 0.0,
            "bytes": self.bytes,
            "ttfb_ms": percentiles(self.ttfb_ms),
            "requests": self.requests,
            "downloads_per_day": [
                {"day": d, "os": o, "arch": a, "count": n} for (d, o, a), n in sorted(self.per_day.items())
            ],
        }


def percentiles(values: array[float]) -> dict[str, float]:
    """Nearest-rank p50/p90/p99 in milliseconds (0.0 for no values)."""
    if not values:
        return {"p50": 0.0, "p90": 0.0, "p99": 0.0}
    ordered = sorted(values)
    n = len(ordered)

    def rank(p: float) -> float:
        return round(ordered[max(0, math.ceil(p * n) - 1)], 3)

    return {"p50": rank(0.50), "p90": rank(0.90), "p99": rank(0.99)}


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


def record_of(d: dict[str, Any]) -> Record:
    """A log line's fields (Front Door names; numbers as numbers or strings) as a record."""
    return Record(
        datetime.fromisoformat(d["time"]).timestamp(),
        str(d.get("httpMethod") or d.get("method") or ""),
        path_of(str(d.get("requestUri") or "/")),
        int(d.get("httpStatusCode") or 0),
        int(d.get("responseBytes") or 0),
        str(d.get("cacheStatus") or "").upper(),
        str(d.get("userAgent") or ""),
        str(d.get("clientCountry") or ""),
        float(d.get("timeToFirstByte") or 0.0),
        str(d.get("clientIpHash") or ""),
    )


@dataclass
class LocalStats:
    lines: int = 0
    malformed: int = 0


def read_local(path: Path, window: Window, stats: LocalStats | None = None) -> Iterator[Record]:
    """The records of ``path`` inside the window, one line at a time."""
    stats = stats if stats is not None else LocalStats()
    start, end = window.start, window.end
    loads = json.loads
    try:
        fh = path.open("rb")
    except FileNotFoundError:
        raise KmError(f"no access log at {path}: `inv serve` writes one, or pass --log FILE") from None
    except OSError as exc:
        raise KmError(f"cannot read the access log {path}: {exc.strerror or exc}") from None
    with fh:
        for line in fh:
            stats.lines += 1
            try:
                r = record_of(loads(line))
            except (ValueError, KeyError, TypeError, AttributeError):
                stats.malformed += 1
                continue
            if start <= r.time < end:
                yield r


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

        stats = LocalStats()
        agg.feed(read_local(req.log or default_log_path(), window, stats))
        if stats.malformed:
            warn(f"{stats.malformed} of {stats.lines} lines of the access log are not records: skipped")
    elif req.source == "azure":
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
