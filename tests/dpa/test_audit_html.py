"""The audit report as HTML: the SVG pictures, the page, and the page as a browser shows it."""

from __future__ import annotations

import dataclasses
import re
import shutil
import struct
import subprocess
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from dpa.audit import Finding, Report
from dpa.audit.html import ANONYMISED_COLOUR, DELETED_COLOUR, PALETTE, erasures_svg, render
from dpa.audit.html import timeline_svg as timeline
from dpa.config import Settings
from dpa.workspace import Workspace
from retention import sweeper
from tests.conftest import Run, add_customer, need_tool

Cli = Callable[..., Run]
DATA = Path(__file__).parents[1] / "data"
RECORDINGS = sorted(str(p) for p in (DATA / "recordings").iterdir() if p.suffix == ".wav")
NOVEMBER = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
EVIL = '<img src=x onerror="alert(1)">&'


def _bars(svg: str, kind: str = "bar") -> list[tuple[float, float, float, float]]:
    """(x, y, width, height) of every rect whose class starts with `kind`."""
    return [
        tuple(float(v) for v in m)  # type: ignore[misc]
        for m in re.findall(
            rf'<rect class="{kind}[^"]*" x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" '
            r'height="([\d.]+)"',
            svg,
        )
    ]


def _texts(svg: str, cls: str) -> list[str]:
    return re.findall(rf'<text class="{cls}"[^>]*>([^<]*)</text>', svg)


def _months(first: tuple[int, int], count: int) -> list[str]:
    year, month = first
    out = []
    for i in range(count):
        index = year * 12 + month - 1 + i
        out.append(f"{index // 12:04d}-{index % 12 + 1:02d}")
    return out


def _inside(svg: str) -> None:
    """Every bar lies within the picture's width and above its x axis."""
    width = float(re.search(r'viewBox="0 0 ([\d.]+) ', svg).group(1))  # type: ignore[union-attr]
    for x, y, w, h in _bars(svg):
        assert x >= 0 and x + w <= width and y >= 0 and h > 0


# --- the retention timeline -----------------------------------------------------------------


def test_timeline_stacks_one_bar_per_category_and_month_and_keeps_undated_apart() -> None:
    rows = [
        {"category": "cdr", "month": "2026-12", "records": 12},
        {"category": "voicemail", "month": "2026-12", "records": 3},
        {"category": "voicemail", "month": "2027-02", "records": 1},
        {"category": "phone_number", "month": "undated", "records": 6},
        {"category": "cdr", "month": "2027-01", "records": 0},  # nothing to draw
    ]
    svg = timeline(rows)
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert len(_bars(svg)) == 4 and len(_bars(svg, "bar undated")) == 1
    # the gap month (2027-01) keeps its slot: the x axis is time
    assert _texts(svg, "month") == ["2026-12", "2027-01", "2027-02", "undated"]
    legend = re.findall(r'<g class="legend">.*?<text[^>]*>([^<]*)</text></g>', svg)
    assert legend == ["cdr (12)", "phone_number (6)", "voicemail (4)"]
    assert _texts(svg, "tick")[-1] == "15"  # the tallest stack is 15 records
    assert "records" in _texts(svg, "axis-title")
    assert 'class="marker"' not in svg
    _inside(svg)


def test_one_category_has_one_colour_in_every_month() -> None:
    svg = timeline(
        [
            {"category": "cdr", "month": "2026-01", "records": 2},
            {"category": "fax", "month": "2026-01", "records": 2},
            {"category": "fax", "month": "2026-02", "records": 2},
        ]
    )
    fills = re.findall(r'fill="(#[0-9a-f]{6})"><title>(\w+),', svg)
    assert {c: {f for f, k in fills if k == c} for c in ("cdr", "fax")} == {
        "cdr": {PALETTE[0]},
        "fax": {PALETTE[1]},
    }


def test_a_single_month_with_a_single_record() -> None:
    svg = timeline([{"category": "cdr", "month": "2026-04", "records": 1}])
    assert len(_bars(svg)) == 1
    assert _texts(svg, "month") == ["2026-04"]
    assert _texts(svg, "tick") == ["0", "1"]
    width = _bars(svg)[0][2]
    assert width <= 60  # one month does not become one wall-to-wall bar
    _inside(svg)


def test_thirty_six_months_get_a_bar_each_and_readable_labels() -> None:
    months = _months((2026, 1), 36)
    svg = timeline(
        [{"category": "cdr", "month": m, "records": i + 1} for i, m in enumerate(months)]
    )
    assert len(_bars(svg)) == 36
    labels = _texts(svg, "month")
    assert 6 <= len(labels) < 36 and labels[0] == "2026-01"
    assert set(labels) <= set(months)
    assert _texts(svg, "tick")[-1] == "40"
    _inside(svg)


def test_window_ends_are_marked_and_labelled_with_the_customer() -> None:
    svg = timeline(
        [{"category": "cdr", "month": "2026-12", "records": 3}],
        [
            {"customer": "acme", "window_end": "2026-12-31", "status": "window"},
            {"customer": "globex", "window_end": "2027-03-15", "status": "purged"},
        ],
    )
    assert svg.count('<g class="marker">') == 2
    assert _texts(svg, "marker-label") == ["acme", "globex"]
    assert _texts(svg, "month") == _months((2026, 12), 4)  # the range reaches the last window
    assert "export window closes (customer)" in svg


def test_only_undated_records_draw_their_bar_and_say_no_date_is_due() -> None:
    svg = timeline([{"category": "phone_number", "month": "undated", "records": 3}])
    assert len(_bars(svg, "bar undated")) == 1
    assert _texts(svg, "month") == ["undated"]
    assert "no record has a due date" in svg
    _inside(svg)


def test_only_window_ends_still_draw_a_time_axis() -> None:
    svg = timeline([], [{"customer": "acme", "window_end": "2026-12-31", "status": "window"}])
    assert "<svg" in svg and _bars(svg) == []
    assert svg.count('<g class="marker">') == 1


def test_many_window_ends_in_one_month_leave_extra_markers_unlabelled() -> None:
    ends = [
        {"customer": f"customer-{i:02d}", "window_end": "2026-12-31", "status": "window"}
        for i in range(10)
    ]
    svg = timeline([{"category": "cdr", "month": "2026-12", "records": 3}], ends)
    assert svg.count('<g class="marker">') == 10
    assert len(_texts(svg, "marker-label")) == 4
    assert "6 window ends are marked without a label" in svg


@pytest.mark.parametrize(
    "rows",
    [
        pytest.param([], id="no-rows"),
        pytest.param([{"category": "cdr", "month": "2026-01", "records": 0}], id="only-zeros"),
    ],
)
def test_an_empty_timeline_says_there_is_nothing_to_draw(rows: list[dict[str, Any]]) -> None:
    out = timeline(rows, [])
    assert "<svg" not in out and "Nothing to draw" in out


def test_categories_and_customer_ids_are_escaped_in_the_picture() -> None:
    svg = timeline(
        [{"category": EVIL, "month": "2026-01", "records": 1}],
        [{"customer": EVIL, "window_end": "2026-01-20", "status": "window"}],
    )
    assert "<img" not in svg and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;" in svg


# --- erasures -------------------------------------------------------------------------------


def test_erasures_draw_deleted_and_anonymised_side_by_side() -> None:
    svg = erasures_svg(
        [
            {"month": "2026-11", "deleted": 5, "anonymised": 0},
            {"month": "2027-01", "deleted": 2, "anonymised": 12},
        ]
    )
    assert len(_bars(svg, "bar deleted")) == 2 and len(_bars(svg, "bar anonymised")) == 1
    assert _texts(svg, "month") == ["2026-11", "2026-12", "2027-01"]
    assert sorted(_texts(svg, "value"), key=int) == ["2", "5", "12"]
    assert DELETED_COLOUR in svg and ANONYMISED_COLOUR in svg
    assert _texts(svg, "tick") == ["0", "5", "10", "15"]
    _inside(svg)


def test_erasures_over_thirty_six_months() -> None:
    svg = erasures_svg(
        [{"month": m, "deleted": 100, "anonymised": 3000} for m in _months((2025, 6), 36)]
    )
    assert len(_bars(svg)) == 72
    assert 6 <= len(_texts(svg, "month")) < 36
    assert _texts(svg, "tick")[-1] == "3000"
    _inside(svg)


@pytest.mark.parametrize(
    "rows",
    [
        pytest.param([], id="no-months"),
        pytest.param([{"month": "2026-11", "deleted": 0, "anonymised": 0}], id="only-zeros"),
    ],
)
def test_no_erasures_says_there_is_nothing_to_draw(rows: list[dict[str, Any]]) -> None:
    out = erasures_svg(rows)
    assert "<svg" not in out and "Nothing to draw" in out


# --- the page -------------------------------------------------------------------------------


def _finding(severity: str, fid: str, **kw: Any) -> Finding:
    values: dict[str, Any] = {
        "id": fid,
        "severity": severity,
        "title": f"{fid} happened",
        "article": "GDPR Art. 5(1)(e)",
        "affected": [{"customer": "acme", "records": 2, "purged": False, "missing": ["a", "b"]}],
        "action": "Run `dpa retention sweep`.",
    }
    return Finding(**{**values, **kw})


def _report(**kw: Any) -> Report:
    moment = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    base = Report(
        as_of=moment,
        generated_at=moment,
        provider="Example Telephony BV",
        register_version=3,
        register_sha256="ab" * 32,
        summary={
            "customers": 2,
            "active_customers": 1,
            "records": 21,
            "ledger_events": 14,
            "active_holds": 1,
            "export_packages": 0,
            "critical": 0,
            "warnings": 0,
        },
        findings=[],
        activities=[
            {
                "id": "call_history",
                "name": "Call history and billing",
                "role": "processor",
                "legal_basis": "Art. 6(1)(b) GDPR",
                "categories": "cdr",
                "retention": "12 months after collection, then anonymise",
            }
        ],
        timeline=[{"category": "cdr", "month": "2026-12", "records": 12}],
        window_ends=[{"customer": "acme", "window_end": "2026-12-31", "status": "window"}],
        erasures=[{"month": "2026-11", "deleted": 5, "anonymised": 0}],
        ledger={"ok": True, "events": 14, "head_seq": 14, "head_hash": "cd" * 32},
    )
    return dataclasses.replace(base, **kw)


def _self_contained(page: str) -> None:
    lowered = page.lower()
    assert "<script" not in lowered
    assert "http" not in lowered  # no external asset, not even an xmlns
    assert not re.search(r"<[^>]*\s(src|href)\s*=", lowered)  # in a tag, not escaped text
    assert "url(" not in lowered and "@import" not in lowered


def test_the_page_has_every_section_and_is_self_contained() -> None:
    page = render(_report(findings=[_finding("warning", "hold-without-reference")]))
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    for section in ("summary", "findings", "retention", "erasures", "register"):
        assert f"<section id={section}>" in page
    assert "Audit report: Example Telephony BV" in page
    assert "2026-11-23 12:00 UTC" in page and "register version 3" in page
    assert '<p class="verdict warning">Attention: 1 warning.</p>' in page
    assert page.count("<svg") == 2
    assert "Call history and billing (call_history)" in page and "Art. 6(1)(b) GDPR" in page
    assert "<td>acme</td><td>2026-12-31</td><td>window</td>" in page  # export windows table
    assert "<td class=num>2</td><td>no</td><td>a, b</td>" in page  # affected, cells readable
    assert "Run <code>dpa retention sweep</code>." in page
    _self_contained(page)


def test_findings_are_shown_most_severe_first_with_badges() -> None:
    page = render(
        _report(
            findings=[
                _finding("info", "ledger-no-checkpoint"),
                _finding("warning", "hold-overdue"),
                _finding("critical", "overdue-records"),
            ]
        )
    )
    positions = [
        page.index(f'id="finding-{f}"')
        for f in ("overdue-records", "hold-overdue", "ledger-no-checkpoint")
    ]
    assert positions == sorted(positions)
    for severity in ("CRITICAL", "WARNING", "INFO"):
        assert f'class="badge {severity.lower()}">{severity}</span>' in page
    assert "Action needed: 1 critical, 1 warning, 1 for information." in page


def test_no_findings_says_every_check_passed() -> None:
    page = render(_report(findings=[]))
    assert "<b>No findings:</b> every check passed." in page
    assert '<p class="verdict ok">All promises kept.</p>' in page


def test_an_empty_installation_draws_nothing_but_says_so() -> None:
    page = render(_report(timeline=[], window_ends=[], erasures=[], activities=[]))
    assert page.count("Nothing to draw") == 2 and "<svg" not in page
    assert "Export windows" not in page
    _self_contained(page)


def test_long_affected_lists_are_cut_with_a_count() -> None:
    rows = [{"customer": f"c{i}", "records": i} for i in range(60)]
    page = render(_report(findings=[_finding("critical", "overdue-records", affected=rows)]))
    assert "<td>c49</td>" in page and "<td>c50</td>" not in page
    assert "… and 10 more (the JSON report lists them all)." in page


def test_everything_from_the_data_is_escaped() -> None:
    page = render(
        _report(
            provider=EVIL,
            findings=[
                _finding(
                    "critical",
                    "x</code><script>",
                    title="<script>alert(1)</script>",
                    article=EVIL,
                    affected=[{EVIL: EVIL}],
                    action="do `<b>` now",
                )
            ],
            activities=[dict.fromkeys(("id", "name", "role", "legal_basis", "categories"), EVIL)],
            timeline=[{"category": EVIL, "month": "2026-12", "records": 1}],
            window_ends=[{"customer": EVIL, "window_end": "2026-12-31", "status": EVIL}],
        )
    )
    assert "<img" not in page and "<script" not in page.lower() and "<b>`" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<code>&lt;b&gt;</code>" in page
    _self_contained(page)


# --- in a real browser ----------------------------------------------------------------------


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    need_tool("chromium", "apt-get install chromium")
    raise AssertionError("unreachable")


def _png_colours(data: bytes) -> tuple[tuple[int, int], set[bytes]]:
    """The size of an 8-bit RGB(A) PNG and the colours of every 5th pixel (stdlib only)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, [], None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
    assert header is not None
    width, height, depth, colour_type, _, _, interlace = header
    assert depth == 8 and colour_type in (2, 6) and interlace == 0, header
    bpp = 3 if colour_type == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = width * bpp
    previous = bytearray(stride)
    seen: set[bytes] = set()
    for y in range(height):
        start = y * (stride + 1)
        kind_of_filter, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        if kind_of_filter == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 255
        elif kind_of_filter == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, previous, strict=True))
        elif kind_of_filter == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + (left + previous[i]) // 2) & 255
        elif kind_of_filter == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b, c = previous[i], previous[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        seen.update(bytes(line[i : i + 3]) for i in range(0, stride, bpp * 5))
        previous = line
    return (width, height), seen


def _browser(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--enable-logging=stderr",
            "--v=0",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_the_report_renders_in_headless_chromium(
    cli: Cli, settings: Settings, ws: Workspace, tmp_path: Path
) -> None:
    chromium = _chromium()
    add_customer(cli)
    cli("customer", "terminate", "acme", "--on", "2026-10-01")
    with Workspace.open(settings) as opened:
        swept = sweeper.run(opened, actor="cron", now=NOVEMBER)
    assert swept.deleted == 5
    cli("hold", "add", "--customer", "acme", "--category", "cdr", "--reason", "Dispute")
    page = tmp_path / "report.html"
    # the hold has no reference: a warning, so the report exits 1
    cli("audit", "report", "--format", "html", "-o", str(page), "--as-of", "2026-11-23", code=1)
    text = page.read_text()
    _self_contained(text)
    assert 'id="finding-hold-without-reference"' in text

    png = tmp_path / "report.png"
    shot = _browser(
        chromium,
        tmp_path / "profile",
        f"--screenshot={png}",
        "--window-size=1280,2000",
        page.as_uri(),
    )
    assert png.exists(), f"no screenshot; chromium said:\n{shot.stderr[-2000:]}"
    problems = [
        line
        for line in shot.stderr.splitlines()
        if "Uncaught" in line or "CONSOLE" in line or "Failed to load" in line
    ]
    assert problems == [], "\n".join(problems)
    size, colours = _png_colours(png.read_bytes())
    assert size == (1280, 2000)
    assert len(colours) > 50, f"the screenshot looks blank ({len(colours)} colours)"
    # the bars were drawn: cdr (first category left after the sweep) and the deleted series
    for colour in (PALETTE[0], DELETED_COLOUR):
        assert bytes.fromhex(colour[1:]) in colours, f"{colour} not on the screenshot"

    dom = _browser(chromium, tmp_path / "profile", "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    for expected in (
        'id="finding-hold-without-reference"',
        'id="finding-ledger-no-checkpoint"',
        ">acme</text>",  # the window-end marker
        "<svg",
        "Attention: 1 warning, 1 for information.",
    ):
        assert expected in dom.stdout
