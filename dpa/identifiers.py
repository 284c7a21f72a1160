"""Phone numbers, e-mail and IP addresses reduced to one canonical spelling.

The same person's number arrives as `0470 12 34 56` in a contact list, `+32470123456` in
one CDR and `0032470123456` in the next; blind indexes only match if every spelling is
brought to one form first. Phone numbers become E.164 (ITU-T E.164, via Google's
libphonenumber port `phonenumbers`); anything that is not a dialable public number
(`<unknown>`, `anonymous`, the dialplan's `s` extension, internal 3-4 digit extensions such as
`1001`) becomes None, so it is never indexed as if it identified a person. IP addresses take
the standard library's `ipaddress` spelling (IPv6 compressed and lower-case, an IPv4-mapped
IPv6 address as the IPv4 address it carries).
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache

import phonenumbers

from dpa import phone_fastpath

__all__ = ["normalise_email", "normalise_ip", "normalise_phone"]

# local@domain with a dot in the domain; deliberately loose (RFC 5322 allows far more), it only
# has to tell an address from a name or a phone number typed into the e-mail column.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@lru_cache(maxsize=4096)
def normalise_phone(raw: str, region: str) -> str | None:
    """Return `raw` in E.164 form (`+32470123456`), or None if it is not a possible phone number."""
    # A CDR file repeats its regulars over thousands of lines, hence the cache (small: ingest
    # keeps its own in `dpa.ingest.BlindIndex`; 65,536 entries were 16 MB that grew with the
    # file until full, issue 14's peak memory); but half the parties of real traffic call
    # once (issue 14), so a number seen once must be cheap too:
    # the fast path reads the common spellings with phonenumbers' own metadata, and the full
    # parse (tens of µs) only runs where it cannot decide. Both give the same answer
    # (tests/dpa/test_identifiers_fastpath.py).
    text = raw.strip()
    if not text:
        return None
    fast = phone_fastpath.decide(text, region)
    if fast is not phone_fastpath.UNDECIDED:
        return fast
    return _normalise_phone_full(text, region)


def _normalise_phone_full(raw: str, region: str) -> str | None:
    """`normalise_phone` by phonenumbers' full parse: the reference the fast path must match."""
    text = raw.strip()
    if not text:
        return None
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_email(raw: str) -> str | None:
    """Return `raw` trimmed and lower-cased, or None if it does not look like local@domain."""
    text = raw.strip().lower()
    if not _EMAIL.fullmatch(text):
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: bytes that were not UTF-8
        return None
    return text


def normalise_ip(raw: str) -> str | None:
    """Return `raw` as one IPv4 or IPv6 address in canonical form, or None if it is not one.

    `[2001:DB8::1]` (a URI's brackets), `2001:db8:0:0::1` and `::ffff:192.0.2.7` (IPv4-mapped)
    each have one spelling; a zone index (`fe80::1%eth0`) is dropped: it names the
    interface, not the address."""
    text = raw.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    text = text.partition("%")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)
