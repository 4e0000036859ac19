"""The three forms of the ``inv metrics`` report: a rich table, stable JSON, one HTML file.

The HTML is self-contained (inline CSS and SVG, no script, no external URL): downloads
per day by platform as stacked bars, the cache hit ratio as a bar split in hits and
misses, and the failures per path as horizontal bars. Each platform has a fixed colour
(:data:`PLATFORM_COLOURS`) so a person, and the screenshot test, can tell them apart.
"""

from __future__ import annotations

import json
from html import escape
from io import StringIO
from typing import Any

from rich.console import Console
from rich.table import Table

from .matrix import TARGETS

PLATFORM_COLOURS: dict[str, str] = {
    "linux/amd64": "#1f77b4",
    "linux/arm64": "#2ca02c",
    "darwin/amd64": "#9467bd",
    "darwin/arm64": "#e377c2",
    "windows/amd64": "#ff7f0e",
    "windows/arm64": "#8c564b",
}
HIT_COLOUR = "#17becf"
MISS_COLOUR = "#bcbd22"
FAILURE_COLOUR = "#d62728"
FORMATS = ("table", "json", "html")


def to_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2) + "\n"


# ---------------------------------------------------------------------------
# table
# ---------------------------------------------------------------------------


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left", show_edge=False)
    for i, col in enumerate(columns):
        table.add_column(col, justify="right" if i == len(columns) - 1 else "left")
    return table


def to_table(report: dict[str, Any], width: int = 100) -> str:
    """The report as rich tables (plain text when not on a terminal)."""
    out = StringIO()
    console = Console(file=out, width=width, force_terminal=False, highlight=False)
    w = report["window"]
    console.print(f"km metrics {w['since']} .. {w['until']}: {report['requests']} requests")
    summary = _table("Summary", "what", "value")
    summary.add_row("installs started", str(report["installs"]["started"]))
    summary.add_row("installs completed", str(report["installs"]["completed"]))
    summary.add_row("update checks", str(report["update_checks"]))
    summary.add_row("cache hit ratio", f"{report['cache_hit_ratio']:.2%}")
    summary.add_row("bytes served", f"{report['bytes']:,}")
    t = report["ttfb_ms"]
    summary.add_row("time to first byte (ms)", f"p50 {t['p50']}  p90 {t['p90']}  p99 {t['p99']}")
    console.print(summary)
    downloads = _table("Downloads", "version", "platform", "count")
    for d in report["downloads"]:
        downloads.add_row(d["version"], f"{d['os']}/{d['arch']}", str(d["count"]))
    console.print(downloads)
    failures = _table("Failures", "path", "status", "count")
    for f in report["failures"][:10]:
        failures.add_row(f["path"], str(f["status"]), str(f["count"]))
    console.print(failures)
    countries = _table("Requests per country", "country", "count")
    for c in report["countries"][:10]:
        countries.add_row(c["country"], str(c["count"]))
    console.print(countries)
    return out.getvalue()


# ---------------------------------------------------------------------------
# html
# ---------------------------------------------------------------------------

CSS = """
body{font-family:sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
table{border-collapse:collapse}td,th{padding:3px 10px;border-bottom:1px solid #ddd;text-align:left}
td.n{text-align:right}.legend span{display:inline-block;margin-right:14px}
.sw{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:middle}
svg text{font-size:11px;fill:#333}
"""


def _platform(d: dict[str, Any]) -> str:
    return f"{d['os']}/{d['arch']}"


def _downloads_chart(report: dict[str, Any]) -> str:
    """Stacked bars: one per day, one segment per platform."""
    days = sorted({d["day"] for d in report["downloads_per_day"]})
    if not days:
        return '<p id="downloads-empty">No downloads in this window.</p>'
    totals = {day: 0 for day in days}
    for d in report["downloads_per_day"]:
        totals[d["day"]] += d["count"]
    height, bar, gap, top = 200, 48, 24, max(totals.values())
    width = 60 + len(days) * (bar + gap)
    parts = [f'<svg id="chart-downloads" width="{width}" height="{height + 40}" role="img">']
    order = [t.slug for t in TARGETS]
    for i, day in enumerate(days):
        x, y = 50 + i * (bar + gap), float(height)
        for slug in order:
            count = sum(
                d["count"] for d in report["downloads_per_day"] if d["day"] == day and _platform(d) == slug
            )
            if not count:
                continue
            h = count / top * (height - 10)
            y -= h
            colour = PLATFORM_COLOURS.get(slug, "#777")
            parts.append(
                f'<rect x="{x}" y="{y:.1f}" width="{bar}" height="{h:.1f}" fill="{colour}">'
                f"<title>{escape(day)} {escape(slug)}: {count}</title></rect>"
            )
        parts.append(f'<text x="{x}" y="{height + 16}">{escape(day)}</text>')
        parts.append(f'<text x="{x}" y="{y - 4:.1f}">{totals[day]}</text>')
    parts.append(f'<line x1="45" y1="{height}" x2="{width}" y2="{height}" stroke="#999"/></svg>')
    legend = "".join(
        f'<span><i class="sw" style="background:{PLATFORM_COLOURS[s]}"></i>{escape(s)}</span>'
        for s in order
        if any(_platform(d) == s for d in report["downloads_per_day"])
    )
    return "".join(parts) + f'<div class="legend">{legend}</div>'


def _hit_ratio_chart(report: dict[str, Any]) -> str:
    ratio = float(report["cache_hit_ratio"])
    width, height = 400, 36
    hit = round(ratio * width, 1)
    return (
        f'<svg id="chart-cache" width="{width}" height="{height + 20}" role="img">'
        f'<rect x="0" y="0" width="{hit}" height="{height}" fill="{HIT_COLOUR}"><title>hits</title></rect>'
        f'<rect x="{hit}" y="0" width="{width - hit:.1f}" height="{height}" fill="{MISS_COLOUR}">'
        "<title>misses</title></rect>"
        f'<text x="0" y="{height + 14}">{ratio:.1%} of cache lookups were hits</text></svg>'
    )


def _failures_chart(report: dict[str, Any]) -> str:
    failures = report["failures"][:10]
    if not failures:
        return '<p id="failures-empty">No failures in this window.</p>'
    top = max(f["count"] for f in failures)
    row, label, bar_max = 22, 360, 300
    parts = [f'<svg id="chart-failures" width="{label + bar_max + 60}" height="{row * len(failures) + 8}">']
    for i, f in enumerate(failures):
        y = i * row + 4
        w = max(2.0, f["count"] / top * bar_max)
        parts.append(f'<text x="0" y="{y + 14}">{escape(f["path"][:60])} ({f["status"]})</text>')
        parts.append(
            f'<rect x="{label}" y="{y}" width="{w:.1f}" height="{row - 6}" fill="{FAILURE_COLOUR}"/>'
        )
        parts.append(f'<text x="{label + w + 6:.1f}" y="{y + 14}">{f["count"]}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _rows(items: list[tuple[str, ...]]) -> str:
    return "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{escape(c)}</td>' if i else f"<td>{escape(c)}</td>" for i, c in enumerate(r)
        )
        + "</tr>"
        for r in items
    )


def to_html(report: dict[str, Any]) -> str:
    """One self-contained HTML page: charts and the numbers behind them."""
    w, t = report["window"], report["ttfb_ms"]
    summary = _rows(
        [
            ("requests", str(report["requests"])),
            ("installs started", str(report["installs"]["started"])),
            ("installs completed", str(report["installs"]["completed"])),
            ("update checks", str(report["update_checks"])),
            ("cache hit ratio", f"{report['cache_hit_ratio']:.2%}"),
            ("bytes served", f"{report['bytes']:,}"),
            ("time to first byte p50 / p90 / p99 (ms)", f"{t['p50']} / {t['p90']} / {t['p99']}"),
        ]
    )
    downloads = _rows([(d["version"], _platform(d), str(d["count"])) for d in report["downloads"]])
    countries = _rows([(c["country"], str(c["count"])) for c in report["countries"][:20]])
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>km metrics {escape(w['since'])} .. {escape(w['until'])}</title>"
        f"<style>{CSS}</style></head><body>"
        f"<h1>km metrics {escape(w['since'])} .. {escape(w['until'])}</h1>"
        f'<table id="summary">{summary}</table>'
        f"<h2>Downloads per day by platform</h2>{_downloads_chart(report)}"
        f"<h2>Cache hit ratio</h2>{_hit_ratio_chart(report)}"
        f"<h2>Failures (top paths)</h2>{_failures_chart(report)}"
        f'<h2>Downloads per version</h2><table id="downloads"><tr><th>version</th><th>platform</th>'
        f"<th>count</th></tr>{downloads}</table>"
        f'<h2>Requests per country</h2><table id="countries">{countries}</table>'
        "</body></html>\n"
    )


def render(report: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        return to_json(report)
    if fmt == "html":
        return to_html(report)
    return to_table(report)
