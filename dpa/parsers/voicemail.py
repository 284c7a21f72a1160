"""An Asterisk app_voicemail spool (`/var/spool/asterisk/voicemail`).

Layout: `<context>/<mailbox>/<folder>/msgNNNN.txt`, folder one of INBOX, Old, Work, Family,
Friends, Urgent (or any other name). Each `msgNNNN.txt` is an INI file whose `[message]`
section holds origmailbox, context, macrocontext, exten, rdnis, priority, callerchan,
callerid, origdate, origtime (Unix seconds), category, msg_id, flag and duration. An IMAP
storage spool holds the same files (app_voicemail's `imap_retrieve_file` writes a local
`msgNNNN.txt` with callerid, context, origtime, duration, category, flag and msg_id beside
the audio it fetched), and reads the same.

**Audio.** app_voicemail records a message once per format of `format=` in voicemail.conf
(`format=wav49|gsm|wav` writes msgNNNN.WAV, msgNNNN.gsm and msgNNNN.wav; `wav49` is written
with the extension `WAV`). Every file `msgNNNN.<ext>` (and a forwarded message's
`msgNNNNintro.<ext>`) beside the `.txt` is part of that one message: the record lists all of
them under `media_files` (file, format, SHA-256) and its `media` is the preferred one, in
the order of `AUDIO_FORMATS` (wav, WAV, gsm, ...; an extension not listed comes after those,
an intro last). A message without any audio file, or an audio file without its `.txt`, is
refused naming the file.

**Greetings.** `unavail.<ext>`, `busy.<ext>`, `greet.<ext>` (the recorded name) and
`temp.<ext>` in a mailbox folder are the mailbox owner's voice, personal data like a message:
each greeting (all its formats) is one `voicemail` record with `kind: "greeting"`, folder
"", collected at the preferred file's modification time (within dpa's calendar). Its
identity includes the audio's SHA-256, so a greeting recorded again is a new record and the
old one keeps its own retention.

**Where.** `root` may be the spool root, a context, a mailbox or a folder, absolute or
relative (`cd .../voicemail/default/1001 && dpa ingest voicemail INBOX`): it is resolved
first, so context, mailbox and folder are read from the real directory names. Errors name
files by the path given plus their place under it.

`origtime` must fall within `dpa.periods.EARLIEST` and `LATEST`, `duration` be at most
`dpa.parsers.base.MAX_SECONDS`; a folder without any message or greeting is refused.
Message files are decoded as UTF-8, undecodable bytes becoming U+FFFD (Asterisk writes the
caller name as it received it).

Identity (`dpa.identity`): spool context, mailbox and folder with the message's `msg_id`, so
a message left in two mailboxes (`VoiceMail(1234&1235)`) or forwarded is two records.
"""

from __future__ import annotations

import configparser
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dpa import identity
from dpa.errors import FileLineError, InputError
from dpa.parsers.base import (
    ParsedRecord,
    callerid_number,
    epoch_instant,
    is_text,
    modified_at,
    sha256_file,
    whole_seconds,
)
from dpa.periods import EARLIEST, LATEST

__all__ = ["AUDIO_FORMATS", "GREETINGS", "parse_voicemail_spool"]

# Extension -> Asterisk format name, in the order a record's `media` is chosen. Extensions
# are compared as written: `wav` (format wav) and `WAV` (format wav49, GSM in a WAV) differ.
# From Asterisk's format modules (formats/format_*.c, each format's `exts`).
AUDIO_FORMATS: dict[str, str] = {
    "wav": "wav",
    "WAV": "wav49",
    "wav49": "wav49",
    "wav16": "wav16",
    "gsm": "gsm",
    "mp3": "mp3",
    "ogg": "ogg_vorbis",
    "spx": "ogg_speex",
    "ulaw": "ulaw",
    "ulw": "ulaw",
    "ul": "ulaw",
    "mu": "ulaw",
    "pcm": "ulaw",
    "alaw": "alaw",
    "alw": "alaw",
    "al": "alaw",
    "g722": "g722",
    "g729": "g729",
    "g723": "g723_1",
    "g723sf": "g723_1",
    "g726-16": "g726",
    "g726-24": "g726",
    "g726-32": "g726",
    "g726-40": "g726",
    "ilbc": "ilbc",
    "siren7": "siren7",
    "siren14": "siren14",
    "vox": "adpcm",
    "au": "au",
    "sln": "slin",
    "raw": "slin",
    "sln12": "slin12",
    "sln16": "slin16",
    "sln24": "slin24",
    "sln32": "slin32",
    "sln44": "slin44",
    "sln48": "slin48",
    "sln96": "slin96",
    "sln192": "slin192",
}
_CALENDAR = f"{EARLIEST} to {LATEST}"
_RANK = {ext: rank for rank, ext in enumerate(AUDIO_FORMATS)}
GREETINGS = ("unavail", "busy", "greet", "temp")
_MESSAGE = re.compile(r"(?P<stem>msg\d{4})(?P<intro>intro)?\.(?P<ext>[^.]+)")
_GREETING = re.compile(rf"(?P<stem>{'|'.join(GREETINGS)})\.(?P<ext>[^.]+)")


def parse_voicemail_spool(root: Path) -> Iterator[ParsedRecord]:
    """Yield one `voicemail` record per message and per greeting under `root`.

    Messages come first, in sorted path order, then greetings."""
    base = root.resolve()
    files = sorted(p for p in ([base] if base.is_file() else base.rglob("*")) if p.is_file())
    messages: dict[Path, list[Path]] = {}  # message file stem path -> its audio files
    texts: list[Path] = []
    greetings: dict[Path, list[Path]] = {}
    for path in files:
        if _is_message_text(path):
            texts.append(path)
            messages.setdefault(path.with_suffix(""), [])
            continue
        match = _MESSAGE.fullmatch(path.name)
        if match:
            messages.setdefault(path.parent / match["stem"], []).append(path)
            continue
        match = _GREETING.fullmatch(path.name)
        if match and path.parent.name != "tmp":
            greetings.setdefault(path.parent / match["stem"], []).append(path)
    known = set(texts)
    for stem, audio in messages.items():
        if stem.with_suffix(".txt") not in known:
            raise FileLineError(
                _shown(root, base, audio[0]), 1, "an audio file without its message (msgNNNN.txt)"
            )
    if not texts and not greetings:
        raise InputError(f"{root}: no voicemail messages (msgNNNN.txt) in this folder")
    for txt in texts:
        yield _message(_shown(root, base, txt), txt, messages[txt.with_suffix("")])
    for stem, audio in greetings.items():
        yield _greeting(root, base, stem, audio)


def _is_message_text(path: Path) -> bool:
    match = _MESSAGE.fullmatch(path.name)
    return match is not None and match["ext"] == "txt" and not match["intro"]


def _shown(root: Path, base: Path, path: Path) -> str:
    """A file as errors name it: the path given, then the file's place under it."""
    if path == base:
        return str(root)
    return str(root / path.relative_to(base))


def _names(name: str, *parts: str) -> tuple[str, ...]:
    """Folder names of the spool (context, mailbox, folder), refused unless UTF-8."""
    if not all(map(is_text, parts)):
        # Bytes that are not UTF-8 reach Python as lone surrogates, which no payload can hold.
        raise FileLineError(name, 1, "a folder name of the spool is not UTF-8")
    return parts


def _files(name: str, audio: list[Path]) -> list[dict[str, str]]:
    """The message's audio files, preferred first: file, format and SHA-256 of each."""

    def rank(path: Path) -> tuple[int, int, str]:
        stem, ext = path.name.split(".", 1)
        return (stem.endswith("intro"), _RANK.get(ext, len(_RANK)), path.name)

    listed = []
    for path in sorted(audio, key=rank):
        if not is_text(path.name):
            raise FileLineError(name, 1, "an audio file name is not UTF-8")
        ext = path.name.split(".", 1)[1]
        listed.append(
            {"file": path.name, "format": AUDIO_FORMATS.get(ext, ext), "sha256": sha256_file(path)}
        )
    return listed


def _message(name: str, txt: Path, audio: list[Path]) -> ParsedRecord:
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
    if not audio:
        raise FileLineError(
            name, 1, "no audio file beside the message (msgNNNN.wav, .WAV, .gsm, ...)"
        )
    files = _files(name, audio)
    place = txt.parent
    context, mailbox, folder = _names(name, place.parent.parent.name, place.parent.name, place.name)
    payload: dict[str, Any] = {
        "kind": "message",
        "context": context,
        "mailbox": mailbox,
        "folder": folder,
        # The message's own `context` is the caller's dialplan context, not the spool
        # context above, so the [message] fields are kept together under their own key.
        "message": fields,
        "audio_file": files[0]["file"],
        "audio_format": files[0]["file"].split(".", 1)[1].lower(),
        "media_files": files,
    }
    number = callerid_number(message.get("callerid", ""))
    return ParsedRecord(
        line=1,
        source_key=identity.source_key("voicemail", payload, files[0]["sha256"]),
        category="voicemail",
        collected_at=collected_at,
        payload=payload,
        phones=(number,) if number else (),
        media=txt.parent / files[0]["file"],
        extra_media=tuple(txt.parent / f["file"] for f in files[1:]),
    )


def _greeting(root: Path, base: Path, stem: Path, audio: list[Path]) -> ParsedRecord:
    name = _shown(root, base, audio[0])
    files = _files(name, audio)
    preferred = stem.parent / files[0]["file"]
    try:
        collected_at = modified_at(preferred)
    except InputError:
        raise FileLineError(
            name, 1, f"its modification time is outside the dates dpa computes with ({_CALENDAR})"
        ) from None
    context, mailbox = _names(name, stem.parent.parent.name, stem.parent.name)
    payload: dict[str, Any] = {
        "kind": "greeting",
        "context": context,
        "mailbox": mailbox,
        "folder": "",
        # What makes the greeting itself: its name and its recordings' content.
        "message": {"greeting": stem.name, "sha256": {f["file"]: f["sha256"] for f in files}},
        "audio_file": files[0]["file"],
        "audio_format": files[0]["file"].split(".", 1)[1].lower(),
        "media_files": files,
    }
    return ParsedRecord(
        line=1,
        source_key=identity.source_key("voicemail", payload, files[0]["sha256"]),
        category="voicemail",
        collected_at=collected_at,
        payload=payload,
        phones=(),
        media=preferred,
        extra_media=tuple(stem.parent / f["file"] for f in files[1:]),
    )


def _key_line(text: str, key: str) -> int:
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*[=:]", re.IGNORECASE)
    for number, line in enumerate(text.splitlines(), start=1):
        if pattern.match(line):
            return number
    return 1
