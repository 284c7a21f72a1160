"""Asterisk CDR layouts: every cdr_csv layout (16 to 21 columns), cdr_custom's sample, a
header line, `--columns`; real samples where one was found (tests/data/real/asterisk)."""

from __future__ import annotations

import csv
import io
from collections import Counter
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from dpa.errors import FileLineError, InputError
from dpa.parsers import ParsedRecord, parse_cdr_csv
from dpa.parsers.asterisk_cdr import BASE, CUSTOM_SAMPLE, FIELDS, KNOWN, check_columns

REAL = Path(__file__).parents[2] / "data" / "real" / "asterisk"
FREEPBX = Path(__file__).parents[2] / "data" / "asterisk" / "FreePBX-Master.csv"
BXL = ZoneInfo("Europe/Brussels")
PERSONAL = ("0470", "555101", "Martine", "Claes")

# One call, field by field (the first line of the FreePBX-style sample).
FIRST = FREEPBX.read_text(encoding="utf-8").splitlines()[0]
CALL = dict(zip(FIELDS, next(csv.reader([FIRST])), strict=True))
CALL |= {"peeraccount": "", "linkedid": "1774854721.17", "sequence": "42"}


def _line(names: tuple[str, ...], call: dict[str, str] = CALL) -> str:
    """The line cdr_csv writes: text quoted, numbers and an unset time bare."""
    cells = []
    for name in names:
        value = call[name]
        bare = name in ("duration", "billsec", "sequence") or (
            name in ("answer", "end") and not value
        )
        cells.append(value if bare else '"' + value.replace('"', '""') + '"')
    return ",".join(cells)


def _parse(tmp_path: Path, text: str, columns: tuple[str, ...] | None = None) -> list[ParsedRecord]:
    path = tmp_path / "Master.csv"
    path.write_text(text, encoding="utf-8")
    return list(parse_cdr_csv(path, BXL, columns))


LAYOUTS = {
    "16-base": BASE,
    "17-uniqueid": (*BASE, "uniqueid"),
    "17-userfield": (*BASE, "userfield"),
    "18-stock": FIELDS,
    "19-newcdrcolumns": (*BASE, "peeraccount", "linkedid", "sequence"),
    "20-uniqueid": (*BASE, "uniqueid", "peeraccount", "linkedid", "sequence"),
    "20-userfield": (*BASE, "userfield", "peeraccount", "linkedid", "sequence"),
    "21-all": KNOWN,
}


@pytest.mark.parametrize("layout", LAYOUTS.values(), ids=LAYOUTS.keys())
def test_every_cdr_csv_layout_is_detected(tmp_path: Path, layout: tuple[str, ...]) -> None:
    userfield = {**CALL, "userfield": "billing-code-7"}  # not shaped like a uniqueid
    parsed = _parse(tmp_path, f"{_line(layout, userfield)}\n{_line(layout, userfield)}\n")
    assert len(parsed) == 2
    record = parsed[0]
    assert tuple(record.payload) == (*layout, "tz")
    assert record.payload["src"] == "0470555101"
    assert record.payload["start"] == "2026-03-30T07:12:01+00:00"
    assert record.payload["duration"] == 159
    if "uniqueid" in layout:
        assert record.payload["uniqueid"] == "1774854721.17"
    if "userfield" in layout:
        assert record.payload["userfield"] == "billing-code-7"
    if "sequence" in layout:
        assert record.payload["sequence"] == 42
    assert parsed[0].source_key == parsed[1].source_key


def test_an_empty_uniqueid_column_of_17_is_a_userfield(tmp_path: Path) -> None:
    layout = (*BASE, "uniqueid")
    record = _parse(tmp_path, _line(layout, {**CALL, "uniqueid": ""}) + "\n")[0]
    assert "userfield" in record.payload and "uniqueid" not in record.payload


def test_real_stock_layout(tmp_path: Path) -> None:
    records = list(parse_cdr_csv(REAL / "cdr-csv-18-TelephonySwitching.csv", BXL))
    assert len(records) == 12
    assert all(tuple(r.payload) == (*FIELDS, "tz") for r in records)
    unanswered = [r for r in records if r.payload["disposition"] in ("NO ANSWER", "FAILED")]
    assert len(unanswered) == 4 and all(r.payload["answer"] is None for r in unanswered)
    assert records[2].payload["lastdata"] == '"eletrolatinooooo"'
    assert len({r.source_key for r in records}) == 12


def test_real_calls_sharing_a_uniqueid_are_distinct_records() -> None:
    records = list(parse_cdr_csv(REAL / "cdr-csv-18-shared-uniqueid.csv", BXL))
    shared = Counter(r.payload["uniqueid"] for r in records)
    assert shared["1473989440.0"] == shared["1474040546.32"] == 2
    assert len(records) == 12 and len({r.source_key for r in records}) == 12


def test_real_newcdrcolumns_with_system_names() -> None:
    records = list(parse_cdr_csv(REAL / "cdr-csv-21-newcdrcolumns.csv", BXL))
    assert len(records) == 15
    assert all(tuple(r.payload) == (*KNOWN, "tz") for r in records)
    uniqueids = Counter(r.payload["uniqueid"] for r in records)
    assert len(uniqueids) == 9  # 15 CDRs: the first identity rule stored 9
    assert len({r.source_key for r in records}) == 15
    assert records[-1].payload["uniqueid"] == "mainserverdss-1706420300.0"
    assert [r.payload["sequence"] for r in records[:3]] == [0, 1, 2]
    assert records[6].payload["linkedid"] == "1706372196.12"
    assert records[6].phones == ("89005550137", "ch1")


def test_real_cdr_custom_sample_mapping() -> None:
    records = list(parse_cdr_csv(REAL / "cdr-custom-19-sample-mapping.csv", BXL))
    assert len(records) == 6
    first = records[0]
    assert tuple(first.payload) == (*CUSTOM_SAMPLE, "tz")
    assert first.payload["clid"] == '"" <client1>'
    assert (first.payload["src"], first.payload["dst"]) == ("client1", "6789")
    assert (first.payload["duration"], first.payload["billsec"], first.payload["sequence"]) == (
        31, 13, 2,
    )  # fmt: skip
    assert first.payload["start"] == "2023-07-25T23:51:32+00:00"
    assert records[1].payload["answer"] is None


def test_a_header_line_gives_the_layout_and_is_skipped(tmp_path: Path) -> None:
    order = ("start", "src", "dst", "duration", "clid", "uniqueid", "disposition")
    header = ",".join(name.upper() if name == "src" else name for name in order)
    records = _parse(tmp_path, f"{header}\n{_line(order)}\n")
    assert len(records) == 1 and records[0].line == 2
    assert tuple(records[0].payload) == (*order, "tz")
    assert records[0].payload["duration"] == 159


def test_a_spreadsheet_export_with_a_header_reads_the_same(tmp_path: Path) -> None:
    plain = _parse(tmp_path, _line(FIELDS) + "\n")[0]
    out = io.StringIO()
    row = next(csv.reader([_line(FIELDS)]))
    csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL).writerows([FIELDS, row])
    exported = _parse(tmp_path, out.getvalue())[0]
    assert exported.payload == plain.payload and exported.source_key == plain.source_key


def test_a_file_of_only_a_header_has_no_calls(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no call records"):
        _parse(tmp_path, ",".join(FIELDS) + "\n")


def test_columns_name_any_order(tmp_path: Path) -> None:
    order = ("uniqueid", "start", "end", "src", "dst", "clid", "billsec", "did")
    call = {**CALL, "did": "025551234"}
    record = _parse(tmp_path, _line(order, call) + "\n", order)[0]
    assert record.payload["did"] == "025551234"
    assert record.payload["end"] == "2026-03-30T07:14:40+00:00"
    assert record.phones == ("0470555101", "600", "025551234")


def test_columns_and_a_different_header_are_refused(tmp_path: Path) -> None:
    order = ("start", "src", "dst")
    with pytest.raises(FileLineError, match="header line names other columns"):
        _parse(tmp_path, "src,dst,start\n" + _line(order) + "\n", order)


@pytest.mark.parametrize(
    ("names", "reason"),
    [
        pytest.param(["src", "dst"], "must include start", id="no-start"),
        pytest.param(["start", "src", "SRC"], "names src more than once", id="twice"),
        pytest.param(["start", "0470 555 101"], "are not field names", id="not-a-name"),
    ],
)
def test_bad_columns_are_refused_without_echoing_them(names: list[str], reason: str) -> None:
    with pytest.raises(InputError, match=reason) as caught:
        check_columns(names)
    assert "0470" not in str(caught.value)


@pytest.mark.parametrize(
    "cells",
    [
        pytest.param(15, id="15-columns"),
        pytest.param(22, id="22-columns"),
        pytest.param(18, id="18-columns-no-time"),
    ],
)
def test_an_unknown_layout_says_what_was_expected_and_what_the_line_holds(
    tmp_path: Path, cells: int
) -> None:
    row = [CALL[name] for name in KNOWN][:cells] + ["x"] * max(0, cells - len(KNOWN))
    if cells == 18:
        row[9] = "30/03/2026 09:12"
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(row)
    with pytest.raises(FileLineError) as caught:
        _parse(tmp_path, out.getvalue())
    message = str(caught.value)
    assert caught.value.line == 1
    assert "expected an Asterisk cdr_csv line: 16 to 21 columns" in message
    assert f"this line has {cells} columns (" in message
    assert not any(word in message for word in PERSONAL)


def test_the_shape_names_kinds_not_values(tmp_path: Path) -> None:
    with pytest.raises(FileLineError) as caught:
        _parse(tmp_path, '"0470555101","2026-03-30 09:12:01",,159,"1774854721.17"\n')
    assert str(caught.value).endswith(
        "this line has 5 columns (number, time, empty, number, uniqueid-like)"
    )


def test_every_line_keeps_the_first_lines_layout(tmp_path: Path) -> None:
    text = _line(FIELDS) + "\n" + _line((*BASE, "uniqueid")) + "\n"
    with pytest.raises(FileLineError) as caught:
        _parse(tmp_path, text)
    assert (caught.value.line, caught.value.reason) == (2, "expected 18 columns, found 17")


def test_an_unterminated_quote_is_refused_at_its_line(tmp_path: Path) -> None:
    text = _line(KNOWN) + "\n" + _line(KNOWN)[:60] + "\n" + _line(KNOWN) + "\n"
    with pytest.raises(FileLineError) as caught:
        _parse(tmp_path, text)
    assert caught.value.line == 2 and "not closed" in caught.value.reason


def test_a_freepbx_cdr_report_export_with_calldate(tmp_path: Path) -> None:
    # FreePBX's cdr table (and its report's CSV export) calls the start time `calldate`.
    header = "calldate,clid,src,dst,dcontext,duration,billsec,disposition,uniqueid,cnum,did"
    order = ("start", "clid", "src", "dst", "dcontext", "duration", "billsec", "disposition",
             "uniqueid", "cnum", "did")  # fmt: skip
    call = {**CALL, "cnum": "0470555101", "did": "025551234"}
    records = _parse(tmp_path, f"{header}\n{_line(order, call)}\n")
    assert tuple(records[0].payload) == (*order, "tz")
    assert records[0].phones == ("0470555101", "600", "025551234")
