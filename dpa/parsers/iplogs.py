"""IP addresses in the logs a provider's platform writes: one record per logged event.

Three kinds of log are read (`FORMATS`), each a text file of one event per line:

- `asterisk-security`: Asterisk's security event log (logger.conf `security => security`,
  `/var/log/asterisk/security`), lines such as ::

      [2015-05-24 08:42:16] SECURITY[4583] res_security_log.c: SecurityEvent="ChallengeResponseFailed",
      EventTV="2015-05-24T08:42:16.296+0300",Severity="Error",Service="PJSIP",EventVersion="1",
      AccountID="1001",SessionID="...",LocalAddress="IPV4/UDP/192.0.2.1/5060",
      RemoteAddress="IPV4/UDP/203.0.113.7/5060",Challenge="...",...

  (one line; newer Asterisk writes `SECURITY[73]: res_security_log.c:114
  security_event_stasis_cb: ` before the fields, syslog a host and tag). The time is EventTV
  (ISO 8601 with its offset, or Asterisk 1.8's `seconds-microseconds`), else the bracketed
  `YYYY-MM-DD HH:MM:SS` read in `tz`. Addresses are `IPV4|IPV6/[transport/]address/port`
  (Asterisk's ast_json_ipaddr: the transport only when known; an IPv6 address bare, a
  link-local one with its `%zone`, which is dropped; brackets are read too).
  Digest material (Challenge, Response, ExpectedResponse, ReceivedChallenge, ReceivedHash) is
  NOT kept: a digest response with its nonce lets anyone guess the password offline, and no
  access request needs it (Art. 5(1)(c)). Kept: event, severity, service, account, session,
  both addresses, and `detail` (ACLName, RequestType, RequestParams, AuthMethod, UsingPassword,
  Module, AttemptedTransport, ExpectedAddress when present).
  Asterisk writes the values unescaped, so a caller can put `",RemoteAddress="...` inside an
  AccountID or SessionID (fail2ban's tests hold such a line). A line in which a field appears
  twice is ambiguous and refused (or quarantined): dpa never guesses which address is real.
- `pjsip`: registrations in Asterisk's `messages` or `full` log: res_pjsip_registrar's
  `Added contact '<uri>' to AOR '<aor>' with expiration of N seconds`, `Removed contact
  '<uri>' from AOR '<aor>' due to <reason>` (request, expiration, remove existing, remove
  unavailable, registration failure, shutdown, system boot) and the debug line `Refreshed
  contact '<uri>' on AOR '<aor>' with new expiration of N seconds`; chan_sip's `Registered
  SIP '<peer>' at <address>:<port>` (and the older `at <address> port <port> expires <n>`).
  The address is the contact URI's host (Asterisk's rewrite_contact puts the packet's source
  there). The time is the line's `[...]` in `tz`: `YYYY-MM-DD HH:MM:SS` (dateformat `%F %T`)
  or Asterisk's default `Mon DD HH:MM:SS`, which has no year: then `year` gives the first
  line's year and a month earlier than the previous event's starts the next year.
- `clf`: web and API access logs in the Common or Combined Log Format (Apache's `common` and
  `combined`, nginx's default `combined`): `203.0.113.7 - user [10/Oct/2026:13:55:36 +0200]
  "GET /path?q HTTP/1.1" 200 2326 "referer" "agent"`, and nginx's `main` (combined plus
  "$http_x_forwarded_for": its IP addresses are kept as `forwarded_for` and indexed too: they
  name the client behind a proxy). Anything else after the line refuses it. The client must be an IP address
  (HostnameLookups off, as is Apache's default; nginx's $remote_addr always is). Kept: the
  method and the path WITHOUT its query string (query strings carry tokens, session ids and
  other people's numbers or addresses, and the path says what was asked for), the status,
  the size, the user and the user agent; the referer is not kept (another site's address).
  A request line that is no HTTP request (a scanner's TLS handshake on a plain port, `-`)
  is kept as an event with `request` null: the address still made it.

**One record per event.** A record is one line: a login attempt, a registration, a request.
An event is what the log holds and what a data subject's access request must show (when,
from which address, as which account, with what outcome). Aggregating per address and day
would invent a record the platform never wrote, and lose the account and the outcome. The
identity is the whole payload (`dpa.identity`), so the same log read twice stores nothing
twice.

**Lines that are not events.** A `messages` log holds many other lines, and a security log
may be a `full` log: lines that are not events of the chosen format are skipped and counted
(`LineCount.other`). A line that LOOKS like an event (it holds `SecurityEvent=`, `Added
contact '`, `Registered SIP '`...; in a CLF file every non-blank line) but does not read is a
`FileLineError` (or is quarantined with `on_bad_line`). A registration whose contact names a
host rather than an IP address (a WebRTC client's `*.invalid`), and chan_sip's `Unregistered
SIP`, hold no address: they are no IP-address record; they are counted
(`LineCount.no_address`), not stored. An address that is neither an IP address nor a host
name (`999.1.2.3`, `[zz::1]`) refuses the line. Reasons never quote the line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from dpa import identity
from dpa.errors import FileLineError, InputError
from dpa.identifiers import normalise_ip
from dpa.parsers.base import BadLine, ParsedRecord, check_day, local_to_utc
from dpa.periods import EARLIEST, LATEST

__all__ = ["FORMATS", "LineCount", "detect_format", "parse_ip_log"]

FORMATS = ("asterisk-security", "pjsip", "clf")
CATEGORY = "ip_address"

_SNIFF_LINES = 200
_MONTHS = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
        start=1,
    )
}


@dataclass(slots=True)
class LineCount:
    """What one file held, filled while it is read: counts only, no values.

    `read`: lines read; `events`: lines that are events of the format (stored, refused or
    quarantined); `no_address`: registration events with no IP address (not stored);
    `other`: lines that are no event of the format (blank lines, the rest of a
    `messages` log), skipped."""

    read: int = 0
    events: int = 0
    no_address: int = 0
    other: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counts as JSON."""
        return {
            "read": self.read,
            "events": self.events,
            "no_address": self.no_address,
            "other": self.other,
        }


# --- detection ---------------------------------------------------------------------------

_LOGGER_LINE = re.compile(r"^\[[^\]]{8,40}\]\s+[A-Z]+\s*\[\d+\]")


def detect_format(path: Path) -> str:
    """The format of a log file from its first lines: a `SecurityEvent=` line makes it a
    security log, a first line in the Common Log Format an access log, an Asterisk logger
    line (`[date] LEVEL[pid]`) a `messages`/`full` log; anything else is an InputError. A
    `full` log that also holds security events is read as a security log: give
    `--format pjsip` to read its registrations (each format is one run)."""
    lines: list[str] = []
    with path.open(encoding="utf-8", errors="replace", newline="") as f:
        for raw in f:
            text = raw.rstrip("\r\n")
            if text.strip():
                lines.append(text)
            if len(lines) >= _SNIFF_LINES:
                break
    if any("SecurityEvent=" in line for line in lines):
        return "asterisk-security"
    if lines and _CLF.match(lines[0]):
        return "clf"
    if any(_LOGGER_LINE.match(line.removeprefix("\ufeff")) for line in lines):
        return "pjsip"
    raise InputError(
        f"{path}: not a log dpa can tell (Asterisk security log, Asterisk messages/full log, "
        "Common or Combined Log Format): give --format"
    )


# --- the parser --------------------------------------------------------------------------


def parse_ip_log(
    path: Path,
    fmt: str,
    tz: ZoneInfo,
    *,
    year: int | None = None,
    count: LineCount | None = None,
    on_bad_line: BadLine | None = None,
    name: str | None = None,
) -> Iterator[ParsedRecord]:
    """The events of one log file of format `fmt` (one of `FORMATS`) as `ip_address` records.

    `tz`: the zone of times written without an offset (Asterisk's bracketed times); `year`:
    the year of the first line of a log whose dates have none (Asterisk's default
    dateformat), refused without it. `count` is filled with the file's line counts as it is
    read (see `LineCount`). A line that looks like an event but does not read raises
    FileLineError naming `name` (default: the path) and its line; with `on_bad_line` it is
    handed over instead and reading goes on. Bytes that are not UTF-8 become U+FFFD. A
    file with no event holding an address (and no line handed over) is refused naming it.
    """
    if fmt not in FORMATS:
        raise InputError(f"unknown IP log format {fmt!r}: one of {', '.join(FORMATS)}")
    if year is not None and not EARLIEST.year <= year <= LATEST.year:
        raise InputError(f"--year must lie within {EARLIEST.year} to {LATEST.year}")
    label = str(path) if name is None else name
    tally = LineCount() if count is None else count
    reader = _Reader(label, fmt, tz, year)
    found = set_aside = 0
    with path.open(encoding="utf-8", errors="replace", newline="") as f:
        for line, raw in enumerate(f, start=1):
            tally.read += 1
            text = raw.rstrip("\r\n")
            if line == 1:
                text = text.removeprefix("\ufeff")
            try:
                record = reader.read(line, text)
            except FileLineError as exc:
                tally.events += 1
                if on_bad_line is None:
                    raise
                on_bad_line(exc, raw)
                set_aside += 1
                continue
            if record is None:
                tally.other += 1
            elif record is _NO_ADDRESS:
                tally.events += 1
                tally.no_address += 1
            else:
                tally.events += 1
                found += 1
                assert isinstance(record, ParsedRecord)
                yield record
    if not found and not set_aside:
        raise InputError(
            f"{label}: no {fmt} event with an IP address in this file "
            f"({tally.read} line(s) read, {tally.no_address} event(s) without one)"
        )


_NO_ADDRESS = object()  # an event that holds no IP address (a contact named by host)


class _Reader:
    """Reads one file's lines in one format (keeps the year of year-less dates)."""

    def __init__(self, name: str, fmt: str, tz: ZoneInfo, year: int | None) -> None:
        self.name = name
        self.fmt = fmt
        self.tz = tz
        self.year = year
        self.last_month: int | None = None

    def read(self, line: int, text: str) -> ParsedRecord | object | None:
        """The line's record, `_NO_ADDRESS`, or None when it is no event of the format."""
        if self.fmt == "asterisk-security":
            return self._security(line, text)
        if self.fmt == "pjsip":
            return self._registration(line, text)
        return self._clf(line, text)

    def _fail(self, line: int, reason: str) -> FileLineError:
        return FileLineError(self.name, line, reason)

    def _record(
        self, line: int, at: datetime, payload: dict[str, Any], address: str, *more: str
    ) -> ParsedRecord:
        payload["at"] = at.isoformat()
        return ParsedRecord(
            line=line,
            source_key=identity.source_key(CATEGORY, payload),
            category=CATEGORY,
            collected_at=at,
            payload=payload,
            phones=(),
            addresses=tuple(dict.fromkeys((address, *more))),
        )

    # --- Asterisk security events --------------------------------------------------------

    def _security(self, line: int, text: str) -> ParsedRecord | None:
        start = text.find("SecurityEvent=")
        if start < 0:
            return None
        fields = self._fields(line, text[start:])
        event = fields.get("SecurityEvent", "")
        if not event:
            raise self._fail(line, "SecurityEvent is empty")
        if "RemoteAddress" not in fields:
            raise self._fail(line, "the security event has no RemoteAddress")
        remote, remote_port, transport = self._sec_address(line, fields["RemoteAddress"], "Remote")
        local = None
        if "LocalAddress" in fields:
            local = self._sec_address(line, fields["LocalAddress"], "Local")[0]
        if "EventTV" in fields:
            at = self._event_tv(line, fields["EventTV"])
        else:
            at = self._bracketed(line, text)
        severity = fields.get("Severity") or None
        if event == "SuccessfulAuth":
            outcome = "success"
        elif event == "ChallengeSent":
            outcome = "challenged"
        elif severity == "Error":
            outcome = "refused"
        else:
            outcome = None
        payload: dict[str, Any] = {
            "format": "asterisk-security",
            "event": event,
            "severity": severity,
            "service": fields.get("Service") or None,
            "account": fields.get("AccountID") or None,
            "session": fields.get("SessionID") or None,
            "remote_address": remote,
            "remote_port": remote_port,
            "transport": transport,
            "local_address": local,
            "outcome": outcome,
            "detail": {k: fields[k] for k in _DETAIL if k in fields},
        }
        return self._record(line, at, payload, remote)

    def _fields(self, line: int, text: str) -> dict[str, str]:
        """`Key="value",...` as written (values unescaped); a repeated key refuses the line."""
        keys = list(_FIELD_KEY.finditer(text))
        if not keys or keys[0].start() != 0:
            raise self._fail(line, 'the security event\'s fields are not Key="value" pairs')
        fields: dict[str, str] = {}
        for index, match in enumerate(keys):
            key = match.group("key")
            if index + 1 < len(keys):
                value = text[match.end() : keys[index + 1].start() - 2]
            else:
                tail = text[match.end() :].rstrip()
                if not tail.endswith('"'):
                    raise self._fail(line, f"the value of {key} is not closed by a quote")
                value = tail[:-1]
            if key in fields:
                raise self._fail(
                    line,
                    f"{key} appears twice (a value holds another field: Asterisk does not "
                    "escape what a caller sends): the line is ambiguous",
                )
            fields[key] = value
        return fields

    def _sec_address(self, line: int, text: str, which: str) -> tuple[str, int | None, str | None]:
        match = _SEC_ADDRESS.fullmatch(text)
        if match is None:
            raise self._fail(line, f"{which}Address is not IPV4|IPV6/[transport/]address/port")
        address = normalise_ip(match.group("host"))
        if address is None:
            raise self._fail(line, f"{which}Address holds no IP address")
        transport = match.group("transport")
        return address, _port(match.group("port")), None if transport is None else transport.upper()

    def _event_tv(self, line: int, text: str) -> datetime:
        epoch = _EPOCH_TV.fullmatch(text)
        try:
            if epoch is not None:
                seconds = int(epoch.group(1))
                if len(epoch.group(1)) > 12:
                    raise OverflowError
                moment = datetime.fromtimestamp(seconds, UTC) + timedelta(
                    microseconds=int(epoch.group(2)[:6].ljust(6, "0"))
                )
            else:
                match = _ISO_TV.fullmatch(text)
                if match is None:
                    raise ValueError
                check_day(self.name, line, date.fromisoformat(match.group(1)), "EventTV")
                sign = 1 if match.group(4) == "+" else -1
                offset = timedelta(hours=int(match.group(5)), minutes=int(match.group(6)))
                if offset >= timedelta(hours=24):
                    raise ValueError
                naive = datetime.fromisoformat(f"{match.group(1)}T{match.group(2)}")
                fraction = (match.group(3) or "")[:6].ljust(6, "0")
                moment = naive.replace(
                    microsecond=int(fraction), tzinfo=timezone(sign * offset)
                ).astimezone(UTC)
        except (ValueError, OverflowError, OSError):
            raise self._fail(line, "EventTV is not a time Asterisk writes") from None
        check_day(self.name, line, moment.date(), "EventTV")
        return moment

    # --- registrations -------------------------------------------------------------------

    def _registration(self, line: int, text: str) -> ParsedRecord | object | None:
        for kind, pattern, marker in _REGISTRATIONS:
            if marker not in text:
                continue
            match = pattern.search(text)
            if match is None:
                raise self._fail(line, f"a registration line ({kind}) that does not read")
            at = self._bracketed(line, text)
            if kind == "unregistered":
                return _NO_ADDRESS
            if kind == "registered":
                return self._chan_sip(line, at, match)
            return self._contact(line, at, kind, match)
        return None

    def _contact(self, line: int, at: datetime, kind: str, match: re.Match[str]) -> object:
        uri = match.group("uri")
        parts = _SIP_URI.fullmatch(uri)
        if parts is None:
            raise self._fail(line, "the contact is not a sip: or sips: URI")
        address = _host_address(parts.group("host"))
        if address is False:
            raise self._fail(line, "the contact's host is neither an IP address nor a name")
        if address is None:
            return _NO_ADDRESS
        assert isinstance(address, str)
        params = parts.group("params") or ""
        transport = _TRANSPORT.search(params)
        groups = match.groupdict()
        payload: dict[str, Any] = {
            "format": "pjsip",
            "event": f"contact_{kind}",
            "account": match.group("aor"),
            "contact": uri,
            "remote_address": address,
            "remote_port": _port(parts.group("port")),
            "transport": transport.group(1).upper() if transport else None,
            "expires": _seconds(groups.get("expires")),
            "reason": groups.get("reason"),
            "outcome": "success" if kind != "removed" else None,
        }
        return self._record(line, at, payload, address)

    def _chan_sip(self, line: int, at: datetime, match: re.Match[str]) -> object:
        where = match.group("where")
        old = _OLD_AT.fullmatch(where)
        if old is not None:
            host, port, expires = old.group(1), old.group(2), old.group(3)
        else:
            new = _HOST_PORT.fullmatch(where)
            if new is None:
                raise self._fail(line, "the registered address is not address:port")
            host, port, expires = new.group("host"), new.group("port"), None
        address = normalise_ip(host)
        if address is None:
            raise self._fail(line, "the registered address is not an IP address")
        payload: dict[str, Any] = {
            "format": "pjsip",
            "event": "registered",
            "account": match.group("peer"),
            "contact": None,
            "remote_address": address,
            "remote_port": _port(port),
            "transport": None,
            "expires": _seconds(expires),
            "reason": None,
            "outcome": "success",
        }
        return self._record(line, at, payload, address)

    def _bracketed(self, line: int, text: str) -> datetime:
        """The `[...]` time at the head of an Asterisk logger line, read in `tz`."""
        match = _BRACKET.match(text)
        if match is None:
            raise self._fail(line, "the line does not begin with Asterisk's [date time]")
        stamp = match.group(1).strip()
        full = _FULL_DATE.fullmatch(stamp)
        try:
            if full is not None:
                day = date.fromisoformat(full.group(1))
                check_day(self.name, line, day, "the line's date")
                naive = datetime.fromisoformat(f"{full.group(1)}T{full.group(2)}")
            else:
                short = _SHORT_DATE.fullmatch(stamp)
                if short is None:
                    raise ValueError
                if self.year is None:
                    raise self._fail(
                        line,
                        "the line's date has no year (logger.conf's default dateformat): "
                        "give the year of the first line (--year)",
                    )
                month = _MONTHS[short.group(1)]
                if self.last_month is not None and month < self.last_month:
                    self.year += 1
                self.last_month = month
                check_day(self.name, line, date(self.year, 1, 1), "the line's date")
                naive = datetime.fromisoformat(
                    f"{self.year:04d}-{month:02d}-{int(short.group(2)):02d}T{short.group(3)}"
                )
        except (ValueError, OverflowError):
            raise self._fail(line, "the line's [date time] is not a time") from None
        moment = local_to_utc(naive, self.tz)
        check_day(self.name, line, moment.date(), "the line's date")
        return moment

    # --- Common and Combined Log Format --------------------------------------------------

    def _clf(self, line: int, text: str) -> ParsedRecord | None:
        if not text.strip():
            return None
        match = _CLF.fullmatch(text)
        if match is None:
            raise self._fail(line, "not a Common or Combined Log Format line")
        address = normalise_ip(match.group("host"))
        if address is None:
            raise self._fail(
                line, "the client is not an IP address (a host name: HostnameLookups on?)"
            )
        at = self._clf_time(line, match.group("time"))
        request = _REQUEST.fullmatch(match.group("request"))
        user = match.group("user")
        agent = match.group("agent")
        forwarded = _forwarded(match.group("forwarded"))
        payload: dict[str, Any] = {
            "format": "clf",
            "event": "request",
            "account": None if user == "-" else user,
            "remote_address": address,
            "request": (
                None if request is None else f"{request.group('method')} {request.group('path')}"
            ),
            "protocol": None if request is None else request.group("protocol"),
            "status": None if match.group("status") == "-" else int(match.group("status")),
            "size": None if match.group("size") == "-" else _seconds(match.group("size")),
            "user_agent": None if agent in (None, "-") else agent,
            "forwarded_for": forwarded,
            "outcome": None,
        }
        return self._record(line, at, payload, address, *forwarded)

    def _clf_time(self, line: int, text: str) -> datetime:
        match = _CLF_TIME.fullmatch(text)
        if match is None or match.group(2) not in _MONTHS:
            raise self._fail(line, "the time is not [dd/Mon/yyyy:hh:mm:ss +zzzz]")
        day, month, year, clock, sign, hours, minutes = match.groups()
        try:
            local = date(int(year), _MONTHS[month], int(day))
            check_day(self.name, line, local, "the request's date")
            offset = timedelta(hours=int(hours), minutes=int(minutes))
            naive = datetime.fromisoformat(f"{local.isoformat()}T{clock}")
            moment = naive.replace(tzinfo=timezone(offset if sign == "+" else -offset)).astimezone(
                UTC
            )
        except (ValueError, OverflowError):
            raise self._fail(line, "the time is not a date and time") from None
        check_day(self.name, line, moment.date(), "the request's date")
        return moment


# Fields of a security event kept besides the common ones (no digest material: see above).
_DETAIL = (
    "ACLName",
    "RequestType",
    "RequestParams",
    "AuthMethod",
    "UsingPassword",
    "Module",
    "AttemptedTransport",
    "ExpectedAddress",
)
_FIELD_KEY = re.compile(r'(?:^|(?<=",))(?P<key>[A-Za-z][A-Za-z0-9]*)="')
_SEC_ADDRESS = re.compile(
    r"IPV[46]/(?:(?P<transport>[A-Za-z]+)/)?(?P<host>\[[0-9A-Fa-f:.%\w]+\]|[0-9A-Fa-f:.%\w]+)"
    r"/(?P<port>\d{1,5})"
)
_EPOCH_TV = re.compile(r"(\d{1,20})-(\d{1,9})")
_ISO_TV = re.compile(
    r"(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?([+-])(\d{2}):?(\d{2})"
)
_BRACKET = re.compile(r"\[([^\]]{1,40})\]")
_FULL_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?)")
_SHORT_DATE = re.compile(
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) {1,2}(\d{1,2}) "
    r"(\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?)"
)
_REGISTRATIONS = (
    (
        "added",
        re.compile(
            r"Added contact '(?P<uri>[^']*)' to AOR '(?P<aor>[^']*)' with expiration of "
            r"(?P<expires>\d+) seconds\s*$"
        ),
        "Added contact '",
    ),
    (
        "removed",
        re.compile(
            r"Removed contact '(?P<uri>[^']*)' from AOR '(?P<aor>[^']*)' due to "
            r"(?P<reason>[a-z ]+?)\s*$"
        ),
        "Removed contact '",
    ),
    (
        "refreshed",
        re.compile(
            r"Refreshed contact '(?P<uri>[^']*)' on AOR '(?P<aor>[^']*)' with new expiration "
            r"of (?P<expires>\d+) seconds\s*$"
        ),
        "Refreshed contact '",
    ),
    ("unregistered", re.compile(r"Unregistered SIP '(?P<peer>[^']*)'\s*$"), "Unregistered SIP '"),
    (
        "registered",
        re.compile(r"(?<!Un)Registered SIP '(?P<peer>[^']*)' at (?P<where>.+?)\s*$"),
        "Registered SIP '",
    ),
)
_SIP_URI = re.compile(
    r"sips?:(?:(?P<user>[^@;?]*)@)?(?P<host>\[[^\]]*\]|[^:;?\[\]]+)(?::(?P<port>\d{1,5}))?"
    r"(?P<params>[;?].*)?",
    re.IGNORECASE,
)
_TRANSPORT = re.compile(r";transport=([A-Za-z]+)", re.IGNORECASE)
_OLD_AT = re.compile(r"(\S+) port (\d{1,5})(?: expires (\d+))?")
_HOST_PORT = re.compile(r"(?P<host>\[[^\]]+\]|[^:\s]+)(?::(?P<port>\d{1,5}))?")
_DNS_NAME = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)*\.?"
)
# A field in quotes: Apache escapes `"` and `\` with a backslash, nginx writes \x22.
_QUOTED = r'(?:[^"\\]|\\.)*'
_CLF = re.compile(
    r"(?P<host>\S+) (?P<ident>\S+) (?P<user>\S+) \[(?P<time>[^\]]+)\] "
    rf'"(?P<request>{_QUOTED})" (?P<status>\d{{3}}|-) (?P<size>\d+|-)'
    rf'(?: "(?P<referer>{_QUOTED})" "(?P<agent>{_QUOTED})"(?: "(?P<forwarded>{_QUOTED})")?)?'
)
_CLF_TIME = re.compile(r"(\d{2})/([A-Z][a-z]{2})/(\d{4}):(\d{2}:\d{2}:\d{2}) ([+-])(\d{2})(\d{2})")
_REQUEST = re.compile(
    r"(?P<method>[A-Z][A-Z_-]{0,31}) (?P<path>[^?#\s]*)(?:[?#]\S*)? (?P<protocol>HTTP/\d(?:\.\d)?)"
)


def _port(text: str | None) -> int | None:
    if text is None:
        return None
    value = int(text)
    return value if 0 < value <= 65535 else None


def _seconds(text: str | None) -> int | None:
    if text is None:
        return None
    digits = text.lstrip("0") or "0"
    return int(digits) if len(digits) <= 10 and int(digits) <= 2**31 - 1 else None


def _forwarded(text: str | None) -> list[str]:
    """The IP addresses of nginx's `main` format's X-Forwarded-For field, normalised."""
    if text is None:
        return []
    found = (normalise_ip(part) for part in text.split(","))
    return list(dict.fromkeys(a for a in found if a is not None))


def _host_address(host: str) -> str | bool | None:
    """A contact host's IP address; None for a DNS name; False for neither."""
    address = normalise_ip(host)
    if address is not None:
        return address
    if host.startswith("[") or re.fullmatch(r"[\d.]+", host) or ":" in host:
        return False  # looks like an address but is none (999.1.2.3, [zz::1])
    return None if _DNS_NAME.fullmatch(host) else False
