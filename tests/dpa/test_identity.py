"""The identity rule: content decides, never a platform identifier that is reused."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dpa.identity import canonical, source_key

CALL = {"src": "0470123456", "dst": "1001", "uniqueid": "1774744200.3", "billsec": 12}
MESSAGE = {
    "context": "default",
    "mailbox": "1001",
    "folder": "INBOX",
    "message": {"msg_id": "17-1"},
}


def test_calls_sharing_a_uniqueid_are_two_records_and_one_call_read_twice_is_one() -> None:
    other_leg = {**CALL, "dst": "1002"}
    assert source_key("cdr", CALL) != source_key("cdr", other_leg)
    assert source_key("cdr", dict(reversed(list(CALL.items())))) == source_key("cdr", CALL)


def test_one_message_in_two_mailboxes_is_two_records() -> None:
    copy = {**MESSAGE, "mailbox": "1002"}
    assert source_key("voicemail", MESSAGE) != source_key("voicemail", copy)
    moved = {**MESSAGE, "message": {"msg_id": "17-1", "duration": 3}}
    assert source_key("voicemail", moved) == source_key("voicemail", MESSAGE)  # msg_id decides
    listened = {**MESSAGE, "folder": "Old"}  # app_voicemail moves a heard message to Old
    assert source_key("voicemail", listened) == source_key("voicemail", MESSAGE)
    no_id = {**MESSAGE, "message": {"origtime": "1"}}
    assert source_key("voicemail", no_id) != source_key("voicemail", {**no_id, "message": {}})


def test_a_recording_is_its_audio_and_its_call_whatever_the_file_is_called() -> None:
    call = {"start": "2026-03-29T01:30:00+00:00", "caller": "0470123456", "uniqueid": "17.3"}
    renamed = {**call, "file_name": "b.wav", "format": "wav", "time_from": "name"}
    assert source_key("call_recording", call, "ab" * 32) == source_key(
        "call_recording", renamed, "ab" * 32
    )
    assert source_key("call_recording", call, "ab" * 32) != source_key(
        "call_recording", call, "cd" * 32
    )
    # A time read from the file's modification time belongs to the copy, not the call.
    stamped = {"start": "2026-03-29T01:30:00+00:00", "time_from": "mtime", "caller": None}
    copied = {**stamped, "start": "2026-12-01T08:00:00+00:00"}
    assert source_key("call_recording", stamped, "ab" * 32) == source_key(
        "call_recording", copied, "ab" * 32
    )
    # Two unanswered calls leave the same empty WAV: still two calls, two records.
    other_call = {**call, "uniqueid": "17.4"}
    assert source_key("call_recording", call, "ab" * 32) != source_key(
        "call_recording", other_call, "ab" * 32
    )
    with pytest.raises(ValueError, match="SHA-256"):
        source_key("call_recording", {})


def test_contacts_keep_the_key_they_had() -> None:
    contact = {"name": "Jan", "phone": "0470 12 34 56", "email": None}
    spelled = json.dumps(contact, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    assert source_key("phone_number", contact) == hashlib.sha256(spelled.encode()).hexdigest()


def test_an_unknown_category_has_no_rule() -> None:
    with pytest.raises(ValueError, match="no identity rule"):
        source_key("telepathy", {})


@given(st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=5))
def test_keys_are_64_hex_digits_and_canonical_is_order_free(payload: dict[str, str]) -> None:
    key = source_key("cdr", payload)
    assert len(key) == 64 and int(key, 16) >= 0
    assert canonical(dict(sorted(payload.items()))) == canonical(payload)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**31), 2**31 - 1) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_canonical_spells_as_json_does(value: object) -> None:
    """orjson's bytes are the standard library's (the first rule's contact keys depend on it)."""
    spelled = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    try:
        expected = spelled.encode()
    except UnicodeEncodeError:  # lone surrogates: neither spells them
        with pytest.raises(TypeError):
            canonical(value)
        return
    assert canonical(value) == expected


def test_a_file_dated_by_its_modification_time_is_the_same_record_when_copied() -> None:
    """A restore or an rsync without -t gives a fax or document another mtime: found by review."""
    sha = "ab" * 32
    for category in ("fax", "passport_photo"):
        copy = {"start": "2026-03-28T09:15:02+00:00", "time_from": "mtime", "pages": 2}
        later = {**copy, "start": "2026-11-02T08:00:00+00:00"}
        assert source_key(category, copy, sha) == source_key(category, later, sha)
        told = {**copy, "time_from": "sidecar"}
        other = {**later, "time_from": "sidecar"}
        assert source_key(category, told, sha) != source_key(category, other, sha)
