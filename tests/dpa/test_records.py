"""`dpa.records`: a customer's stored CDRs read back and opened, on both backends: which
records (customer, category, not anonymised, since), their order, the fields kept, and a
payload altered or moved to another row stopping the reading."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import orjson
import pytest
import sqlalchemy as sa

from dpa import ingest, records
from dpa.errors import IntegrityFailure
from dpa.keyring import record_ad
from dpa.parsers.base import ParsedRecord
from dpa.workspace import Workspace
from tests.conftest import NOW, Run, add_customer

Cli = Callable[..., Run]
DAY = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def _cdr(n: int, at: datetime, category: str = "cdr") -> ParsedRecord:
    return ParsedRecord(
        line=n,
        source_key=f"records-test-{category}-{n}",
        category=category,
        collected_at=at,
        payload={"src": f"04705550{n:02d}", "dst": "1001", "start": at.isoformat(), "n": n},
        phones=(f"04705550{n:02d}",),
    )


def _store(ws: Workspace, customer: str, parsed: list[ParsedRecord]) -> None:
    with ws.session() as session:
        ingest.ingest(
            session, ws.keyring, ws.blobs, ws.register(session), parsed, customer_id=customer,
            kind="test", actor="test", now=NOW, region="BE",
        )  # fmt: skip


def _ids(ws: Workspace) -> dict[int, str]:
    """Record id by the payload's `n` (acme's CDRs)."""
    found = {}
    with ws.session(read_only=True) as session:
        for record_id, payload in records.stored_cdrs(
            session, ws.keyring, "acme", DAY - timedelta(days=30)
        ).items():
            found[payload["n"]] = record_id
    return found


@pytest.fixture
def stored(ws: Workspace, cli: Cli) -> Workspace:
    """acme: CDRs 1-4 (collected out of order, 1 the day before DAY) and a voicemail;
    beta: CDR 5."""
    add_customer(cli, "acme", samples=())
    add_customer(cli, "beta", samples=())
    _store(
        ws,
        "acme",
        [
            _cdr(1, DAY - timedelta(days=1)),
            _cdr(2, DAY + timedelta(hours=3)),
            _cdr(3, DAY),
            _cdr(4, DAY + timedelta(hours=1)),
        ],
    )
    _store(ws, "acme", [_cdr(6, DAY + timedelta(hours=2), category="voicemail")])
    _store(ws, "beta", [_cdr(5, DAY)])
    return ws


def test_the_customers_cdrs_since_a_moment_in_collection_order(stored: Workspace) -> None:
    with stored.session(read_only=True) as session:
        whole = records.stored_cdrs(session, stored.keyring, "acme", DAY)
        few = records.stored_cdrs(session, stored.keyring, "acme", DAY, ("src", "n", "absent"))
    assert [p["n"] for p in whole.values()] == [3, 4, 2]  # not 1 (before), 5 (beta), 6
    assert whole[next(iter(whole))] == {
        "src": "0470555003",
        "dst": "1001",
        "start": DAY.isoformat(),
        "n": 3,
        "e164": {"0470555003": "+32470555003"},
    }
    assert list(few) == list(whole)
    assert list(few.values()) == [{"src": f"04705550{n:02d}", "n": n} for n in (3, 4, 2)]


def test_anonymised_cdrs_are_left_out(stored: Workspace) -> None:
    ids = _ids(stored)
    with stored.session() as session:
        session.execute(
            sa.text("UPDATE records SET anonymised_at = :at WHERE id = :id"),
            {"at": NOW, "id": ids[4]},
        )
    with stored.session(read_only=True) as session:
        left = records.stored_cdrs(session, stored.keyring, "acme", DAY, ("n",))
    assert list(left.values()) == [{"n": 3}, {"n": 2}]


def test_a_payload_moved_to_another_record_stops_the_reading(stored: Workspace) -> None:
    ids = _ids(stored)
    with stored.session() as session:
        moved = session.execute(
            sa.text("SELECT payload FROM records WHERE id = :id"), {"id": ids[2]}
        ).scalar_one()
        session.execute(
            sa.text("UPDATE records SET payload = :p WHERE id = :id"), {"p": moved, "id": ids[3]}
        )
    with stored.session(read_only=True) as session, pytest.raises(IntegrityFailure) as caught:
        records.stored_cdrs(session, stored.keyring, "acme", DAY)
    assert str(caught.value).startswith(f"record {ids[3]} does not decrypt under its key")
    assert "0470" not in str(caught.value)


def test_a_payload_that_is_no_object_is_refused(stored: Workspace) -> None:
    ids = _ids(stored)
    with stored.session() as session:
        key_id = session.execute(
            sa.text("SELECT key_id FROM records WHERE id = :id"), {"id": ids[3]}
        ).scalar_one()
        nonce = os.urandom(12)
        ad = record_ad("acme", "cdr", ids[3], key_id)
        sealed = nonce + stored.keyring.cipher(session, key_id).encrypt(
            nonce, orjson.dumps(["0470555003"]), ad
        )
        session.execute(
            sa.text("UPDATE records SET payload = :p WHERE id = :id"), {"p": sealed, "id": ids[3]}
        )
    with stored.session(read_only=True) as session:
        with pytest.raises(IntegrityFailure, match="its payload is not an object") as caught:
            records.stored_cdrs(session, stored.keyring, "acme", DAY)
        assert "0470" not in str(caught.value)
        # The record opened on its own says the same.
        with pytest.raises(IntegrityFailure, match="not an object"):
            records.open_payload(session, stored.keyring, "acme", "cdr", ids[3], key_id, sealed)
