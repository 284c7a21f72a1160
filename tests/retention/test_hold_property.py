"""The promise of a legal hold, over random records, holds and sweep times: nothing held is touched."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dpa import customers, hold_placement, ingest
from dpa import holds as rule
from dpa.models import Hold, Record, RecordSubject
from dpa.parsers.base import ParsedRecord
from dpa.workspace import Workspace
from retention import sweeper

NUMBERS = ["+32470111111", "+32470222222", "+32470333333"]
CATEGORIES = ["voicemail", "call_recording", "cdr", "phone_number"]
START = datetime(2025, 1, 1, tzinfo=UTC)
_ids = itertools.count()


@dataclass(frozen=True)
class HoldSpec:
    category: str | None
    number: str | None
    released: bool


records_st = st.lists(
    st.tuples(
        st.sampled_from(CATEGORIES),
        st.integers(min_value=0, max_value=600),  # days after START
        st.lists(st.sampled_from(NUMBERS), min_size=0, max_size=2, unique=True),
    ),
    min_size=1,
    max_size=25,
)
holds_st = st.lists(
    st.builds(
        HoldSpec,
        st.none() | st.sampled_from(CATEGORIES),
        st.none() | st.sampled_from(NUMBERS),
        st.booleans(),
    ),
    max_size=3,
)


@pytest.fixture
def sqlite_ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    from dpa.config import Settings
    from dpa.workspace import init

    home = tmp_path_factory.mktemp("holdprop") / "home"
    settings_ = Settings.from_env({"DPA_HOME": str(home)})
    init(settings_, actor="test", now=START)
    with Workspace.open(settings_) as ws:
        yield ws


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    records=records_st,
    specs=holds_st,
    terminate_after=st.none() | st.integers(min_value=0, max_value=600),
    sweep_after=st.integers(min_value=0, max_value=1200),
)
def test_a_sweep_never_deletes_or_anonymises_a_held_record_nor_destroys_its_key(
    sqlite_ws: Workspace,
    records: list[tuple[str, int, list[str]]],
    specs: list[HoldSpec],
    terminate_after: int | None,
    sweep_after: int | None,
) -> None:
    ws = sqlite_ws
    cid = f"c{next(_ids)}"
    with ws.session() as s:
        register = ws.register(s)
        customers.add(
            s, ws.fields(s), register, customer_id=cid, name="X", contact=None,
            contract_policy="monthly", started_on=date(2024, 12, 1), actor="t", now=START,
        )  # fmt: skip
        for category in CATEGORIES:
            parsed = [
                ParsedRecord(
                    line=n + 1,
                    source_key=f"{cid}-{n}",
                    category=category,
                    collected_at=START + timedelta(days=days),
                    payload={"n": n},
                    phones=tuple(numbers),
                )
                for n, (cat, days, numbers) in enumerate(records)
                if cat == category
            ]
            if parsed:
                ingest.ingest(
                    s, ws.keyring, ws.blobs, register, parsed, customer_id=cid, kind="test",
                    actor="t", now=START,
                )  # fmt: skip
        index = ingest.BlindIndex(ws.keyring.system_key(s, "blind-index"), "BE")
        placed = []
        for spec in specs:
            view = hold_placement.add(
                s, register, customer_id=cid, category=spec.category,
                subject=None if spec.number is None else index.lookup(spec.number),
                reason="Authority request", reference=None, until=None, actor="t", now=START,
            )  # fmt: skip
            placed.append((view.id, spec))
        for hold_id, spec in placed:
            if spec.released:
                hold_placement.release(s, register, hold_id, reason="Closed", actor="t", now=START)
        if terminate_after is not None:
            customers.terminate_contract(
                s, ws.fields(s), register, customer_id=cid,
                notice_on=(START + timedelta(days=terminate_after)).date(), actor="t", now=START,
            )  # fmt: skip
        active = [spec for _, spec in placed if not spec.released]
        digests = {n: index.lookup(n) for n in NUMBERS}

    def is_held(category: str, subjects: set[bytes]) -> bool:
        return any(
            (h.category in (None, category)) and (h.number is None or digests[h.number] in subjects)
            for h in active
        )

    query = sa.text(
        "SELECT id, category, payload, key_id, subject_a, subject_b, subject_c, anonymised_at "
        "FROM records WHERE customer_id = :c"
    )
    with ws.session(read_only=True) as s:
        before = {row.id: row for row in s.execute(query, {"c": cid})}
    held_rows = {
        rid: row
        for rid, row in before.items()
        if is_held(row.category, {x for x in (row.subject_a, row.subject_b, row.subject_c) if x})
    }
    sweeper.run(ws, actor="t", now=START + timedelta(days=sweep_after), batch=7)
    with ws.session(read_only=True) as s:
        after = {row.id: row for row in s.execute(query, {"c": cid})}
        keys = set(
            s.execute(
                sa.text("SELECT id FROM data_keys WHERE customer_id = :c"), {"c": cid}
            ).scalars()
        )
        purged = s.execute(
            sa.text("SELECT purged_at FROM customers WHERE id = :c"), {"c": cid}
        ).scalar_one()
    for rid, row in held_rows.items():
        assert rid in after, "a held record was deleted"
        assert after[rid].payload == row.payload, "a held record was rewritten"
        assert after[rid].anonymised_at is None
        assert row.key_id in keys, "the key of a held record was destroyed"
    if active:
        assert purged is None, "a customer under hold was purged"


SUBJECTS = [b"a" * 16, b"b" * 16, b"c" * 16]


@settings(max_examples=40)
@given(
    records=st.lists(
        st.tuples(
            st.sampled_from(["c1", "c2"]),
            st.sampled_from(CATEGORIES),
            st.lists(st.sampled_from(SUBJECTS), max_size=3, unique=True),
        ),
        max_size=12,
    ),
    scopes=st.lists(
        st.tuples(
            st.sampled_from(["c1", "c2"]),
            st.none() | st.sampled_from(CATEGORIES),
            st.none() | st.sampled_from(SUBJECTS),
            st.booleans(),
        ),
        max_size=4,
    ),
)
def test_the_sql_rule_and_the_python_rule_keep_the_same_records(
    records: list[tuple[str, str, list[bytes]]],
    scopes: list[tuple[str, str | None, bytes | None, bool]],
) -> None:
    holds_table: sa.Table = Hold.__table__  # type: ignore[attr-defined]
    records_table: sa.Table = Record.__table__  # type: ignore[attr-defined]
    engine = sa.create_engine("sqlite://")
    side: sa.Table = RecordSubject.__table__  # type: ignore[attr-defined]
    Hold.metadata.create_all(engine, tables=[holds_table, records_table, side])
    with engine.begin() as connection:
        for n, (customer, category, subjects) in enumerate(records):
            padded = [*subjects, None, None, None]
            connection.execute(
                sa.insert(records_table).values(
                    id=f"r{n}", customer_id=customer, category=category, activity="a",
                    collected_at=START, key_id=1, source_key=b"k%d" % n, payload=b"",
                    ingested_at=START, subject_a=padded[0], subject_b=padded[1],
                    subject_c=padded[2],
                )
            )  # fmt: skip
        for holder, held_category, subject, released in scopes:
            connection.execute(
                sa.insert(holds_table).values(
                    customer_id=holder, category=held_category, subject=subject, reason="r",
                    created_at=START, created_by="t", released_at=START if released else None,
                )
            )  # fmt: skip
        by_sql = set(connection.execute(sa.select(records_table.c.id).where(rule.kept())).scalars())
        covered_by_first = (
            set(
                connection.execute(
                    sa.select(records_table.c.id).where(rule.covers(*scopes[0][:3]))
                ).scalars()
            )
            if scopes
            else set()
        )
    in_force = [rule.HoldScope(c, k, s) for c, k, s, released in scopes if not released]
    by_python = {
        f"r{n}"
        for n, (customer, category, subjects) in enumerate(records)
        if any(scope.keeps(customer, category, subjects) for scope in in_force)
    }
    assert by_sql == by_python
    if scopes:
        first = rule.HoldScope(*scopes[0][:3])
        assert covered_by_first == {
            f"r{n}" for n, (c, k, s) in enumerate(records) if first.keeps(c, k, s)
        }
    for customer in ("c1", "c2"):
        for category in CATEGORIES:
            # Only a hold naming no subject keeps a record about nobody; such a hold keeps all.
            whole = any(scope.keeps_all_of(customer, category) for scope in in_force)
            assert whole == any(scope.keeps(customer, category, ()) for scope in in_force)
