"""An Asterisk app_voicemail spool (`/var/spool/asterisk/voicemail`).

Layout: `<context>/<mailbox>/<folder>/msgNNNN.txt`, folder one of INBOX, Old, Work, Family,
Friends, Urgent (or any other name). Each `msgNNNN.txt` is an INI file whose `[message]`
section holds origmailbox, context, macrocontext, exten, rdnis, priority, callerchan,
callerid, origdate, origtime (Unix seconds), category, msg_id, flag and duration; the audio
sits beside it as `msgNNNN.wav`, `msgNNNN.WAV` or `msgNNNN.gsm` (the first that exists is
taken). `root` may be the spool root, a context or a mailbox directory: every
`msg[0-9][0-9][0-9][0-9].txt` below it is read, in sorted order.

`origtime` must fall within `dpa.periods.EARLIEST` and `LATEST`, `duration` be at most
`dpa.parsers.base.MAX_SECONDS`; a folder without any message file is refused.

Message files are decoded as UTF-8, undecodable bytes becoming U+FFFD (Asterisk writes the
caller name as it received it).
"""

from __future__ import annotations

import configparser
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dpa.errors import FileLineError, InputError
from dpa.parsers.base import (
    ParsedRecord,
    callerid_number,
    epoch_instant,
    sha256_hex,
    whole_seconds,
)

__all__ = ["AUDIO_SUFFIXES", "parse_voicemail_spool"]

AUDIO_SUFFIXES = (".wav", ".WAV", ".gsm")
_MESSAGE_GLOB = "msg[0-9][0-9][0-9][0-9].txt"


def parse_voicemail_spool(root: Path) -> Iterator[ParsedRecord]:
    """Yield one `voicemail` record per message file under `root`, with its audio as media."""
    messages = sorted(root.rglob(_MESSAGE_GLOB))
    if not messages:
        raise InputError(f"{root}: no voicemail messages (msgNNNN.txt) in this folder")
    for txt in messages:
        yield _record(txt)


def _record(txt: Path) -> ParsedRecord:
    name = str(txt)
    raw = txt.read_bytes()
    text = raw.decode("utf-8", errors="replace")
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(text, source=name)
    except configparser.MissingSectionHeaderError as e:
        raise FileLineError(name, e.lineno, "text before the first [section] header") from None
    except configparser.ParsingError as e:
        line = e.errors[0][0] if e.errors else 1
        raise FileLineError(
            name, line, "line is neither a [section] header nor key=value"
        ) from None
    except configparser.Error:
        raise FileLineError(name, 1, "not an INI file of [sections] and key=value lines") from None
    if not parser.has_section("message"):
        raise FileLineError(name, 1, "no [message] section")
    message = dict(parser.items("message"))

    origtime = message.get("origtime", "").strip()
    if not origtime:
        raise FileLineError(name, 1, "[message] has no origtime")
    collected_at = epoch_instant(name, _key_line(text, "origtime"), origtime, "origtime")

    fields: dict[str, Any] = dict(message)
    duration = message.get("duration", "").strip()
    fields["duration"] = (
        whole_seconds(name, _key_line(text, "duration"), duration, "duration") if duration else None
    )

    audio = _audio(txt)
    if audio is None:
        suffixes = ", ".join(AUDIO_SUFFIXES)
        raise FileLineError(name, 1, f"no audio file beside the message ({suffixes})")

    folder = txt.parent
    try:
        f"{folder.parent.parent.name}/{folder.parent.name}/{folder.name}".encode()
    except UnicodeEncodeError:
        # Bytes that are not UTF-8 reach Python as lone surrogates, which no payload can hold.
        raise FileLineError(name, 1, "a folder name of the spool is not UTF-8") from None
    number = callerid_number(message.get("callerid", ""))
    return ParsedRecord(
        line=1,
        source_key=message.get("msg_id", "").strip() or sha256_hex(raw),
        category="voicemail",
        collected_at=collected_at,
        payload={
            "context": folder.parent.parent.name,
            "mailbox": folder.parent.name,
            "folder": folder.name,
            # The message's own `context` is the caller's dialplan context, not the spool
            # context above, so the [message] fields are kept together under their own key.
            "message": fields,
            "audio_file": audio.name,
            "audio_format": audio.suffix.lstrip(".").lower(),
        },
        phones=(number,) if number else (),
        media=audio,
    )


def _audio(txt: Path) -> Path | None:
    for suffix in AUDIO_SUFFIXES:
        candidate = txt.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    return None


def _key_line(text: str, key: str) -> int:
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*[=:]", re.IGNORECASE)
    for number, line in enumerate(text.splitlines(), start=1):
        if pattern.match(line):
            return number
    return 1
