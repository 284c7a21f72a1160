"""Keeping part of a record: `generalise` applied exactly, the action named truthfully, files erased.

Pure tests of `RetentionRule.apply` (hour, day and month in Europe/Brussels across both DST
changes of 2026, numbers in buckets, values that cannot be generalised), then sweeps on both
backends: the default register's CDR billing copy (pseudonymised, start to the day), an
anonymising rule (start to the hour, billsec in minutes), a schema 1 register's `anonymise`
(read and ledgered as pseudonymise) and an identity document (outcome kept, image erased).
"""

from __future__ import annotations

import json
import shutil
import wave
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import yaml
from hypothesis import given
from hypothesis import strategies as st

import dpa.cli.ingest_iddocs  # noqa: F401  (registers `dpa ingest id-document`)
from dpa.config import Settings
from dpa.keyring import record_ad
from dpa.periods import Duration
from dpa.register import RetentionRule
from dpa.resources import default_register_text
from dpa.workspace import Workspace
from retention import sweeper
from tests.conftest import Run, add_customer

Cli = Callable[..., Run]
BRUSSELS = ZoneInfo("Europe/Brussels")
DATA = Path(__file__).parents[1] / "data"
CALLER = "+32470123456"  # in the sample CDRs and the identity document's sidecar
LATE_2027 = datetime(2027, 12, 1, 12, 0, tzinfo=UTC)  # every sample CDR is 12 months old


def _rule(action: str = "pseudonymise", **generalise: Any) -> RetentionRule:
    return RetentionRule(
        duration=Duration(12, "months"),
        anchor="collected",
        action=action,  # type: ignore[arg-type]
        keep=("start", "billsec", "disposition", "cost"),
        generalise=tuple(generalise.items()),
    )


# ---- pure ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "granularity", "expected"),
    [
        # 29 March 2026: Brussels goes from +01:00 to +02:00 at 02:00 local (01:00 UTC).
        pytest.param(
            "2026-03-29T00:59:59+00:00", "hour", "2026-03-29T00:00:00+00:00", id="01h-cet"
        ),
        pytest.param(
            "2026-03-29T01:00:00+00:00", "hour", "2026-03-29T01:00:00+00:00", id="03h-cest"
        ),
        pytest.param(
            "2026-03-29T01:05:00+00:00", "day", "2026-03-28T23:00:00+00:00", id="spring-day"
        ),
        pytest.param(
            "2026-03-29T22:30:00+00:00", "day", "2026-03-29T22:00:00+00:00", id="30-march"
        ),
        # 25 October 2026: 02:00-03:00 local happens twice (+02:00, then +01:00).
        pytest.param(
            "2026-10-25T00:30:00+00:00", "hour", "2026-10-25T00:00:00+00:00", id="first-02h"
        ),
        pytest.param(
            "2026-10-25T01:30:00+00:00", "hour", "2026-10-25T01:00:00+00:00", id="second-02h"
        ),
        pytest.param(
            "2026-10-25T01:30:00+00:00", "day", "2026-10-24T22:00:00+00:00", id="autumn-day"
        ),
        pytest.param(
            "2026-10-25T23:10:00+00:00", "day", "2026-10-25T23:00:00+00:00", id="26-october"
        ),
        # A time late on the last day of a month in UTC is already the next month in Brussels.
        pytest.param("2026-03-31T22:30:00+00:00", "month", "2026-03-31T22:00:00+00:00", id="april"),
        pytest.param("2026-03-31T21:30:00+00:00", "month", "2026-02-28T23:00:00+00:00", id="march"),
        pytest.param("2026-03-29T03:05:00+02:00", "hour", "2026-03-29T01:00:00+00:00", id="offset"),
        pytest.param("2026-11-23", "day", "2026-11-23", id="date-day"),
        pytest.param("2026-11-23", "month", "2026-11-01", id="date-month"),
    ],
)
def test_times_become_the_start_of_their_local_period(
    start: str, granularity: str, expected: str
) -> None:
    kept = _rule(start=granularity).apply({"start": start, "src": "0470123456"}, BRUSSELS)
    assert kept.payload == {"start": expected}
    assert kept.dropped == {}


@pytest.mark.parametrize(
    ("billsec", "expected"),
    [
        pytest.param(0, 0, id="zero"),
        pytest.param(59, 0, id="under"),
        pytest.param(60, 60, id="exact"),
        pytest.param(2396, 2340, id="long"),
        pytest.param(61.5, 60.0, id="float"),
        pytest.param("125", "120", id="text"),
        pytest.param("-1", "-60", id="negative-text"),
    ],
)
def test_numbers_are_rounded_down_to_their_bucket(billsec: Any, expected: Any) -> None:
    kept = _rule("anonymise", billsec=60).apply({"billsec": billsec}, BRUSSELS)
    assert kept.payload == {"billsec": expected}
    assert type(kept.payload["billsec"]) is type(expected)


@pytest.mark.parametrize(
    ("field", "value", "granularity"),
    [
        pytest.param("start", "2026-03-29 10:00:00", "day", id="time-without-offset"),
        pytest.param("start", "yesterday", "hour", id="not-a-time"),
        pytest.param("start", 1774689302, "day", id="epoch-number"),
        pytest.param("billsec", "a minute", 60, id="not-a-number"),
        pytest.param("billsec", True, 60, id="boolean"),
        pytest.param("billsec", "NaN", 60, id="nan"),
    ],
)
def test_a_value_that_cannot_be_generalised_is_dropped_and_counted(
    field: str, value: Any, granularity: Any
) -> None:
    kept = _rule("anonymise", **{field: granularity}).apply({field: value}, BRUSSELS)
    assert kept.payload == {field: None}
    assert kept.dropped == {field: 1}


def test_only_kept_fields_stay_and_absent_ones_are_not_invented() -> None:
    payload = {"start": "2026-04-01T12:22:10+00:00", "billsec": 465, "src": "0470123456"}
    kept = _rule(start="day").apply(payload, BRUSSELS)
    assert kept.payload == {"start": "2026-03-31T22:00:00+00:00", "billsec": 465}


def test_the_coarsest_time_granularity_is_the_collection_times() -> None:
    rule = RetentionRule(
        duration=Duration(1, "months"),
        anchor="collected",
        action="anonymise",
        keep=("start", "end", "billsec"),
        generalise=(("start", "hour"), ("end", "month"), ("billsec", 60)),
    )
    assert rule.time_granularity == "month"
    assert _rule(billsec=60).time_granularity is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"action": "anonymise"}, "must generalise", id="anonymise-exact"),
        pytest.param({"generalise": (("src", "day"),)}, "does not keep", id="not-kept"),
        pytest.param({"generalise": (("billsec", 1),)}, "granularity", id="bucket-1"),
        pytest.param({"generalise": (("start", "week"),)}, "granularity", id="week"),
        pytest.param({"action": "delete"}, "keeps nothing", id="delete-keeps"),
    ],
)
def test_a_rule_refuses_what_it_cannot_do(kwargs: dict[str, Any], message: str) -> None:
    values: dict[str, Any] = {
        "duration": Duration(1, "months"),
        "anchor": "collected",
        "action": "pseudonymise",
        "keep": ("start", "billsec"),
    } | kwargs
    with pytest.raises(ValueError, match=message):
        RetentionRule(**values)


instants = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2032, 12, 31), timezones=st.just(UTC)
)


@given(moment=instants, granularity=st.sampled_from(["hour", "day", "month"]))
def test_a_generalised_time_is_the_first_instant_of_the_same_local_period(
    moment: datetime, granularity: str
) -> None:
    text = moment.replace(microsecond=0).isoformat()
    kept = _rule(start=granularity).apply({"start": text}, BRUSSELS).payload["start"]
    begun = datetime.fromisoformat(kept)
    assert begun <= moment and begun.utcoffset() == timedelta(0)
    label = {"hour": "%Y-%m-%d %H%z", "day": "%Y-%m-%d", "month": "%Y-%m"}[granularity]
    assert begun.astimezone(BRUSSELS).strftime(label) == moment.astimezone(BRUSSELS).strftime(label)
    # One second earlier is another period: it is the period's first instant.
    before = (begun - timedelta(seconds=1)).astimezone(BRUSSELS).strftime(label)
    assert before != begun.astimezone(BRUSSELS).strftime(label)
    # And generalising again changes nothing.
    assert _rule(start=granularity).apply({"start": kept}, BRUSSELS).payload["start"] == kept


# ---- sweeps, both backends ----------------------------------------------------------------------

# The sample CDRs (tests/data/asterisk/Master.csv, read in the register's zone, Brussels) by
# billsec and disposition, with the UTC instant their local day began. 29 March's midnight
# is still +01:00, 30 March's already +02:00; 25 October's midnight is +02:00, 26's +01:00.
DAYS = {
    (159, "ANSWERED"): "2026-03-27T23:00:00+00:00",  # 28 March 10:15:02
    (271, "ANSWERED"): "2026-03-27T23:00:00+00:00",  # 28 March 23:59:30
    (2396, "ANSWERED"): "2026-03-28T23:00:00+00:00",  # 29 March 01:30:00, before the change
    (0, "NO ANSWER"): "2026-03-28T23:00:00+00:00",  # 29 March 02:30:00, in the gap
    (57, "ANSWERED"): "2026-03-28T23:00:00+00:00",  # 29 March 03:05:00, after it
    (0, "BUSY"): "2026-03-29T22:00:00+00:00",  # 30 March 08:00:00
    (465, "ANSWERED"): "2026-03-31T22:00:00+00:00",  # 1 April
    (180, "ANSWERED"): "2026-04-01T22:00:00+00:00",  # 2 April 09:00:00
    (47, "ANSWERED"): "2026-04-01T22:00:00+00:00",  # 2 April 11:11:11
    (0, "FAILED"): "2026-04-02T22:00:00+00:00",  # 3 April
    (56, "ANSWERED"): "2026-10-24T22:00:00+00:00",  # 25 October 02:30:00, the repeated hour
    (120, "ANSWERED"): "2026-10-25T23:00:00+00:00",  # 26 October 10:00:00
}


def _records(ws: Workspace, category: str) -> dict[str, dict[str, Any]]:
    """Every record of `category`: its columns and its payload, opened."""
    out: dict[str, dict[str, Any]] = {}
    with ws.session(read_only=True) as s:
        rows = s.execute(
            sa.text(
                "SELECT id, customer_id, key_id, payload, collected_at, source_key, subject_a, "
                "subject_b, subject_c, blob_id, blob_size, anonymised_at, due_at "
                "FROM records WHERE category = :c ORDER BY id"
            ),
            {"c": category},
        ).all()
        for row in rows:
            aead = ws.keyring.cipher(s, row.key_id)
            ad = record_ad(row.customer_id, category, row.id, row.key_id)
            plain = aead.decrypt(row.payload[:12], row.payload[12:], ad)
            collected = row.collected_at
            if isinstance(collected, str):  # SQLite's text, as the raw query returns it
                collected = datetime.fromisoformat(collected)
            if collected.tzinfo is None:
                collected = collected.replace(tzinfo=UTC)
            out[row.id] = row._asdict() | {"payload": json.loads(plain), "collected": collected}
    return out


def _side_rows(ws: Workspace, table: str, ids: list[str]) -> int:
    with ws.session(read_only=True) as s:
        query = sa.text(f"SELECT count(*) FROM {table} WHERE record_id IN :ids").bindparams(  # noqa: S608
            sa.bindparam("ids", expanding=True)
        )
        return int(s.execute(query, {"ids": ids}).scalar_one())


def _events(cli: Cli, action: str) -> list[dict[str, Any]]:
    out = cli("audit", "log", "--action", action, "--customer", "acme", "--json").stdout
    return list(json.loads(out))


def _load(cli: Cli, tmp_path: Path, doc: dict[str, Any]) -> None:
    path = tmp_path / "register.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    cli("register", "load", str(path))


def _default() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(default_register_text())
    return doc


def test_the_billing_copy_keeps_each_calls_local_day_and_is_ledgered_as_pseudonymised(
    cli: Cli, ws: Workspace
) -> None:
    add_customer(cli, samples=("cdr",))
    before = _records(ws, "cdr")
    assert len(before) == 12
    assert "cdr" in cli("subject", "find", CALLER).stdout
    report = sweeper.run(ws, actor="test", now=LATE_2027)
    assert (report.pseudonymised, report.anonymised, report.deleted) == (12, 0, 0)
    after = _records(ws, "cdr")
    assert set(after) == set(before)
    for rid, row in after.items():
        old = before[rid]["payload"]
        key = (old["billsec"], old["disposition"])
        # Exactly the fields kept, the start generalised to its day in Brussels.
        assert row["payload"] == {
            "start": DAYS[key],
            "billsec": old["billsec"],
            "disposition": old["disposition"],
        }, key
        # The clear collection time says no more than the payload.
        assert row["collected"] == datetime.fromisoformat(DAYS[key])
        assert row["subject_a"] is row["subject_b"] is row["subject_c"] is None
        assert row["anonymised_at"] is not None and row["due_at"] is None
        # Pseudonymised: the record keeps its link for the same call read again.
        assert row["source_key"] == before[rid]["source_key"]
    # Generalisation was not skipped: most starts moved.
    assert sum(after[r]["payload"]["start"] != before[r]["payload"]["start"] for r in after) == 12
    assert _side_rows(ws, "record_subjects", list(after)) == 0
    assert "cdr" not in cli("subject", "find", CALLER).stdout
    (event,) = _events(cli, "pseudonymise")
    assert _events(cli, "anonymise") == []
    assert event["activity"] == "call_history"
    details = event["details"]
    assert details["records"] == 12 and details["category"] == "cdr"
    assert details["keep"] == ["start", "billsec", "disposition", "cost"]
    assert details["generalise"] == {"start": "day"}
    assert details["collected_at"] == "day"
    assert details["personal_data"] is True
    assert details["subjects"] == "unlinked"
    assert details["files_erased"] == 0
    assert "not_generalisable" not in details and "source_key" not in details
    assert details["rule"].endswith(
        "then pseudonymise (keep start to the day, billsec, disposition, cost; the kept data "
        "remain personal data)"
    )
    (summary,) = _events_all(cli, "retention.sweep")
    assert (summary["details"]["pseudonymised"], summary["details"]["anonymised"]) == (12, 0)
    cli("audit", "verify")


def _events_all(cli: Cli, action: str) -> list[dict[str, Any]]:
    return list(json.loads(cli("audit", "log", "--action", action, "--json").stdout))


def test_an_anonymising_rule_keeps_the_hour_and_minutes_of_talk_and_unlinks_the_call(
    cli: Cli, ws: Workspace, tmp_path: Path
) -> None:
    doc = _default()
    doc["activities"][2]["retention"] = {
        "duration": "12 months",
        "anchor": "collected",
        "action": "anonymise",
        "keep": ["start", "billsec", "disposition"],
        "generalise": {"start": "hour", "billsec": 60},
        "justification": "Hourly call counts by minute of talk; a test's claim.",
    }
    _load(cli, tmp_path, doc)
    add_customer(cli, samples=("cdr",))
    before = _records(ws, "cdr")
    report = sweeper.run(ws, actor="test", now=LATE_2027)
    assert (report.pseudonymised, report.anonymised) == (0, 12)
    after = _records(ws, "cdr")
    for rid, row in after.items():
        old = before[rid]["payload"]
        # Brussels is a whole number of hours from UTC: its hours begin on UTC hours.
        hour = old["start"][:13] + ":00:00+00:00"
        assert row["payload"] == {
            "start": hour,
            "billsec": old["billsec"] // 60 * 60,
            "disposition": old["disposition"],
        }
        assert row["collected"] == datetime.fromisoformat(hour)
        assert row["source_key"] != before[rid]["source_key"]  # nothing links it to the call
        assert len(row["source_key"]) == 16
    assert {after[r]["payload"]["billsec"] for r in after} == {0, 120, 180, 240, 420, 2340}
    (event,) = _events(cli, "anonymise")
    assert _events(cli, "pseudonymise") == []
    details = event["details"]
    assert details["generalise"] == {"start": "hour", "billsec": 60}
    assert (details["personal_data"], details["source_key"]) == (False, "replaced")
    assert "claimed to identify no one" in details["rule"]
    cli("audit", "verify")


def test_a_schema_1_anonymise_rule_is_swept_and_ledgered_as_what_it_does(
    cli: Cli, ws: Workspace, tmp_path: Path
) -> None:
    doc = _default()
    doc["schema_version"] = 1
    for activity in doc["activities"]:  # bounds of instructions are schema 3
        for bound in ("min", "max"):
            activity["retention"].pop(bound, None)
    doc["activities"][2]["retention"] = {
        "duration": "12 months",
        "anchor": "collected",
        "action": "anonymise",
        "keep": ["start", "duration", "billsec", "disposition", "cost"],
    }
    _load(cli, tmp_path, doc)
    add_customer(cli, samples=("cdr",))
    before = _records(ws, "cdr")
    assert sweeper.run(ws, actor="test", now=LATE_2027).pseudonymised == 12
    after = _records(ws, "cdr")
    for rid, row in after.items():
        old = before[rid]["payload"]
        assert row["payload"] == {
            k: old[k] for k in ("start", "duration", "billsec", "disposition")
        }
        assert row["collected"] == before[rid]["collected"]  # nothing generalised
    assert _events(cli, "anonymise") == []
    (event,) = _events(cli, "pseudonymise")
    assert event["details"]["written_as"] == "anonymise"
    assert event["details"]["collected_at"] == "unchanged"
    assert "read as pseudonymise" in event["details"]["rule"]


def test_an_identity_check_keeps_the_outcome_and_erases_the_image(
    cli: Cli, ws: Workspace, settings: Any
) -> None:
    add_customer(cli, samples=())
    cli("ingest", "id-document", str(DATA / "iddocs"), "--customer", "acme")
    (before,) = _records(ws, "passport_photo").values()
    blob = before["blob_id"]
    assert blob and ws.blobs.exists(blob)
    found = cli("subject", "find", CALLER).stdout
    assert "passport_photo" in found
    # Verified on 23 October 2026; the image is kept 30 days.
    early = sweeper.run(ws, actor="test", now=datetime(2026, 11, 20, tzinfo=UTC))
    assert early.pseudonymised == 0
    report = sweeper.run(ws, actor="test", now=datetime(2026, 12, 5, tzinfo=UTC))
    assert (report.pseudonymised, report.deleted) == (1, 0)
    (after,) = _records(ws, "passport_photo").values()
    assert after["payload"] == {
        "document_type": "id_card",
        "issuing_country": "BE",
        "outcome": "verified",
        "verified_at": "2026-10-22T22:00:00+00:00",  # 23 October in Brussels (summer time)
        "verified_by": "support-desk",
        "service": None,
    }
    assert after["blob_id"] is None and after["blob_size"] is None
    assert not ws.blobs.exists(blob)
    assert _side_rows(ws, "record_media", [after["id"]]) == 0
    assert "passport_photo" not in cli("subject", "find", CALLER).stdout
    (event,) = _events(cli, "pseudonymise")
    assert event["activity"] == "identity_check"
    assert (event["details"]["files_erased"], event["details"]["blobs"]) == (1, 1)
    assert event["details"]["generalise"] == {"verified_at": "day"}
    with ws.session(read_only=True) as s:
        trash = s.execute(sa.text("SELECT count(*) FROM blob_trash")).scalar_one()
    assert trash == 0


def _wav(path: Path, frames: bytes) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(frames)


def test_every_file_of_a_kept_record_is_erased(
    cli: Cli, ws: Workspace, settings: Any, tmp_path: Path
) -> None:
    """A voicemail in three formats (one blob, two record_media files) kept in part."""
    doc = _default()
    doc["activities"][0]["retention"] = {
        "duration": "90 days",
        "anchor": "collected",
        "action": "pseudonymise",
        "keep": ["mailbox", "folder"],
    }
    _load(cli, tmp_path, doc)
    inbox = tmp_path / "spool" / "default" / "1001" / "INBOX"
    inbox.mkdir(parents=True)
    shutil.copy(DATA / "voicemail" / "default" / "1001" / "INBOX" / "msg0000.txt", inbox)
    _wav(inbox / "msg0000.wav", bytes(range(256)) * 8)
    _wav(inbox / "msg0000.WAV", bytes(reversed(range(256))) * 4)
    (inbox / "msg0000.gsm").write_bytes(bytes([0xD0 | (i % 16) for i in range(33 * 5)]))
    add_customer(cli, samples=())
    cli("ingest", "voicemail", str(tmp_path / "spool"), "--customer", "acme")
    (before,) = _records(ws, "voicemail").values()
    with ws.session(read_only=True) as s:
        media = list(
            s.execute(
                sa.text("SELECT blob_id FROM record_media WHERE record_id = :r"),
                {"r": before["id"]},
            ).scalars()
        )
    blobs = [before["blob_id"], *media]
    assert len(blobs) == 3 and all(ws.blobs.exists(b) for b in blobs)
    assert sweeper.run(ws, actor="test", now=LATE_2027).pseudonymised == 1
    (after,) = _records(ws, "voicemail").values()
    assert after["payload"] == {k: before["payload"][k] for k in ("mailbox", "folder")}
    assert after["blob_id"] is None and after["blob_size"] is None
    assert _side_rows(ws, "record_media", [after["id"]]) == 0
    assert not any(ws.blobs.exists(b) for b in blobs)
    (event,) = _events(cli, "pseudonymise")
    assert event["details"]["files_erased"] == 3
    assert event["details"]["generalise"] == {} and event["details"]["collected_at"] == "unchanged"


def test_a_time_at_the_calendars_edge_is_dropped_not_a_crash() -> None:
    kept = _rule(start="month").apply({"start": "0001-01-01T00:30:00+00:00"}, BRUSSELS)
    assert (kept.payload, kept.dropped) == ({"start": None}, {"start": 1})


def test_the_sweeps_table_counts_pseudonymised_apart(
    cli: Cli, settings: Settings, ws: Workspace
) -> None:
    add_customer(cli)
    with Workspace.open(settings) as opened:
        report = sweeper.run(opened, actor="test", now=datetime(2027, 12, 1, tzinfo=UTC))
    assert report.pseudonymised == 12 and report.anonymised == 0
    with ws.engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT deleted, pseudonymised, anonymised FROM sweeps WHERE id = :i"),
            {"i": report.sweep_id},
        ).one()
    assert tuple(row) == (report.deleted, 12, 0)
