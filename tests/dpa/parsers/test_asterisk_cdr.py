"""Asterisk cdr_csv: 18 columns, local times to UTC across DST, errors without personal data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from dpa import identity
from dpa.errors import FileLineError, InputError
from dpa.identifiers import normalise_phone
from dpa.parsers import ParsedRecord, parse_cdr_csv

DATA = Path(__file__).parents[2] / "data" / "asterisk"
BXL = ZoneInfo("Europe/Brussels")
PERSONAL = ("0470", "470 12", "470123456", "2234", "0478", "Peeters", "Zoë", "Jérôme", "Doe")
GOOD = (
    '"","0470123456","1001","from-pstn","""Jan Peeters"" <0470123456>","SIP/a","SIP/b","Dial",'
    '"SIP/1001,30","2026-03-28 10:15:02","2026-03-28 10:15:05","2026-03-28 10:17:44",162,159,'
    '"ANSWERED","DOCUMENTATION","1.1",""'
)


def records() -> list[ParsedRecord]:
    return list(parse_cdr_csv(DATA / "Master.csv", BXL))


def by_key(uniqueid: str) -> ParsedRecord:
    return next(r for r in records() if r.payload["uniqueid"] == uniqueid)


def test_every_line_is_a_record() -> None:
    result = records()
    assert len(result) == 12
    assert [r.line for r in result] == list(range(1, 13))
    assert {r.category for r in result} == {"cdr"}
    assert all(r.media is None and r.emails == () for r in result)


def test_fields_by_name() -> None:
    record = by_key("1774689302.1")
    assert record.payload["src"] == "0470123456"
    assert record.payload["dst"] == "1001"
    assert record.payload["clid"] == '"Jan Peeters" <0470123456>'
    assert record.payload["lastdata"] == "SIP/1001,30"
    assert record.payload["duration"] == 162
    assert record.payload["billsec"] == 159
    assert record.payload["disposition"] == "ANSWERED"
    assert record.payload["start"] == "2026-03-28T09:15:02+00:00"
    assert record.collected_at == datetime(2026, 3, 28, 9, 15, 2, tzinfo=UTC)
    assert len(record.payload) == 18 + 1  # the fields, and the zone they were read in
    assert record.payload["tz"] == "Europe/Brussels"


def test_quoted_comma_in_clid_stays_in_one_field() -> None:
    record = by_key("1775113200.8")
    assert record.payload["clid"] == '"Doe, John" <0478112233>'
    assert record.phones == ("0478112233", "1001")


@pytest.mark.parametrize(
    ("uniqueid", "start", "end"),
    [
        pytest.param(
            "1774744200.3",
            "2026-03-29T00:30:00+00:00",
            "2026-03-29T01:10:00+00:00",
            id="call-spanning-spring-forward",
        ),
        pytest.param(
            "1774747800.4",
            "2026-03-29T01:30:00+00:00",
            "2026-03-29T01:30:20+00:00",
            id="skipped-hour-read-as-winter-time",
        ),
        pytest.param(
            "1774746300.5",
            "2026-03-29T01:05:00+00:00",
            "2026-03-29T01:06:00+00:00",
            id="after-spring-forward",
        ),
        pytest.param(
            "1792888200.11",
            "2026-10-25T00:30:00+00:00",
            "2026-10-25T00:31:00+00:00",
            id="repeated-hour-read-as-summer-time",
        ),
    ],
)
def test_local_times_become_utc_across_dst(uniqueid: str, start: str, end: str) -> None:
    record = by_key(uniqueid)
    assert record.payload["start"] == start
    assert record.payload["end"] == end
    assert record.collected_at.isoformat() == start


def test_unanswered_call_has_no_answer_time() -> None:
    record = by_key("1774747800.4")
    assert record.payload["answer"] is None
    assert record.payload["disposition"] == "NO ANSWER"
    assert record.payload["billsec"] == 0


@pytest.mark.parametrize(
    ("uniqueid", "expected"),
    [
        pytest.param("1774747800.4", set(), id="unknown"),
        pytest.param("1774850400.6", set(), id="anonymous"),
        pytest.param("1774746300.5", {"+32470123456"}, id="00-prefix-and-spaced-clid"),
        pytest.param("1774738770.2", {"+32470123456"}, id="e164-dst"),
        pytest.param("1774744200.3", {"+3222345678"}, id="landline-00-prefix"),
    ],
)
def test_indexable_phones(uniqueid: str, expected: set[str]) -> None:
    phones = {normalise_phone(p, "BE") for p in by_key(uniqueid).phones} - {None}
    assert phones == expected


def test_clid_number_added_when_spelled_differently() -> None:
    assert by_key("1774746300.5").phones == ("0032470123456", "1001", "+32 470 12 34 56")


def test_non_ascii_names_survive() -> None:
    assert by_key("1775046130.7").payload["clid"] == '"Jérôme Dupont" <+32470987654>'
    assert by_key("1774744200.3").payload["clid"].startswith('"Zoë Vandenbroucke"')


def test_missing_uniqueid_gets_a_stable_content_hash() -> None:
    last = records()[-1]
    assert last.payload["uniqueid"] == ""
    assert len(last.source_key) == 64
    assert last.source_key == records()[-1].source_key


def test_the_key_is_the_content_not_the_uniqueid(tmp_path: Path) -> None:
    # Two CDRs of one parallel Dial share their uniqueid (Asterisk 12+): two records.
    other_leg = GOOD.replace('"SIP/b"', '"SIP/c"')
    path = tmp_path / "Master.csv"
    path.write_text(f"{GOOD}\n{other_leg}\n{GOOD}\n", encoding="utf-8")
    first, second, again = parse_cdr_csv(path, BXL)
    assert first.payload["uniqueid"] == second.payload["uniqueid"] == "1.1"
    assert first.source_key != second.source_key
    assert again.source_key == first.source_key
    assert first.source_key == identity.source_key("cdr", first.payload)


def test_a_spreadsheet_requoting_keeps_the_key(tmp_path: Path) -> None:
    requoted = GOOD.replace('"ANSWERED"', "ANSWERED").replace('"DOCUMENTATION"', "DOCUMENTATION")
    path = tmp_path / "Master.csv"
    path.write_text(f"{GOOD}\n{requoted}\n", encoding="utf-8")
    first, second = parse_cdr_csv(path, BXL)
    assert first.source_key == second.source_key


def test_blank_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "Master.csv"
    path.write_text(f"\n{GOOD}\n\n{GOOD}\n", encoding="utf-8")
    assert [r.line for r in parse_cdr_csv(path, BXL)] == [2, 4]


def test_streams_without_reading_everything_first(tmp_path: Path) -> None:
    path = tmp_path / "Master.csv"
    path.write_text(f"{GOOD}\n{GOOD[:40]}\n", encoding="utf-8")
    records = parse_cdr_csv(path, BXL)
    assert next(records).line == 1  # the bad second line is not read yet
    with pytest.raises(FileLineError):
        next(records)


def test_bad_column_count_fixture() -> None:
    path = DATA / "Master-bad-line.csv"
    with pytest.raises(FileLineError) as caught:
        list(parse_cdr_csv(path, BXL))
    assert str(caught.value) == f"{path}:4: expected 18 columns, found 17"


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        pytest.param(
            '"2026-03-28 10:15:02"',
            '"28/03/2026 10:15"',
            "start time is not YYYY-MM-DD HH:MM:SS",
            id="bad-start",
        ),
        pytest.param('"2026-03-28 10:15:02"', '""', "start time is empty", id="empty-start"),
        pytest.param(
            '"2026-03-28 10:15:05"',
            '"0470123456"',
            "answer time is not YYYY-MM-DD HH:MM:SS",
            id="phone-in-answer-not-echoed",
        ),
        pytest.param(
            ",162,", ",1m42,", "duration is not a whole number of seconds", id="bad-duration"
        ),
        pytest.param(
            ",159,", ",-1,", "billsec is not a whole number of seconds", id="negative-billsec"
        ),
    ],
)
def test_bad_values(tmp_path: Path, old: str, new: str, reason: str) -> None:
    path = tmp_path / "Master.csv"
    path.write_text(f"{GOOD}\n{GOOD}\n{GOOD.replace(old, new, 1)}\n", encoding="utf-8")
    with pytest.raises(FileLineError) as caught:
        list(parse_cdr_csv(path, BXL))
    message = str(caught.value)
    assert message == f"{path}:3: {reason}"
    assert not any(word in message for word in PERSONAL)


def test_a_field_running_over_two_lines_is_refused_at_its_first(tmp_path: Path) -> None:
    path = tmp_path / "Master.csv"
    multiline = GOOD.replace('"SIP/1001,30"', '"SIP/1001,\n30"')
    path.write_text(f"{GOOD}\n{multiline}\n{GOOD}\n", encoding="utf-8")
    with pytest.raises(FileLineError) as caught:
        list(parse_cdr_csv(path, BXL))
    assert caught.value.line == 2
    assert "quoted field is not closed" in caught.value.reason


def test_a_line_cut_anywhere_is_refused_at_that_line_never_merged(tmp_path: Path) -> None:
    # Cut the second of four lines at every position: either the cut line is refused at
    # line 2, or (cut after its last field) all four calls load; three never do.
    path = tmp_path / "Master.csv"
    third = GOOD.replace('"1.1"', '"1.3"')
    fourth = GOOD.replace('"1.1"', '"1.4"')
    outcomes = set()
    for cut in range(1, len(GOOD)):
        path.write_text(f"{GOOD}\n{GOOD[:cut]}\n{third}\n{fourth}\n", encoding="utf-8")
        try:
            lines = [r.line for r in parse_cdr_csv(path, BXL)]
        except FileLineError as error:
            assert error.line == 2, (cut, str(error))
            assert not any(word in str(error) for word in PERSONAL)
            outcomes.add("refused")
        else:
            assert lines == [1, 2, 3, 4], cut
            outcomes.add("loaded")
    assert "refused" in outcomes


def test_a_file_ending_inside_a_quote_is_refused_at_its_last_line(tmp_path: Path) -> None:
    path = tmp_path / "Master.csv"
    path.write_text(f"{GOOD}\n{GOOD[:30]}", encoding="utf-8")
    with pytest.raises(FileLineError) as caught:
        list(parse_cdr_csv(path, BXL))
    assert caught.value.line == 2


def test_a_character_after_a_closing_quote_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "Master.csv"
    path.write_text(GOOD.replace('"from-pstn"', '"from"-pstn') + "\n", encoding="utf-8")
    with pytest.raises(FileLineError, match="malformed CSV") as caught:
        list(parse_cdr_csv(path, BXL))
    assert caught.value.line == 1


@pytest.mark.parametrize(
    "text", [pytest.param("", id="empty"), pytest.param("\n\n", id="blank-lines")]
)
def test_a_file_without_calls_is_refused_naming_it(tmp_path: Path, text: str) -> None:
    path = tmp_path / "Master.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match="no call records") as caught:
        list(parse_cdr_csv(path, BXL))
    assert str(caught.value).startswith(f"{path}:")


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        pytest.param(
            "2026-03-28 10:15:02",
            "9999-12-31 23:59:59",
            "start time is outside the dates dpa computes with (1900-01-01 to 2199-12-31)",
            id="start-9999",
        ),
        pytest.param(
            "2026-03-28 10:15:02",
            "0001-01-01 00:00:00",
            "start time is outside the dates dpa computes with (1900-01-01 to 2199-12-31)",
            id="start-0001",
        ),
        pytest.param(
            "2026-03-28 10:17:44",
            "2200-01-01 00:00:00",
            "end time is outside the dates dpa computes with (1900-01-01 to 2199-12-31)",
            id="end-2200",
        ),
        pytest.param(
            ",162,",
            ",12345678901234567890,",
            "duration is more than 2147483647 seconds",
            id="duration-20-digits",
        ),
        pytest.param(
            ",159,",
            "," + "9" * 5000 + ",",
            "billsec is more than 2147483647 seconds",
            id="billsec-5000-digits",
        ),
        pytest.param(
            ",162,", ",2147483648,", "duration is more than 2147483647 seconds", id="duration-2-31"
        ),
    ],
)
def test_values_beyond_what_dpa_stores(tmp_path: Path, old: str, new: str, reason: str) -> None:
    path = tmp_path / "Master.csv"
    path.write_text(f"{GOOD}\n{GOOD.replace(old, new, 1)}\n", encoding="utf-8")
    with pytest.raises(FileLineError) as caught:
        list(parse_cdr_csv(path, BXL))
    assert str(caught.value) == f"{path}:2: {reason}"


def test_the_calendar_edges_themselves_load(tmp_path: Path) -> None:
    path = tmp_path / "Master.csv"
    first = GOOD.replace("2026-03-28 10:15:02", "1900-01-01 00:00:00", 1)
    last = GOOD.replace("2026-03-28 10:17:44", "2199-12-31 23:59:59").replace(
        ",162,", ",2147483647,"
    )
    path.write_text(f"{first}\n{last}\n", encoding="utf-8")
    loaded = list(parse_cdr_csv(path, BXL))
    assert loaded[0].collected_at == datetime(1900, 1, 1, tzinfo=UTC)  # Belgium kept GMT then
    assert loaded[1].payload["end"].startswith("2199-12-31T")
    assert loaded[1].payload["duration"] == 2147483647


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        pytest.param(
            '"","1","2","c","","","","","","0001-01-01 00:10:00","","0001-01-01 00:10:01",1,1,"ANSWERED","D","u1",""',
            "start time is outside the dates dpa computes with (1900-01-01 to 2199-12-31)",
            id="year-one",
        ),
        pytest.param(
            '"","1","2","c","","","","","","2026-01-01 00:10:00","","2026-01-01 00:10:01",²,1,"ANSWERED","D","u1",""',
            "duration is not a whole number of seconds",
            id="superscript-digit",
        ),
    ],
)
def test_out_of_range_values_are_file_line_errors(tmp_path: Path, line: str, reason: str) -> None:
    path = tmp_path / "Master.csv"
    path.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(FileLineError) as caught:
        list(parse_cdr_csv(path, ZoneInfo("Europe/Brussels")))
    assert str(caught.value) == f"{path}:1: {reason}"


@pytest.mark.parametrize(
    ("zone", "day"),
    [
        pytest.param("Europe/Brussels", "2026-03-29", id="spring-forward"),
        pytest.param("Europe/Brussels", "2026-10-25", id="fall-back"),
        pytest.param("America/Santiago", "2026-04-05", id="change-at-midnight"),
        pytest.param("Australia/Lord_Howe", "2026-04-05", id="half-hour-change"),
        pytest.param("Europe/Amsterdam", "1937-07-01", id="offset-with-seconds"),
    ],
)
def test_cached_minutes_give_the_exact_conversion(tmp_path: Path, zone: str, day: str) -> None:
    # Times are converted once per minute and cached: every second of the day must still
    # come out as the exact per-value conversion would give it.
    tz = ZoneInfo(zone)
    base = datetime.fromisoformat(f"{day} 00:00:00")
    times = [base + timedelta(seconds=s) for s in range(-3600, 26 * 3600, 29)]
    lines = [
        GOOD.replace("2026-03-28 10:15:02", f"{t:%Y-%m-%d %H:%M:%S}").replace('"1.1"', f'"{n}"')
        for n, t in enumerate(times)
    ]
    path = tmp_path / "Master.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    parsed = list(parse_cdr_csv(path, tz))
    assert len(parsed) == len(times)
    for record, local in zip(parsed, times, strict=True):
        exact = local.replace(tzinfo=tz, fold=0).astimezone(UTC)
        assert record.collected_at == exact
        assert record.payload["start"] == exact.isoformat()
