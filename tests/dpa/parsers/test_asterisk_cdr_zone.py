"""Zone evidence of Asterisk CDR files: start times against the epoch their uniqueid begins
with (`dpa.parsers.asterisk_cdr.ZoneEvidence`).

The real samples (tests/data/real/asterisk, SOURCES.md) were written by their PBXs in UTC
(cdr.conf's stock usegmtime=yes), except cdr_custom's, written at UTC+3: each uniqueid's
epoch second is the start's wall clock read in that zone.
"""

from __future__ import annotations

import csv
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from dpa.parsers.asterisk_cdr import (
    ZONE_MIN_LINES,
    ZoneEvidence,
    ZoneFinding,
    parse_cdr_csv,
)

REAL = Path(__file__).parents[2] / "data" / "real" / "asterisk"
UTC_FILES = {  # file: lines, all of them with a uniqueid
    "cdr-csv-18-TelephonySwitching.csv": 12,
    "cdr-csv-18-shared-uniqueid.csv": 12,
    "cdr-csv-21-newcdrcolumns.csv": 15,  # two with a systemname- prefix
}
BRUSSELS = ZoneInfo("Europe/Brussels")


def _evidence(path: Path, zone: ZoneInfo) -> ZoneEvidence:
    evidence = ZoneEvidence()
    records = list(parse_cdr_csv(path, zone, zone_evidence=evidence))
    assert records, "the file holds calls"
    return evidence


def _numbers(path: Path) -> set[str]:
    """Every run of 4 or more digits in a file: uniqueids, phone numbers, times."""
    return set(re.findall(r"[0-9]{4,}", path.read_text(encoding="utf-8")))


@pytest.mark.parametrize("name", sorted(UTC_FILES))
def test_a_real_utc_file_read_in_utc_shows_no_other_zone(name: str) -> None:
    evidence = _evidence(REAL / name, ZoneInfo("UTC"))
    assert evidence.compared == UTC_FILES[name]
    assert evidence.in_zone == UTC_FILES[name]
    assert evidence.finding() is None


@pytest.mark.parametrize("name", sorted(UTC_FILES))
def test_a_real_utc_file_read_as_brussels_time_names_tz_utc(name: str) -> None:
    finding = _evidence(REAL / name, BRUSSELS).finding()
    assert finding is not None
    assert finding.zone == "Europe/Brussels"
    assert (finding.compared, finding.agreeing) == (UTC_FILES[name], UTC_FILES[name])
    assert finding.share == 1.0
    assert finding.writer_offsets == (0,)
    assert finding.shift_minutes in (-60, -120)  # CET or CEST on the file's dates
    text = finding.warning()
    assert "--tz UTC" in text
    assert "before" in text
    assert not {n for n in _numbers(REAL / name) if n in text}, "no value of the file quoted"


def test_the_real_cdr_custom_file_was_written_at_utc_plus_3() -> None:
    path = REAL / "cdr-custom-19-sample-mapping.csv"
    finding = _evidence(path, ZoneInfo("UTC")).finding()
    assert finding is not None
    assert finding.writer_offsets == (3,)
    assert (finding.shift_minutes, finding.lowest, finding.highest) == (180, 180, 180)
    assert "--tz Etc/GMT-3" in finding.warning()  # POSIX's sign: Etc/GMT-3 is UTC+3
    assert "3 hour(s) after" in finding.warning()
    assert _evidence(path, ZoneInfo("Etc/GMT-3")).finding() is None


def test_a_half_hour_zone_reading_a_utc_file_is_seen() -> None:
    finding = _evidence(REAL / "cdr-csv-18-shared-uniqueid.csv", ZoneInfo("Asia/Kolkata")).finding()
    assert finding is not None
    assert finding.writer_offsets == (0,)
    assert finding.shift_minutes == -330
    assert "5.5 hour(s) before" in finding.warning()


def _line(start: datetime, uniqueid: str, *, answer: bool = True) -> str:
    """An 18-column cdr_csv line (fictitious 555 numbers) starting at naive `start`."""
    text = f"{start:%Y-%m-%d %H:%M:%S}"
    end = f"{start + timedelta(seconds=40):%Y-%m-%d %H:%M:%S}"
    answered = text if answer else ""
    return (
        '"","2025550123","201","from-pstn","""Test Caller"" <2025550123>","PJSIP/trunk-0001",'
        f'"PJSIP/201-0002","Dial","PJSIP/201,30","{text}","{answered}","{end}",40,40,'
        f'"ANSWERED","DOCUMENTATION","{uniqueid}",""\n'
    )


def _write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "Master.csv"
    path.write_text("".join(lines), encoding="utf-8")
    return path


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def test_a_utc_file_across_the_spring_change_read_as_brussels_time(tmp_path: Path) -> None:
    """Europe/Brussels moves from UTC+1 to UTC+2 at 01:00 UTC on 29 March 2026: the same UTC
    file lies 1 hour off before and 2 hours after, and is seen as UTC throughout."""
    lines = []
    for hours in range(-6, 6):  # every hour from 19:00 to 06:00 UTC across the change
        moment = datetime(2026, 3, 29, 1, 0, 7, tzinfo=UTC) + timedelta(hours=hours)
        naive = moment.replace(tzinfo=None)
        lines.append(_line(naive, f"pbx-{_epoch(moment)}.{hours + 6}"))
    evidence = _evidence(_write(tmp_path, lines), BRUSSELS)
    finding = evidence.finding()
    assert finding is not None
    assert (finding.compared, finding.agreeing) == (12, 12)
    assert finding.writer_offsets == (0,)
    assert (finding.lowest, finding.highest) == (-120, -60)
    assert "1 to 2 hour(s) before" in finding.warning()
    assert "--tz UTC" in finding.warning()
    assert _evidence(_write(tmp_path, lines), ZoneInfo("UTC")).finding() is None


def test_a_brussels_file_across_the_autumn_change_read_as_utc(tmp_path: Path) -> None:
    """Written in Brussels time (UTC+2, then UTC+1 from 01:00 UTC on 25 October 2026) and read
    as UTC: both offsets are named, and Brussels time reads it right (the repeated hour too)."""
    lines = []
    for hours in range(-5, 5):
        moment = datetime(2026, 10, 25, 1, 0, 3, tzinfo=UTC) + timedelta(hours=hours)
        if moment.astimezone(BRUSSELS).fold:
            continue  # the repeated hour's second pass cannot be told from its first
        naive = moment.astimezone(BRUSSELS).replace(tzinfo=None)
        lines.append(_line(naive, f"{_epoch(moment)}.{hours + 5}"))
    finding = _evidence(_write(tmp_path, lines), ZoneInfo("UTC")).finding()
    assert finding is not None
    assert finding.writer_offsets == (1, 2)
    assert "UTC+1 and UTC+2" in finding.warning()
    assert "--tz UTC" not in finding.warning()
    right = _evidence(_write(tmp_path, lines), BRUSSELS)
    assert right.finding() is None
    assert right.in_zone == right.compared == len(lines)


def test_a_file_without_uniqueids_gives_no_evidence(tmp_path: Path) -> None:
    # The 16 base columns (no loguniqueid): nothing to compare a start with.
    lines = [
        _line(datetime(2026, 3, 28, 9, n, 0), "x").rsplit(',"x",', 1)[0] + "\n" for n in range(6)
    ]
    assert len(next(csv.reader([lines[0]]))) == 16
    evidence = _evidence(_write(tmp_path, lines), BRUSSELS)
    assert evidence.compared == 0
    assert evidence.finding() is None


def test_empty_or_odd_uniqueids_are_not_compared(tmp_path: Path) -> None:
    moment = datetime(2026, 3, 28, 9, 15, 2, tzinfo=UTC)
    naive = moment.replace(tzinfo=None)  # UTC, read as Brussels time: an hour off
    odd = ["", "abc.1", "12x.3", "99999999999999.1", "-.5"]
    lines = [_line(naive, uniqueid) for uniqueid in odd]
    lines += [_line(naive, f"{_epoch(moment)}.{n}") for n in range(ZONE_MIN_LINES)]
    evidence = _evidence(_write(tmp_path, lines), BRUSSELS)
    assert evidence.compared == ZONE_MIN_LINES
    assert evidence.finding() is not None


def test_too_few_lines_are_no_evidence(tmp_path: Path) -> None:
    moment = datetime(2026, 3, 28, 9, 15, 2, tzinfo=UTC)
    lines = [
        _line(moment.replace(tzinfo=None), f"{_epoch(moment)}.{n}")
        for n in range(ZONE_MIN_LINES - 1)
    ]
    evidence = _evidence(_write(tmp_path, lines), BRUSSELS)
    assert evidence.agreeing == ZONE_MIN_LINES - 1
    assert evidence.finding() is None


def test_transfer_and_queue_legs_that_start_later_do_not_trip_it(tmp_path: Path) -> None:
    """Right zone: CDRs of legs created after the channel (a transfer, queue members rung
    later) start minutes or hours after their uniqueid's second, by chance even a whole
    hour: not a zone."""
    created = datetime(2026, 3, 28, 9, 0, 0, tzinfo=UTC)
    uniqueid = f"{_epoch(created)}.7"
    later = [0, 0, 1, 4, 150, 600, 1800, 3600, 3610, 5400, 7200, 11111]  # seconds
    lines = [
        _line((created + timedelta(seconds=s)).astimezone(BRUSSELS).replace(tzinfo=None), uniqueid)
        for s in later
    ]
    evidence = _evidence(_write(tmp_path, lines), BRUSSELS)
    assert evidence.compared == len(later)
    assert evidence.in_zone == 4
    assert evidence.agreeing == 3  # 3600, 3610 and 7200: whole hours by chance
    assert evidence.finding() is None


def test_a_utc_file_with_later_legs_is_still_seen(tmp_path: Path) -> None:
    """A UTC file read as Brussels time: 8 calls an hour off, 2 transfer legs later still."""
    created = datetime(2026, 2, 10, 14, 0, 0, tzinfo=UTC)
    lines = []
    for n in range(8):
        moment = created + timedelta(minutes=7 * n)
        lines.append(_line(moment.replace(tzinfo=None), f"{_epoch(moment)}.{n}"))
    for n, late in enumerate((1234, 2500)):  # started 20 and 41 minutes after the channel
        moment = created + timedelta(seconds=late)
        lines.append(_line(moment.replace(tzinfo=None), f"{_epoch(created)}.{n + 8}"))
    finding = _evidence(_write(tmp_path, lines), BRUSSELS).finding()
    assert finding is not None
    assert (finding.compared, finding.agreeing, finding.shift_minutes) == (10, 8, -60)
    assert finding.writer_offsets == (0,)
    assert "8 of the 10 lines" in finding.warning()


def test_samples_moved_by_whole_months_are_no_zone(tmp_path: Path) -> None:
    """`make run` moves the samples' times by months and keeps their uniqueids: days off,
    not a zone."""
    lines = []
    for n in range(6):
        moment = datetime(2026, 3, 28, 9, n, 0, tzinfo=UTC)
        moved = (moment + timedelta(days=245)).astimezone(BRUSSELS).replace(tzinfo=None)
        lines.append(_line(moved, f"{_epoch(moment)}.{n}"))
    evidence = _evidence(_write(tmp_path, lines), BRUSSELS)
    assert evidence.compared == 6
    assert (evidence.in_zone, evidence.agreeing) == (0, 0)
    assert evidence.finding() is None


def test_one_evidence_reads_one_zone(tmp_path: Path) -> None:
    moment = datetime(2026, 3, 28, 9, 15, 2, tzinfo=UTC)
    path = _write(tmp_path, [_line(moment.replace(tzinfo=None), f"{_epoch(moment)}.1")])
    evidence = ZoneEvidence()
    list(parse_cdr_csv(path, BRUSSELS, zone_evidence=evidence))
    with pytest.raises(ValueError, match="one zone"):
        list(parse_cdr_csv(path, ZoneInfo("UTC"), zone_evidence=evidence))


def test_a_finding_of_one_fixed_zone_spells_etc_gmt() -> None:
    finding = ZoneFinding("UTC", 10, 9, -300, -300, -300, (-5,))
    assert finding.share == 0.9
    text = finding.warning()
    assert "5 hour(s) before" in text
    assert "UTC-5" in text and "--tz Etc/GMT+5" in text
    assert "9 of the 10 lines" in text and "(90%)" in text
