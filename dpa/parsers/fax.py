"""Received faxes: Asterisk ReceiveFAX TIFFs, HylaFAX's recvq with its xferfaxlog, mailed PDFs.

One fax is one `fax` record whose media is the received file, stored as it is (TIFF or PDF;
its first bytes must say so: `II*\\0` or `MM\\0*` for a TIFF, `%PDF-` for a PDF, whatever the
extension claims). Two readers:

`parse_fax_files(paths, tz)`: Asterisk and fax-to-mail gateways. Fax files are those whose
extension (any case) is `.tif`, `.tiff` or `.pdf`; folders are searched recursively, in
sorted order. Metadata comes from, in this order:

1. a sidecar `<same stem>.json` beside the file, as a dialplan writes it from the channel
   variables after `ReceiveFAX` (or a fax-to-mail gateway beside its PDF): an object with
   `start` (ISO 8601; without an offset it is local time in `tz`) and optionally `caller`,
   `callee`, `station_id` (`${REMOTESTATIONID}`), `status` (`${FAXSTATUS}`), `call_id`
   (`${UNIQUEID}`) as strings, and `pages` (`${FAXPAGES}`) and `duration` (seconds) as whole
   numbers;
2. the name FreePBX's fax module gives the file (`fax` module, `functions.inc.php`:
   `ReceiveFAX(${ASTSPOOLDIR}/fax/${UNIQUEID}.tif)`): `<uniqueid>.tif`, Asterisk's
   `<epoch>.<sequence>` (or `<systemname>-<epoch>.<sequence>`): the time is the uniqueid's
   epoch (UTC), the uniqueid is kept as `call_id`; the parties are not in the name;
3. with `collected_at="mtime"`, any other fax file: its modification time, no parties.

A fax file with none of these is refused. Errors name a fax by its folder and its position
among that folder's sorted fax files, never by its name (a dialplan may put the caller's
number in it).

`parse_hylafax(spool, tz)`: a HylaFAX spool (`/var/spool/hylafax`). Every `RECV` line of
`etc/xferfaxlog` (else `log/xferfaxlog`, or the `log` given) is one fax: its `qfile` field
(`recvq/faxNNNNNNNNN.tif`) names the received TIFF under `recvq/`. xferfaxlog(5F) lines are
tab-separated; HylaFAX+ writes (faxd/FaxAcctInfo.c++; GOfax.IP the same 19 fields, with
CIDName and CIDNumber quoted twice)::

    date RECV commid modem qfile "" fax "local-number" "TSI" params pages jobtime conntime
         "reason" "CIDName" "CIDNumber" "callid" "" "dcs" [jobinfo]

`date` is `MM/DD/YY HH:MM` in the server's local time (`tz`); times are `[H:]MM:SS`. The
caller is CIDNumber, the 16th field (HylaFAX 4.2 and HylaFAX+; mainline HylaFAX 6 documents
CallID1 and CallID2 there, in the order its CallIDPattern settings give; lines of HylaFAX
before 4.2 have none), the callee the local number, `station_id` the TSI, `status` the reason (`SUCCESS` when HylaFAX left it
empty: the session had no problem), `duration` the connection time in seconds and `call_id`
the commid. Other lines (`SEND`, `CALL`, `POLL`, `PAGE`, `UNSENT`, `SUBMIT`) are not faxes
received and are passed over. A `RECV` line is refused (or handed to `on_bad_line`: the
`--quarantine` mode) when it is malformed, names no received file (HylaFAX before 6.0 logs
none), or names a file that is not in `recvq/` (faxcron removes received faxes after some
days: `skip_missing=True` passes such lines over and lists them in `scan.missing`). A log
with no RECV line, or none whose fax is still in recvq, is refused naming the log. A recvq
file no `RECV` line names (a fax still being received, or one logged in an older, rotated
log) is not read; `scan.unlogged` counts them. Lines are read as UTF-8, a line that is not
as Latin-1 (caller names come from the telephone line as they are).

Payload: `start` (ISO 8601 UTC), `direction` ("in"), `caller`, `callee`, `pages`,
`station_id`, `status`, `duration`, `call_id`, `time_from` (`sidecar`, `uniqueid`, `mtime`
or `xferfaxlog`), `format` (the extension, lower case), `sha256` and `file` (the file as
found, relative to the argument). Phones: the caller and the callee as written. Identity
(`dpa.identity`): the file's SHA-256 with the whole payload but for `file`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from dpa import identity
from dpa.errors import FileLineError, InputError
from dpa.parsers.base import (
    MAX_SECONDS,
    BadLine,
    ParsedRecord,
    epoch_instant,
    is_text,
    local_to_utc,
    modified_at,
    sha256_file,
    sidecar_object,
    sidecar_start,
)
from dpa.periods import EARLIEST, LATEST

__all__ = ["FAX_SUFFIXES", "HylafaxScan", "parse_fax_files", "parse_hylafax"]

# Extension (lower case) -> the kind of file its first bytes must show.
FAX_SUFFIXES = {".tif": "tiff", ".tiff": "tiff", ".pdf": "pdf"}
_MAGIC = {"tiff": (b"II*\x00", b"MM\x00*"), "pdf": (b"%PDF-",)}
_NOT_KIND = {
    "tiff": "not a TIFF file (its first bytes are not II*\\0 or MM\\0*)",
    "pdf": "not a PDF file (it does not start with %PDF-)",
}
_CALENDAR = f"{EARLIEST} to {LATEST}"
# Asterisk's ${UNIQUEID}: <epoch>.<sequence>, after `<systemname>-` when asterisk.conf sets one.
_UNIQUEID = re.compile(r"(?:.+-)?(?P<epoch>\d{9,10})\.\d+")
_STRINGS = ("caller", "callee", "station_id", "status", "call_id")
_MAX_PAGES = 1_000_000

# xferfaxlog(5F): the kinds of line HylaFAX, HylaFAX+ and GOfax.IP write.
_KINDS = frozenset({"SEND", "RECV", "CALL", "POLL", "PAGE", "UNSENT", "SUBMIT"})
_RECV_FIELDS = 14  # up to the reason: every version since HylaFAX 4.0
_LOG_DATE = "%m/%d/%y %H:%M"
_QFILE = re.compile(r"(?:recvq/)?(?P<name>[A-Za-z0-9_][A-Za-z0-9_.\-]*\.tiff?)")
_TIME = re.compile(r"(?:(?P<h>\d{1,6}):)?(?P<m>\d{1,2}):(?P<s>\d{2})")
_LOGS = ("etc/xferfaxlog", "log/xferfaxlog")


@dataclass
class HylafaxScan:
    """What `parse_hylafax` passed over: filled as it reads, complete when it has finished.

    `missing`: the log lines (numbers) whose fax file is no longer in recvq (with
    `skip_missing`); `unlogged`: how many recvq TIFF files no RECV line names."""

    missing: list[int] = field(default_factory=list)
    unlogged: int = 0


def parse_fax_files(
    paths: Sequence[Path], tz: ZoneInfo, *, collected_at: Literal["mtime"] | None = None
) -> Iterator[ParsedRecord]:
    """Yield one `fax` record per TIFF or PDF file in `paths` (files or folders).

    Metadata from a `.json` sidecar, else a FreePBX `<uniqueid>.tif` name, else (with
    `collected_at="mtime"`) the file's modification time; a file with none is refused."""
    position = 0
    for path in paths:
        if not path.is_dir():
            position += 1
            yield _file_record(
                path, path.name, tz, f"{path.parent}/(fax 1{path.suffix})", position, collected_at
            )
            continue
        found = [
            p for p in sorted(path.rglob("*")) if p.is_file() and p.suffix.lower() in FAX_SUFFIXES
        ]
        if not found:
            raise InputError(f"{path}: no faxes (.pdf, .tif, .tiff) in this folder")
        in_folder: dict[Path, int] = {}
        for fax in found:
            place = in_folder[fax.parent] = in_folder.get(fax.parent, 0) + 1
            folder = path / fax.parent.relative_to(path)
            position += 1
            yield _file_record(
                fax,
                str(fax.relative_to(path)),
                tz,
                f"{folder}/(fax {place}{fax.suffix})",
                position,
                collected_at,
            )


def parse_hylafax(
    spool: Path,
    tz: ZoneInfo,
    *,
    log: Path | None = None,
    on_bad_line: BadLine | None = None,
    skip_missing: bool = False,
    scan: HylafaxScan | None = None,
) -> Iterator[ParsedRecord]:
    """Yield one `fax` record per RECV line of a HylaFAX spool's xferfaxlog, with its recvq TIFF.

    `log`: the xferfaxlog to read (default: `etc/xferfaxlog`, else `log/xferfaxlog`, under
    `spool`). `on_bad_line`: the quarantine collector (else the first bad line refuses the
    log). `skip_missing`: pass over RECV lines whose file faxcron has removed. `scan` is
    filled with what was passed over."""
    if not spool.is_dir():
        raise InputError(f"{spool}: not a folder (give the HylaFAX spool, e.g. /var/spool/hylafax)")
    if log is None:
        log = next((spool / p for p in _LOGS if (spool / p).is_file()), None)
        if log is None:
            raise InputError(f"{spool}: no {' or '.join(_LOGS)} in this HylaFAX spool")
    elif not log.is_file():
        raise InputError(f"{log}: no such file")
    recvq = spool / "recvq"
    name = str(log)
    scan = HylafaxScan() if scan is None else scan
    named: set[str] = set()
    faxes = set_aside = 0
    with log.open("rb") as stream:
        for number, raw_bytes in enumerate(stream, start=1):
            raw = _text(raw_bytes)
            try:
                record = _recv_line(name, number, raw, recvq, tz, named, skip_missing, scan)
            except FileLineError as exc:
                if on_bad_line is None:
                    raise
                on_bad_line(exc, raw)
                set_aside += 1
                continue
            if record is not None:
                faxes += 1
                yield record
    if not faxes and not set_aside:
        gone = (
            f" whose fax is still in recvq ({len(scan.missing)} passed over)"
            if scan.missing
            else ""
        )
        raise InputError(f"{name}: no RECV line{gone}: no fax received to store")
    if recvq.is_dir():
        scan.unlogged = sum(
            1
            for p in recvq.iterdir()
            if p.is_file() and p.suffix.lower() in (".tif", ".tiff") and p.name not in named
        )


def _text(raw: bytes) -> str:
    """A log line as text: UTF-8, else Latin-1 (which reads any byte)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _recv_line(
    name: str,
    line: int,
    raw: str,
    recvq: Path,
    tz: ZoneInfo,
    named: set[str],
    skip_missing: bool,
    scan: HylafaxScan,
) -> ParsedRecord | None:
    """The record of one xferfaxlog line, None for a line that is no fax received."""
    text = raw.rstrip("\r\n")
    if not text.strip():
        return None
    fields = text.split("\t")
    kind = fields[1] if len(fields) > 1 else ""
    if kind not in _KINDS:
        raise FileLineError(
            name,
            line,
            "not an xferfaxlog line (the second tab-separated field is not one of "
            f"{', '.join(sorted(_KINDS))})",
        )
    if kind != "RECV":
        return None
    if len(fields) < _RECV_FIELDS:
        raise FileLineError(
            name,
            line,
            f"a RECV line has at least {_RECV_FIELDS} tab-separated fields; this one has "
            f"{len(fields)}",
        )
    try:
        naive = datetime.strptime(fields[0], _LOG_DATE)
    except ValueError:
        raise FileLineError(name, line, "the date is not MM/DD/YY HH:MM") from None
    start = local_to_utc(naive, tz)
    qfile = fields[4].strip()
    if not qfile:
        raise FileLineError(
            name, line, "the line names no received file (HylaFAX before 6.0 logs none)"
        )
    match = _QFILE.fullmatch(qfile)
    if match is None:
        raise FileLineError(name, line, "the received file is not a TIFF under recvq/")
    file_name = match["name"]
    pages = fields[10].strip()
    if not (pages.isascii() and pages.isdigit()) or len(pages) > 7 or int(pages) > _MAX_PAGES:
        raise FileLineError(name, line, "the page count is not a whole number of pages")
    duration = _seconds(name, line, fields[12], "the connection time")
    _seconds(name, line, fields[11], "the session time")
    named.add(file_name)
    tiff = recvq / file_name
    if not tiff.is_file():
        if skip_missing:
            scan.missing.append(line)
            return None
        raise FileLineError(
            name,
            line,
            f"recvq/{file_name} is not in the spool (faxcron removes received faxes after "
            "some days; --skip-missing passes such lines over)",
        )
    _check_kind(tiff, "tiff", name, line, f"recvq/{file_name}: ")
    reason = _unquote(fields[13]).strip()
    caller = _unquote(_unquote(fields[15])).strip() if len(fields) > 15 else ""
    return _record(
        line,
        tiff,
        f"recvq/{file_name}",
        {
            "start": start,
            "caller": caller or None,
            "callee": _unquote(fields[7]).strip() or None,
            "pages": int(pages),
            "station_id": _unquote(fields[8]).strip() or None,
            "status": reason or "SUCCESS",
            "duration": duration,
            "call_id": fields[2].strip() or None,
            "time_from": "xferfaxlog",
        },
    )


def _unquote(value: str) -> str:
    """A field as HylaFAX quotes it (`"..."`, nothing escaped inside), without its quotes."""
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _seconds(name: str, line: int, text: str, what: str) -> int:
    match = _TIME.fullmatch(text.strip())
    if match is None:
        raise FileLineError(name, line, f"{what} is not [H:]MM:SS")
    hours = int(match["h"] or "0")
    minutes, seconds = int(match["m"]), int(match["s"])
    if seconds > 59 or (match["h"] is not None and minutes > 59):
        raise FileLineError(name, line, f"{what} is not [H:]MM:SS")
    return hours * 3600 + minutes * 60 + seconds


def _file_record(
    path: Path,
    shown: str,
    tz: ZoneInfo,
    label: str,
    position: int,
    collected_at: Literal["mtime"] | None,
) -> ParsedRecord:
    suffix = path.suffix.lower()
    if suffix not in FAX_SUFFIXES:
        raise FileLineError(label, 1, "not a fax file (.pdf, .tif, .tiff)")
    if not path.is_file():
        raise FileLineError(label, 1, "no such file")
    if not is_text(path.name):
        raise FileLineError(label, 1, "the file name is not UTF-8")
    _check_kind(path, FAX_SUFFIXES[suffix], label, 1)
    sidecar = path.with_suffix(".json")
    if sidecar.is_file():
        meta = _from_sidecar(sidecar, tz, label.removesuffix(f"{path.suffix})") + ".json)")
    else:
        meta = _from_name(path, label, collected_at)
    return _record(position, path, shown, meta)


def _record(line: int, path: Path, shown: str, meta: dict[str, Any]) -> ParsedRecord:
    start: datetime = meta["start"]
    sha256 = sha256_file(path)
    caller, callee = meta.get("caller"), meta.get("callee")
    payload: dict[str, Any] = {
        "start": start.isoformat(),
        "direction": "in",
        "caller": caller,
        "callee": callee,
        "pages": meta.get("pages"),
        "station_id": meta.get("station_id"),
        "status": meta.get("status"),
        "duration": meta.get("duration"),
        "call_id": meta.get("call_id"),
        "time_from": meta["time_from"],
        "format": path.suffix.lstrip(".").lower(),
        "sha256": sha256,
        "file": shown,
    }
    return ParsedRecord(
        line=line,
        source_key=identity.source_key("fax", payload, sha256),
        category="fax",
        collected_at=start,
        payload=payload,
        phones=tuple(p for p in (caller, callee) if p),
        media=path,
    )


def _check_kind(path: Path, kind: str, name: str, line: int, prefix: str = "") -> None:
    """Refuse a file whose first bytes are not those of `kind` (tiff or pdf)."""
    with path.open("rb") as f:
        head = f.read(5)
    if not any(head.startswith(magic) for magic in _MAGIC[kind]):
        raise FileLineError(name, line, prefix + _NOT_KIND[kind])


def _from_name(path: Path, label: str, collected_at: Literal["mtime"] | None) -> dict[str, Any]:
    stem = path.name[: -len(path.suffix)]
    if match := _UNIQUEID.fullmatch(stem):
        start = epoch_instant(label, 1, match["epoch"], "the uniqueid's time in the name")
        return {"start": start, "time_from": "uniqueid", "call_id": stem}
    if collected_at == "mtime":
        try:
            return {"start": modified_at(path), "time_from": "mtime"}
        except InputError:
            # modified_at names the file, whose name may hold numbers: said again without it.
            raise FileLineError(
                label,
                1,
                f"its modification time is outside the dates dpa computes with ({_CALENDAR})",
            ) from None
    raise FileLineError(
        label,
        1,
        "no .json sidecar and no time in the name (accepted: FreePBX's UNIQUEID.tif); "
        "--collected-at mtime takes the file's modification time",
    )


def _from_sidecar(sidecar: Path, tz: ZoneInfo, name: str) -> dict[str, Any]:
    data = sidecar_object(sidecar, name)
    start = sidecar_start(data, tz, name)
    meta: dict[str, Any] = {"start": start, "time_from": "sidecar"}
    for key in _STRINGS:
        value = data.get(key)
        if value is not None and not isinstance(value, str):
            raise FileLineError(name, 1, f"'{key}' is not a string")
        meta[key] = None if value is None else (value.strip() or None)
    for key, most, unit in (("pages", _MAX_PAGES, "pages"), ("duration", MAX_SECONDS, "seconds")):
        value = data.get(key)
        if value is None:
            meta[key] = None
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise FileLineError(name, 1, f"'{key}' is not a whole number of {unit}")
        if value > most:
            raise FileLineError(name, 1, f"'{key}' is more than {most} {unit}")
        meta[key] = value
    return meta
