"""tests.moved_samples: the samples `make run` ingests, every date moved by whole months."""

from __future__ import annotations

import filecmp
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from dateutil.relativedelta import relativedelta

from dpa.parsers.asterisk_cdr import parse_cdr_csv
from dpa.parsers.base import ParsedRecord
from dpa.parsers.recordings import parse_recordings
from dpa.parsers.voicemail import parse_voicemail_spool
from tests.moved_samples import DATA, main, months_since_story, move_samples

BRUSSELS = ZoneInfo("Europe/Brussels")


@pytest.mark.parametrize(
    ("month", "months"),
    [
        pytest.param("2026-11", 0, id="the-story-month"),
        pytest.param("2027-01", 2, id="next-year"),
        pytest.param("2029-06", 31, id="years-later"),
        pytest.param("2026-05", -6, id="before"),
    ],
)
def test_months_count_from_november_2026(month: str, months: int) -> None:
    assert months_since_story(month) == months


@pytest.mark.parametrize("month", ["2029-6", "2029-13", "2029-00", "june", "2029-06\n"])
def test_a_month_is_yyyy_mm(month: str) -> None:
    with pytest.raises(ValueError, match="not a month"):
        months_since_story(month)


def test_the_story_month_copies_the_samples_unchanged(tmp_path: Path) -> None:
    move_samples(tmp_path, 0)
    for sample in ("voicemail", "recordings"):  # and the CDR and contact files below
        compared = filecmp.dircmp(DATA / sample, tmp_path / sample)
        assert not compared.left_only and not compared.right_only, sample
    for path in (p for p in tmp_path.rglob("*") if p.is_file()):
        assert path.read_bytes() == (DATA / path.relative_to(tmp_path)).read_bytes(), path


def _parsed(root: Path) -> dict[str, list[ParsedRecord]]:
    return {
        "cdr": list(parse_cdr_csv(root / "asterisk" / "Master.csv", BRUSSELS)),
        "voicemail": list(parse_voicemail_spool(root / "voicemail")),
        "recording": list(parse_recordings([root / "recordings"], BRUSSELS)),
    }


@pytest.mark.parametrize("months", [2, 11, 31, -6])
def test_every_record_is_collected_the_same_day_of_a_later_month(
    tmp_path: Path, months: int
) -> None:
    move_samples(tmp_path, months)
    before, after = _parsed(DATA), _parsed(tmp_path)
    for kind, records in before.items():
        assert len(after[kind]) == len(records) > 0, kind
        for old, new in zip(records, after[kind], strict=True):
            was = old.collected_at.astimezone(BRUSSELS).replace(tzinfo=None)
            now = new.collected_at.astimezone(BRUSSELS).replace(tzinfo=None)
            expected = was + relativedelta(months=months)
            assert now.date() == expected.date(), (kind, old.line)
            # a wall-clock time that a DST change skips or repeats lands within the hour
            assert abs(now - expected) <= timedelta(hours=1), (kind, old.line)
            assert new.phones == old.phones and new.category == old.category
    assert (tmp_path / "contacts.csv").read_bytes() == (DATA / "contacts.csv").read_bytes()


def test_the_command_writes_the_copies_and_refuses_a_bad_month(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["2029-06", str(tmp_path / "out")]) == 0
    text = (tmp_path / "out" / "asterisk" / "Master.csv").read_text("utf-8")
    assert '"2028-10-28 10:15:02"' in text and "2026-" not in text
    assert main(["June", str(tmp_path / "other")]) == 2
    assert "not a month (YYYY-MM): 'June'" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()
    assert main([]) == 2


def test_the_newest_sample_is_older_than_the_story_month() -> None:
    # make run ingests while its customers run: nothing may be collected after the story's
    # month began (acme's contract ends at the end of the month before it).
    newest = max(r.collected_at for records in _parsed(DATA).values() for r in records)
    assert newest < datetime(2026, 11, 1, tzinfo=BRUSSELS)
