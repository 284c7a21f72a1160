"""Hostile faxes through the real `dpa ingest fax` and `dpa ingest hylafax`.

`fax`: folders of TIFF and PDF files named as FreePBX names them (`<uniqueid>.tif`), with
hostile uniqueids and names, their first bytes flipped, cut or swapped for another format's,
and the real ReceiveFAX sidecar mutated (values replaced by huge numbers, Infinity, NaN, lone
surrogate escapes, deep nesting, wrong types, edge dates; fields swapped; the text cut), with
or without `--collected-at mtime` and a modification time from 1970 to past year 9999.
`hylafax`: the real xferfaxlog's lines cut, dropped, doubled, swapped, their tab-separated
fields swapped or replaced by hostile values, bytes flipped or not UTF-8, and recvq TIFFs
removed, cut or replaced, with `--skip-missing` and `--quarantine` or not.

Whatever comes in, the command exits 0, 2 or 3 without a traceback; a refusal names where
(the folder or the log) and changes nothing; a run that succeeds stored the records its
report counts as added (and set aside, with --quarantine, the lines it counts as rejected).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from hypothesis import event, given
from hypothesis import strategies as st

from dpa.config import Settings
from dpa.workspace import Workspace
from tests.conftest import Run, add_customer
from tests.dpa.parsers.test_fax import LOG, SIDECAR, pdf_bytes, tiff_bytes
from tests.fuzz.hostile import (
    FUZZ,
    dpa,
    edge_dates,
    hostile_numbers,
    hostile_text,
    refused_changes_nothing,
)

T = TypeVar("T")

__all__ = [
    "JSON_FRAGMENTS",
    "MTIMES",
    "ZONES",
    "flip",
    "mostly",
    "records",
    "stored_as_reported",
    "zones",
]

# Values a JSON sidecar may hold instead of the one it should: numbers past every limit,
# non-numbers, lone surrogate escapes, nesting past the parser's depth, wrong types.
JSON_FRAGMENTS = [
    "1" + "0" * 30,
    "1" + "0" * 5000,
    "2147483648",
    "-1",
    "0",
    "1.5",
    "1e400",
    "Infinity",
    "-Infinity",
    "NaN",
    '"\\ud800"',
    '"a\\udfffb"',
    '"\\u0000"',
    "[" * 20_000 + "]" * 20_000,
    "[" * 70 + "]" * 70,
    "null",
    "true",
    "{}",
    "[]",
    '""',
    '"9999-12-31T23:59:59+00:00"',
    '"0001-01-01T00:00:00"',
    '"2199-12-31T23:59:59-23:59"',
    '"1900-01-01T00:00:00+23:59"',
    '"2026-03-29T02:30:00"',
    '"2026-02-29T10:00:00"',
    '"2026-03-28T10:15:02+25:00"',
]
MTIMES = [
    0,
    1_774_689_600,  # 2026
    datetime(2199, 12, 31, 23, 59, tzinfo=UTC).timestamp(),
    datetime(2200, 1, 1, 0, 1, tzinfo=UTC).timestamp(),
    253_402_300_799,  # 9999-12-31 23:59:59
    253_402_300_800 + 86_400 * 400,  # year 10001
]
# --tz values: none (the register's), real zones, and names no zone database holds (no NUL:
# a command line cannot hold one).
ZONES: list[str | None] = [
    None,
    "UTC",
    "Europe/Brussels",
    "Pacific/Kiritimati",
    "Mars/Olympus_Mons",
    "",
    "../../etc/passwd",
    "+01:00",
]


def mostly(usual: st.SearchStrategy[T], unusual: st.SearchStrategy[T]) -> st.SearchStrategy[T]:
    """`usual` three times in four: one refused option would refuse every run, and a fuzz
    test whose runs are all refused never checks what an accepted run stored."""
    return st.integers(0, 3).flatmap(lambda n: unusual if n == 0 else usual)


zones = mostly(st.none(), st.sampled_from(ZONES))


def records(settings: Settings, category: str) -> int:
    """How many records of `category` the installation holds (every customer)."""
    engine = sa.create_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            query = sa.text("SELECT count(*) FROM records WHERE category = :category")
            return int(conn.execute(query, {"category": category}).scalar_one())
    finally:
        engine.dispose()


def _rejects(env: dict[str, str]) -> int:
    listed: list[dict[str, object]] = json.loads(dpa(env, "ingest", "rejects", "--json").stdout)
    return len(listed)


def stored_as_reported(
    settings: Settings, env: dict[str, str], category: str, *args: str, quarantine: bool = False
) -> Run:
    """`dpa ARGS... --json` (an ingest): refused cleanly (`refused_changes_nothing`), or
    accepted having stored exactly the `category` records its report counts as added (and,
    with `quarantine`, set aside exactly the lines it counts as rejected)."""
    before = records(settings, category)
    set_aside = _rejects(env) if quarantine else 0
    run = refused_changes_nothing(settings, env, *args, "--json")
    event(f"exit {run.exit_code}")  # --hypothesis-show-statistics: how many were stored
    if run.exit_code == 0:
        report: dict[str, Any] = json.loads(run.stdout)
        assert report["category"] == category, report
        assert report["read"] == report["added"] + report["duplicates"] + report["repeats"]
        assert records(settings, category) == before + report["added"], report
        if quarantine:
            assert _rejects(env) == set_aside + report["rejected"], report
    return run


def flip(draw: st.DrawFn, data: bytes) -> bytes:
    """`data` changed in one way: a byte flipped, cut short, junk inserted, or emptied."""
    if not data:
        return draw(st.binary(max_size=8))
    kind = draw(st.sampled_from(["flip", "cut", "junk", "empty"]))
    at = draw(st.integers(0, len(data) - 1))
    if kind == "flip":
        return data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1 :]
    if kind == "cut":
        return data[:at]
    if kind == "junk":
        return data[:at] + draw(st.binary(min_size=1, max_size=16)) + data[at:]
    return b""


@pytest.fixture
def acme(ws: Workspace, cli: Callable[..., Run]) -> str:
    """One installation per test (not per example) with the customer the faxes go to."""
    add_customer(cli, samples=())
    return "acme"


# --- dpa ingest fax: Asterisk ReceiveFAX TIFFs, mailed PDFs, their sidecars ------------------

SIDECAR_TEXT = SIDECAR.read_text(encoding="utf-8")
SIDECAR_KEYS: list[str] = [*json.loads(SIDECAR_TEXT), "duration", "extra"]
STEMS = [
    "1774689302.1",
    "1774700000.7",
    "pbx-01-1774689302.1",
    "0000000000.1",
    "9999999999.9",
    "999999999.1",
    "1774689302",
    "1774689302.1.2",
    "-1774689302.1",
    "fax-0470551234",
    "1774689302.1 ",
]


@st.composite
def sidecars(draw: st.DrawFn) -> bytes | None:
    """No sidecar, the real one, or the real one changed: values replaced by hostile JSON,
    two values swapped, a key dropped, the text cut or junk inserted."""
    if draw(st.integers(0, 3)) == 0:
        return None
    document: dict[str, Any] = json.loads(SIDECAR_TEXT)
    markers: list[str] = []
    for _ in range(draw(st.integers(0, 2))):
        kind = draw(st.sampled_from(["value", "swap", "drop"]))
        key = draw(st.sampled_from(SIDECAR_KEYS))
        if kind == "value":
            document[key] = f"@marker{len(markers)}@"
            markers.append(
                draw(
                    st.one_of(
                        st.sampled_from(JSON_FRAGMENTS),
                        hostile_text.map(json.dumps),
                        hostile_numbers,
                        edge_dates.map(lambda day: json.dumps(day.isoformat())),
                    )
                )
            )
        elif kind == "swap":
            other = draw(st.sampled_from(SIDECAR_KEYS))
            document[key], document[other] = document.get(other), document.get(key)
        else:
            document.pop(key, None)
    text = json.dumps(document, indent=2)
    for number, fragment in enumerate(markers):
        text = text.replace(f'"@marker{number}@"', fragment if fragment else '""')
    data = text.encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 7)) == 0:
        data = flip(draw, data)
    return data


@st.composite
def fax_files(draw: st.DrawFn) -> tuple[str, bytes, bytes | None]:
    """One fax: its name (stem and extension), its bytes, its sidecar (or none); half of
    them as FreePBX and the dialplan write them, the sidecar maybe changed."""
    if draw(st.booleans()):
        stem = draw(st.sampled_from(STEMS[:3]))
        if draw(st.booleans()):
            return stem + ".tif", tiff_bytes(draw(st.binary(min_size=1, max_size=4))), None
        return (
            stem + ".pdf",
            pdf_bytes(),
            draw(st.one_of(st.just(SIDECAR_TEXT.encode()), sidecars())),
        )
    stem = draw(
        st.one_of(
            st.sampled_from(STEMS),
            hostile_text.filter(lambda t: "/" not in t and "\x00" not in t and t not in ("", ".")),
        )
    )
    suffix = draw(st.sampled_from([".tif", ".tiff", ".TIF", ".pdf", ".PDF", ".json", ".png"]))
    kind = draw(st.sampled_from(["tiff", "tiff-be", "pdf", "other", "mutated"]))
    if kind == "tiff":
        data = tiff_bytes(draw(st.binary(min_size=1, max_size=4)))
    elif kind == "tiff-be":
        data = tiff_bytes(draw(st.binary(min_size=1, max_size=4)), big_endian=True)
    elif kind == "pdf":
        data = pdf_bytes(draw(st.text(alphabet="abc", max_size=3)))
    elif kind == "other":
        data = draw(
            st.sampled_from([b"", b"II*", b"MM\x00", b"%PDF", b"%PDF-", b"\x89PNG\r\n\x1a\n"])
        )
    else:
        data = flip(draw, draw(st.sampled_from([tiff_bytes(b"\x0f"), pdf_bytes()])))
    return stem + suffix, data, draw(sidecars())


@FUZZ
@given(
    faxes=st.lists(fax_files(), min_size=1, max_size=3),
    mtime=st.sampled_from(MTIMES),
    mtime_dated=st.booleans(),
    tz=zones,
    whole_folder=st.booleans(),
)
def test_hostile_fax_files_are_refused_cleanly_or_stored(
    acme: str,
    settings: Settings,
    env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
    faxes: list[tuple[str, bytes, bytes | None]],
    mtime: float,
    mtime_dated: bool,
    tz: str | None,
    whole_folder: bool,
) -> None:
    folder = tmp_path_factory.mktemp("fax")
    given_paths: list[str] = []
    for name, data, sidecar in faxes:
        # A name is bytes on disk: what is not UTF-8 reaches dpa as surrogate escapes.
        raw = os.fsencode(folder) + b"/" + name.encode("utf-8", "surrogatepass")[-200:]
        path = Path(os.fsdecode(raw))
        path.write_bytes(data)
        os.utime(path, (mtime, mtime))
        given_paths.append(str(path))
        if sidecar is not None:
            path.with_suffix(".json").write_bytes(sidecar)
    paths = [str(folder)] if whole_folder else sorted(set(given_paths))
    flags = [
        *(["--collected-at", "mtime"] if mtime_dated else []),
        *([] if tz is None else ["--tz", tz]),
    ]
    run = stored_as_reported(
        settings, env, "fax", "ingest", "fax", *paths, "--customer", acme, *flags
    )
    if run.exit_code == 2:
        assert str(folder) in run.stderr or "--tz" in run.stderr, (
            "a refusal says where",
            run.stderr,
        )


# --- dpa ingest hylafax: xferfaxlog and recvq --------------------------------------------------

LOG_LINES = LOG.read_bytes().split(b"\n")
TIFFS = {
    "fax000000005.tif": tiff_bytes(b"\x0f\xf0"),
    "fax000000006.tif": tiff_bytes(b"\x55", big_endian=True),
}
LOG_DATES = [
    b"03/27/26 10:41",
    b"02/29/26 10:41",
    b"02/29/24 10:41",
    b"12/31/99 23:59",
    b"01/01/00 00:00",
    b"13/01/26 10:41",
    b"03/27/26 24:00",
    b"03/29/26 02:30",
    b"3/7/26 1:41",
    b"27/03/26",
    b"",
]
TIMES = [b"0:55", b"1:02", b"999999:59:59", b"1000000:00:00", b"0:60", b"-1:00", b"", b"::"]
QFILES = [
    b"recvq/fax000000005.tif",
    b"recvq/fax000000006.tif",
    b"recvq/fax000000099.tif",
    b"recvq/../etc/xferfaxlog",
    b"/etc/passwd",
    b"recvq/",
    b"recvq/.tif",
    b"fax000000005.tif",
    b"recvq/fax000000005.TIF",
    b"",
]


def _field(draw: st.DrawFn) -> bytes:
    value = draw(
        st.one_of(
            hostile_text.map(lambda t: t.encode("utf-8", "surrogatepass")),
            hostile_numbers.map(str.encode),
            st.sampled_from([*LOG_DATES, *TIMES, *QFILES, b'"', b'""', b'"""x"""', b"\xe9"]),
        )
    )
    return value


@st.composite
def spools(draw: st.DrawFn) -> tuple[bytes, dict[str, bytes | None]]:
    """The real xferfaxlog changed in up to four ways, and what recvq holds."""
    lines = list(LOG_LINES)
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(lines) - 1))
        kind = draw(
            st.sampled_from(["cut", "drop", "double", "swap", "field", "fields", "bytes", "kind"])
        )
        fields = lines[at].split(b"\t")
        if kind == "cut":
            lines[at] = lines[at][: draw(st.integers(0, len(lines[at])))]
        elif kind == "drop":
            del lines[at]
            if not lines:
                lines = [b""]
        elif kind == "double":
            lines.insert(at, lines[at])
        elif kind == "swap":
            other = draw(st.integers(0, len(lines) - 1))
            lines[at], lines[other] = lines[other], lines[at]
        elif kind == "field":
            fields[draw(st.integers(0, len(fields) - 1))] = _field(draw)
            lines[at] = b"\t".join(fields)
        elif kind == "fields":
            one = draw(st.integers(0, len(fields) - 1))
            two = draw(st.integers(0, len(fields) - 1))
            fields[one], fields[two] = fields[two], fields[one]
            lines[at] = b"\t".join(fields)
        elif kind == "kind" and len(fields) > 1:
            fields[1] = draw(st.sampled_from([b"RECV", b"SEND", b"recv", b"RECV ", b"", b"XYZ"]))
            lines[at] = b"\t".join(fields)
        else:
            lines[at] = flip(draw, lines[at])
    recvq: dict[str, bytes | None] = {}
    for name, data in TIFFS.items():
        fate = draw(st.sampled_from(["kept", "kept", "kept", "removed", "changed"]))
        recvq[name] = data if fate == "kept" else None if fate == "removed" else flip(draw, data)
    if draw(st.booleans()):
        recvq["fax000000099.tif"] = tiff_bytes(b"\x99")  # being received
    return b"\n".join(lines), recvq


@FUZZ
@given(
    spool=spools(),
    skip_missing=st.booleans(),
    quarantine=st.booleans(),
    log_option=st.booleans(),
    tz=zones,
)
def test_a_hostile_hylafax_spool_is_refused_cleanly_or_stored(
    acme: str,
    settings: Settings,
    env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
    spool: tuple[bytes, dict[str, bytes | None]],
    skip_missing: bool,
    quarantine: bool,
    log_option: bool,
    tz: str | None,
) -> None:
    log, recvq = spool
    root = tmp_path_factory.mktemp("hylafax")
    (root / "etc").mkdir()
    (root / "recvq").mkdir()
    log_path = root / ("xferfaxlog.0" if log_option else "etc/xferfaxlog")
    log_path.write_bytes(log)
    for name, data in recvq.items():
        if data is not None:
            (root / "recvq" / name).write_bytes(data)
    flags = [
        *(["--log", str(log_path)] if log_option else []),
        *(["--skip-missing"] if skip_missing else []),
        *(["--quarantine"] if quarantine else []),
        *([] if tz is None else ["--tz", tz]),
    ]
    run = stored_as_reported(
        settings,
        env,
        "fax",
        "ingest",
        "hylafax",
        str(root),
        "--customer",
        acme,
        *flags,
        quarantine=quarantine,
    )
    if run.exit_code == 2:
        assert str(root) in run.stderr or "--tz" in run.stderr, ("a refusal says where", run.stderr)
