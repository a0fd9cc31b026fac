"""The audit report as one self-contained HTML page (inline CSS and SVG, no scripts, nothing fetched).

Every string that came from the log (producer ids, streams, details) is escaped: the page shows hostile input,
it never runs it."""

from __future__ import annotations

import datetime as dt
import html
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cloud_workers.audit._ledger import StreamSummary

if TYPE_CHECKING:
    from cloud_workers.audit._replay import ReplayReport

__all__ = ["render_report", "write_report"]

_BINS = 60
_COLOURS = {"verified": "#2e7d32", "duplicate": "#9e9e9e", "bad": "#c62828"}

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:24px;color:#1b1b1b}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px}
.muted{color:#616161} code{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:12.5px}
.verdict{display:inline-block;padding:6px 14px;border-radius:6px;color:#fff;font-weight:700;margin:10px 0}
.verdict.ok{background:#2e7d32} .verdict.bad{background:#c62828}
dl.summary{display:grid;grid-template-columns:max-content auto;gap:2px 14px;margin:8px 0}
dl.summary dt{color:#616161} dl.summary dd{margin:0;font-weight:600}
table{border-collapse:collapse;width:100%;margin-top:6px}
th,td{border-bottom:1px solid #e0e0e0;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#f5f5f5;font-weight:600} td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.chain-broken td.chain{color:#c62828;font-weight:700} tr.chain-ok td.chain{color:#2e7d32;font-weight:700}
.first-bad{background:#ffebee;border-left:4px solid #c62828;padding:8px 12px;margin:8px 0}
.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px;vertical-align:middle}
svg.timeline{display:block}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _time(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def _gaps(summary: StreamSummary) -> str:
    gaps = summary.gaps()
    if not gaps:
        return "none"
    text = ", ".join(f"{a}" if a == b else f"{a}&ndash;{b}" for a, b in gaps)
    return f"seq {text} ({summary.missing()} missing)"


def _first_bad(bad: dict[str, Any] | None) -> str:
    if bad is None:
        return "&mdash;"
    return (
        f'<span class="offset">partition {_e(bad["partition"])} offset {_e(bad["offset"])}</span>: '
        f'<strong class="reason">{_e(bad["reason"])}</strong> <span class="muted">{_e(bad.get("detail", ""))}</span>'
    )


def _timeline(summary: StreamSummary, start_ms: int, end_ms: int, width: int = 360, height: int = 18) -> str:
    bins = summary.timeline(_BINS, start_ms, end_ms)
    w = width / _BINS
    rects = []
    for i, (v, d, b) in enumerate(bins):
        if v + d + b == 0:
            continue
        colour = _COLOURS["bad"] if b else _COLOURS["verified"] if v else _COLOURS["duplicate"]
        rects.append(
            f'<rect x="{i * w:.2f}" y="2" width="{max(w - 0.6, 0.6):.2f}" height="{height - 4}" fill="{colour}">'
            f"<title>{v} verified, {d} duplicate, {b} bad</title></rect>"
        )
    return (
        f'<svg class="timeline" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="timeline"><rect width="{width}" height="{height}" fill="#fafafa"/>{"".join(rects)}</svg>'
    )


def _stream_rows(summaries: list[StreamSummary], start_ms: int, end_ms: int) -> str:
    rows = []
    for s in summaries:
        status = "chain-ok" if s.chain_ok else "chain-broken"
        rows.append(
            f'<tr class="{status}" data-producer="{_e(s.producer_id)}" data-stream="{_e(s.stream)}">'
            f"<td><code>{_e(s.producer_id) or '<em>unreadable</em>'}</code></td><td><code>{_e(s.stream)}</code></td>"
            f'<td class="num">{s.records}</td>'
            f'<td class="num first-seq">{_e(s.first_seq if s.first_seq is not None else "-")}</td>'
            f'<td class="num last-seq">{_e(s.last_seq if s.last_seq is not None else "-")}</td>'
            f'<td class="chain">{"intact" if s.chain_ok else "BROKEN"}</td>'
            f'<td class="gaps">{_gaps(s)}</td><td class="first-bad-cell">{_first_bad(s.first_bad)}</td>'
            f"<td>{_timeline(s, start_ms, end_ms)}</td></tr>"
        )
    return "".join(rows)


def _bad_rows(bad: list[dict[str, Any]]) -> str:
    return "".join(
        f'<tr><td class="num">{_e(b["partition"])}</td><td class="num">{_e(b["offset"])}</td>'
        f'<td><code>{_e(b["producer_id"])}</code></td><td class="num">{_e(b["seq"])}</td>'
        f'<td><strong>{_e(b["reason"])}</strong></td><td class="muted">{_e(b["detail"])}</td></tr>'
        for b in sorted(bad, key=lambda b: (b["partition"], b["offset"]))
    )


def render_report(report: ReplayReport, *, generated_at: dt.datetime | None = None) -> str:
    """The whole page for ``report``."""
    summaries = report.streams.summaries()
    ranges = [r for s in summaries if (r := s.time_range()) is not None]
    start_ms = min((r[0] for r in ranges), default=0)
    end_ms = max((r[1] for r in ranges), default=0)
    ok = report.bad == 0 and all(s.chain_ok for s in summaries)
    when = (generated_at or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%d %H:%M:%SZ")
    verdict = (
        '<div id="verdict" class="verdict ok">Every envelope verified: chains intact</div>'
        if ok
        else '<div id="verdict" class="verdict bad">Tampering or loss detected</div>'
    )
    first = ""
    if report.first_bad is not None:
        fb = report.first_bad
        first = (
            f'<div class="first-bad" id="first-bad">First bad record: partition {_e(fb["partition"])}, offset '
            f"{_e(fb['offset'])} &mdash; <strong>{_e(fb['reason'])}</strong> (producer <code>"
            f'{_e(fb["producer_id"])}</code>, seq {_e(fb["seq"])}) <span class="muted">{_e(fb["detail"])}</span></div>'
        )
    span = f"{_time(start_ms)} &rarr; {_time(end_ms)}" if ranges else "no records"
    listed = ""
    if report.bad_offsets:
        more = report.bad - len(report.bad_offsets)
        note = f'<p class="muted">{more} more not listed.</p>' if more > 0 else ""
        listed = (
            '<h2>Bad records</h2><table id="bad"><thead><tr><th>partition</th><th>offset</th><th>producer</th>'
            "<th>seq</th><th>reason</th><th>detail</th></tr></thead><tbody>"
            f"{_bad_rows(report.bad_offsets)}</tbody></table>{note}"
        )
    legend = "".join(f'<span style="background:{c}"></span>{n}' for n, c in _COLOURS.items())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Audit replay: {_e(report.topic)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_CSS}</style></head>
<body>
<h1>Audit replay of <code id="topic">{_e(report.topic)}</code></h1>
<div class="muted">Generated {when} by <code>medkiosk audit replay</code>. Verified with public keys only:
nothing was decrypted.</div>
{verdict}
<dl class="summary" id="summary">
<dt>records</dt><dd id="records">{report.records}</dd>
<dt>verified</dt><dd id="verified">{report.verified}</dd>
<dt>duplicates</dt><dd id="duplicates">{report.duplicates}</dd>
<dt>bad</dt><dd id="bad-count">{report.bad}</dd>
<dt>producers</dt><dd>{len(report.producers)}</dd>
<dt>streams</dt><dd>{len(summaries)}</dd>
<dt>log time</dt><dd>{span}</dd>
</dl>
{first}
<h2>Producers and streams</h2>
<p class="muted">One hash chain per (producer, stream). Gaps are sequence numbers with no authentic envelope
between the first and last one read. Timeline: the log's record times, left to right.
<span class="legend">{legend}</span></p>
<table id="streams"><thead><tr><th>producer</th><th>stream</th><th>records</th><th>first seq</th><th>last seq</th>
<th>chain</th><th>gaps</th><th>first bad record</th><th>timeline</th></tr></thead>
<tbody>{_stream_rows(summaries, start_ms, end_ms)}</tbody></table>
{listed}
</body></html>
"""


def write_report(report: ReplayReport, path: Path) -> tuple[Path, Path]:
    """Write the page to ``path`` and the machine-readable report beside it (same name, ``.json``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(report), encoding="utf-8")
    data = path.with_suffix(".json")
    data.write_text(json.dumps({**report.to_json(), "bad_records": report.bad_offsets}, indent=2) + "\n")
    return path, data
