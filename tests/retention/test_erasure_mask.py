"""Masking one person out of a CDR (`retention.erasure.mask_payload`), over random calls.

The promise: the masked payload holds no trace of the person (their number in any spelling,
in any field, in the `e164` map), keeps every billing field, and keeps the other party.
"""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from retention.erasure import BILLING_FIELDS, mask_payload, person

PERSON = "+32470123456"
OTHER = "+3222345678"
SPELLINGS = ["0470123456", "+32470123456", "0032470123456", "+32 470 12 34 56", "0470/12.34.56"]
OTHER_SPELLINGS = ["022345678", "+3222345678", "0032 2 234 56 78"]


def _traces(value: object) -> bool:
    text = str(value)
    return "470123456" in re.sub(r"\D", "", text)


@st.composite
def calls(draw: st.DrawFn) -> dict[str, object]:
    mine = draw(st.sampled_from(SPELLINGS))
    theirs = draw(st.sampled_from(OTHER_SPELLINGS))
    outgoing = draw(st.booleans())
    src, dst = (mine, theirs) if outgoing else (theirs, mine)
    name = draw(st.sampled_from(["Jan Peeters", "", "Reception"]))
    payload: dict[str, object] = {
        "accountcode": draw(st.sampled_from(["", "ACME-1", "9001"])),
        "src": src,
        "dst": dst,
        "dcontext": "from-pstn",
        "clid": f'"{name}" <{src}>',
        "channel": f"SIP/trunk-{draw(st.integers(0, 99)):08x}",
        "dstchannel": f"SIP/trunk/{dst}",
        "lastapp": "Dial",
        "lastdata": draw(st.sampled_from([f"SIP/trunk/{mine},60", "SIP/1001,30"])),
        "start": "2026-03-28 10:15:02",
        "answer": "2026-03-28 10:15:05",
        "end": "2026-03-28 10:17:44",
        "duration": draw(st.integers(0, 10_000)),
        "billsec": draw(st.integers(0, 10_000)),
        "disposition": draw(st.sampled_from(["ANSWERED", "NO ANSWER", "BUSY"])),
        "amaflags": "DOCUMENTATION",
        "uniqueid": "1774689302.1",
        "cost": draw(st.sampled_from([None, "0.12", 3])),
        "userfield": draw(st.sampled_from(["", f"callback {mine}", "note"])),
        "e164": {mine: PERSON, theirs: OTHER},
    }
    return payload


@given(calls())
def test_a_masked_cdr_keeps_its_billing_fields_and_the_other_party_and_loses_the_person(
    payload: dict[str, object],
) -> None:
    who = person("0470 12 34 56", b"\x01" * 16, "BE")
    masked, removed = mask_payload(payload, who)
    for name, value in masked.items():
        if name == "e164":
            assert isinstance(value, dict)
            assert PERSON not in value.values()
            assert not any(_traces(raw) for raw in value)
        else:
            assert not _traces(value), (name, value)
    for name in BILLING_FIELDS & payload.keys():
        assert masked[name] == payload[name], name
    other_field = "dst" if payload["src"] in SPELLINGS else "src"
    assert masked[other_field] == payload[other_field]
    assert OTHER in masked["e164"].values()  # type: ignore[union-attr]
    assert "e164" in removed
    assert set(removed) <= set(payload)


def test_an_email_or_ip_person_is_masked_by_address() -> None:
    who = person("Jan.Peeters@Example.com", b"\x02" * 16, "BE")
    masked, removed = mask_payload(
        {"from": "jan.peeters@example.com", "to": "x@example.org", "e164": {}}, who
    )
    assert masked == {"to": "x@example.org", "e164": {}}
    assert removed == ["from"]
