"""An ingest's subject links (`subject_events`: which ledger event touched whom) are the same
whether the file's digests stayed in memory or were moved to a temporary table on the way
(`ingest.SUBJECTS_IN_MEMORY`, which keeps a file of a million calls from growing the process
by the hundreds of thousands of parties in it)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from dpa import ingest
from dpa.workspace import Workspace
from tests.conftest import DATA, Run, add_customer

Cli = Callable[..., Run]


def _links(ws: Workspace, customer: str) -> set[bytes]:
    with ws.engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT subject FROM subject_events WHERE customer_id = :c"), {"c": customer}
        )
        return {bytes(subject) for (subject,) in rows}


def _stored(ws: Workspace, customer: str) -> set[bytes]:
    with ws.engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT subject_a, subject_b, subject_c FROM records WHERE customer_id = :c"
                " UNION ALL SELECT s.digest, NULL, NULL FROM record_subjects s"
                " JOIN records r ON r.id = s.record_id WHERE r.customer_id = :c"
            ),
            {"c": customer},
        )
        return {bytes(d) for row in rows for d in row if d is not None}


@pytest.mark.parametrize("sample", ["cdr", "contacts"])
def test_links_are_the_same_in_memory_and_through_the_table(
    ws: Workspace, cli: Cli, monkeypatch: pytest.MonkeyPatch, sample: str
) -> None:
    files = {"cdr": DATA / "asterisk" / "Master.csv", "contacts": DATA / "contacts.csv"}
    path: Path = files[sample]
    spills: list[str] = []
    real_spill = ingest._Subjects._spill

    def spill(self: ingest._Subjects) -> None:
        spills.append(customer)
        real_spill(self)

    monkeypatch.setattr(ingest._Subjects, "_spill", spill)
    for customer, size in (("kept", 1 << 20), ("moved", 2)):
        add_customer(cli, customer, samples=())
        monkeypatch.setattr(ingest, "SUBJECTS_IN_MEMORY", size)
        cli("ingest", sample, str(path), "--customer", customer)
        # A second file in the same run: the table of the first is gone, none is left over.
        cli("ingest", sample, str(path), "--customer", customer)
    assert _links(ws, "moved") == _links(ws, "kept") == _stored(ws, "kept")
    assert set(spills) == {"moved"}  # the table was used for one customer only
    with ws.engine.connect() as conn:
        names = sa.inspect(conn).get_table_names()
    assert "dpa_ingest_subjects" not in names
