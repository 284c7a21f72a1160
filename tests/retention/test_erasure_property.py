"""The promises of an erasure, over random calls, holds and people, on both backends:

- it never touches another customer's records, nor a record a hold in force keeps (its row,
  payload, subject digests and `record_subjects` rows are byte for byte as before);
- a masked CDR keeps its billing fields and loses every trace of the person: their number in
  any spelling in any field, their entry in `e164`, their digest in the subject columns and
  in `record_subjects`; the other parties' digests stay;
- nothing of the customer's is left about the person but what a hold keeps.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import time_machine
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from dpa import holds as hold_rule
from dpa.config import Settings
from dpa.ingest import BlindIndex
from dpa.records import open_payload
from dpa.workspace import Workspace
from retention.erasure import BILLING_FIELDS
from tests.conftest import Run
from tests.fuzz.hostile import FUZZ

# (spellings, national digits): the people of the random calls, each in several spellings.
PEOPLE = [
    (["0470123456", "+32470123456", "0032470123456"], "470123456"),
    (["0470987654", "+32 470 98 76 54"], "470987654"),
    (["022345678", "003222345678"], "22345678"),
]
EXTENSIONS = ["1001", "1002"]
_ids = itertools.count()


@dataclass(frozen=True)
class Call:
    src: tuple[int, int] | str  # (person, spelling) or an extension
    dst: tuple[int, int] | str
    seconds: int


def _spell(end: tuple[int, int] | str) -> str:
    if isinstance(end, str):
        return end
    spellings = PEOPLE[end[0]][0]
    return spellings[end[1] % len(spellings)]


ends = st.one_of(
    st.tuples(st.integers(0, len(PEOPLE) - 1), st.integers(0, 5)), st.sampled_from(EXTENSIONS)
)
calls_st = st.lists(st.builds(Call, ends, ends, st.integers(1, 5000)), min_size=1, max_size=12)
holds_st = st.lists(
    st.tuples(st.none() | st.sampled_from(["cdr"]), st.none() | st.integers(0, len(PEOPLE) - 1)),
    max_size=2,
)


def _csv(calls: list[Call], salt: int) -> str:
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n")
    for index, call in enumerate(calls):
        src, dst = _spell(call.src), _spell(call.dst)
        minute = f"{(index + salt) % 60:02d}"
        day = f"2026-10-0{1 + index % 9}"
        writer.writerow(
            [
                "ACME",
                src,
                dst,
                "from-pstn",
                f'"Caller {index}" <{src}>',
                f"SIP/trunk-{index:08x}",
                f"SIP/{dst}-{index:08x}",
                "Dial",
                f"SIP/trunk/{dst},60",
                f"{day} 10:{minute}:00",
                f"{day} 10:{minute}:03",
                f"{day} 11:{minute}:00",
                call.seconds + 3,
                call.seconds,
                "ANSWERED",
                "DOCUMENTATION",
                f"{1790000000 + index}.{salt}",
                "",
            ]
        )
    return out.getvalue()


def _rows(settings: Settings, customer: str) -> dict[str, tuple[Any, ...]]:
    engine = sa.create_engine(settings.database_url)
    try:
        with engine.connect() as c:
            rows = {
                str(r[0]): tuple(r[1:])
                for r in c.execute(
                    sa.text(
                        "SELECT id, category, payload, subject_a, subject_b, subject_c,"
                        " source_key, due_at FROM records WHERE customer_id = :c"
                    ),
                    {"c": customer},
                )
            }
            extra = c.execute(
                sa.text(
                    "SELECT s.record_id, s.digest FROM record_subjects s"
                    " JOIN records r ON r.id = s.record_id WHERE r.customer_id = :c"
                ),
                {"c": customer},
            ).all()
        for record_id, digest in extra:
            rows[str(record_id)] += (bytes(digest),)
        return rows
    finally:
        engine.dispose()


@pytest.fixture
def installation(
    ws: Workspace, cli: Callable[..., Run], clock: time_machine.Coordinates
) -> Workspace:
    """The installation, the program's clock stopped at the samples' day (requests are
    received on a fixed day, never in the future of the clock)."""
    return ws


# Each example ingests two files and erases: a few examples per backend (DPA_FUZZ_EXAMPLES
# digs deeper); no shrinking, whose many slow runs would say nothing the failure does not.
PROPERTY = settings(
    FUZZ,
    max_examples=int(os.environ.get("DPA_FUZZ_EXAMPLES", "8")),
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)


@PROPERTY
@given(calls=calls_st, others=calls_st, holds=holds_st, who=st.integers(0, len(PEOPLE) - 1))
def test_an_erasure_touches_no_other_customer_no_held_record_and_leaves_no_trace(
    installation: Workspace,
    cli: Callable[..., Run],
    tmp_path: Path,
    calls: list[Call],
    others: list[Call],
    holds: list[tuple[str | None, int | None]],
    who: int,
) -> None:
    ws = installation
    n = next(_ids)
    mine, theirs = f"c{n}a", f"c{n}b"
    for customer, batch in ((mine, calls), (theirs, others)):
        cli("customer", "add", customer, "--name", "N", "--contract", "monthly",
            "--started", "2024-03-01")  # fmt: skip
        path = tmp_path / f"{customer}.csv"
        path.write_text(_csv(batch, n), encoding="utf-8")
        cli("ingest", "cdr", str(path), "--customer", customer, "--tz", "Europe/Brussels")
    for category, person in holds:
        args = ["hold", "add", "--customer", mine, "--reason", "dispute"]
        if category is not None:
            args += ["--category", category]
        if person is not None:
            args += ["--subject", PEOPLE[person][0][0]]
        cli(*args)
    with ws.session(read_only=True) as session:
        index = BlindIndex(ws.keyring.system_key(session, "blind-index"), "BE")
        digest = index.lookup(PEOPLE[who][0][0])
        assert digest is not None
        held_ids = {
            str(i)
            for i in session.execute(
                sa.select(sa.column("id"))
                .select_from(sa.table("records", sa.column("id"), sa.column("customer_id")))
                .where(sa.column("customer_id") == mine)
            ).scalars()
        } & {
            str(i)
            for i in session.execute(
                sa.select(hold_rule._RECORDS.c.id).where(hold_rule.kept())
            ).scalars()
        }
        payloads_before = _payloads(ws, session, mine)
    before_mine, before_theirs = _rows(ws.settings, mine), _rows(ws.settings, theirs)

    run = cli("request", "open", "--customer", mine, "--kind", "erasure", "--subject",
              PEOPLE[who][0][-1], "--received", "2026-11-20", "--json")  # fmt: skip
    request_id = json.loads(run.stdout)["id"]
    cli("request", "fulfil", str(request_id))

    after_mine = _rows(ws.settings, mine)
    assert _rows(ws.settings, theirs) == before_theirs
    for record_id in held_ids:
        assert after_mine[record_id] == before_mine[record_id]
    with ws.session(read_only=True) as session:
        payloads_after = _payloads(ws, session, mine)
        left = set(
            session.execute(
                sa.select(hold_rule._RECORDS.c.id).where(
                    hold_rule._RECORDS.c.customer_id == mine, hold_rule.about(digest)
                )
            ).scalars()
        )
    assert left <= held_ids
    digits = PEOPLE[who][1]
    for record_id, before in payloads_before.items():
        if record_id in held_ids:
            continue
        after = payloads_after[record_id]  # CDRs are masked, never deleted
        if after == before:
            assert digits not in re.sub(r"\D", "", json.dumps(before))
            continue
        assert digits not in re.sub(r"\D", "", json.dumps(after)), after
        for name in BILLING_FIELDS & before.keys():
            assert after[name] == before[name], name
        row = after_mine[record_id]
        assert digest not in row[2:5] and digest not in row[7:]
        kept_before = {d for d in before_mine[record_id][2:5] + before_mine[record_id][7:] if d}
        kept_after = {d for d in row[2:5] + row[7:] if d}
        assert kept_after == kept_before - {digest}


def _payloads(ws: Workspace, session: Any, customer: str) -> dict[str, dict[str, Any]]:
    rows = session.execute(
        sa.text("SELECT id, key_id, payload FROM records WHERE customer_id = :c"),
        {"c": customer},
    ).all()
    return {
        str(rid): open_payload(session, ws.keyring, customer, "cdr", rid, key, sealed)
        for rid, key, sealed in rows
    }
