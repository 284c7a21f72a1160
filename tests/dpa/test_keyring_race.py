"""Two ingests of one customer opening the same month's bucket at once share its data key
(on PostgreSQL the second used to die on the bucket's unique index with a traceback)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from dpa.config import Settings
from dpa.workspace import Workspace
from tests.conftest import NOW, Run, add_customer

Cli = Callable[..., Run]


def test_two_transactions_opening_one_bucket_share_its_key(
    cli: Cli, ws: Workspace, settings: Settings
) -> None:
    add_customer(cli, samples=())
    opened = threading.Event()
    found: dict[str, int] = {}
    failed: list[BaseException] = []

    def first() -> None:
        try:
            with ws.session() as session:
                found["first"] = ws.keyring.bucket_key(session, "acme", "cdr", "2026-03", NOW)[0]
                opened.set()
                time.sleep(0.5)  # the second asks while this transaction still holds the row
        except BaseException as exc:  # reported by the assertion below
            failed.append(exc)
            opened.set()

    def second() -> None:
        opened.wait(10)
        try:
            with Workspace.open(settings) as other, other.session() as session:
                key = other.keyring.bucket_key(session, "acme", "cdr", "2026-03", NOW)
                found["second"] = key[0]
        except BaseException as exc:
            failed.append(exc)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not failed, failed
    assert found["first"] == found["second"]
