"""Where the store stands with the identity rule: whether records of an older rule remain.

`dpa init` re-keys records stored under an older identity rule (`dpa.ingest.rekey`) and then
writes `dpa_meta.records_identity`; every other command refuses to run while such records
may remain (`dpa.workspace`). This module is that check alone, so that opening the store
does not import the ingest engine.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session

from dpa import identity
from dpa.models import Meta, Record

__all__ = ["IDENTITY_META", "identity_pending"]

IDENTITY_META = "records_identity"  # dpa_meta: "3" once no record has an older key
_RECORDS: sa.Table = Record.__table__  # type: ignore[attr-defined]


def identity_pending(session: Session) -> bool:
    """Whether records keyed by an older identity rule may remain (`dpa init` re-keys them).

    Cheap: one primary-key read once the re-key has finished; before that (a database this
    version has not initialised) an EXISTS that stops at the first such record."""
    done = session.get(Meta, IDENTITY_META)
    if done is not None and done.value == str(identity.IDENTITY):
        return False
    query = sa.select(sa.literal(1)).where(_RECORDS.c.identity < identity.IDENTITY).limit(1)
    return session.execute(query).first() is not None
