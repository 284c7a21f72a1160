"""An export is one read snapshot, counts what it wrote, and leaves nothing behind when refused.

A sweep that deletes and anonymises the customer's records while the export is between two
batches must change nothing in the package: on PostgreSQL the export's transaction is
REPEATABLE READ, READ ONLY (READ COMMITTED would let later batches miss the deleted records
while the manifest still counted them). A refused or failed export (a bad `--output`, an error
half-way) leaves no row, no ledger event, no package and no partial copy.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyrage
import pytest
import sqlalchemy as sa

from dpa import customers
from dpa.config import Settings
from dpa.errors import InputError
from dpa.workspace import Workspace
from exports import builder
from exports.age import X25519Recipient
from retention import sweeper
from tests.conftest import NOW, Run, add_customer
from tests.state import snapshot

Cli = Callable[..., Run]
# Long after the window of a customer terminated on NOW: the sweep deletes every record,
# destroys the data keys and purges the customer.
SWEEP_AT = datetime(2031, 1, 15, 12, 0, tzinfo=UTC)


def _store(ws: Workspace) -> dict[str, tuple[int, int]]:
    """Records per category in the store now: (count, anonymised)."""
    with ws.session(read_only=True) as session:
        rows = session.execute(
            sa.text(
                "SELECT category, count(*), count(anonymised_at) FROM records GROUP BY category"
            )
        )
        return {str(c): (int(n), int(a)) for c, n, a in rows}


def _open(package: Path, identity: pyrage.x25519.Identity) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(pyrage.decrypt(package.read_bytes(), [identity])))


def test_a_sweep_during_an_export_changes_nothing_in_the_package(
    ws: Workspace, settings: Settings, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_customer(cli, samples=("cdr", "contacts"))
    with ws.session() as session:
        customers.terminate_contract(
            session,
            ws.fields(session),
            ws.register(session),
            customer_id="acme",
            notice_on=NOW.date(),
            actor="support",
            now=NOW,
        )
    before = _store(ws)
    assert before == {"cdr": (12, 0), "phone_number": (6, 0)}
    monkeypatch.setattr(builder, "_BATCH", 4)  # several batches per category
    read = builder._read
    swept: list[sweeper.SweepReport] = []

    def sweep_between_batches(*args: Any, **kwargs: Any) -> Iterator[Any]:
        for number, batch in enumerate(read(*args, **kwargs)):
            if number == 1 and not swept:
                # Another process's sweep, on its own connection, commits mid-export.
                with Workspace.open(settings) as other:
                    swept.append(sweeper.run(other, actor="sweeper", now=SWEEP_AT))
            yield batch

    monkeypatch.setattr(builder, "_read", sweep_between_batches)
    identity = pyrage.x25519.Identity.generate()
    report = builder.create(
        ws,
        builder.ExportRequest("acme", categories=("cdr", "phone_number")),
        recipient=X25519Recipient.parse(str(identity.to_public())),
        actor="support",
        now=NOW,
    )
    assert swept and swept[0].deleted == 18 and swept[0].customers_purged == ["acme"]
    assert _store(ws) == {}  # the sweep did commit while the export ran
    archive = _open(report.path, identity)
    manifest = json.loads(archive.read("manifest.json"))
    counted = {c["category"]: c["records"] for c in manifest["categories"]}
    assert counted == {"cdr": 12, "phone_number": 6} == {c: n for c, (n, _) in before.items()}
    assert manifest["records"] == report.records == 18
    for category, count in counted.items():
        lines = archive.read(f"data/{category}.jsonl").decode().splitlines()
        assert len(lines) == count
        assert len(archive.read(f"data/{category}.csv").decode().splitlines()) == count + 1
    with ws.session(read_only=True) as session:
        details = json.loads(
            session.execute(
                sa.text("SELECT details FROM ledger_events WHERE action = 'export.create'")
            ).scalar_one()
        )
    assert details["records"] == 18


def test_the_manifest_counts_what_was_written(
    ws: Workspace, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A record the plan counted but the read did not return is not in the manifest."""
    add_customer(cli, samples=("cdr",))
    read = builder._read

    def one_record_less(*args: Any, **kwargs: Any) -> Iterator[Any]:
        for batch in read(*args, **kwargs):
            job = batch.job
            cut = job._replace(
                ids=job.ids[1:],
                key_ids=job.key_ids[1:],
                collected=job.collected[1:],
                anonymised=job.anonymised[1:],
                sealed=job.sealed[1:],
                with_media=job.with_media[1:],
            )
            yield batch._replace(job=cut, blob_ids=batch.blob_ids[1:])

    monkeypatch.setattr(builder, "_read", one_record_less)
    identity = pyrage.x25519.Identity.generate()
    report = builder.create(
        ws,
        builder.ExportRequest("acme"),
        recipient=X25519Recipient.parse(str(identity.to_public())),
        actor="support",
        now=NOW,
    )
    manifest = json.loads(_open(report.path, identity).read("manifest.json"))
    assert manifest["records"] == report.records == 11
    assert len(_open(report.path, identity).read("data/cdr.jsonl").splitlines()) == 11


@pytest.mark.parametrize(
    ("output", "message"),
    [
        pytest.param("/nonexistent/x.age", "cannot write there", id="folder-missing"),
        pytest.param("{tmp}", "is a folder", id="a-folder"),
        pytest.param("{tmp}/file.txt/x.age", "cannot write there", id="under-a-file"),
    ],
)
def test_a_refused_output_changes_nothing(
    ws: Workspace, settings: Settings, cli: Cli, tmp_path: Path, output: str, message: str
) -> None:
    add_customer(cli, samples=("cdr",))
    (tmp_path / "file.txt").write_text("not a folder\n")
    identity = pyrage.x25519.Identity.generate()
    before = snapshot(settings)
    listing = sorted(tmp_path.iterdir())
    run = cli(
        "export", "create", "--customer", "acme", "--recipient", str(identity.to_public()),
        "-o", output.format(tmp=tmp_path), code=2,
    )  # fmt: skip
    assert message in run.stderr and "--output" in run.stderr
    assert snapshot(settings) == before
    assert sorted(tmp_path.iterdir()) == listing  # no partial copy


@pytest.mark.parametrize("where", ["writing", "publishing"])
def test_a_failure_after_the_work_started_leaves_nothing(
    ws: Workspace,
    settings: Settings,
    cli: Cli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    where: str,
) -> None:
    """Half-way through the package, or when the copy is put in place: all undone."""
    add_customer(cli, samples=("cdr",))
    out = tmp_path / "out"
    out.mkdir()
    before = snapshot(settings)

    def fail(*_: Any, **__: Any) -> Any:
        raise InputError("--output: the disk is full (simulated)")

    if where == "writing":
        monkeypatch.setattr(builder, "_read", fail)
    else:
        monkeypatch.setattr(builder._Copy, "publish", fail)
    identity = pyrage.x25519.Identity.generate()
    with pytest.raises(InputError, match="simulated"):
        builder.create(
            ws,
            builder.ExportRequest("acme"),
            recipient=X25519Recipient.parse(str(identity.to_public())),
            actor="support",
            now=NOW,
            output=out / "copy.age",
        )
    assert snapshot(settings) == before
    assert list(out.iterdir()) == []
