"""Hostile contact lists through the real `dpa ingest contacts`.

The sample `contacts.csv`, mutated: lines cut short (inside a quote or not), quotes added or
dropped, cells replaced by control characters, lone surrogates, formulas and delimiters, the
header changed or left alone with no contact, bytes that are not UTF-8, an empty file, and a
modification time anywhere from 1970 to past year 9999. Whatever comes in, the command exits
0, 2 or 3 without a traceback, and a refusal changes nothing; with or without `--quarantine`
(which sets a simple CSV's bad lines aside and refuses the address books' exports).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dpa.config import Settings
from dpa.workspace import Workspace
from tests.conftest import Run, add_customer
from tests.fuzz.hostile import DATA, FUZZ, hostile_text, refused_changes_nothing

LINES = (DATA / "contacts.csv").read_text(encoding="utf-8").splitlines()
HEADER, ROWS = LINES[0], LINES[1:]
MTIMES = [
    0,
    1_774_689_600,  # 2026
    datetime(2199, 12, 31, 23, 59, tzinfo=UTC).timestamp(),
    datetime(2200, 1, 1, 0, 1, tzinfo=UTC).timestamp(),
    253_402_300_799,  # 9999-12-31 23:59:59
    253_402_300_800 + 86_400 * 400,  # year 10001
]


@st.composite
def mutated_row(draw: st.DrawFn) -> str:
    """One contact line of the sample, changed in one or two ways."""
    line = draw(st.sampled_from(ROWS))
    for _ in range(draw(st.integers(1, 2))):
        kind = draw(st.sampled_from(["cut", "cell", "quote", "junk"]))
        if kind == "cut":
            line = line[: draw(st.integers(0, len(line)))]
        elif kind == "cell":
            cells = line.split(";")
            cells[draw(st.integers(0, len(cells) - 1))] = draw(hostile_text)
            line = ";".join(cells)
        else:
            at = draw(st.integers(0, len(line)))
            insert = draw(st.sampled_from(['"', '""'])) if kind == "quote" else draw(hostile_text)
            line = line[:at] + insert + line[at:]
    return line


@st.composite
def contact_files(draw: st.DrawFn) -> bytes:
    """A whole file: the header (maybe changed), sample and mutated rows, maybe junk."""
    if draw(st.integers(0, 14)) == 0:
        return draw(
            st.sampled_from([b"", b"\n", HEADER.encode() + b"\n", b"\xff\xfe", b"\xef\xbb\xbf"])
        )
    header = HEADER
    if draw(st.integers(0, 9)) == 0:
        header = draw(
            st.sampled_from([HEADER.replace("Phone", "Tel;Phone"), HEADER.lower(), ROWS[0]])
        )
    rows = [
        draw(st.one_of(st.sampled_from(ROWS), mutated_row()))
        for _ in range(draw(st.integers(0, 5)))
    ]
    text = "\n".join([header, *rows]) + draw(st.sampled_from(["\n", "", "\r\n"]))
    data = text.encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 9)) == 0:
        data += draw(st.binary(max_size=8))
    return data


@pytest.fixture
def acme(ws: Workspace, cli: Callable[..., Run]) -> str:
    """One installation per test (not per example) with the customer the contacts go to."""
    add_customer(cli, samples=())
    return "acme"


@FUZZ
@given(data=contact_files(), mtime=st.sampled_from(MTIMES), quarantine=st.booleans())
def test_a_hostile_contact_list_is_refused_cleanly_or_stored(
    acme: str,
    settings: Settings,
    env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
    data: bytes,
    mtime: float,
    quarantine: bool,
) -> None:
    path: Path = tmp_path_factory.mktemp("contacts") / "contacts.csv"
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))
    flags = ("--quarantine",) if quarantine else ()
    run = refused_changes_nothing(
        settings, env, "ingest", "contacts", str(path), "--customer", acme, *flags
    )
    if run.exit_code == 2:
        assert str(path) in run.stderr, "a refused file is named"


# --- Address books' exports: vCard, Google CSV, Outlook CSV ---------------------------------

REAL = DATA / "real" / "contacts"
EXPORTS = {
    "book.vcf": (REAL / "gmail-single2.vcf").read_bytes() + (REAL / "gmail-list.vcf").read_bytes(),
    "google.csv": (REAL / "google-csv-old.csv").read_bytes(),
    "google-new.csv": (REAL / "google-csv-new.csv").read_bytes(),
    "outlook.csv": (REAL / "outlook-windows-1252.csv").read_bytes(),
}
# Personal-looking values of those samples: never quoted by a refusal.
SAMPLE_VALUES = (
    "5555551",
    "555 03 0",
    "555 01 0",
    "55 06 0",
    "Voorbeeld",
    "Exemplo",
    "Lefèvre",
    "Lef\xe8vre",
    "example.com",
    "example.be",
)
VCARD_JUNK = [
    "BEGIN:VCARD",
    "END:VCARD",
    "END:VCALENDAR",
    "BEGIN:VCALENDAR",
    "N;ENCODING=QUOTED-PRINTABLE;CHARSET=x-bogus:=C3=",
    "TEL;ENCODING=QUOTED-PRINTABLE:=",
    "PHOTO;ENCODING=b:@@@",
    "PHOTO;ENCODING=BASE64:a",
    "ADR:;;;;;;;;;;;",
    "N:\\",
    ":",
    ";:",
    " folded",
    "=",
    "item1.X-ABLabel:",
    'TEL;TYPE="a,b:1',
    "VERSION:9.9",
]


@st.composite
def export_files(draw: st.DrawFn) -> tuple[str, bytes]:
    """One of the real exports, its lines cut, shuffled, dropped, doubled or junk added."""
    name = draw(st.sampled_from(sorted(EXPORTS)))
    data = EXPORTS[name]
    lines = data.split(b"\n")
    for _ in range(draw(st.integers(0, 4))):
        if not lines:
            break
        at = draw(st.integers(0, len(lines) - 1))
        kind = draw(st.sampled_from(["cut", "drop", "double", "junk", "text", "quote", "swap"]))
        if kind == "cut":
            lines[at] = lines[at][: draw(st.integers(0, len(lines[at])))]
        elif kind == "drop":
            del lines[at]
        elif kind == "double":
            lines.insert(at, lines[at])
        elif kind == "junk":
            lines.insert(at, draw(st.sampled_from(VCARD_JUNK)).encode())
        elif kind == "quote":
            cut = draw(st.integers(0, len(lines[at])))
            lines[at] = lines[at][:cut] + b'"' + lines[at][cut:]
        elif kind == "swap":
            other = draw(st.integers(0, len(lines) - 1))
            lines[at], lines[other] = lines[other], lines[at]
        else:
            cut = draw(st.integers(0, len(lines[at])))
            junk = draw(hostile_text).encode("utf-8", "surrogatepass")
            lines[at] = lines[at][:cut] + junk + lines[at][cut:]
    data = b"\n".join(lines)
    if draw(st.integers(0, 9)) == 0:
        data += draw(st.binary(max_size=8))
    return name, data


@FUZZ
@given(export=export_files(), quarantine=st.booleans())
def test_a_hostile_address_book_export_is_refused_cleanly_or_stored(
    acme: str,
    settings: Settings,
    env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
    export: tuple[str, bytes],
    quarantine: bool,
) -> None:
    name, data = export
    path: Path = tmp_path_factory.mktemp("exports") / name
    path.write_bytes(data)
    os.utime(path, (1_774_689_600, 1_774_689_600))
    flags = ("--quarantine",) if quarantine else ()
    run = refused_changes_nothing(
        settings, env, "ingest", "contacts", str(path), "--customer", acme, *flags
    )
    if run.exit_code == 2:
        assert str(path) in run.stderr, "a refused file is named"
        leaked = [value for value in SAMPLE_VALUES if value in run.stderr]
        assert not leaked, leaked
