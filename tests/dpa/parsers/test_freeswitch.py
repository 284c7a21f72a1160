"""FreeSWITCH mod_cdr_csv and mod_json_cdr: real templates and files, layouts, times, refusals."""

from __future__ import annotations

import csv
import io
import json
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dpa import identity
from dpa.errors import FileLineError, InputError
from dpa.parsers import freeswitch
from dpa.parsers.base import ParsedRecord
from dpa.parsers.freeswitch import (
    DEFAULT_COLUMNS,
    EXAMPLE_COLUMNS,
    json_cdr_files,
    parse_freeswitch_csv,
    parse_freeswitch_json,
    read_freeswitch_json,
)

REAL = Path(__file__).parents[2] / "data" / "real" / "freeswitch"
MASTER = REAL / "Master.csv"
JSON_CDR = REAL / "5a3a1d91-90d3-4db4-af5c-cc3ae15d93a4.cdr.json"
BXL = ZoneInfo("Europe/Brussels")
UTC_ZONE = ZoneInfo("UTC")
NEW_YORK = ZoneInfo("America/New_York")  # the sample JSON's host: stamps 4 hours behind UTC
PERSONAL = ("91555017", "555017", "Alice", "0470", "Peeters", "Zoë")
# mod_cdr_csv.c's built-in default template, as the C source spells it (note `, "`).
BUILT_IN = (
    '"${caller_id_name}","${caller_id_number}","${destination_number}","${context}",'
    '"${start_stamp}","${answer_stamp}","${end_stamp}","${duration}","${billsec}",'
    '"${hangup_cause}","${uuid}","${bleg_uuid}", "${accountcode}"'
)
CALL = {
    "caller_id_name": "Jan Peeters",
    "caller_id_number": "0470123456",
    "destination_number": "1001",
    "context": "public",
    "start_stamp": "2026-03-28 10:15:02",
    "answer_stamp": "2026-03-28 10:15:05",
    "end_stamp": "2026-03-28 10:17:44",
    "duration": "162",
    "billsec": "159",
    "hangup_cause": "NORMAL_CLEARING",
    "uuid": "0f5c8ae2-7d2e-4a61-9d40-3f1f0a6c2b11",
    "bleg_uuid": "",
    "accountcode": "acme",
    "read_codec": "PCMA",
    "write_codec": "PCMA",
}


def templates() -> dict[str, str]:
    """The vanilla cdr_csv.conf.xml's templates by name (the real file, unchanged)."""
    root = ET.parse(REAL / "cdr_csv.conf.xml").getroot()  # noqa: S314 (our own sample)
    return {t.attrib["name"]: t.text or "" for t in root.iter("template")}


def variables(template: str) -> list[str]:
    return re.findall(r"\$\{([a-z_]+)\}", template)


def expand(template: str, values: dict[str, str]) -> str:
    """What mod_cdr_csv writes: the template with each ${variable} replaced, unset ones empty."""
    return re.sub(r"\$\{([a-z_]+)\}", lambda m: values.get(m.group(1), ""), template)


def write(tmp_path: Path, text: str, name: str = "Master.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def csv_records(path: Path, tz: ZoneInfo = UTC_ZONE, **kw: Any) -> list[ParsedRecord]:
    return list(parse_freeswitch_csv(path, tz, **kw))


def refused(exc: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(exc.value)
    for personal in PERSONAL:
        assert personal not in message
    return message


# --- the real template file and a real Master.csv -------------------------------------------


def test_the_layouts_are_freeswitchs_templates() -> None:
    real = templates()
    assert tuple(variables(real["example"])) == EXAMPLE_COLUMNS
    assert tuple(variables(real["sql"])) == DEFAULT_COLUMNS
    assert tuple(variables(BUILT_IN)) == DEFAULT_COLUMNS


def test_real_master_csv_both_legs() -> None:
    records = csv_records(MASTER)
    assert [r.line for r in records] == [1, 2, 3, 4]
    assert {r.category for r in records} == {"cdr"}
    a_leg, b_leg = records[0], records[1]
    assert a_leg.payload == {
        "caller_id_name": "Alice",
        "src": "91555017",
        "dst": "1001",
        "dcontext": "blueivr",
        "start": "2023-10-10T23:43:58+00:00",
        "answer": "2023-10-10T23:43:59+00:00",
        "end": "2023-10-10T23:44:06+00:00",
        "duration": 8,
        "billsec": 7,
        "hangup_cause": "NORMAL_CLEARING",
        "disposition": "ANSWERED",
        "uniqueid": "02132a5c-b9b1-4dbf-b79c-bdf408854867",
        "bleg_uuid": "",
        "accountcode": "1001",
        "read_codec": "PCMU",
        "write_codec": "PCMU",
        "clid": '"Alice" <91555017>',
        "tz": "UTC",  # the zone its stamps were read in (the key counts them as written)
    }
    assert a_leg.collected_at == datetime(2023, 10, 10, 23, 43, 58, tzinfo=UTC)
    assert a_leg.phones == ("91555017", "1001")
    assert b_leg.payload["bleg_uuid"] == a_leg.payload["uniqueid"]
    assert b_leg.payload["dst"] == "*1003"
    # Every leg is its own record; the key is the identity rule's, over the payload.
    assert len({r.source_key for r in records}) == 4
    assert all(r.source_key == identity.source_key("cdr", r.payload) for r in records)


def test_local_stamps_are_read_in_the_zone_given() -> None:
    record = csv_records(MASTER, BXL)[0]
    assert record.payload["start"] == "2023-10-10T21:43:58+00:00"
    assert record.collected_at == datetime(2023, 10, 10, 21, 43, 58, tzinfo=UTC)


def test_the_same_file_read_twice_gives_the_same_keys() -> None:
    assert [r.source_key for r in csv_records(MASTER)] == [
        r.source_key for r in csv_records(MASTER)
    ]


# --- other templates --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "template", ["snom", "linksys", "asterisk", "example"], ids=lambda name: name
)
def test_any_real_template_through_columns(tmp_path: Path, template: str) -> None:
    text = templates()[template]
    values = CALL | {"caller_id": '"Jan Peeters" <0470123456>', "last_app": "bridge"}
    path = write(tmp_path, expand(text, values) + "\n")
    (record,) = csv_records(path, BXL, columns=variables(text))
    assert record.payload["src"] == "0470123456"
    assert record.payload["dst"] == "1001"
    assert record.payload["start"] == "2026-03-28T09:15:02+00:00"
    assert record.payload["duration"] == 162
    assert record.payload["disposition"] == "ANSWERED"
    assert record.payload["uniqueid"] == CALL["uuid"]
    assert record.payload["clid"] == '"Jan Peeters" <0470123456>'
    assert record.phones == ("0470123456", "1001")


def test_asterisk_template_maps_to_asterisk_names(tmp_path: Path) -> None:
    text = templates()["asterisk"]
    values = CALL | {
        "caller_id": '"Jan Peeters" <0470123456>',
        "channel_name": "sofia/internal/0470123456@pbx",
        "bridge_channel": "sofia/internal/1001@pbx",
        "last_app": "bridge",
        "last_arg": "user/1001",
        "amaflags": "3",
        "userfield": "x",
    }
    path = write(tmp_path, expand(text, values) + "\n")
    (record,) = csv_records(path, columns=variables(text))
    for key in ("channel", "dstchannel", "lastapp", "lastdata", "amaflags", "userfield"):
        assert key in record.payload
    assert record.payload["lastapp"] == "bridge"
    assert record.payload["dstchannel"] == "sofia/internal/1001@pbx"


@pytest.mark.parametrize(
    "template",
    [pytest.param(BUILT_IN, id="built-in-default"), pytest.param(None, id="vanilla-sql")],
)
def test_thirteen_columns_are_the_default_template(tmp_path: Path, template: str | None) -> None:
    text = templates()["sql"] if template is None else template
    path = write(tmp_path, expand(text, CALL) + "\n" + expand(text, CALL | {"uuid": "u2"}) + "\n")
    records = csv_records(path)
    assert [r.line for r in records] == [1, 2]
    assert records[0].payload["accountcode"] == "acme"  # after `, "`: the space is no data
    assert records[1].payload["uniqueid"] == "u2"
    assert "read_codec" not in records[0].payload


def test_epoch_columns_need_no_zone(tmp_path: Path) -> None:
    columns = [
        "caller_id_number",
        "destination_number",
        "start_epoch",
        "answer_epoch",
        "end_uepoch",
        "billsec",
        "hangup_cause",
        "uuid",
    ]
    line = '"0470123456","1001","1774689302","0","1774689344123456","0","NO_ANSWER","u1"\n'
    (record,) = csv_records(write(tmp_path, line), BXL, columns=columns)
    assert record.payload["start"] == "2026-03-28T09:15:02+00:00"
    assert record.payload["answer"] is None
    assert record.payload["end"] == "2026-03-28T09:15:44+00:00"
    assert record.payload["disposition"] == "NO ANSWER"
    assert "start_epoch" not in record.payload


def test_an_epoch_wins_over_a_stamp(tmp_path: Path) -> None:
    columns = ["start_stamp", "start_epoch", "uuid"]
    (record,) = csv_records(
        write(tmp_path, '"2026-03-28 10:15:02","1774689302","u"\n'),
        ZoneInfo("Asia/Tokyo"),
        columns=columns,
    )
    assert record.payload["start"] == "2026-03-28T09:15:02+00:00"


def test_variable_names_are_read_whatever_their_case(tmp_path: Path) -> None:
    path = write(tmp_path, "START_EPOCH,Caller_ID_Number\n1774689302,0470123456\n")
    (record,) = csv_records(path)
    assert record.payload["src"] == "0470123456"
    (again,) = csv_records(path, columns=["start_epoch", "CALLER_ID_NUMBER"])
    assert again == record


def test_columns_accept_template_spelling(tmp_path: Path) -> None:
    path = write(tmp_path, '"2026-03-28 10:15:02","u"\n')
    (record,) = csv_records(path, columns=["${start_stamp}", " ${uuid} "])
    assert record.payload == {"start": "2026-03-28T10:15:02+00:00", "uniqueid": "u", "tz": "UTC"}


@pytest.mark.parametrize(
    ("columns", "reason"),
    [
        pytest.param(["uuid"], "start", id="no-start"),
        pytest.param(["start_stamp", "uuid", "uuid"], "twice", id="duplicate"),
        pytest.param(["start_stamp", "src"], "dpa gives", id="reserved"),
        pytest.param(["start_stamp", "0470 12 34"], "column 2", id="not-a-name"),
        pytest.param([], "no column", id="empty"),
        pytest.param("start_stamp,uuid", "list", id="a-string"),
        pytest.param(["start_stamp"] + [f"v{i}" for i in range(600)], "more than", id="too-many"),
    ],
)
def test_bad_columns_are_refused(tmp_path: Path, columns: Any, reason: str) -> None:
    with pytest.raises(InputError) as exc:
        csv_records(MASTER, columns=columns)
    assert reason in refused(exc)
    assert not isinstance(exc.value, FileLineError)


# --- spreadsheets -----------------------------------------------------------------------------


def spreadsheet(text: str, delimiter: str = ",", header: bool = True) -> str:
    """The file as a spreadsheet saves it: header, minimal quoting, CRLF, byte-order mark."""
    rows = list(csv.reader(io.StringIO(text)))
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    if header:
        writer.writerow(EXAMPLE_COLUMNS)
    writer.writerows(rows)
    return "\ufeff" + out.getvalue()


@pytest.mark.parametrize(
    ("delimiter", "header"),
    [
        pytest.param(",", True, id="comma-header"),
        pytest.param(";", True, id="semicolon-header"),
        pytest.param(",", False, id="comma"),
        pytest.param(";", False, id="semicolon"),
    ],
)
def test_a_spreadsheet_export_reads_the_same(tmp_path: Path, delimiter: str, header: bool) -> None:
    original = csv_records(MASTER)
    exported = write(tmp_path, spreadsheet(MASTER.read_text(), delimiter, header))
    again = csv_records(exported)
    assert [r.payload for r in again] == [r.payload for r in original]
    assert [r.source_key for r in again] == [r.source_key for r in original]
    assert [r.line for r in again] == [r.line + header for r in original]


def test_a_header_names_the_columns(tmp_path: Path) -> None:
    text = "uuid,start_epoch,caller_id_number\nu1,1774689302,0470123456\n"
    (record,) = csv_records(write(tmp_path, text))
    assert record.payload == {
        "uniqueid": "u1",
        "start": "2026-03-28T09:15:02+00:00",
        "src": "0470123456",
        "clid": "0470123456",
    }
    assert record.line == 2


def test_a_header_matching_columns_is_skipped(tmp_path: Path) -> None:
    text = "${start_epoch},${uuid}\n1774689302,u1\n"
    (record,) = csv_records(write(tmp_path, text), columns=["start_epoch", "uuid"])
    assert record.payload["uniqueid"] == "u1"


def test_a_header_naming_other_columns_than_given_is_refused(tmp_path: Path) -> None:
    text = "uuid,start_epoch\nu1,1774689302\n"
    with pytest.raises(FileLineError) as exc:
        csv_records(write(tmp_path, text), columns=["start_epoch", "uuid"])
    assert exc.value.line == 1


def test_a_header_with_a_name_twice_is_refused_without_quoting_it(tmp_path: Path) -> None:
    text = "start_stamp,Alice,Alice\n"
    with pytest.raises(FileLineError) as exc:
        csv_records(write(tmp_path, text))
    assert "header" in refused(exc)


# --- a growing file, continued at its cursor ---------------------------------------------------


def test_a_stream_continues_with_the_layout_and_delimiter_given(tmp_path: Path) -> None:
    """What `dpa ingest cdr` does on cron: the first run reports the layout (a header's
    columns and `;`), the next reads only the appended lines with it, named by true line."""
    text = spreadsheet(MASTER.read_text(), ";", True)
    lines = text.splitlines(keepends=True)
    told: list[tuple[tuple[str, ...], str]] = []
    head = "".join(lines[:3])
    first = list(
        parse_freeswitch_csv(
            MASTER, BXL, stream=io.StringIO(head, newline=""), on_layout=lambda *a: told.append(a)
        )
    )
    assert [r.line for r in first] == [2, 3]
    assert told == [(EXAMPLE_COLUMNS, ";")]
    (columns, delimiter) = told[0]
    rest = list(
        parse_freeswitch_csv(
            MASTER,
            BXL,
            columns,
            stream=io.StringIO("".join(lines[3:]), newline=""),
            first_line=4,
            delimiter=delimiter,
        )
    )
    assert [r.line for r in rest] == [4, 5]
    whole = csv_records(MASTER, BXL)
    assert [r.payload for r in first + rest] == [r.payload for r in whole]


def test_a_continued_stream_names_its_true_line_numbers(tmp_path: Path) -> None:
    lines = lines_of_master()
    bad = lines[3].replace("2023-10-10 23:44:11", "10/10/2023 23:44", 1)
    with pytest.raises(FileLineError) as exc:
        list(
            parse_freeswitch_csv(
                MASTER,
                BXL,
                EXAMPLE_COLUMNS,
                stream=io.StringIO(lines[2] + bad, newline=""),
                first_line=3,
                delimiter=",",
            )
        )
    assert exc.value.line == 4
    assert str(exc.value).startswith(f"{MASTER}:4: start time")


def test_a_stream_without_calls_is_nothing_when_allowed() -> None:
    empty = io.StringIO("\n\n", newline="")
    assert list(parse_freeswitch_csv(MASTER, BXL, stream=empty, allow_empty=True)) == []
    with pytest.raises(InputError, match="no call records"):
        list(parse_freeswitch_csv(MASTER, BXL, stream=io.StringIO("", newline="")))


def test_a_header_alone_reports_its_layout(tmp_path: Path) -> None:
    told: list[tuple[tuple[str, ...], str]] = []
    path = write(tmp_path, "uuid;start_epoch;caller_id_number\n")
    records = parse_freeswitch_csv(path, BXL, allow_empty=True, on_layout=lambda *a: told.append(a))
    assert list(records) == []
    assert told == [(("uuid", "start_epoch", "caller_id_number"), ";")]


def test_a_delimiter_other_than_comma_or_semicolon_is_refused() -> None:
    with pytest.raises(InputError, match="','"):
        list(parse_freeswitch_csv(MASTER, BXL, delimiter="\t"))


def test_only_a_newline_ends_a_line(tmp_path: Path) -> None:
    """A bare CR inside a line does not end it: line numbers are the cursor's (`\\n`)."""
    lines = lines_of_master()
    name = '"Extension 1001"'
    lines[2] = lines[2].replace(name, '"Extension\r1001"')
    records = csv_records(write(tmp_path, "".join(lines)))
    assert [r.line for r in records] == [1, 2, 3, 4]
    assert records[2].payload["caller_id_name"] == "Extension\r1001"


# --- refusals --------------------------------------------------------------------------------


def lines_of_master() -> list[str]:
    return MASTER.read_text().splitlines(keepends=True)


def test_an_unterminated_quote_is_refused_at_its_line(tmp_path: Path) -> None:
    lines = lines_of_master()
    lines[1] = lines[1][:40] + "\n"  # cut inside the destination's quotes
    with pytest.raises(FileLineError) as exc:
        csv_records(write(tmp_path, "".join(lines)))
    assert exc.value.line == 2
    assert "not closed" in refused(exc)


def test_quotes_freeswitch_did_not_escape_are_read(tmp_path: Path) -> None:
    line = expand(templates()["example"], CALL | {"caller_id_name": 'Jan "the boss" Peeters'})
    (record,) = csv_records(write(tmp_path, line + "\n"))
    assert record.payload["caller_id_name"] == 'Jan "the boss" Peeters'
    assert record.payload["accountcode"] == "acme"


def test_a_value_holding_freeswitchs_separator_is_refused(tmp_path: Path) -> None:
    line = expand(templates()["example"], CALL | {"caller_id_name": 'Jan "," Peeters'})
    with pytest.raises(FileLineError) as exc:
        csv_records(write(tmp_path, line + "\n"))
    assert exc.value.line == 1
    refused(exc)


def test_a_quote_never_closed_is_refused_at_its_line(tmp_path: Path) -> None:
    lines = lines_of_master()
    lines[2] = lines[2].replace('"Extension 1001"', '"Extension 1001')
    with pytest.raises(FileLineError) as exc:
        csv_records(write(tmp_path, "".join(lines)))
    assert exc.value.line == 3
    refused(exc)


def test_a_line_of_another_length_is_refused(tmp_path: Path) -> None:
    lines = lines_of_master()
    lines[2] = lines[2].replace(',"PCMA","PCMA"', "")
    with pytest.raises(FileLineError) as exc:
        csv_records(write(tmp_path, "".join(lines)))
    assert exc.value.line == 3
    assert "expected 15 columns, found 13" in refused(exc)


def test_an_asterisk_line_is_refused_for_its_layout_not_a_value() -> None:
    """Asterisk's bare numbers beside quoted values are no FreeSWITCH `","` fields: the
    line is counted as CSV (18 columns) rather than split loosely into 15 merged ones."""
    asterisk = Path(__file__).parents[2] / "data" / "asterisk" / "Master.csv"
    with pytest.raises(FileLineError) as exc:
        csv_records(asterisk)
    message = refused(exc)
    assert exc.value.line == 1
    assert "found 18 columns" in message and "Asterisk cdr_csv" in message
    assert "whole number" not in message


@pytest.mark.parametrize(
    "bare",
    [
        pytest.param('"acme",162,"PCMA"', id="number-after-quote"),
        pytest.param('"acme" ;162; "PCMA"', id="semicolons-spaced"),
    ],
)
def test_a_loose_piece_with_a_bare_value_is_not_a_field(tmp_path: Path, bare: str) -> None:
    delimiter = ";" if ";" in bare else ","
    values = [f'"{CALL[name]}"' for name in EXAMPLE_COLUMNS[:12]]
    # A quote FreeSWITCH did not escape forces the loose split, where the bare 162 merges
    # with its neighbours: 13 pieces out of 15 values, the default template's count, which
    # was read as that template. The piece holding `",` now refuses the split.
    values[0] = '"Jan "the boss" Peeters"'
    line = delimiter.join([*values, bare]) + "\n"
    path = write(tmp_path, line)
    with pytest.raises(FileLineError) as exc:
        csv_records(path)
    assert exc.value.line == 1
    assert "malformed CSV" in refused(exc)
    with pytest.raises(FileLineError) as exc:
        csv_records(path, columns=DEFAULT_COLUMNS)
    assert "malformed CSV" in refused(exc)


@pytest.mark.parametrize(
    ("count", "hint"),
    [
        pytest.param(18, "Asterisk", id="asterisk-template"),
        pytest.param(7, "--columns", id="seven"),
    ],
)
def test_an_unknown_layout_says_what_was_expected(tmp_path: Path, count: int, hint: str) -> None:
    line = ",".join(['"0470123456"'] * count) + "\n"
    with pytest.raises(FileLineError) as exc:
        csv_records(write(tmp_path, line))
    message = refused(exc)
    assert f"found {count} columns" in message and "13" in message and "15" in message
    assert hint in message


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        pytest.param("start_stamp", "28/03/2026 10:15", "not YYYY-MM-DD", id="start-shape"),
        pytest.param("start_stamp", "", "start time is empty", id="start-empty"),
        pytest.param("start_stamp", "2026-02-30 10:00:00", "not YYYY-MM-DD", id="no-such-day"),
        pytest.param("start_stamp", "2026-03-28 10:15:60", "not YYYY-MM-DD", id="second-60"),
        pytest.param("end_stamp", "2200-01-01 00:00:00", "outside the dates", id="end-2200"),
        pytest.param("answer_stamp", "1899-12-31 23:59:59", "outside the dates", id="answer-1899"),
        pytest.param("answer_stamp", "0470123456", "not YYYY-MM-DD", id="shifted-number"),
        pytest.param("duration", "2147483648", "more than", id="duration-too-long"),
        pytest.param("billsec", "-1", "not a whole number", id="billsec-negative"),
        pytest.param("duration", "9" * 5000, "more than", id="duration-5000-digits"),
    ],
)
def test_bad_values_are_refused_without_quoting_them(
    tmp_path: Path, column: str, value: str, reason: str
) -> None:
    line = expand(templates()["example"], CALL | {column: value})
    with pytest.raises(FileLineError) as exc:
        csv_records(write(tmp_path, "\n" + line + "\n"), BXL)
    assert exc.value.line == 2
    assert reason in refused(exc)


@pytest.mark.parametrize(
    ("columns", "value", "reason"),
    [
        pytest.param(["start_epoch"], "99999999999", "outside", id="epoch-year-5138"),
        pytest.param(["start_uepoch"], "7258118400000000", "outside", id="uepoch-2200"),
        pytest.param(["start_uepoch"], "1" * 40, "outside", id="uepoch-40-digits"),
        pytest.param(["start_uepoch"], "17746893x2", "not Unix", id="uepoch-junk"),
        pytest.param(["start_epoch"], "-1774689302", "not Unix", id="epoch-negative"),
    ],
)
def test_bad_epochs_are_refused(
    tmp_path: Path, columns: list[str], value: str, reason: str
) -> None:
    with pytest.raises(FileLineError) as exc:
        csv_records(write(tmp_path, f'"{value}"\n'), columns=columns)
    assert reason in refused(exc)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("\n\n", id="blank"),
        pytest.param(",".join(EXAMPLE_COLUMNS) + "\n", id="header-only"),
    ],
)
def test_a_file_without_calls_is_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(InputError, match="no call records"):
        csv_records(write(tmp_path, text))


# --- times and outcomes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stamp", "utc"),
    [
        pytest.param("2026-03-29 02:30:00", "2026-03-29T01:30:00+00:00", id="skipped-hour-winter"),
        pytest.param("2026-10-25 02:30:00", "2026-10-25T00:30:00+00:00", id="repeated-hour-first"),
        pytest.param("2026-03-29 03:00:00", "2026-03-29T01:00:00+00:00", id="after-spring-forward"),
        pytest.param("2026-12-31 23:59:59", "2026-12-31T22:59:59+00:00", id="new-year-eve"),
    ],
)
def test_brussels_dst(tmp_path: Path, stamp: str, utc: str) -> None:
    line = expand(templates()["example"], CALL | {"start_stamp": stamp})
    (record,) = csv_records(write(tmp_path, line + "\n"), BXL)
    assert record.payload["start"] == utc


@pytest.mark.parametrize(
    ("cause", "answer", "billsec", "disposition"),
    [
        pytest.param("NORMAL_CLEARING", "2026-03-28 10:15:05", "159", "ANSWERED", id="answered"),
        pytest.param("MEDIA_TIMEOUT", "2026-03-28 10:15:05", "159", "ANSWERED", id="answered-cut"),
        pytest.param("USER_BUSY", "", "0", "BUSY", id="busy"),
        pytest.param("NO_ANSWER", "", "0", "NO ANSWER", id="no-answer"),
        pytest.param("ORIGINATOR_CANCEL", "", "0", "NO ANSWER", id="cancelled"),
        pytest.param("NORMAL_CLEARING", "", "0", "NO ANSWER", id="cleared-unanswered"),
        pytest.param("NORMAL_CIRCUIT_CONGESTION", "", "0", "CONGESTION", id="congestion"),
        pytest.param("UNALLOCATED_NUMBER", "", "0", "FAILED", id="unallocated"),
        pytest.param("CALL_REJECTED", "", "0", "FAILED", id="rejected"),
    ],
)
def test_hangup_cause_to_disposition(
    tmp_path: Path, cause: str, answer: str, billsec: str, disposition: str
) -> None:
    values = CALL | {"hangup_cause": cause, "answer_stamp": answer, "billsec": billsec}
    line = expand(templates()["example"], values)
    (record,) = csv_records(write(tmp_path, line + "\n"))
    assert record.payload["disposition"] == disposition
    assert record.payload["hangup_cause"] == cause
    assert record.payload["answer"] is (None if not answer else record.payload["answer"])


def test_without_a_cause_an_unanswered_outcome_is_unknown(tmp_path: Path) -> None:
    path = write(tmp_path, '"2026-03-28 10:15:02","","u"\n')
    (record,) = csv_records(path, columns=["start_stamp", "answer_stamp", "uuid"])
    assert "disposition" not in record.payload


# --- mod_json_cdr --------------------------------------------------------------------------------


def json_document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(JSON_CDR.read_text())
    return loaded


def write_json(tmp_path: Path, document: Any, name: str = "x.cdr.json") -> Path:
    text = document if isinstance(document, str) else json.dumps(document)
    return write(tmp_path, text + "\n", name)


def test_real_json_cdr() -> None:
    record = read_freeswitch_json(JSON_CDR, UTC_ZONE)
    assert record.line == 1
    assert record.collected_at == datetime(2018, 3, 14, 11, 9, 18, tzinfo=UTC)
    assert record.payload == {
        "accountcode": "1001",
        "clid": '"1001" <1001>',
        "channel": "sofia/internal/1001@192.168.56.202",
        "dstchannel": "sofia/internal/1002@192.168.56.1:5060",
        "lastapp": "bridge",
        "lastdata": "user/1002@192.168.56.202",
        "duration": 30,
        "billsec": 21,
        "hangup_cause": "NORMAL_CLEARING",
        "hangup_cause_q850": "16",
        "direction": "inbound",
        "uniqueid": "5a3a1d91-90d3-4db4-af5c-cc3ae15d93a4",
        "bridge_uuid": "9c1afb4f-1d4a-4e45-84a3-d25721981bf5",
        "read_codec": "G722",
        "write_codec": "G722",
        "caller_id_name": "1001",
        "src": "1001",
        "dst": "1002",
        "dcontext": "default",
        "start": "2018-03-14T11:09:18+00:00",
        "answer": "2018-03-14T11:09:27+00:00",
        "end": "2018-03-14T11:09:48+00:00",
        "disposition": "ANSWERED",
    }
    assert record.phones == ("1001", "1002")
    assert record.source_key == identity.source_key("cdr", record.payload)


def test_json_epochs_need_no_zone() -> None:
    assert read_freeswitch_json(JSON_CDR, BXL) == read_freeswitch_json(JSON_CDR, NEW_YORK)


def test_json_stamps_alone_are_read_in_the_zone_given(tmp_path: Path) -> None:
    document = json_document()
    for key in [k for k in document["variables"] if k.endswith(("epoch", "uepoch"))]:
        del document["variables"][key]
    record = read_freeswitch_json(write_json(tmp_path, document), NEW_YORK)
    from_epochs = read_freeswitch_json(JSON_CDR, UTC_ZONE)
    # The same instants; the stamps' zone is kept, and they count as written in the key.
    assert record.payload == {**from_epochs.payload, "tz": "America/New_York"}
    assert record.collected_at == from_epochs.collected_at
    assert "tz" not in from_epochs.payload


# SWITCH_URL_UNSAFE, as switch_utils.h spells it; switch_url_encode also escapes bytes
# outside printable ASCII.
URL_UNSAFE = '\r\n #%&+:;<=>?@[\\]^`{|}"'


def url_encode(value: str) -> str:
    """What switch_url_encode writes (encode-values=true, mod_json_cdr's default)."""
    out = []
    for byte in value.encode("utf-8"):
        char = chr(byte)
        out.append(f"%{byte:02X}" if char in URL_UNSAFE or not " " < char < "\x7f" else char)
    return "".join(out)


def test_url_encoded_values_read_the_same(tmp_path: Path) -> None:
    document = json_document()
    document["variables"] = {k: url_encode(v) for k, v in document["variables"].items()}
    assert document["variables"]["start_stamp"] == "2018-03-14%2007%3A09%3A18"
    document["variables"]["caller_id"] = url_encode('"Zoë" <1001>')
    record = read_freeswitch_json(write_json(tmp_path, document), NEW_YORK)
    assert record.payload["clid"] == '"Zoë" <1001>'
    expected = read_freeswitch_json(JSON_CDR, UTC_ZONE).payload | {"clid": '"Zoë" <1001>'}
    assert record.payload == expected


def test_unencoded_percent_signs_stay(tmp_path: Path) -> None:
    document = json_document()
    document["variables"]["userfield"] = "100%25 sure"
    record = read_freeswitch_json(write_json(tmp_path, document), UTC_ZONE)
    assert record.payload["userfield"] == "100%25 sure"


def test_old_json_cdr_with_repeated_callflow_keys_reads_the_current_profile(
    tmp_path: Path,
) -> None:
    document = json_document()
    current, original = document.pop("callflow")
    original["caller_profile"]["destination_number"] = "1099"
    body = json.dumps(document)[:-1]
    text = body + ',"callflow":' + json.dumps(current) + ',"callflow":' + json.dumps(original) + "}"
    record = read_freeswitch_json(write_json(tmp_path, text), UTC_ZONE)
    assert record.payload["dst"] == "1002"


def test_a_json_cdr_without_callflow_keeps_its_variables(tmp_path: Path) -> None:
    document = json_document()
    del document["callflow"]
    record = read_freeswitch_json(write_json(tmp_path, document), UTC_ZONE)
    assert "src" not in record.payload and record.payload["uniqueid"]
    assert record.phones == ("1001",)  # the caller id's number


def test_an_unanswered_json_leg(tmp_path: Path) -> None:
    document = json_document()
    variables = document["variables"]
    for key in ("answer_stamp", "answer_epoch", "answer_uepoch"):
        variables.pop(key)
    variables |= {"billsec": "0", "hangup_cause": "NO_USER_RESPONSE"}
    record = read_freeswitch_json(write_json(tmp_path, document), UTC_ZONE)
    assert "answer" not in record.payload
    assert record.payload["disposition"] == "NO ANSWER"


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        pytest.param("", 1, "empty", id="empty"),
        pytest.param("[]", 1, "not a FreeSWITCH JSON CDR", id="a-list"),
        pytest.param('{"Alice": "0470123456"}', 1, "not a FreeSWITCH JSON CDR", id="no-variables"),
        pytest.param('{"variables": {}}', 1, "start time is empty", id="no-start"),
        pytest.param('{\n"variables": {\n"start_epoch": NaN}}', 1, "NaN", id="nan"),
        pytest.param('{\n"variables":\n{"start_epoch": "1",}}', 3, "not valid JSON", id="syntax"),
        pytest.param("[" * 100000 + "]" * 100000, 1, "nested", id="deep"),
        pytest.param(
            '{"variables": {"duration": ["0470123456"], "start_epoch": "1774689302"}}',
            1,
            "$.variables.duration is not text",
            id="list-value",
        ),
        pytest.param(
            '{"variables": {"start_epoch": "1774689302"}, "callflow": "x"}',
            1,
            "callflow",
            id="callflow-text",
        ),
        pytest.param(
            '{"variables": {"start_epoch": "1774689302"}, "callflow": [{"caller_profile": 1}]}',
            1,
            "caller_profile",
            id="profile-1",
        ),
        pytest.param(
            '{"variables": {"start_epoch": "1774689302", "billsec": "0470123456789"}}',
            1,
            "more than",
            id="billsec",
        ),
    ],
)
def test_a_file_that_is_not_a_call_is_refused_by_name(
    tmp_path: Path, text: str, line: int, reason: str
) -> None:
    path = write(tmp_path, text, "a_0f5c8ae2.cdr.json")
    with pytest.raises(FileLineError) as exc:
        read_freeswitch_json(path, UTC_ZONE)
    message = refused(exc)
    assert message.startswith(f"{path}:{line}: ")
    assert reason in message


def test_a_json_file_too_large_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(freeswitch, "MAX_JSON_BYTES", 1000)
    with pytest.raises(FileLineError, match="larger than 1000 bytes"):
        read_freeswitch_json(JSON_CDR, UTC_ZONE)


def test_parse_freeswitch_json_reads_each_file_in_order(tmp_path: Path) -> None:
    document = json_document()
    document["variables"]["uuid"] = "second"
    second = write_json(tmp_path, document)
    records = list(parse_freeswitch_json([JSON_CDR, second], UTC_ZONE))
    assert [r.payload["uniqueid"] for r in records] == [
        "5a3a1d91-90d3-4db4-af5c-cc3ae15d93a4",
        "second",
    ]
    with pytest.raises(InputError, match="no FreeSWITCH JSON CDR files"):
        list(parse_freeswitch_json([], UTC_ZONE))


def test_json_cdr_files_searches_rotated_folders(tmp_path: Path) -> None:
    (tmp_path / "2026-03-28-00-00-00").mkdir()
    b = write(tmp_path / "2026-03-28-00-00-00", "{}", "b.cdr.json")
    a = write(tmp_path, "{}", "a_x.cdr.json")
    write(tmp_path, "", "notes.txt")
    assert json_cdr_files(tmp_path) == [tmp_path / "2026-03-28-00-00-00" / "b.cdr.json", a]
    assert b.exists()
    assert json_cdr_files(a) == [a]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no JSON CDR files"):
        json_cdr_files(empty)


# --- any bytes -----------------------------------------------------------------------------------

SAMPLE_BYTES = MASTER.read_bytes()


@st.composite
def csv_bytes(draw: st.DrawFn) -> bytes:
    """Junk, or the real file with a slice replaced by junk."""
    junk = draw(st.binary(max_size=200))
    if draw(st.booleans()):
        return junk
    at = draw(st.integers(0, len(SAMPLE_BYTES)))
    cut = draw(st.integers(0, 40))
    return SAMPLE_BYTES[:at] + junk + SAMPLE_BYTES[at + cut :]


@settings(max_examples=150)
@given(data=csv_bytes(), columns=st.sampled_from([None, list(EXAMPLE_COLUMNS), ["start_epoch"]]))
def test_any_csv_bytes_parse_or_are_refused(
    tmp_path_factory: pytest.TempPathFactory, data: bytes, columns: list[str] | None
) -> None:
    path = tmp_path_factory.mktemp("csv") / "Master.csv"
    path.write_bytes(data)
    try:
        records = list(parse_freeswitch_csv(path, BXL, columns))
    except InputError:  # FileLineError included
        return
    assert all(r.collected_at.tzinfo is not None for r in records)


JSON_BYTES = JSON_CDR.read_bytes()


@st.composite
def json_bytes(draw: st.DrawFn) -> bytes:
    junk = draw(st.binary(max_size=100))
    if draw(st.booleans()):
        return junk
    at = draw(st.integers(0, len(JSON_BYTES)))
    cut = draw(st.integers(0, 20))
    return JSON_BYTES[:at] + junk + JSON_BYTES[at + cut :]


@settings(max_examples=150)
@given(data=json_bytes())
def test_any_json_bytes_parse_or_are_refused(
    tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    path = tmp_path_factory.mktemp("json") / "x.cdr.json"
    path.write_bytes(data)
    try:
        record = read_freeswitch_json(path, BXL)
    except InputError:
        return
    assert record.category == "cdr"


@settings(max_examples=100)
@given(
    values=st.dictionaries(st.sampled_from(sorted(CALL)), st.text(max_size=30), max_size=len(CALL))
)
def test_any_field_values_parse_or_are_refused(
    tmp_path_factory: pytest.TempPathFactory, values: dict[str, str]
) -> None:
    """Values as FreeSWITCH would write them (quotes unescaped) in the real template."""
    path = tmp_path_factory.mktemp("fields") / "Master.csv"
    path.write_text(
        expand(templates()["example"], CALL | values) + "\n",
        encoding="utf-8",
        errors="surrogatepass",
    )
    try:
        list(parse_freeswitch_csv(path, BXL))
    except InputError:
        return
