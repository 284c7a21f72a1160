"""The audit report as one self-contained HTML page a DPO can open, read, print and file.

Inline CSS, no scripts, no external assets: the page renders the same offline, from a mail
attachment or an archive in ten years. The two pictures are inline SVG drawn here in pure
Python (`timeline_svg`, `erasures_svg`): records per category by the month they fall due,
with the customers' export-window ends marked, and the erasures per month from the ledger.
Every value from the data (customer ids, categories, titles) goes through `html.escape`;
the report holds no personal data anyway, only ids, categories, counts and dates.
"""

from __future__ import annotations

import calendar
import html
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from dpa.audit.findings import Finding
from dpa.audit.report import Report

__all__ = ["erasures_svg", "render", "timeline_svg"]

# Colour-blind-friendly qualitative palette (Okabe-Ito, then Tableau's muted tones).
PALETTE = (
    "#0072b2",
    "#e69f00",
    "#009e73",
    "#cc79a7",
    "#56b4e9",
    "#d55e00",
    "#f0e442",
    "#6a3d9a",
    "#8c564b",
    "#7f7f7f",
    "#17becf",
    "#bcbd22",
)
DELETED_COLOUR = "#d55e00"
PSEUDONYMISED_COLOUR = "#009e73"
ANONYMISED_COLOUR = "#0072b2"
MAX_ROWS = 50  # affected rows shown per finding; the JSON report has them all
MAX_WINDOW_ROWS = 100
_WIDTH = 960
_CHAR = 6.6  # average width of a character at 11px, to lay out labels without a browser
_SEVERITIES = ("critical", "warning", "info")

_CSS = """
:root{--ink:#1d2733;--muted:#5a6776;--line:#c9d1dc;--soft:#eef2f7;--crit:#b3261e;
--warn:#9a6700;--info:#2a5db0;--ok:#1e7b34}
*{box-sizing:border-box}
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
color:var(--ink);max-width:70rem;margin:1.5rem auto;padding:0 1.2rem}
h1{font-size:1.7rem;margin:.2rem 0}h2{font-size:1.3rem;margin:2rem 0 .6rem;
border-bottom:2px solid var(--soft);padding-bottom:.2rem}h3{font-size:1.05rem;margin:.2rem 0}
.meta{color:var(--muted);margin:.2rem 0}
.verdict{border-radius:.5rem;padding:.7rem 1rem;margin:1rem 0;font-weight:600;color:#fff}
.verdict.critical{background:var(--crit)}.verdict.warning{background:var(--warn)}
.verdict.ok{background:var(--ok)}
.figures{display:grid;grid-template-columns:repeat(auto-fill,minmax(10rem,1fr));gap:.6rem}
.figure{background:var(--soft);border-radius:.5rem;padding:.5rem .8rem}
.figure b{display:block;font-size:1.5rem}.figure span{color:var(--muted);font-size:.85rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0 .8rem;font-size:.9rem}
th,td{border:1px solid var(--line);padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:var(--soft)}td.num{text-align:right;font-variant-numeric:tabular-nums}
.finding{border:1px solid var(--line);border-left:6px solid var(--info);border-radius:.4rem;
padding:.7rem 1rem;margin:.9rem 0;break-inside:avoid}
.finding.critical{border-left-color:var(--crit)}.finding.warning{border-left-color:var(--warn)}
.badge{display:inline-block;border-radius:.8rem;padding:0 .6rem;font-size:.75rem;
font-weight:700;letter-spacing:.04em;color:#fff;vertical-align:middle;margin-right:.4rem}
.badge.critical{background:var(--crit)}.badge.warning{background:var(--warn)}
.badge.info{background:var(--info)}
.todo{background:#fff8e1;border-radius:.3rem;padding:.4rem .6rem;margin:.4rem 0 0}
.none{background:#e8f5e9;border-radius:.4rem;padding:.7rem 1rem}
code{background:var(--soft);border-radius:.2rem;padding:0 .25rem;font-size:.88em}
figure{margin:.6rem 0 1rem}figcaption{color:var(--muted);font-size:.85rem}
svg{width:100%;height:auto;display:block}
svg text{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif}
.empty{border:1px dashed var(--line);border-radius:.4rem;padding:1.2rem;color:var(--muted);
text-align:center}
footer{margin-top:2.5rem;color:var(--muted);font-size:.8rem;border-top:1px solid var(--line);
padding-top:.5rem;word-break:break-all}
@media print{body{margin:0;max-width:none}.finding,figure,table{break-inside:avoid}}
"""


def _h(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _f(value: float) -> str:
    """A coordinate, short and stable."""
    return f"{value:.1f}".removesuffix(".0")


# --- months ---------------------------------------------------------------------------------


def _month_index(month: str) -> int:
    year, _, mon = month.partition("-")
    return int(year) * 12 + int(mon) - 1


def _month_name(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _ticks(top: int) -> list[int]:
    """Round y-axis ticks from 0 to at least `top` (steps of 1, 2 or 5 times a power of 10)."""
    if top <= 1:
        return [0, 1]
    raw = top / 5
    magnitude = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    return [i * step for i in range(math.ceil(top / step) + 1)]


def _label_step(slots: int, slot_width: float) -> int:
    """Label every n-th month so labels ("2026-04") stay at least 60 px apart."""
    return max(1, math.ceil(60 / max(slot_width, 1e-9))) if slots > 1 else 1


def _empty(message: str) -> str:
    return f'<p class="empty">{_h(message)}</p>'


def _legend(items: Sequence[tuple[str, str, str]], y: float) -> tuple[list[str], float]:
    """Legend swatches laid out in rows from the left; returns the parts and the next free y."""
    parts: list[str] = []
    x = 56.0
    for colour, label, css in items:
        width = 22 + len(label) * _CHAR + 18
        if x + width > _WIDTH - 10 and x > 56:
            x, y = 56.0, y + 18
        parts.append(
            f'<g class="legend"><rect class="{css}" x="{_f(x)}" y="{_f(y - 10)}" width="12" '
            f'height="12" fill="{colour}"/><text x="{_f(x + 17)}" y="{_f(y)}" font-size="12">'
            f"{_h(label)}</text></g>"
        )
        x += width
    return parts, y + 12


def _axes(
    left: float, top: float, width: float, height: float, ticks: list[int], y_title: str
) -> list[str]:
    """Y gridlines with their values, the x axis line and the y-axis title."""
    parts = []
    for value in ticks:
        y = top + height - height * value / ticks[-1]
        parts.append(
            f'<line x1="{_f(left)}" x2="{_f(left + width)}" y1="{_f(y)}" y2="{_f(y)}" '
            f'stroke="{"#1d2733" if value == 0 else "#e3e8ef"}"/>'
            f'<text class="tick" x="{_f(left - 6)}" y="{_f(y + 4)}" font-size="11" '
            f'text-anchor="end" fill="#5a6776">{value}</text>'
        )
    mid = top + height / 2
    parts.append(
        f'<text class="axis-title" x="14" y="{_f(mid)}" font-size="12" fill="#5a6776" '
        f'text-anchor="middle" transform="rotate(-90 14 {_f(mid)})">{_h(y_title)}</text>'
    )
    return parts


def _month_labels(
    first: int, slots: int, left: float, slot: float, y: float, x_title: str, centre: float
) -> list[str]:
    step = _label_step(slots, slot)
    parts = [
        f'<text class="month" x="{_f(left + slot * (i + 0.5))}" y="{_f(y)}" font-size="11" '
        f'text-anchor="middle" fill="#1d2733">{_month_name(first + i)}</text>'
        for i in range(0, slots, step)
    ]
    parts.append(
        f'<text class="axis-title" x="{_f(centre)}" y="{_f(y + 22)}" font-size="12" '
        f'text-anchor="middle" fill="#5a6776">{_h(x_title)}</text>'
    )
    return parts


def _svg(height: float, title: str, parts: Iterable[str]) -> str:
    return (
        f'<svg viewBox="0 0 {_WIDTH} {_f(height)}" role="img" aria-label="{_h(title)}">'
        f"<title>{_h(title)}</title>{''.join(parts)}</svg>"
    )


# --- the retention timeline -----------------------------------------------------------------


def _window_position(day: str) -> float:
    """A window end as a fractional month index (the 16th of April is halfway through April)."""
    d = date.fromisoformat(day)
    return d.year * 12 + d.month - 1 + (d.day - 1) / calendar.monthrange(d.year, d.month)[1]


def timeline_svg(
    timeline: Sequence[Mapping[str, Any]], window_ends: Sequence[Mapping[str, Any]] = ()
) -> str:
    """Records per category by the month they fall due, stacked; window ends as vertical markers.

    Months with no records still get their slot, so the x axis is time. Records with no due
    date (held until an event, e.g. the export window's close) get a separate bar on the right.
    """
    counts: dict[tuple[str, str], int] = {}
    for row in timeline:
        if int(row["records"]) > 0:
            key = (str(row["category"]), str(row["month"]))
            counts[key] = counts.get(key, 0) + int(row["records"])
    if not counts and not window_ends:
        return _empty("Nothing to draw: the store holds no records and no export window is set.")
    categories = sorted({c for c, _ in counts})
    colour = {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(categories)}
    dated = {m for _, m in counts if m != "undated"}
    undated = {c: n for (c, m), n in counts.items() if m == "undated"}
    marks = [(_window_position(w["window_end"]), w) for w in window_ends]
    indexes = [_month_index(m) for m in dated] + [int(p) for p, _ in marks]
    first, last = (min(indexes), max(indexes)) if indexes else (0, -1)
    slots = last - first + 1
    totals = {c: sum(n for (k, _), n in counts.items() if k == c) for c in categories}
    items = [(colour[c], f"{c} ({totals[c]})", "swatch") for c in categories]
    if marks:
        items.append(("#b3261e", "export window closes (customer)", "swatch marker-key"))
    parts, y = _legend(items, 22)

    left, right = 56.0, 16.0
    undated_width = 110.0 if undated else 0.0
    plot_width = _WIDTH - left - right - undated_width
    slot = plot_width / max(slots, 1)
    # Marker labels sit in up to four rows above the plot, each placed in the first row free.
    label_rows: list[float] = []  # where each row's last label ends
    placed: list[tuple[float, int, Mapping[str, Any], float | None]] = []  # x, row, w, label x
    unlabelled = 0
    for position, w in sorted(marks, key=lambda m: m[0]):
        x = left + (position - first) * slot
        text_width = len(str(w["customer"])) * _CHAR
        # A label reads to the right of its line, or to the left near the chart's right edge.
        start = x + 3 if x + 3 + text_width <= _WIDTH - 2 else x - 3 - text_width
        free = next((i for i, end in enumerate(label_rows) if end < start), None)
        if free is None and len(label_rows) < 4:
            label_rows.append(0.0)
            free = len(label_rows) - 1
        if free is None:
            unlabelled += 1
            placed.append((x, 0, w, None))
            continue
        label_rows[free] = start + text_width + 6
        placed.append((x, free, w, start))
    top = y + 14 + 15 * len(label_rows)
    plot_height = 240.0
    base = top + plot_height
    peak = max(
        [sum(n for (_, m), n in counts.items() if m == month) for month in dated]
        + [sum(undated.values())]
    )
    ticks = _ticks(peak)
    scale = plot_height / ticks[-1]
    parts += _axes(left, top, plot_width, plot_height, ticks, "records")

    bar_width = min(slot * 0.7, 60.0)
    for i in range(slots):
        month = _month_name(first + i)
        stack = base
        x = left + slot * i + (slot - bar_width) / 2
        for c in categories:
            n = counts.get((c, month), 0)
            if not n:
                continue
            h = n * scale
            stack -= h
            parts.append(
                f'<rect class="bar" x="{_f(x)}" y="{_f(stack)}" width="{_f(bar_width)}" '
                f'height="{_f(h)}" fill="{colour[c]}"><title>{_h(c)}, due {month}: {n} '
                f"records</title></rect>"
            )
    if slots == 0:
        parts.append(
            f'<text x="{_f(left + plot_width / 2)}" y="{_f(top + plot_height / 2)}" '
            f'font-size="13" text-anchor="middle" fill="#5a6776">no record has a due date</text>'
        )
    else:
        parts += _month_labels(
            first, slots, left, slot, base + 16, "month the records fall due", left + plot_width / 2
        )
    if undated:
        x0 = left + plot_width + 14
        parts.append(
            f'<line x1="{_f(x0)}" x2="{_f(x0)}" y1="{_f(top)}" y2="{_f(base)}" '
            f'stroke="#8593a3" stroke-dasharray="4 3"/>'
            f'<line x1="{_f(x0)}" x2="{_f(_WIDTH - right)}" y1="{_f(base)}" y2="{_f(base)}" '
            f'stroke="#1d2733"/>'
        )
        stack = base
        x = x0 + (undated_width - 14 - 44) / 2
        for c in categories:
            n = undated.get(c, 0)
            if not n:
                continue
            h = n * scale
            stack -= h
            parts.append(
                f'<rect class="bar undated" x="{_f(x)}" y="{_f(stack)}" width="44" '
                f'height="{_f(h)}" fill="{colour[c]}"><title>{_h(c)}, no due date: {n} '
                f"records</title></rect>"
            )
        centre = x + 22
        parts.append(
            f'<text class="month" x="{_f(centre)}" y="{_f(base + 16)}" font-size="11" '
            f'text-anchor="middle" fill="#1d2733">undated</text>'
            f'<text x="{_f(centre)}" y="{_f(base + 30)}" font-size="10" text-anchor="middle" '
            f'fill="#5a6776">(no due date)</text>'
        )
    for x, line, w, label_x in placed:
        purged = w.get("status") == "purged"
        stroke = "#7f8a96" if purged else "#b3261e"
        label_y = y + 14 + 15 * line
        parts.append(
            f'<g class="marker"><line x1="{_f(x)}" x2="{_f(x)}" '
            f'y1="{_f(top if label_x is None else label_y + 3)}" y2="{_f(base)}" '
            f'stroke="{stroke}" stroke-width="1.5" stroke-dasharray="5 3"/><title>customer '
            f"{_h(w['customer'])}: export window closes {_h(w['window_end'])} "
            f"({_h(w.get('status', ''))})</title>"
            + (
                ""
                if label_x is None
                else f'<text class="marker-label" x="{_f(label_x)}" y="{_f(label_y)}" '
                f'font-size="11" fill="{stroke}">{_h(w["customer"])}</text>'
            )
            + "</g>"
        )
    height = base + (50 if slots > 0 or undated else 20)
    if unlabelled:
        parts.append(
            f'<text x="{_f(left)}" y="{_f(height - 4)}" font-size="11" fill="#5a6776">'
            f"{unlabelled} window ends are marked without a label: see the table below.</text>"
        )
        height += 6
    return _svg(height, "Records per category by the month they fall due", parts)


# --- erasures -------------------------------------------------------------------------------


_ERASED = (
    ("deleted", DELETED_COLOUR),
    ("pseudonymised", PSEUDONYMISED_COLOUR),
    ("anonymised", ANONYMISED_COLOUR),
)


def erasures_svg(erasures: Sequence[Mapping[str, Any]]) -> str:
    """Records deleted, pseudonymised and anonymised per month (from the ledger), side by side."""
    rows = {str(e["month"]): tuple(int(e.get(what, 0)) for what, _ in _ERASED) for e in erasures}
    rows = {m: v for m, v in rows.items() if any(v)}
    if not rows:
        return _empty("Nothing to draw: the ledger records no erasure yet.")
    parts, y = _legend([(colour, what, "swatch") for what, colour in _ERASED], 22)
    indexes = [_month_index(m) for m in rows]
    first, last = min(indexes), max(indexes)
    slots = last - first + 1
    left, right = 56.0, 16.0
    top = y + 22
    plot_width = _WIDTH - left - right
    plot_height = 200.0
    base = top + plot_height
    slot = plot_width / slots
    ticks = _ticks(max(max(v) for v in rows.values()))
    scale = plot_height / ticks[-1]
    parts += _axes(left, top, plot_width, plot_height, ticks, "records")
    bar = min(slot * 0.26, 30.0)
    for i in range(slots):
        month = _month_name(first + i)
        values = rows.get(month, (0, 0, 0))
        x = left + slot * i + slot / 2 - bar * 1.5
        for offset, ((what, fill), n) in enumerate(zip(_ERASED, values, strict=True)):
            if not n:
                continue
            h = n * scale
            bx = x + offset * bar
            parts.append(
                f'<rect class="bar {what}" x="{_f(bx)}" y="{_f(base - h)}" width="{_f(bar)}" '
                f'height="{_f(h)}" fill="{fill}"><title>{month}: {n} records {what}</title></rect>'
            )
            if bar >= 14:
                parts.append(
                    f'<text class="value" x="{_f(bx + bar / 2)}" y="{_f(base - h - 4)}" '
                    f'font-size="10" text-anchor="middle" fill="#1d2733">{n}</text>'
                )
    parts += _month_labels(
        first, slots, left, slot, base + 16, "month of the erasure", left + plot_width / 2
    )
    return _svg(base + 50, "Records erased per month", parts)


# --- the page -------------------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _prose(text: str) -> str:
    """Escaped text with `command` spans shown as code."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", _h(text))


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def _table(rows: Sequence[Mapping[str, Any]], limit: int, more: str) -> str:
    """A table whose columns are the keys of the rows, in order of first appearance."""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    head = "".join(f"<th>{_h(c.replace('_', ' '))}</th>" for c in columns)
    body = []
    for row in rows[:limit]:
        cells = []
        for c in columns:
            value = row.get(c)
            numeric = isinstance(value, int | float) and not isinstance(value, bool)
            cells.append(f"<td{' class=num' if numeric else ''}>{_h(_cell(value))}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    extra = (
        f'<p class="meta">… and {len(rows) - limit} more {_h(more)}.</p>'
        if len(rows) > limit
        else ""
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{extra}"


def _finding(f: Finding) -> str:
    affected = (
        _table(f.affected, MAX_ROWS, "(the JSON report lists them all)")
        if f.affected
        else '<p class="meta">Nothing specific is affected.</p>'
    )
    return (
        f'<section class="finding {_h(f.severity)}" id="finding-{_h(f.id)}">'
        f'<h3><span class="badge {_h(f.severity)}">{_h(f.severity.upper())}</span>'
        f"{_h(f.title)}</h3>"
        f'<p class="meta">Concerns {_h(f.article)} · check <code>{_h(f.id)}</code></p>'
        f"<h4>What is affected</h4>{affected}"
        f'<p class="todo"><b>What to do:</b> {_prose(f.action)}</p></section>'
    )


def _verdict(report: Report) -> str:
    counts = {s: sum(1 for f in report.findings if f.severity == s) for s in _SEVERITIES}
    said = ", ".join(
        f"{n} {label}"
        for n, label in (
            (counts["critical"], "critical"),
            (counts["warning"], "warning" if counts["warning"] == 1 else "warnings"),
            (counts["info"], "for information"),
        )
        if n
    )
    if counts["critical"]:
        return f'<p class="verdict critical">Action needed: {said}.</p>'
    if counts["warning"]:
        return f'<p class="verdict warning">Attention: {said}.</p>'
    tail = f" ({said})" if said else ""
    return f'<p class="verdict ok">All promises kept{tail}.</p>'


def _figures(report: Report) -> str:
    s = report.summary
    ledger_ok = report.ledger.get("ok", True)
    figures = [
        (s.get("customers", 0), f"customers ({s.get('active_customers', 0)} active)"),
        (s.get("records", 0), "records stored"),
        (s.get("active_holds", 0), "active legal holds"),
        (s.get("export_packages", 0), "export packages kept"),
        (s.get("ledger_events", 0), "ledger events"),
        ("intact" if ledger_ok else "BROKEN", "ledger chain"),
    ]
    return (
        '<div class="figures">'
        + "".join(
            f'<div class="figure"><b>{_h(value)}</b><span>{_h(label)}</span></div>'
            for value, label in figures
        )
        + "</div>"
    )


def render(report: Report) -> str:
    """The report as one self-contained HTML page (inline CSS and SVG, no scripts)."""
    title = f"Audit report: {report.provider}"
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_h(title)}, {_h(report.as_of.astimezone(UTC).date().isoformat())}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<header><h1>{_h(title)}</h1>",
        f'<p class="meta">As of <b>{_h(_iso(report.as_of))}</b> · generated '
        f"{_h(_iso(report.generated_at))} · register version {_h(report.register_version)} "
        f"(SHA-256 <code>{_h(report.register_sha256[:16])}…</code>)</p>",
        _verdict(report),
        "</header><section id=summary><h2>Summary</h2>",
        _figures(report),
        "</section><section id=findings><h2>Findings</h2>",
    ]
    if report.findings:
        parts.append(
            '<p class="meta">Most severe first. Each finding names the article or contract '
            "clause it concerns, what is affected and what to do.</p>"
        )
        order = {s: i for i, s in enumerate(_SEVERITIES)}
        for f in sorted(report.findings, key=lambda f: (order.get(f.severity, 9), f.id)):
            parts.append(_finding(f))
    else:
        parts.append('<p class="none"><b>No findings:</b> every check passed.</p>')
    parts.append("</section><section id=retention><h2>Retention timeline</h2>")
    parts.append(
        "<figure><figcaption>Records per data category by the month they fall due for erasure "
        "or reduction (pseudonymised or anonymised; held records included). Dashed red lines: a customer's export "
        "window closes (grey: already purged).</figcaption>"
        + timeline_svg(report.timeline, report.window_ends)
        + "</figure>"
    )
    if report.window_ends:
        parts.append("<h3>Export windows</h3>")
        parts.append(
            _table(
                [
                    {
                        "customer": w["customer"],
                        "window_closes": w["window_end"],
                        "status": w.get("status", ""),
                    }
                    for w in report.window_ends
                ],
                MAX_WINDOW_ROWS,
                "customers",
            )
        )
    parts.append("</section><section id=erasures><h2>Erasures</h2>")
    parts.append(
        "<figure><figcaption>Records deleted, pseudonymised and anonymised per month, as "
        "recorded in the "
        "ledger.</figcaption>" + erasures_svg(report.erasures) + "</figure>"
    )
    if report.disclosures:
        parts.append("</section><section id=disclosures><h2>Disclosures to authorities</h2>")
        parts.append(
            '<p class="meta">'
            + _prose(
                "What was handed over, to whom, on what basis (`dpa audit log --action "
                "disclose`), and whether the customer was told."
            )
            + "</p>"
        )
        parts.append(
            _table(
                [
                    {
                        "disclosure": d["disclosure"],
                        "customer": d["customer"],
                        "on": d["disclosed_on"],
                        "authority": d["authority"],
                        "reference": d["reference"],
                        "legal_basis": d["legal_basis"],
                        "categories": d["categories"],
                        "records": d["records"],
                        "holds": d["holds"],
                        "confidential_until": d["confidential_until"],
                        "customer_told": d["status"],
                    }
                    for d in report.disclosures
                ],
                len(report.disclosures),
                "disclosures",
            )
        )
    parts.append("</section><section id=register><h2>Register of processing (summary)</h2>")
    if report.activities:
        parts.append(
            _table(
                [
                    {
                        "activity": f"{a.get('name', '')} ({a.get('id', '')})",
                        "role": a.get("role", ""),
                        "legal_basis": a.get("legal_basis", ""),
                        "data_categories": a.get("categories", ""),
                        "retention": a.get("retention", ""),
                        "customer may instruct": a.get("customer_bounds", "") or "no",
                    }
                    for a in report.activities
                ],
                len(report.activities),
                "activities",
            )
        )
    else:
        parts.append('<p class="meta">The register lists no activities.</p>')
    if report.customer_retention:
        parts.append("<h3>Customers' own retention (GDPR Art. 28(3)(a))</h3>")
        parts.append(
            _table(
                [
                    {k: c[k] for k in ("customer", "activity", "keep", "default")}
                    | {"instructed on": c["instructed_on"], "reference": c["reference"] or ""}
                    for c in report.customer_retention
                ],
                len(report.customer_retention),
                "instructions",
            )
        )
    head = report.ledger.get("head_hash") or ""
    parts.append(
        "</section><footer>"
        f"Ledger: {_h(report.ledger.get('events', 0))} events, head "
        f"#{_h(report.ledger.get('head_seq', 0))} <code>{_h(head)}</code>"
        + (" · checked against a checkpoint" if report.ledger.get("checkpoint") else "")
        + ". Register SHA-256 "
        f"<code>{_h(report.register_sha256)}</code>. This report holds no personal data: "
        "customers by id, data categories, counts and dates.</footer></body></html>\n"
    )
    return "".join(parts)
