"""The hash-chained ledger: every kind of tampering is caught, on both backends."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import col, select

from dpa import ledger
from dpa.errors import IntegrityFailure
from dpa.models import LedgerEvent
from dpa.workspace import Workspace
from tests.conftest import NOW, Run


def _fill(ws: Workspace, count: int = 6) -> None:
    with ws.session() as session:
        for i in range(count):
            ledger.append(
                session,
                action="test.event",
                actor="tester",
                now=NOW + timedelta(seconds=i),
                customer_id=f"c{i % 2}",
                activity="messaging",
                legal_basis="Art. 6(1)(b) GDPR",
                details={"n": i, "note": "ünïcode"},
            )


def _sql(ws: Workspace, statement: str, **params: object) -> None:
    with ws.engine.begin() as conn:
        conn.execute(sa.text(statement), params)


def _verify(ws: Workspace, checkpoint: ledger.Checkpoint | None = None) -> ledger.VerifyReport:
    with ws.session() as session:
        return ledger.verify(session, checkpoint)


def test_intact_chain_verifies(ws: Workspace) -> None:
    _fill(ws)
    report = _verify(ws)
    assert report.ok, report.problem
    assert report.events == report.head_seq == 8  # init + register.load + 6


def test_changed_row_is_caught(ws: Workspace) -> None:
    _fill(ws)
    _sql(ws, "UPDATE ledger_events SET details = :d WHERE seq = 5", d='{"n":99}')
    report = _verify(ws)
    assert (report.ok, report.bad_seq) == (False, 5)
    assert "altered" in (report.problem or "")


def test_a_chain_read_in_several_fetches_verifies_and_an_edit_deep_in_it_is_caught(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ledger, "_FETCH", 3)  # the driver's cursor is read three rows at a time
    _fill(ws, count=12)
    assert _verify(ws).events == 14
    _sql(ws, "UPDATE ledger_events SET actor = 'mallory' WHERE seq = 11")
    report = _verify(ws)
    assert (report.ok, report.bad_seq, report.events) == (False, 11, 10)
    with ws.session() as session:  # a walk that stops early closes its (named) cursor
        assert [ledger.verify(session).bad_seq for _ in range(2)] == [11, 11]


def test_deleted_row_is_caught(ws: Workspace) -> None:
    _fill(ws)
    _sql(ws, "DELETE FROM ledger_events WHERE seq = 4")
    report = _verify(ws)
    assert (report.ok, report.bad_seq) == (False, 4)
    assert "missing" in (report.problem or "")


def test_inserted_row_is_caught(ws: Workspace) -> None:
    _fill(ws)
    # shift the tail up by one and slip a forged event in at seq 5, linked to event 4
    with ws.engine.begin() as conn:
        for seq in range(8, 4, -1):
            conn.execute(
                sa.text("UPDATE ledger_events SET seq = :n WHERE seq = :o"),
                {"n": seq + 1, "o": seq},
            )
        prev = conn.execute(sa.text("SELECT hash FROM ledger_events WHERE seq = 4")).scalar_one()
        forged_at = NOW + timedelta(seconds=30)
        forged = ledger.event_hash(
            LedgerEvent(
                prev_hash=prev,
                seq=5,
                at=forged_at,
                actor="mallory",
                action="test.event",
                details="{}",
                hash="",
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO ledger_events (seq, at, actor, action, details, prev_hash, hash) "
                "VALUES (5, :at, 'mallory', 'test.event', '{}', :prev, :hash)"
            ),
            {
                "at": forged_at
                if ws.engine.dialect.name != "sqlite"
                else forged_at.replace(tzinfo=None),
                "prev": prev,
                "hash": forged,
            },
        )
    report = _verify(ws)
    assert (report.ok, report.bad_seq) == (False, 6)
    assert "does not follow" in (report.problem or "")


def test_swapped_rows_are_caught(ws: Workspace) -> None:
    _fill(ws)
    with ws.engine.begin() as conn:
        conn.execute(sa.text("UPDATE ledger_events SET seq = -1 WHERE seq = 5"))
        conn.execute(sa.text("UPDATE ledger_events SET seq = 5 WHERE seq = 6"))
        conn.execute(sa.text("UPDATE ledger_events SET seq = 6 WHERE seq = -1"))
    report = _verify(ws)
    assert (report.ok, report.bad_seq) == (False, 5)


def test_cut_tail_is_caught_only_against_a_checkpoint(ws: Workspace) -> None:
    _fill(ws)
    with ws.session() as session:
        mark = ledger.make_checkpoint(session, ws.checkpoint_key(session), NOW)
    assert mark.seq == 8
    _sql(ws, "DELETE FROM ledger_events WHERE seq > 6")
    assert _verify(ws).ok  # a chain alone cannot see that its tail is gone
    report = _verify(ws, mark)
    assert (report.ok, report.bad_seq) == (False, 7)
    assert "cut off" in (report.problem or "")


def test_recomputed_chain_is_caught_against_a_checkpoint(ws: Workspace) -> None:
    _fill(ws)
    with ws.session() as session:
        mark = ledger.make_checkpoint(session, ws.checkpoint_key(session), NOW)
    # rewrite event 3 and recompute every hash after it: the chain itself is consistent again
    with ws.session() as session:
        prev = ledger.GENESIS
        for event in session.exec(select(LedgerEvent).order_by(col(LedgerEvent.seq))).all():
            if event.seq == 3:
                event.details = '{"n":"rewritten"}'
            event.prev_hash = prev
            event.hash = ledger.event_hash(event)
            session.add(event)
            prev = event.hash
    assert _verify(ws).ok
    report = _verify(ws, mark)
    assert not report.ok
    assert "rewritten" in (report.problem or "")


def test_forged_checkpoint_file_is_refused(ws: Workspace, tmp_path: Path) -> None:
    with ws.session() as session:
        mark = ledger.make_checkpoint(session, ws.checkpoint_key(session), NOW)
    path = tmp_path / "head.json"
    ledger.write_checkpoint(mark, path)
    assert ledger.read_checkpoint(path, _ckey(ws)) == mark
    path.write_text(path.read_text().replace(f'"seq": {mark.seq}', '"seq": 1'))
    with pytest.raises(IntegrityFailure, match="signature"):
        ledger.read_checkpoint(path, _ckey(ws))


def test_events_filter_by_customer_action_and_prefix(ws: Workspace) -> None:
    _fill(ws)
    with ws.session() as session:
        assert [e.seq for e in ledger.events(session, customer_id="c1")] == [4, 6, 8]
        assert len(ledger.events(session, action="test")) == 6  # prefix family
        assert len(ledger.events(session, action="test.event")) == 6
        assert len(ledger.events(session, action="tes")) == 0  # not a word boundary
        assert [e.seq for e in ledger.events(session, since=NOW + timedelta(seconds=4))] == [7, 8]


def test_cli_verify_log_and_checkpoint(
    ws: Workspace, cli: Callable[..., Run], tmp_path: Path
) -> None:
    _fill(ws)
    assert "ledger intact: 8 events" in cli("audit", "verify").stdout
    head = tmp_path / "head.json"
    cli("audit", "checkpoint", "-o", str(head))
    assert (
        "matches checkpoint at event 8" in cli("audit", "verify", "--checkpoint", str(head)).stdout
    )
    logged = cli("audit", "log", "--customer", "c0", "--json").stdout
    assert '"customer": "c0"' in logged and '"c1"' not in logged
    _sql(ws, "DELETE FROM ledger_events WHERE seq = 8")
    assert "cut off" in cli("audit", "verify", "--checkpoint", str(head), code=1).stdout
    _sql(ws, "UPDATE ledger_events SET actor = 'someone else' WHERE seq = 2")
    out = cli("audit", "verify", "--json", code=1).stdout
    assert '"bad_seq": 2' in out


def _ckey(ws: Workspace) -> bytes:
    with ws.session() as session:
        return ws.checkpoint_key(session)


@given(
    action=st.text(),
    activity=st.none() | st.text(),
    actor=st.text(),
    customer=st.none() | st.text(),
    basis=st.none() | st.text(),
    details=st.dictionaries(st.text(), st.none() | st.integers() | st.text()),
    seq=st.integers(min_value=1, max_value=2**40),
    at=st.datetimes(timezones=st.just(UTC)),
)
def test_event_hash_is_sha256_of_the_canonical_json_of_the_fields(
    action: str,
    activity: str | None,
    actor: str,
    customer: str | None,
    basis: str | None,
    details: dict[str, object],
    seq: int,
    at: datetime,
) -> None:
    event = LedgerEvent(
        seq=seq,
        at=at,
        actor=actor,
        action=action,
        customer_id=customer,
        activity=activity,
        legal_basis=basis,
        details=ledger.canonical_json(details),
        prev_hash="0" * 64,
        hash="",
    )
    body = ledger.canonical_json(
        {
            "prev": event.prev_hash,
            "seq": seq,
            "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
            "actor": actor,
            "action": action,
            "customer": customer,
            "activity": activity,
            "legal_basis": basis,
            "details": event.details,
        }
    )
    assert ledger.event_hash(event) == hashlib.sha256(body.encode()).hexdigest()
