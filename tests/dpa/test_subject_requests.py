"""Data subjects' requests through the real CLI, on both backends: due dates, extensions,
erasure (delete and mask, holds win, other customers untouched), restriction, access, audit."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import sqlalchemy as sa
import time_machine
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from dpa.config import Settings
from dpa.records import open_payload, stored_cdrs
from dpa.workspace import Workspace
from exports.age import X25519Recipient
from retention.erasure import BILLING_FIELDS
from tests.conftest import NOW, Run, add_customer

SCHEMA = json.loads(
    (Path(__file__).parents[2] / "schemas" / "request.schema.json").read_text(encoding="utf-8")
)
JAN = "0470 12 34 56"  # Jan Peeters in tests/data: 5 CDRs and 1 voicemail
RECIPIENT = str(X25519Recipient(X25519PrivateKey.generate().public_key().public_bytes_raw()))


def _valid(text: str) -> Any:
    document = json.loads(text)
    for item in document if isinstance(document, list) else [document]:
        jsonschema.validate(item, SCHEMA, format_checker=jsonschema.FormatChecker())
    return document


def _open(cli: Callable[..., Run], kind: str, *, customer: str = "acme", subject: str = JAN,
          received: str = "2026-11-20", code: int = 0) -> Any:  # fmt: skip
    run = cli("request", "open", "--customer", customer, "--kind", kind, "--subject", subject,
              "--received", received, "--reference", "T-42", "--json", code=code)  # fmt: skip
    return _valid(run.stdout) if code == 0 else run


def _rows(settings: Settings, customer: str) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(settings.database_url)
    try:
        with engine.connect() as c:
            return [
                tuple(row)
                for row in c.execute(
                    sa.text(
                        "SELECT id, category, payload, subject_a, subject_b, subject_c, blob_id"
                        " FROM records WHERE customer_id = :c ORDER BY id"
                    ),
                    {"c": customer},
                )
            ]
    finally:
        engine.dispose()


def _payloads(settings: Settings, customer: str, category: str) -> dict[str, dict[str, Any]]:
    ws = Workspace.open(settings)
    try:
        with ws.session(read_only=True) as session:
            rows = session.execute(
                sa.text(
                    "SELECT id, key_id, payload FROM records"
                    " WHERE customer_id = :c AND category = :k ORDER BY id"
                ),
                {"c": customer, "k": category},
            ).all()
            return {
                rid: open_payload(session, ws.keyring, customer, category, rid, key, sealed)
                for rid, key, sealed in rows
            }
    finally:
        ws.close()


def _scalar(settings: Settings, sql: str, **params: Any) -> Any:
    engine = sa.create_engine(settings.database_url)
    try:
        with engine.connect() as c:
            return c.execute(sa.text(sql), params).scalar()
    finally:
        engine.dispose()


def test_due_one_calendar_month_after_receipt_extended_by_two_at_most(
    ws: Workspace, cli: Callable[..., Run], clock: time_machine.Coordinates
) -> None:
    add_customer(cli, samples=())
    opened = _open(cli, "access", received="2026-01-31")
    # 31 January + 1 month = 28 February, whose day ends at 23:00 UTC in Brussels (CET).
    assert opened["due_at"] == "2026-02-28T23:00:00+00:00"
    assert opened["status"] == "open" and opened["overdue"]
    # Past its first month: too late to extend (Art. 12(3)); it is overdue.
    cli("request", "extend", "1", "--by", "1m", "--reason", "late", code=3)
    cli("request", "withdraw", "1")
    _open(cli, "access", received="2026-10-31")  # due at the end of 30 November
    extended = _valid(cli("request", "extend", "2", "--by", "2m", "--reason", "complex",
                          "--json").stdout)  # fmt: skip
    assert extended["due_at"] == "2027-01-31T23:00:00+00:00"  # three months from receipt
    assert extended["extended_months"] == 2 and not extended["overdue"]
    cli("request", "extend", "2", "--by", "1m", "--reason", "more", code=3)
    cli("request", "extend", "2", "--by", "3m", "--reason", "more", code=2)
    _open(cli, "access", received="2026-11-24", code=2)  # tomorrow, by the stopped clock
    _open(cli, "deletion", code=2)
    _open(cli, "access", customer="nobody", code=3)
    _open(cli, "access", subject="not a number", code=2)
    run = cli("request", "open", "--customer", "acme", "--kind", "erasure", "--subject", JAN,
              "--received", "2026-11-20", "--reference", "call 0470 12 34 56", code=2)  # fmt: skip
    assert "470" not in run.stderr
    cli("request", "start", "2")
    assert _valid(cli("request", "show", "2", "--json").stdout)["status"] == "in_progress"
    withdrawn = _valid(cli("request", "withdraw", "2", "--json").stdout)
    assert withdrawn["status"] == "withdrawn" and withdrawn["closed_at"]
    cli("request", "fulfil", "2", code=3)
    assert _scalar(ws.settings, "SELECT subject_sealed FROM subject_requests WHERE id = 2") is None
    assert _valid(cli("request", "list", "--json").stdout) == []
    assert len(_valid(cli("request", "list", "--all", "--json").stdout)) == 2
    events = cli("audit", "log", "--action", "request", "--json").stdout
    assert "470123456" not in events and "470 12" not in events and "Peeters" not in events
    for action in ("request.open", "request.extend", "request.start", "request.withdraw"):
        assert action in events


def test_an_erasure_masks_cdrs_deletes_voicemail_and_leaves_other_customers_alone(
    ws: Workspace, cli: Callable[..., Run], clock: time_machine.Coordinates
) -> None:
    add_customer(cli, samples=("cdr", "voicemail"))
    add_customer(cli, "globex", samples=("cdr", "voicemail"))
    settings = ws.settings
    others_before = _rows(settings, "globex")
    cdrs_before = _payloads(settings, "acme", "cdr")
    _open(cli, "erasure")
    done = _valid(cli("request", "fulfil", "1", "--json").stdout)
    assert done["status"] == "fulfilled"
    assert done["outcome"]["masked"] == {"cdr": 5}
    assert done["outcome"]["deleted"] == {"voicemail": 1}
    assert done["outcome"]["refused"] == []
    assert _rows(settings, "globex") == others_before
    cdrs_after = _payloads(settings, "acme", "cdr")
    assert cdrs_after.keys() == cdrs_before.keys()  # masked, not deleted: the bill stays
    changed = 0
    for rid, before in cdrs_before.items():
        after = cdrs_after[rid]
        assert "470123456" not in re.sub(r"\D", "", json.dumps(after)), after
        for name in BILLING_FIELDS & before.keys():
            assert after[name] == before[name]
        changed += after != before
    assert changed == 5
    found = json.loads(cli("subject", "find", JAN, "--json").stdout)
    assert {hit["customer_id"] for hit in found} == {"globex"}
    digest = bytes.fromhex(
        json.loads(cli("audit", "log", "--action", "request.erase", "--json").stdout)[0]["details"][
            "subject"
        ]
    )
    assert digest and len(digest) == 16
    links = _scalar(
        settings,
        "SELECT count(*) FROM subject_events WHERE customer_id = 'acme' AND subject = :d",
        d=digest,
    )
    assert links == 0
    shown = cli("request", "show", "1").stdout
    assert "masked: 5 cdr records" in shown and "470 12" not in shown


def test_holds_win_over_erasure_and_the_refusal_names_the_hold(
    ws: Workspace, cli: Callable[..., Run], clock: time_machine.Coordinates
) -> None:
    add_customer(cli, samples=("cdr", "voicemail"))
    cli("hold", "add", "--customer", "acme", "--category", "cdr", "--reason", "dispute",
        "--reference", "court 7")  # fmt: skip
    held_before = [row for row in _rows(ws.settings, "acme") if row[1] == "cdr"]
    _open(cli, "erasure")
    done = _valid(cli("request", "fulfil", "1", "--json").stdout)
    assert done["status"] == "fulfilled"
    assert done["outcome"]["deleted"] == {"voicemail": 1}
    assert done["outcome"]["refused"] == [
        {
            "hold": 1,
            "reason": "dispute",
            "reference": "court 7",
            "article": "Art. 17(3)(e) GDPR",
            "records": 5,
            "categories": {"cdr": 5},
        }
    ]
    assert done["refusal_article"] == "Art. 17(3)(e) GDPR"
    assert [row for row in _rows(ws.settings, "acme") if row[1] == "cdr"] == held_before
    assert "refused for 5 held records" in cli("request", "list", "--all").stdout
    # A hold on the whole customer: nothing can be erased, the request is refused.
    cli("hold", "add", "--customer", "acme", "--reason", "authority", "--reference", "PV 1")
    _open(cli, "erasure")
    refused = _valid(cli("request", "fulfil", "2", "--json").stdout)
    assert refused["status"] == "refused"
    assert refused["outcome"]["deleted"] == {} and refused["outcome"]["masked"] == {}


def test_a_restriction_keeps_records_from_sweeps_exports_and_subject_find_until_lifted(
    ws: Workspace, cli: Callable[..., Run], clock: time_machine.Coordinates
) -> None:
    add_customer(cli, samples=("cdr", "voicemail"))
    before = json.loads(
        cli("export", "create", "--customer", "acme", "--recipient", RECIPIENT, "--json").stdout
    )["records"]
    _open(cli, "restriction")
    done = _valid(cli("request", "fulfil", "1", "--json").stdout)
    assert done["restriction_in_force"] and done["outcome"] == {"restricted_records": 6}
    found = json.loads(cli("subject", "find", JAN, "--json").stdout)
    assert found == [{"customer_id": "acme", "restricted": True, "request": 1}]
    # Nothing is derived from them either (the call-back list's missed calls, statistics).
    with ws.session(read_only=True) as session:
        since = NOW - timedelta(days=3 * 365)
        assert len(stored_cdrs(session, ws.keyring, "acme", since)) == 12 - 5
    assert "restricted" in cli("subject", "find", JAN).stdout
    after = json.loads(
        cli("export", "create", "--customer", "acme", "--recipient", RECIPIENT, "--json").stdout
    )["records"]
    assert after == before - 6
    report = json.loads(cli("audit", "report", "--format", "json", code=1).stdout)
    restrictions = [f for f in report["findings"] if f["id"] == "restrictions"]
    assert restrictions[0]["affected"] == [{"request": 1, "customer": "acme", "records": 6}]
    # Three years on, every sample is due: the restricted person's records stay whole (the
    # others are deleted, or pseudonymised as the CDR rule says).
    clock.move_to(NOW + timedelta(days=3 * 365))
    cli("retention", "sweep")
    whole = "SELECT count(*) FROM records WHERE customer_id = 'acme' AND anonymised_at IS NULL"
    assert _scalar(ws.settings, whole) == 6
    lifted = _valid(cli("request", "lift", "1", "--reason", "objection decided", "--json").stdout)
    assert not lifted["restriction_in_force"] and lifted["lift_reason"] == "objection decided"
    cli("request", "lift", "1", "--reason", "again", code=3)
    assert "request.lift" in cli("audit", "log", "--action", "request.lift").stdout
    cli("retention", "sweep")
    assert _scalar(ws.settings, whole) == 0


def test_access_makes_the_subject_export_linked_to_the_request(
    ws: Workspace, cli: Callable[..., Run], clock: time_machine.Coordinates
) -> None:
    add_customer(cli, samples=("cdr", "voicemail"))
    _open(cli, "access")
    cli("request", "fulfil", "1", code=2)  # no recipient
    cli("request", "fulfil", "1", "--recipient", "age1nonsense", code=2)
    done = _valid(cli("request", "fulfil", "1", "--recipient", RECIPIENT, "--json").stdout)
    assert done["status"] == "fulfilled" and done["outcome"] == {"records": 6}
    exports = json.loads(cli("export", "list", "--json").stdout)
    assert done["export_id"] in json.dumps(exports)
    assert len(exports) == 1
    assert _scalar(ws.settings, "SELECT subject_sealed FROM subject_requests") is None
    # Nobody by that number: fulfilled with nothing held, and no package.
    _open(cli, "portability", subject="+32 470 99 99 99")
    nothing = _valid(cli("request", "fulfil", "2", "--recipient", RECIPIENT, "--json").stdout)
    assert nothing["outcome"] == {"records": 0} and nothing["export_id"] is None
    _open(cli, "erasure")
    cli("request", "fulfil", "3", "--recipient", RECIPIENT, code=2)


def test_the_audit_reports_requests_past_due_and_due_soon(
    ws: Workspace, cli: Callable[..., Run], clock: time_machine.Coordinates
) -> None:
    add_customer(cli, samples=())
    _open(cli, "access", received="2026-10-01")  # due 1 November: past
    _open(cli, "erasure", received="2026-10-26")  # due 26 November: within 7 days
    _open(cli, "restriction", received="2026-11-20")  # due 20 December
    cli("request", "fulfil", "3")  # a restriction in force: listed by the audit
    report = json.loads(cli("audit", "report", "--format", "json", code=1).stdout)
    audit_schema = json.loads(
        (Path(__file__).parents[2] / "schemas" / "audit-report.schema.json").read_text()
    )
    jsonschema.validate(report, audit_schema, format_checker=jsonschema.FormatChecker())
    by_id = {f["id"]: f for f in report["findings"]}
    assert by_id["restrictions"]["affected"] == [{"request": 3, "customer": "acme", "records": 0}]
    assert by_id["request-overdue"]["severity"] == "critical"
    assert [a["request"] for a in by_id["request-overdue"]["affected"]] == [1]
    assert [a["request"] for a in by_id["request-due-soon"]["affected"]] == [2]
    soon = _valid(cli("request", "list", "--due-within", "7d", "--json").stdout)
    assert [r["id"] for r in soon] == [1, 2]
    cli("request", "list", "--due-within", "soon", code=2)
    html = cli("audit", "report", "--format", "html", code=1).stdout
    assert "request-overdue" in html or "past their due date" in html


@pytest.mark.parametrize("kind", ["erasure", "restriction"])
def test_a_purged_customer_takes_no_request(
    ws: Workspace, cli: Callable[..., Run], clock: time_machine.Coordinates, kind: str
) -> None:
    add_customer(cli, samples=())
    cli("customer", "terminate", "acme", "--on", "2026-11-23")
    clock.move_to(NOW + timedelta(days=200))
    cli("retention", "sweep")
    _open(cli, kind, received="2026-11-30", code=3)


def test_erasure_notices_to_recipients_name_the_request(
    ws: Workspace, cli: Callable[..., Run], clock: time_machine.Coordinates
) -> None:
    from tests.retention.test_notify import install_endpoints

    install_endpoints(ws, {"platform_provider": "https://127.0.0.1:9/erasures"})
    add_customer(cli, samples=("cdr", "voicemail"))
    _open(cli, "erasure")
    done = _valid(cli("request", "fulfil", "1", "--json").stdout)
    assert done["outcome"]["notices_queued"] == 1
    body = json.loads(_scalar(ws.settings, "SELECT body FROM erasure_notices"))
    assert body["data"]["request"] == 1
    assert {(b["category"], b["action"], b["count"]) for b in body["data"]["batches"]} == {
        ("cdr", "mask", 5),
        ("voicemail", "delete", 1),
    }
    assert "470123456" not in json.dumps(body) and "Peeters" not in json.dumps(body)


def test_the_register_says_what_erasing_one_person_does_per_category() -> None:
    from dpa.errors import RegisterInvalid
    from dpa.register import default_register
    from dpa.register.validation import parse

    register = default_register()
    assert register.erasure_rule("cdr") == "mask"
    assert register.erasure_rule("call_recording") == "delete"
    assert "both voices" in (register.data_categories["call_recording"].erasure_note or "")
    assert register.erasure_rule("voicemail") == "delete"
    text = (Path(__file__).parents[2] / "dpa" / "data" / "default-register.yaml").read_text()
    # A register without the rule gets the defaults.
    bare = parse(text.replace("    erasure: mask\n", ""))
    assert bare.data_categories["cdr"].erasure is None and bare.erasure_rule("cdr") == "mask"
    # dpa cannot mask a voicemail: refused, naming the path.
    with pytest.raises(RegisterInvalid) as refused:
        parse(text.replace("    erasure: delete\n", "    erasure: mask\n"))
    assert "data_categories[" in str(refused.value) and ".erasure" in str(refused.value)
    with pytest.raises(RegisterInvalid):
        parse(text.replace("    erasure: mask\n", "    erasure: shred\n"))
