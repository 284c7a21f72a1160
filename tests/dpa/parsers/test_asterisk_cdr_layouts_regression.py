"""A layout the line's times already name needs no uniqueid to be told apart (found by the
CDR fuzz test: cdr_custom's sample mapping with its uniqueid, accountcode and userfield
empty was refused, though no other 19-column layout has its times where it has them)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from zoneinfo import ZoneInfo

from dpa.parsers.asterisk_cdr import CUSTOM_SAMPLE, parse_cdr_csv


def test_cdr_custom_sample_with_empty_ids_is_read_by_its_times(tmp_path: Path) -> None:
    line = (
        '"""Reception"" <1001>",1001,0470123456,from-internal,SIP/1001-00000016,'
        'SIP/trunk-00000017,Dial,"SIP/trunk/0470123456,60",2026-10-26 10:00:00,'
        "2026-10-26 10:00:09,2026-10-26 10:02:09,129,120,ANSWERED,DOCUMENTATION,,,,7\n"
    )
    path = tmp_path / "Master.csv"
    path.write_text(line)
    (record,) = parse_cdr_csv(path, ZoneInfo("UTC"))
    row = next(csv.reader(io.StringIO(line)))
    assert set(record.payload) >= set(CUSTOM_SAMPLE)
    assert record.payload["start"] == "2026-10-26T10:00:00+00:00"
    assert record.payload["dst"] == row[2]
