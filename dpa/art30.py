"""The GDPR Art. 30 record, built from the register and the customers, in four formats.

Two records in one document, because a provider is both (CNIL: "a company that is both
controller and processor keeps two registers"):

- Art. 30(2), the processor's record: the provider, its DPO and representative; for each
  customer (controller) its identity and the categories of processing done on its behalf;
  transfers to third countries and their safeguards; security measures.
- Art. 30(1), the controller's record for the provider's own (controller-role) activities:
  purposes, categories of subjects and data, recipients, transfers, time limits for erasure,
  security measures.

Each controller's section lists, per processing, the retention applied to its data: the
register's default, or the customer's own instruction (GDPR Art. 28(3)(a)) with its date and
reference (`dpa.retention_rules.effective_rule`).

Every activity row also carries the columns of the Belgian GBA/APD model, the ICO template
and CNIL's sheet (legal basis, source, retention, status), so the CSV can be handed over as it
is. `build` is pure; the renderers turn its result into Markdown, CSV, JSON or HTML.
"""

from __future__ import annotations

import csv
import html
import io
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from dpa.customers import CustomerView
from dpa.register import Activity, Register
from dpa.retention_rules import Instruction, effective_rule

__all__ = ["FORMATS", "build", "render"]

Format = Literal["md", "csv", "json", "html"]
FORMATS: tuple[Format, ...] = ("md", "csv", "json", "html")


def _activity(register: Register, activity: Activity) -> dict[str, Any]:
    rule = activity.retention
    return {
        "id": activity.id,
        "name": activity.name,
        "purpose": activity.purpose,
        "role": activity.role,
        "legal_basis": {
            "article": activity.legal_basis.short,
            "reference": activity.legal_basis.reference,
        },
        "data_categories": [
            # What erasing one person (Art. 17) does to a record of the category.
            {"id": c, "name": register.data_categories[c].name, "erasure": register.erasure_rule(c)}
            for c in activity.data_categories
        ],
        "subject_categories": [
            {"id": s, "name": register.subject_categories[s].name}
            for s in activity.subject_categories
        ],
        "recipients": [
            {
                "id": r,
                "name": register.recipients[r].name,
                "kind": register.recipients[r].kind,
                "country": register.recipients[r].country,
            }
            for r in activity.recipients
        ],
        "transfers": [{"country": t.country, "safeguard": t.safeguard} for t in activity.transfers],
        "retention": {
            "summary": str(rule),
            "duration": str(rule.duration),
            "anchor": rule.anchor,
            "action": rule.action,
            "keep": list(rule.keep),
            "generalise": rule.granularities,
            # What the kept records are after the rule acts (GDPR Art. 4(5), recital 26): the
            # summary says it in words, in every format.
            "kept_data": {
                "delete": None,
                "pseudonymise": "personal data (pseudonymised)",
                "anonymise": "claimed anonymous (the justification says why)",
            }[rule.action],
            "written_as": rule.written_as,
            "justification": rule.justification,
        },
        "security_measures": [
            register.security_measures[m].description for m in activity.security_measures
        ],
        "source": activity.source,
        "note": activity.note,
        "status": "active",
    }


def _controller_retention(
    register: Register,
    customer_id: str,
    activities: Sequence[Activity],
    instructions: Mapping[tuple[str, str], Instruction],
) -> list[dict[str, Any]]:
    out = []
    for activity in activities:
        effective = effective_rule(None, register, customer_id, activity, instructions=instructions)
        instruction = effective.instruction
        out.append(
            {
                "activity": activity.id,
                "summary": effective.text,
                "duration": str(effective.rule.duration),
                "source": effective.source,
                "instructed_on": None
                if instruction is None
                else instruction.instructed_on.isoformat(),
                "reference": None if instruction is None else instruction.reference,
                "bounds": None if activity.bounds is None else str(activity.bounds),
            }
        )
    return out


def build(
    register: Register,
    customers: Sequence[CustomerView],
    *,
    version: int,
    generated_at: datetime,
    instructions: Mapping[tuple[str, str], Instruction] | None = None,
) -> dict[str, Any]:
    """The Art. 30(2) and Art. 30(1) records as one JSON-ready document.

    `instructions` are the customers' retention instructions in force
    (`dpa.retention_rules.instructions_in_force`); none: every customer has the defaults.
    """
    given = instructions or {}
    processing = [a for a in register.activities if a.role == "processor"]
    provider = register.provider
    processor_activities = [
        _activity(register, a) for a in register.activities if a.role == "processor"
    ]
    controller_activities = [
        _activity(register, a) for a in register.activities if a.role == "controller"
    ]
    transfers = sorted({(t.country, t.safeguard) for a in register.activities for t in a.transfers})
    return {
        "title": "Records of processing activities (GDPR Art. 30)",
        "generated_at": generated_at.isoformat(timespec="seconds"),
        "register": {"version": version, "sha256": register.sha256},
        "provider": {
            "name": provider.name,
            "company_number": provider.company_number,
            "address": provider.address,
            "contact": provider.contact,
            "dpo": str(provider.dpo),
            "representative": None
            if provider.representative is None
            else str(provider.representative),
        },
        "processor_record": {
            "article": "Art. 30(2) GDPR",
            "controllers": [
                {
                    "customer_id": c.id,
                    "name": c.name,
                    "contact": c.contact,
                    "contract_policy": c.contract_policy,
                    "started_on": c.started_on.isoformat(),
                    "status": c.status,
                    "effective_on": None if c.effective_on is None else c.effective_on.isoformat(),
                    "window_end_at": (
                        None if c.window_end_at is None else c.window_end_at.isoformat()
                    ),
                    "processing": [a["id"] for a in processor_activities],
                    "retention": _controller_retention(register, c.id, processing, given),
                }
                for c in customers
            ],
            "categories_of_processing": processor_activities,
            "transfers": [{"country": c, "safeguard": s} for c, s in transfers],
            "security_measures": [
                {"id": m.id, "kind": m.kind, "description": m.description}
                for m in register.security_measures.values()
            ],
        },
        "controller_record": {
            "article": "Art. 30(1) GDPR",
            "activities": controller_activities,
        },
    }


def _names(items: Sequence[dict[str, Any]]) -> str:
    return ", ".join(str(i["name"]) for i in items) or "none"


def _transfers(items: Sequence[dict[str, Any]]) -> str:
    return "; ".join(f"{t['country']} ({t['safeguard']})" for t in items) or "none outside the EEA"


_ERASURE_WORDS = {"mask": "masked (the person's traces go, the rest stays)", "delete": "deleted"}


def _erasure(activity: dict[str, Any]) -> str:
    """Per data category, what erasing one person does to its records."""
    return "; ".join(
        f"{c['name']}: {_ERASURE_WORDS.get(c['erasure'], c['erasure'])}"
        for c in activity["data_categories"]
    )


def _md_cell(value: object) -> str:
    return str(value if value is not None else "").replace("|", "\\|").replace("\n", " ")


def _md_activity(activity: dict[str, Any]) -> list[str]:
    rows = [
        ("Purpose", activity["purpose"]),
        ("Role", activity["role"]),
        (
            "Legal basis",
            f"{activity['legal_basis']['article']}: {activity['legal_basis']['reference']}",
        ),
        ("Data categories", _names(activity["data_categories"])),
        ("Data subjects", _names(activity["subject_categories"])),
        ("Recipients", _names(activity["recipients"])),
        ("Transfers", _transfers(activity["transfers"])),
        ("Retention", activity["retention"]["summary"]),
        ("Why this long", activity["retention"]["justification"] or ""),
        ("Erasure of one person (Art. 17)", _erasure(activity)),
        ("Security measures", "; ".join(activity["security_measures"])),
        ("Source of data", activity["source"] or ""),
        ("Note", activity["note"] or ""),
    ]
    out = [f"#### {activity['name']} (`{activity['id']}`)", "", "| field | entry |", "|---|---|"]
    out += [f"| {k} | {_md_cell(v)} |" for k, v in rows if v]
    return [*out, ""]


def _whose(kept: dict[str, Any]) -> str:
    """Whose rule a controller's retention is: the default, or its instruction and when."""
    if kept["source"] != "customer instruction":
        return "provider default" + (
            f" (customer may instruct {kept['bounds']})" if kept["bounds"] else ""
        )
    reference = f", reference {kept['reference']}" if kept["reference"] else ""
    return f"customer instruction of {kept['instructed_on']}{reference} (Art. 28(3)(a))"


def _markdown(record: dict[str, Any]) -> str:
    p = record["provider"]
    proc = record["processor_record"]
    lines = [
        f"# {record['title']}",
        "",
        f"Generated {record['generated_at']} from register version {record['register']['version']} "
        f"(SHA-256 `{record['register']['sha256'][:16]}…`).",
        "",
        "## The provider",
        "",
        "| field | entry |",
        "|---|---|",
        f"| Name | {_md_cell(p['name'])} |",
        f"| Company number | {_md_cell(p['company_number'])} |",
        f"| Address | {_md_cell(p['address'])} |",
        f"| Contact | {_md_cell(p['contact'])} |",
        f"| Data protection officer | {_md_cell(p['dpo'])} |",
        f"| Representative (Art. 27) | {_md_cell(p['representative'] or 'not required')} |",
        "",
        "## Processor record (Art. 30(2))",
        "",
        "### Controllers the provider processes for",
        "",
    ]
    if not proc["controllers"]:
        lines += ["No customers are registered yet.", ""]
    for c in proc["controllers"]:
        lines += [
            f"#### Controller {c['customer_id']}: {_md_cell(c['name'])}",
            "",
            f"Contact: {_md_cell(c['contact'] or 'not recorded')}. Contract `{c['contract_policy']}` "
            f"since {c['started_on']}, status **{c['status']}**"
            + (
                f", effective end {c['effective_on']}, window closes {c['window_end_at']}"
                if c["effective_on"]
                else ""
            )
            + ".",
            "",
            "| processing | data categories | legal basis | retention | whose rule |",
            "|---|---|---|---|---|",
        ]
        by_id = {a["id"]: a for a in proc["categories_of_processing"]}
        retention = {r["activity"]: r for r in c["retention"]}
        for activity_id in c["processing"]:
            a, kept = by_id[activity_id], retention[activity_id]
            lines.append(
                f"| {_md_cell(a['name'])} | {_md_cell(_names(a['data_categories']))} | "
                f"{a['legal_basis']['article']} | {_md_cell(kept['summary'])} | "
                f"{_md_cell(_whose(kept))} |"
            )
        lines.append("")
    lines += ["### Categories of processing carried out on behalf of controllers", ""]
    for activity in proc["categories_of_processing"]:
        lines += _md_activity(activity)
    lines += ["### Transfers to third countries", ""]
    lines += [f"- {t['country']}: {t['safeguard']}" for t in proc["transfers"]] or [
        "None: all processing stays in the EEA."
    ]
    lines += ["", "### Technical and organisational security measures (Art. 32)", ""]
    lines += [
        f"- **{m['id']}** ({m['kind']}): {m['description']}" for m in proc["security_measures"]
    ]
    lines += ["", "## Controller record (Art. 30(1))", ""]
    for activity in record["controller_record"]["activities"]:
        lines += _md_activity(activity)
    return "\n".join(lines).rstrip() + "\n"


CSV_COLUMNS = (
    "record",
    "controller_id",
    "controller_name",
    "controller_contact",
    "activity_id",
    "activity",
    "purpose",
    "role",
    "legal_basis",
    "legal_basis_reference",
    "data_categories",
    "data_subjects",
    "recipients",
    "transfers",
    "retention",
    "retention_duration",
    "retention_anchor",
    "retention_action",
    "retention_source",
    "retention_instructed_on",
    "retention_reference",
    "erasure_on_request",
    "security_measures",
    "source",
    "status",
    "note",
)


def _csv_row(record: str, controller: dict[str, Any] | None, a: dict[str, Any]) -> dict[str, str]:
    kept: dict[str, Any] | None = None
    if controller is not None:
        kept = next(r for r in controller["retention"] if r["activity"] == a["id"])
    return {
        "record": record,
        "controller_id": controller["customer_id"] if controller else "",
        "controller_name": controller["name"] if controller else "",
        "controller_contact": (controller["contact"] or "") if controller else "",
        "activity_id": a["id"],
        "activity": a["name"],
        "purpose": a["purpose"],
        "role": a["role"],
        "legal_basis": a["legal_basis"]["article"],
        "legal_basis_reference": a["legal_basis"]["reference"],
        "data_categories": _names(a["data_categories"]),
        "data_subjects": _names(a["subject_categories"]),
        "recipients": _names(a["recipients"]),
        "transfers": _transfers(a["transfers"]),
        "retention": a["retention"]["summary"] if kept is None else kept["summary"],
        "retention_duration": a["retention"]["duration"] if kept is None else kept["duration"],
        "retention_anchor": a["retention"]["anchor"],
        "retention_action": a["retention"]["action"],
        "retention_source": "provider default" if kept is None else kept["source"],
        "retention_instructed_on": "" if kept is None else kept["instructed_on"] or "",
        "retention_reference": "" if kept is None else kept["reference"] or "",
        "erasure_on_request": _erasure(a),
        "security_measures": "; ".join(a["security_measures"]),
        "source": a["source"] or "",
        "status": controller["status"] if controller else a["status"],
        "note": a["note"] or "",
    }


def _cell(value: str) -> str:
    """Defuse spreadsheet formulas: a cell starting with = + - @ is read as text."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _csv(record: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    proc = record["processor_record"]
    by_id = {a["id"]: a for a in proc["categories_of_processing"]}
    controllers = proc["controllers"] or [None]
    for controller in controllers:
        ids = controller["processing"] if controller else list(by_id)
        for activity_id in ids:
            row = _csv_row("Art. 30(2)", controller, by_id[activity_id])
            writer.writerow({k: _cell(v) for k, v in row.items()})
    for activity in record["controller_record"]["activities"]:
        writer.writerow({k: _cell(v) for k, v in _csv_row("Art. 30(1)", None, activity).items()})
    return out.getvalue()


_CSS = """
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:72rem;color:#1d2330;padding:0 1rem}
h1{font-size:1.6rem}h2{margin-top:2.2rem;border-bottom:2px solid #2f5d8a;padding-bottom:.2rem}
table{border-collapse:collapse;width:100%;margin:.6rem 0 1.4rem}th,td{border:1px solid #c9d1dc;
padding:.35rem .5rem;text-align:left;vertical-align:top}th{background:#eef2f7;width:14rem}
.meta{color:#556} .pill{background:#eef2f7;border-radius:.8rem;padding:.05rem .5rem}
"""


def _h(value: object) -> str:
    return html.escape(str(value if value is not None else ""))


def _html_activity(a: dict[str, Any]) -> str:
    rows = [
        ("Purpose", a["purpose"]),
        ("Role", a["role"]),
        ("Legal basis", f"{a['legal_basis']['article']}: {a['legal_basis']['reference']}"),
        ("Data categories", _names(a["data_categories"])),
        ("Data subjects", _names(a["subject_categories"])),
        ("Recipients", _names(a["recipients"])),
        ("Transfers", _transfers(a["transfers"])),
        ("Retention", a["retention"]["summary"]),
        ("Why this long", a["retention"]["justification"]),
        ("Erasure of one person (Art. 17)", _erasure(a)),
        ("Security measures", "; ".join(a["security_measures"])),
        ("Source of data", a["source"]),
        ("Note", a["note"]),
    ]
    body = "".join(f"<tr><th>{_h(k)}</th><td>{_h(v)}</td></tr>" for k, v in rows if v)
    return f"<h4>{_h(a['name'])} <span class=pill>{_h(a['id'])}</span></h4><table>{body}</table>"


def _html(record: dict[str, Any]) -> str:
    p = record["provider"]
    proc = record["processor_record"]
    provider_rows = [
        ("Name", p["name"]),
        ("Company number", p["company_number"]),
        ("Address", p["address"]),
        ("Contact", p["contact"]),
        ("Data protection officer", p["dpo"]),
        ("Representative (Art. 27)", p["representative"] or "not required"),
    ]
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>{_h(record['title'])}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_h(record['title'])}</h1>",
        f"<p class=meta>Generated {_h(record['generated_at'])} from register version "
        f"{_h(record['register']['version'])} (SHA-256 {_h(record['register']['sha256'][:16])}…)</p>",
        "<h2>The provider</h2><table>",
        *(f"<tr><th>{_h(k)}</th><td>{_h(v)}</td></tr>" for k, v in provider_rows),
        "</table><h2>Processor record (Art. 30(2))</h2><h3>Controllers the provider processes for</h3>",
    ]
    if not proc["controllers"]:
        parts.append("<p>No customers are registered yet.</p>")
    for c in proc["controllers"]:
        parts.append(
            f"<h4>Controller {_h(c['customer_id'])}: {_h(c['name'])}</h4><table>"
            f"<tr><th>Contact</th><td>{_h(c['contact'] or 'not recorded')}</td></tr>"
            f"<tr><th>Contract</th><td>{_h(c['contract_policy'])} since {_h(c['started_on'])}</td></tr>"
            f"<tr><th>Status</th><td>{_h(c['status'])}"
            + (
                f", effective end {_h(c['effective_on'])}, window closes {_h(c['window_end_at'])}"
                if c["effective_on"]
                else ""
            )
            + f"</td></tr><tr><th>Processing on its behalf</th><td>{_h(', '.join(c['processing']))}</td></tr>"
            + "".join(
                f"<tr><th>Retention: {_h(r['activity'])}</th><td>{_h(r['summary'])}"
                f"<br><small>{_h(_whose(r))}</small></td></tr>"
                for r in c["retention"]
            )
            + "</table>"
        )
    parts.append("<h3>Categories of processing carried out on behalf of controllers</h3>")
    parts += [_html_activity(a) for a in proc["categories_of_processing"]]
    parts.append("<h3>Transfers to third countries</h3><ul>")
    parts += [f"<li>{_h(t['country'])}: {_h(t['safeguard'])}</li>" for t in proc["transfers"]] or [
        "<li>None: all processing stays in the EEA.</li>"
    ]
    parts.append("</ul><h3>Security measures (Art. 32)</h3><ul>")
    parts += [
        f"<li><b>{_h(m['id'])}</b> ({_h(m['kind'])}): {_h(m['description'])}</li>"
        for m in proc["security_measures"]
    ]
    parts.append("</ul><h2>Controller record (Art. 30(1))</h2>")
    parts += [_html_activity(a) for a in record["controller_record"]["activities"]]
    parts.append("</body></html>\n")
    return "".join(parts)


def render(record: dict[str, Any], fmt: Format) -> str:
    """The record as Markdown, CSV, JSON or self-contained HTML."""
    if fmt == "md":
        return _markdown(record)
    if fmt == "csv":
        return _csv(record)
    if fmt == "json":
        return json.dumps(record, indent=2, ensure_ascii=False) + "\n"
    if fmt == "html":
        return _html(record)
    raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
