"""Call-back list: the CSV export (header spellings, delimiter, times, refusals, quarantine)
and entries derived from CDRs (`missed_calls`: called back, too late, answered repeat call,
withheld caller)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dpa import identity
from dpa.errors import FileLineError, InputError
from dpa.identifiers import normalise_phone
from dpa.parsers.base import ParsedRecord
from dpa.parsers.callbacks import missed_calls, parse_callback_csv

DATA = Path(__file__).parents[2] / "data" / "callbacks"
BRUSSELS = ZoneInfo("Europe/Brussels")
SECRET = "0470999888"  # a fictitious number, only in bad lines: never in a reason


def read(path: Path, tz: ZoneInfo = BRUSSELS) -> list[ParsedRecord]:
    return list(parse_callback_csv(path, tz))


def write(tmp_path: Path, text: str, name: str = "list.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def refusal(path: Path) -> FileLineError:
    with pytest.raises(FileLineError) as caught:
        read(path)
    assert SECRET not in str(caught.value)
    return caught.value


# --- the samples -------------------------------------------------------------------------


def test_english_list_with_commas() -> None:
    records = read(DATA / "list-en.csv")
    assert [r.line for r in records] == [2, 3, 4, 5]
    assert {r.category for r in records} == {"callback_list"}
    first = records[0]
    assert first.payload == {
        "caller": "+32470555101",
        "missed_at": "2026-11-20T08:14:03+00:00",  # 09:14:03 in Brussels (winter time)
        "status": "open",
        "handled_by": None,
        "note": None,
        "called_number": "+3292555000",
    }
    assert first.collected_at == datetime(2026, 11, 20, 8, 14, 3, tzinfo=UTC)
    assert first.phones == ("+32470555101", "+3292555000")
    assert first.source_key == identity.source_key("callback_list", first.payload)
    # A caller id keeps its text; the number in it is the phone.
    assert records[1].payload["caller"] == '"Jan Peeters" <0470555102>'
    assert records[1].phones[0] == "0470555102"
    assert records[1].payload["note"] == "Called back at 11:00"
    assert [r.payload["status"] for r in records] == [
        "open",
        "called_back",
        "closed",
        "in_progress",
    ]
    # An explicit offset wins over --tz.
    assert records[3].payload["missed_at"] == "2026-11-21T07:05:00+00:00"
    assert records[3].payload["note"] == "Asks for a quote; call before noon"
    assert normalise_phone(records[3].phones[0], "BE") == "+32470555103"


def test_dutch_list_with_semicolons_bom_day_first_and_a_blank_line() -> None:
    records = read(DATA / "lijst-nl.csv")
    assert [r.line for r in records] == [2, 3, 5]  # line 4 is blank, numbers kept
    assert [r.payload["status"] for r in records] == ["open", "called_back", "closed"]
    assert records[0].payload["missed_at"] == "2026-11-20T13:03:00+00:00"
    assert records[1].payload["missed_at"] == "2026-11-21T08:30:12+00:00"
    assert records[2].payload["missed_at"] == "2026-11-22T15:45:00+00:00"
    assert records[1].payload["handled_by"] == "Els"
    assert records[1].payload["note"] == "Terugbellen na 14u; klant wacht"
    assert "called_number" not in records[0].payload  # the list has no such column
    assert records[0].phones == ("0470555104",)


def test_french_list_with_date_and_time_in_two_columns() -> None:
    records = read(DATA / "liste-fr.csv")
    assert [r.payload["missed_at"] for r in records] == [
        "2026-11-23T07:15:00+00:00",
        "2026-11-23T10:40:05+00:00",
    ]
    assert [r.payload["status"] for r in records] == ["open", "called_back"]
    assert records[1].payload["handled_by"] == "Chloé"
    assert records[1].payload["called_number"] == "092555000"


def test_reading_twice_gives_the_same_keys_and_other_zones_other_times() -> None:
    once = [r.source_key for r in read(DATA / "lijst-nl.csv")]
    assert once == [r.source_key for r in read(DATA / "lijst-nl.csv")]
    utc = read(DATA / "lijst-nl.csv", ZoneInfo("UTC"))
    assert utc[0].payload["missed_at"] == "2026-11-20T14:03:00+00:00"
    assert utc[0].source_key != once[0]


@pytest.mark.parametrize(
    ("header", "delimiter"),
    [
        ("caller,time,status,handled_by,note", ","),
        ("Caller Number;Missed at;State;Agent;Comments", ";"),
        ("From,Date/Time,Status,Assigned to,Remarks,To", ","),
        ("Nummer;Datum en tijd;Toestand;Medewerker;Notitie;Gebeld nummer", ";"),
        ("Oproeper;Gemist op;Status;Behandelaar;Commentaar", ";"),
        ("Numéro de l'appelant;Heure de l'appel;État;Géré par;Commentaire", ";"),
        ("Appelant,Horodatage,Statut,Utilisateur,Remarques,Vers", ","),
        ("CALLER ID;TIMESTAMP;STATUS;HANDLER;NOTE", ";"),
        ("Datum;Tijd;Beller", ";"),
        ("Numero,Date", ","),
    ],
)
def test_header_spellings(tmp_path: Path, header: str, delimiter: str) -> None:
    width = header.count(delimiter) + 1
    names = header.split(delimiter)
    cells = []
    for name in names:
        low = name.lower()
        if low in ("datum", "date") and width == 3:
            cells.append("20/11/2026")
        elif low == "tijd":
            cells.append("14:03")
        elif any(
            w in low for w in ("time", "tijd", "heure", "horodatage", "gemist", "date", "missed")
        ):
            cells.append("2026-11-20 14:03:00")
        elif any(
            w in low
            for w in ("caller", "from", "nummer", "appelant", "numero", "beller", "oproeper")
        ):
            cells.append("0470555104" if "gebeld" not in low else "092555000")
        elif low in ("to", "vers"):
            cells.append("092555000")
        else:
            cells.append("")
    path = write(tmp_path, f"{header}\n{delimiter.join(cells)}\n")
    (record,) = read(path)
    assert record.payload["caller"] == "0470555104"
    assert record.payload["missed_at"] == "2026-11-20T13:03:00+00:00"


@pytest.mark.parametrize(
    "written",
    [
        "2026-11-20 14:03",
        "2026-11-20T14:03:00",
        "2026-11-20T13:03:00Z",
        "2026-11-20T15:03:00+02:00",
        "2026-11-20 15:03:00 +0200",
        "20/11/2026 14:03",
        "20-11-2026 14:03:00",
        "20.11.2026 14:03",
    ],
)
def test_time_spellings(tmp_path: Path, written: str) -> None:
    (record,) = read(write(tmp_path, f"caller;time\n0470555104;{written}\n"))
    assert record.payload["missed_at"] == "2026-11-20T13:03:00+00:00"


def test_an_unknown_status_is_kept_as_written(tmp_path: Path) -> None:
    (record,) = read(write(tmp_path, "caller,time,status\n0470555104,2026-11-20 14:03,Escalated\n"))
    assert record.payload["status"] == "Escalated"


# --- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("", 1, "the file is empty"),
        ("\n", 1, "no header line"),
        ("caller,when,colour\n", 1, "column 3 is not a known column"),
        (f"{SECRET},2026-11-20 14:03\n", 1, "column 1 is not a known header"),
        ("caller,time,caller\n", 1, "column 3 repeats caller"),
        ("time,status\n", 1, "no caller column"),
        ("caller,status\n", 1, "no missed_at column"),
        ("caller,,time\n", 1, "column 2 has no name"),
        ("caller,time;caller;time\n", 1, "column 1 is not a known column"),
        ("caller;time\n0470555104;2026-11-20 14:03\n", 2, None),  # fine: checked below
    ],
)
def test_file_level_refusals(tmp_path: Path, text: str, line: int, reason: str | None) -> None:
    path = write(tmp_path, text)
    if reason is None:
        assert len(read(path)) == 1
        return
    error = refusal(path)
    assert (error.line, error.file) == (line, str(path))
    assert reason in error.reason


def test_a_header_without_entries_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no call-back entries"):
        read(write(tmp_path, "caller;time\n\n;\n"))


GOOD = "0470555104,2026-11-20 14:03,open"


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (f"{SECRET},yesterday at noon,open", "time of the missed call is not a date and time"),
        (f"{SECRET},,open", "the time of the missed call is empty"),
        (f"{SECRET},2026-02-30 10:00,open", "is not a date and time"),
        (f"{SECRET},11/20/2026 14:03,open", "is not a date and time"),  # month first
        (f"{SECRET},2250-01-01 10:00,open", "outside the dates dpa computes with"),
        (f"{SECRET},1900-01-01T00:10+01:00,open", "outside the dates"),  # 1899 in UTC
        (f"{SECRET},2026-11-20 14:03", "expected 3 columns, found 2"),
        (f'{SECRET},2026-11-20 14:03,"open', "a quoted field is not closed on this line"),
        (f'{SECRET},2026-11-20 14:03,"a note\nover two lines"', "not closed on this line"),
        (f'{SECRET},2026-11-20 14:03,"open"x', "malformed CSV"),
    ],
)
def test_a_bad_line_refuses_the_file_at_its_line(tmp_path: Path, bad: str, reason: str) -> None:
    path = write(tmp_path, f"caller,time,status\n{GOOD}\n{bad}\n{GOOD}\n")
    records = parse_callback_csv(path, BRUSSELS)
    assert next(records).line == 2
    with pytest.raises(FileLineError) as caught:
        next(records)
    assert (caught.value.file, caught.value.line) == (str(path), 3)
    assert reason in caught.value.reason
    assert SECRET not in str(caught.value)
    assert next(records, None) is None  # nothing after the refusal: line 4 is never read


def test_a_local_time_is_refused_when_it_is_outside_the_calendar_in_utc(tmp_path: Path) -> None:
    path = write(tmp_path, "caller,time\n0470555104,1900-01-01 05:00\n")
    with pytest.raises(FileLineError, match="outside the dates dpa computes with"):
        read(path, ZoneInfo("Asia/Tokyo"))  # 1899-12-31 in UTC
    assert len(read(path, ZoneInfo("UTC"))) == 1


def test_a_line_that_is_not_utf8_is_refused_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_bytes(
        b"caller;time;note\n0470555104;2026-11-20 14:03;ok\n0470555105;2026-11-20 14:04;r\xe9\n"
    )
    error = refusal(path)
    assert (error.line, error.reason) == (3, "not UTF-8 (save the list as CSV UTF-8)")


# --- quarantine ----------------------------------------------------------------------------


def test_quarantine_sets_bad_lines_aside_and_reads_on(tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_bytes(
        b"caller;time;note\n"
        b"0470555101;2026-11-20 09:00;\n"
        b"0470999888;not a time;\n"
        b'0470555102;2026-11-20 10:00;"cut\n'
        b"0470555103;2026-11-20 11:00;caf\xe9\n"
        b"0470555104;2026-11-20 12:00\n"
        b"0470555105;2026-11-20 13:00;fine\n"
    )
    bad: list[tuple[int, str, str]] = []
    records = list(
        parse_callback_csv(
            path, BRUSSELS, on_bad_line=lambda e, raw: bad.append((e.line, e.reason, raw))
        )
    )
    assert [r.line for r in records] == [2, 7]
    assert [(line, reason) for line, reason, _ in bad] == [
        (3, "time of the missed call is not a date and time (YYYY-MM-DD HH:MM[:SS] or "
            "DD/MM/YYYY HH:MM[:SS], optionally with an offset)"),
        (4, "a quoted field is not closed on this line (is the line cut short?)"),
        (5, "not UTF-8 (save the list as CSV UTF-8)"),
        (6, "expected 3 columns, found 2"),
    ]  # fmt: skip
    assert bad[0][2] == "0470999888;not a time;\n"  # the raw line, for the sealed reject
    assert bad[2][2] == "0470555103;2026-11-20 11:00;caf\\xe9\n"
    assert records[1].payload["note"] == "fine"


def test_quarantine_still_refuses_a_bad_header(tmp_path: Path) -> None:
    path = write(tmp_path, "caller;colour\n0470555104;red\n")
    with pytest.raises(FileLineError, match="column 2 is not a known column"):
        list(parse_callback_csv(path, BRUSSELS, on_bad_line=lambda e, raw: None))


def test_quarantine_reads_good_lines_as_the_strict_reading_does() -> None:
    kept: list[object] = []
    for name in ("list-en.csv", "lijst-nl.csv", "liste-fr.csv"):
        strict = read(DATA / name)
        lenient = list(
            parse_callback_csv(DATA / name, BRUSSELS, on_bad_line=lambda e, r: kept.append(e))
        )
        assert strict == lenient
    assert kept == []


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.one_of(
        st.binary(max_size=300),
        st.lists(
            st.sampled_from(
                [
                    "caller;time;status\n",
                    "Beller,Tijdstip\n",
                    "0470555104;2026-11-20 14:03;open\n",
                    "0470555104,20/11/2026 14:03\n",
                    '"x;"y\n',
                    ";;\n",
                    "\ufeff",
                    "\xe9",
                    "2026-13-40 25:61",
                    ";",
                    ",",
                    '"',
                    "\n",
                    "\r\n",
                    "9999-12-31T23:59:59+14:00",
                    "0001-01-01 00:00",
                    "31/12/2199 23:59",
                    "-14:00",
                    "appelant;date;heure\n",
                ]
            ),
            max_size=12,
        ).map(lambda parts: "".join(parts).encode("utf-8", "surrogatepass")),
    ),
    quarantine=st.booleans(),
)
def test_any_input_parses_or_is_refused_cleanly(
    tmp_path: Path, data: bytes, quarantine: bool
) -> None:
    path = tmp_path / "fuzz.csv"
    path.write_bytes(data)
    bad: list[FileLineError] = []
    try:
        records = list(
            parse_callback_csv(
                path, BRUSSELS, on_bad_line=(lambda e, r: bad.append(e)) if quarantine else None
            )
        )
    except (InputError, FileLineError):
        return
    for record in records:
        assert record.collected_at.tzinfo is not None
        assert record.payload["missed_at"] == record.collected_at.isoformat()
    assert all(e.line >= 2 for e in bad)


# --- entries derived from CDRs -------------------------------------------------------------

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=3)
CALLER = "0470555101"
OURS = "092555000"  # the customer's number


def cdr(
    minutes: float,
    src: str,
    dst: str,
    disposition: str = "NO ANSWER",
    billsec: int = 0,
    context: str = "from-trunk",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "src": src,
        "dst": dst,
        "dcontext": context,
        "start": (T0 + timedelta(minutes=minutes)).isoformat(),
        "disposition": disposition,
        "billsec": billsec,
        **extra,
    }


def out(
    minutes: float, dst: str, disposition: str = "ANSWERED", billsec: int = 30
) -> dict[str, Any]:
    return cdr(minutes, "1001", dst, disposition, billsec, context="from-internal")


def derive(cdrs: Any, hours: int = 24, **options: Any) -> list[ParsedRecord]:
    options.setdefault("inbound_contexts", ("from-trunk",))
    return list(missed_calls(cdrs, hours=hours, now=NOW, region="BE", **options))


def test_a_missed_call_nobody_reacted_to_is_an_entry() -> None:
    (entry,) = derive([cdr(0, CALLER, OURS)])
    assert entry.category == "callback_list"
    assert entry.line == 1
    assert entry.collected_at == T0
    assert entry.payload == {
        "caller": CALLER,
        "missed_at": T0.isoformat(),
        "status": "open",
        "handled_by": None,
        "note": None,
        "called_number": OURS,
        "disposition": "NO ANSWER",
    }
    assert entry.phones == (CALLER, OURS)
    assert entry.source_key == identity.source_key("callback_list", entry.payload)


def test_called_back_within_the_window_is_no_entry() -> None:
    # Another spelling of the same number: compared in E.164.
    assert derive([cdr(0, CALLER, OURS), out(60 * 23, "+32 470 55 51 01")]) == []
    # A call back nobody answered still counts: someone reacted.
    assert derive([cdr(0, CALLER, OURS), out(30, "0032470555101", "NO ANSWER", 0)]) == []


def test_called_back_too_late_is_an_entry() -> None:
    entries = derive([cdr(0, CALLER, OURS), out(60 * 24 + 1, CALLER)])
    assert [e.payload["missed_at"] for e in entries] == [T0.isoformat()]
    # Exactly at the window's end is within it.
    assert derive([cdr(0, CALLER, OURS), out(60 * 24, CALLER)]) == []
    # A call to the caller before the missed call does not answer it.
    assert len(derive([out(-5, CALLER), cdr(0, CALLER, OURS)])) == 1


def test_an_answered_repeat_call_within_the_window_is_no_entry() -> None:
    assert derive([cdr(0, CALLER, OURS), cdr(90, CALLER, OURS, "ANSWERED", 45)]) == []
    # An unanswered repeat call answers nothing: both calls are entries.
    twice = derive([cdr(0, CALLER, OURS), cdr(90, CALLER, OURS, "BUSY", 0)])
    assert [e.payload["disposition"] for e in twice] == ["NO ANSWER", "BUSY"]
    # An answered repeat after the window: the first call is still an entry.
    late = derive([cdr(0, CALLER, OURS), cdr(60 * 25, CALLER, OURS, "ANSWERED", 45)])
    assert [e.collected_at for e in late] == [T0]


def test_a_withheld_caller_never_becomes_an_entry() -> None:
    withheld = [
        cdr(0, "anonymous", OURS),
        cdr(1, "", OURS, clid='"Anonymous" <anonymous>'),
        cdr(2, "Restricted", OURS),
        cdr(3, "1002", OURS),  # an internal extension
    ]
    assert derive(withheld) == []


def test_the_legs_of_one_call_are_one_call() -> None:
    # A ring group: two extensions ring, one answers: not missed.
    answered = [
        cdr(0, CALLER, OURS, "NO ANSWER", 0, uniqueid="1763629200.1"),
        cdr(0, CALLER, OURS, "ANSWERED", 80, uniqueid="1763629200.1"),
    ]
    assert derive(answered) == []
    # Neither answers: one entry naming both CDRs, at the position of the first.
    missed = {
        "r2": cdr(0, CALLER, OURS, "NO ANSWER", 0, linkedid="1763629200.7"),
        "r1": cdr(0, CALLER, OURS, "BUSY", 0, linkedid="1763629200.7"),
        "r3": out(60 * 30, "0470555999"),
    }
    (entry,) = derive(missed)
    assert entry.payload["derived_from"] == ["r1", "r2"]
    assert entry.line == 1


def test_inbound_is_told_by_context_or_by_the_customer_s_numbers() -> None:
    internal = cdr(0, CALLER, "1001", context="from-internal")
    assert derive([internal]) == []  # not an inbound context, not our number
    assert derive([internal], inbound_contexts=(), own_numbers=(OURS,)) == []
    # Our number in another spelling than the CDR's.
    by_number = cdr(0, CALLER, "+3292555000", context="from-internal")
    (entry,) = derive([by_number], inbound_contexts=(), own_numbers=("+32 9 255 50 00",))
    # The customer's own number calling out is never a missed inbound call.
    assert derive([cdr(0, OURS, "0470555102")], own_numbers=(OURS,)) == []
    with pytest.raises(InputError, match="inbound"):
        derive([internal], inbound_contexts=())
    assert entry.payload["caller"] == CALLER


def test_answered_and_unknown_calls_are_no_entries_and_billsec_zero_is_missed() -> None:
    assert derive([cdr(0, CALLER, OURS, "ANSWERED", 12)]) == []
    assert derive([cdr(0, CALLER, OURS, "", 0)])[0].payload["disposition"] is None
    assert derive([{**cdr(0, CALLER, OURS), "disposition": None, "billsec": None}]) == []
    assert len(derive([cdr(0, CALLER, OURS, "ANSWERED", 0)])) == 1  # answered, zero seconds


def test_a_call_whose_window_has_not_ended_waits() -> None:
    recent = cdr(60 * 24 * 3 - 60, CALLER, OURS)  # an hour before NOW
    assert derive([recent], hours=2) == []
    assert len(derive([recent], hours=1)) == 1


def test_bad_arguments_and_cdrs_are_refused() -> None:
    # Refusals name the option they are about (regression, fuzz: they named none).
    with pytest.raises(InputError, match=r"^--from-missed-calls: .*1 to 8784 hours"):
        derive([], hours=0)
    with pytest.raises(InputError, match=r"^--own-number: own number\(s\) 2 are not phone numbers"):
        derive([], own_numbers=(OURS, "1001"))
    with pytest.raises(InputError, match=r"\(--inbound-context\) or .* \(--own-number\)$"):
        derive([], inbound_contexts=(" ",), own_numbers=())
    with pytest.raises(InputError, match="CDR 2 has no start time"):
        derive([cdr(0, CALLER, OURS), {**cdr(1, CALLER, OURS), "start": "yesterday"}])


def _calls() -> st.SearchStrategy[list[dict[str, Any]]]:
    numbers = st.sampled_from([CALLER, "0470555102", "anonymous", "1001", OURS])
    outcome = st.sampled_from([("ANSWERED", 30), ("NO ANSWER", 0), ("BUSY", 0), ("ANSWERED", 0)])
    leg = st.tuples(st.integers(0, 60 * 24 * 3), numbers, numbers, outcome, st.booleans()).map(
        lambda t: cdr(t[0], t[1], t[2], t[3][0], t[3][1], "from-trunk" if t[4] else "from-internal")
    )
    return st.lists(leg, max_size=25)


@settings(max_examples=200, deadline=None)
@given(cdrs=_calls(), hours=st.integers(1, 72))
def test_every_entry_is_a_missed_inbound_call_nobody_reacted_to(
    cdrs: list[dict[str, Any]], hours: int
) -> None:
    entries = derive(cdrs, hours=hours)
    assert entries == derive(cdrs, hours=hours)
    window = timedelta(hours=hours)
    for entry in entries:
        caller = normalise_phone(entry.payload["caller"], "BE")
        assert caller is not None
        missed = entry.collected_at
        assert missed + window <= NOW
        for c in cdrs:
            at = datetime.fromisoformat(c["start"])
            if not missed < at <= missed + window:
                continue
            to_caller = normalise_phone(c["dst"], "BE") == caller
            assert not (c["dcontext"] == "from-internal" and to_caller), "called back"
            from_caller = normalise_phone(c["src"], "BE") == caller
            answered = c["disposition"] == "ANSWERED" and c["billsec"] > 0
            assert not (c["dcontext"] == "from-trunk" and from_caller and answered)
    assert [e.collected_at for e in entries] == sorted(e.collected_at for e in entries)


def _iterated() -> Iterator[dict[str, Any]]:
    yield cdr(0, CALLER, OURS)


def test_a_generator_of_payloads_is_read_once() -> None:
    assert len(derive(_iterated())) == 1


def test_a_header_with_a_lone_carriage_return_is_refused_at_line_1(tmp_path: Path) -> None:
    """Found by hypothesis: csv's loose reading raised on `\r` inside the header."""
    path = tmp_path / "list.csv"
    path.write_bytes(b"\r\x00")
    with pytest.raises(FileLineError) as refused:
        list(parse_callback_csv(path, BRUSSELS))
    assert refused.value.line == 1
