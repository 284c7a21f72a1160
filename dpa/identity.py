"""What makes two records one: the identity rule behind every record's `source_key`.

A record's identity is its content, never an identifier the platform reuses. Since Asterisk
12 a `uniqueid` is shared by every CDR of a parallel Dial, a Local/ channel's legs, follow-me
and queue legs; a voicemail left in two mailboxes keeps one `msg_id` in both. Keying records
by those identifiers stored one call of many, and said "already stored" of the rest.

- `cdr`: the whole parsed call (every field, times as written), so two lines that differ in
  any field are two calls, and the same call read again (the same file twice, an overlapping
  rotated file, an `accountlogs` copy, a spreadsheet's re-quoted export) is one. Times count
  as the file wrote them: a wall-clock time is its `YYYY-MM-DD HH:MM:SS` text, not the instant
  the zone it was read in (`--tz`) makes of it, so a file read again in another zone is the
  same calls (whose stored times `dpa ingest cdr --retime` can then correct). A stored CDR
  names that zone in its payload (`tz`); its times are UTC, converted back for the key. A
  CDR without `tz` (stored before this rule, or read from epochs only: FreeSWITCH JSON) counts
  its times as UTC instants, or in the zone the caller names (`zone`, the re-key's guess for
  records of the second rule: the register's zone).
- `voicemail`: spool context and mailbox with the message's `msg_id` (or, without one, all of
  its `[message]` fields): the same message in two mailboxes is two records, and a message
  the owner listened to (moved from INBOX to Old, renumbered) is still one. The folder is not
  part of it.
- `call_recording`: the SHA-256 of the audio file with the call it records (start, parties,
  direction, uniqueid, conference room), whatever the file's name or format. The audio alone
  is not enough: a platform writes the same bytes for different calls (a 44-byte WAV header
  for every call that was never answered), and each of those calls is a record. A start
  taken from the file's modification time (`time_from: mtime`) is left out: a copy of the
  file (a restore, an rsync without -t) is the same recording.
- `phone_number` (contacts): the whole parsed contact (the first rule's key, unchanged).
- `ip_address`, `callback_list`: the whole parsed entry (a log event, a list entry), as CDRs.
- `fax`, `passport_photo`, `signalling_audio`: the SHA-256 of the file (pages, document
  image, capture) with the whole parsed payload but for `file` (the file's name as found:
  a copy or a rename is the same record) and, when it was taken from the file's modification
  time (`time_from: mtime`), `start` (a restored or re-copied file is the same record).

The rule is a pure function of what a record stores (its payload, and its media's SHA-256),
so `dpa init` can re-key records stored under an older rule (`records.identity` 1, keyed by
uniqueid or msg_id; 2, CDR times as UTC instants) from their payloads. The ingest engine turns the key into the record's
`source_key` with the blind-index key, per customer and category.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson

__all__ = ["CDR_TIMES", "IDENTITY", "canonical", "cdr_key", "source_key"]

# What names the call a recording records (file name, format and the like do not).
_RECORDED_CALL = ("start", "caller", "callee", "direction", "uniqueid", "room")

# Entries known by their whole content; records whose file is the record (plus what it says).
_CONTENT = frozenset({"ip_address", "callback_list"})
_FILE_AND_CONTENT = frozenset({"fax", "passport_photo", "signalling_audio"})

# records.identity of keys made by this module (1: uniqueid / msg_id, migration 0007; 2: CDR
# times as UTC instants; 3: CDR times as written).
IDENTITY = 3

# A CDR's times: wall-clock text in the key, UTC ISO 8601 text in a stored payload.
CDR_TIMES = ("start", "answer", "end")


def canonical(value: Any) -> bytes:
    """One spelling of a JSON value: sorted keys, no spaces, text as written (UTF-8).

    The bytes of `json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))`
    (the first rule's spelling of contacts, kept), made by orjson: ingest spells every record."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        # Length-prefixed, so no two different part lists hash alike.
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


def cdr_key(written: Mapping[str, Any]) -> str:
    """The identity of a call as a parser read it: every field, times (`CDR_TIMES`) as the
    `YYYY-MM-DD HH:MM:SS` text the file wrote (None when empty), no `tz`."""
    return _digest(b"cdr", canonical(dict(written)))


def source_key(
    category: str,
    payload: Mapping[str, Any],
    media_sha256: str | None = None,
    *,
    zone: str | None = None,
) -> str:
    """The identity of a stored record of `category` with this payload (and file's SHA-256).

    Two records with the same key are the same record; a key is 64 hex digits. A CDR's
    times are read back in its payload's `tz`, else in `zone`, else kept as UTC instants."""
    if category == "phone_number":
        # The first rule already keyed contacts by content, spelled so: kept, so no stored
        # contact needs re-keying.
        return hashlib.sha256(canonical(dict(payload))).hexdigest()
    if category == "cdr":
        return cdr_key(_as_written(payload, zone))
    if category == "voicemail":
        message = payload.get("message")
        msg_id = str(message.get("msg_id", "")).strip() if isinstance(message, Mapping) else ""
        place = [str(payload.get(k, "")) for k in ("context", "mailbox")]
        what = msg_id.encode() if msg_id else canonical(message)
        return _digest(category.encode(), *(p.encode() for p in place), what)
    if category == "call_recording":
        if media_sha256 is None:
            raise ValueError("a call recording's identity is its audio's SHA-256")
        call = {name: payload.get(name) for name in _RECORDED_CALL}
        if payload.get("time_from") == "mtime":
            call["start"] = None  # a file's modification time is the copy's, not the call's
        return _digest(category.encode(), media_sha256.encode(), canonical(call))
    if category in _CONTENT:
        return _digest(category.encode(), canonical(dict(payload)))
    if category in _FILE_AND_CONTENT:
        if media_sha256 is None:
            raise ValueError(f"a {category} record's identity includes its file's SHA-256")
        described = {name: value for name, value in payload.items() if name != "file"}
        if payload.get("time_from") == "mtime":
            described["start"] = None  # the copy's modification time, not the document's
        return _digest(category.encode(), media_sha256.encode(), canonical(described))
    raise ValueError(f"no identity rule for category {category!r}")


def _as_written(payload: Mapping[str, Any], zone: str | None) -> dict[str, Any]:
    """A stored CDR's payload as its parser read it: `tz` dropped, times back to wall text."""
    written = {name: value for name, value in payload.items() if name != "tz"}
    name = payload.get("tz") or zone
    if not isinstance(name, str):
        return written
    tz = ZoneInfo(name)
    for moment in CDR_TIMES:
        value = written.get(moment)
        if isinstance(value, str):
            written[moment] = (
                datetime.fromisoformat(value).astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
            )
    return written
