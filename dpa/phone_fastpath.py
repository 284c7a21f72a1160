"""The cheap road to E.164 for the spellings a PBX writes, decided from phonenumbers' metadata.

`phonenumbers.parse` + `is_possible_number` + `format_number(E164)` costs tens of µs a number,
most of it spent looking for what a CDR's number does not hold: RFC 3966 parameters,
extensions, vanity letters, Unicode digits. Real traffic brings many numbers only once (issue
14: half the parties), so a cache does not hide that cost.

`decide(text, region)` takes the already stripped text and handles the common shapes: ASCII
digits with spaces, dots, dashes, slashes and parentheses, optionally one leading `+`; that is
`+CC...`, the region's international prefix (`00CC...`, `011CC...`, a regular expression in the
metadata) and national spellings (`0470...`, `(02) 234 56 78`). For those it repeats the steps
`phonenumbers.parse` takes, in its order, with the region's and the country's own metadata
(`international_prefix`, `national_prefix_for_parsing` and its transform rule, the general
description's pattern, `possible_length` and `possible_length_local_only`), compiled once:

1. a leading `+`, or the region's international prefix not followed by 0, starts a country
   calling code of 1 to 3 digits, and what follows is the national number; otherwise the
   whole is a national number of the region;
2. the national prefix (with any carrier code) is stripped as phonenumbers strips it, kept
   when the stripped number would be too short or local-only for the region;
3. the result is possible when its length is one of the country's possible lengths,
   local-only ones included, as `is_possible_number` judges.

Wherever phonenumbers would take another road it answers UNDECIDED and the caller runs the
full parse: any other character, fewer than 3 digits, a `+` followed by no known country code
(phonenumbers then re-reads the number without it), a national spelling that starts with the
region's own country code (phonenumbers then guesses whether it is one), a region phonenumbers
does not know, metadata missing or shaped unlike the rest. tests/dpa/test_identifiers_fastpath.py
checks that both roads give the same answer on every example number phonenumbers ships, in every
spelling, and on generated ones.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from functools import cache
from typing import Final

import phonenumbers
from phonenumbers import PhoneMetadata

__all__ = ["UNDECIDED", "Undecided", "decide"]


class Undecided(enum.Enum):
    """The fast path cannot tell: run the full parse."""

    TOKEN = enum.auto()


UNDECIDED: Final = Undecided.TOKEN

# What the fast path reads: one optional leading '+', then digits and the punctuation
# phonenumbers drops when it normalises. No letters, '#', '*', ',', ';', '~' or 'x': with those
# phonenumbers looks for extensions, RFC 3966 parameters or vanity numbers. 40 characters at
# most (phonenumbers' own limit is 250, its longest national number 17 digits).
_SHAPE = re.compile(r"\+?[0-9 .()/-]{1,40}", re.ASCII)
_PUNCTUATION = str.maketrans("", "", "+ .()/-")
_MIN_NSN = 2  # phonenumbers' _MIN_LENGTH_FOR_NSN
_MAX_NSN = 17  # phonenumbers' _MAX_LENGTH_FOR_NSN
_MAX_COUNTRY_CODE = 3  # phonenumbers' _MAX_LENGTH_COUNTRY_CODE


class _Length(enum.Enum):
    """phonenumbers' ValidationResult, the values `_test_number_length` can give."""

    POSSIBLE = 0
    LOCAL_ONLY = 1
    TOO_SHORT = 2
    TOO_LONG = 3
    INVALID = 4


@dataclass(frozen=True, slots=True)
class _Plan:
    """One metadata's rules, compiled once (a region's, or a country calling code's main
    region's)."""

    country_code: int
    country_prefix: str  # the country code as digits, for the national-spelling check
    idd: re.Pattern[str] | None  # international_prefix
    national_prefix: re.Pattern[str] | None  # national_prefix_for_parsing
    transform: str | None  # national_prefix_transform_rule
    general: re.Pattern[str] | None  # general_desc.national_number_pattern
    possible: tuple[int, ...]
    local_only: frozenset[int]

    def length(self, digits: int) -> _Length:
        """phonenumbers' `_test_number_length` for the general description, step by step."""
        if digits in self.local_only:
            return _Length.LOCAL_ONLY
        if self.possible[0] == digits:
            return _Length.POSSIBLE
        if self.possible[0] > digits:
            return _Length.TOO_SHORT
        if self.possible[-1] < digits:
            return _Length.TOO_LONG
        return _Length.POSSIBLE if digits in self.possible[1:] else _Length.INVALID

    def viable(self, number: str) -> bool:
        """phonenumbers' `_match_national_number(number, general_desc, False)`."""
        return self.general is not None and self.general.fullmatch(number) is not None

    def strip_national_prefix(self, number: str) -> str | Undecided:
        """phonenumbers' `_maybe_strip_national_prefix_carrier_code`, the number it returns."""
        if not number or self.national_prefix is None:
            return number
        match = self.national_prefix.match(number)
        if match is None:
            return number
        viable_original = self.viable(number)
        groups = match.groups()
        if not self.transform or (groups and groups[-1] is None):
            stripped = number[match.end() :]
        elif not groups:  # phonenumbers fails here (an IndexError): let it speak for itself
            return UNDECIDED
        else:
            stripped = self.national_prefix.sub(self.transform, number, count=1)
        if viable_original and not self.viable(stripped):
            return number
        return stripped


def _compiled(pattern: str | None) -> re.Pattern[str] | None:
    return re.compile(pattern) if pattern else None


def _plan(metadata: PhoneMetadata | None) -> _Plan | None:
    """The metadata's plan, or None where it is shaped unlike what the fast path mirrors."""
    if metadata is None or metadata.country_code is None:
        return None
    general = metadata.general_desc
    if general is None or not general.possible_length:
        return None  # phonenumbers would answer INVALID_LENGTH or fail: leave it to it
    return _Plan(
        country_code=metadata.country_code,
        country_prefix=str(metadata.country_code),
        # phonenumbers compiles any international prefix that is not None, even an empty one
        idd=None
        if metadata.international_prefix is None
        else re.compile(metadata.international_prefix),
        national_prefix=_compiled(metadata.national_prefix_for_parsing),
        transform=metadata.national_prefix_transform_rule,
        general=_compiled(general.national_number_pattern),
        possible=tuple(general.possible_length),
        local_only=frozenset(general.possible_length_local_only),
    )


@cache
def _region_plan(region: str) -> _Plan | None:
    """The plan of a region phonenumbers supports (national and international-prefix
    spellings are read with it)."""
    return _plan(PhoneMetadata.metadata_for_region(region, None))


@cache
def _country_plan(country_code: int) -> _Plan | None:
    """The plan of a country calling code: its main region's metadata (or the
    non-geographical entity's), which phonenumbers uses for numbers with that code."""
    main = phonenumbers.region_code_for_country_code(country_code)
    return _plan(PhoneMetadata.metadata_for_region_or_calling_code(country_code, main))


def _finish(national: str, plan: _Plan, possible: _Plan) -> str | Undecided | None:
    """Steps 2 and 3: strip the national prefix with `plan`, judge the length with `possible`."""
    if len(national) < _MIN_NSN:
        return None
    stripped = plan.strip_national_prefix(national)
    if stripped is UNDECIDED:
        return UNDECIDED
    if plan.length(len(stripped)) in (_Length.POSSIBLE, _Length.TOO_LONG):
        national = stripped
    if not _MIN_NSN <= len(national) <= _MAX_NSN:
        return None
    if possible.length(len(national)) not in (_Length.POSSIBLE, _Length.LOCAL_ONLY):
        return None
    return f"+{possible.country_code}{national}"


def _international(digits: str, after_plus: bool) -> str | Undecided | None:
    """`digits` followed a `+` or the region's international prefix: a country code first."""
    if len(digits) <= _MIN_NSN:
        return None  # phonenumbers: TOO_SHORT_AFTER_IDD
    for size in range(1, min(len(digits), _MAX_COUNTRY_CODE) + 1):
        if digits[0] == "0":
            break
        country_code = int(digits[:size])
        if country_code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            plan = _country_plan(country_code)
            if plan is None:
                return UNDECIDED
            return _finish(digits[size:], plan, plan)
    # No country code: after a '+', phonenumbers tries again without it; after an
    # international prefix it gives up (INVALID_COUNTRY_CODE).
    return UNDECIDED if after_plus else None


def decide(text: str, region: str) -> str | Undecided | None:
    """E.164 of the stripped `text` dialled in `region`, None if phonenumbers would find no
    possible number, or UNDECIDED where only the full parse can tell."""
    if not _SHAPE.fullmatch(text):
        return UNDECIDED
    digits = text.translate(_PUNCTUATION)
    if len(digits) < 3:
        return UNDECIDED  # two digits or fewer: phonenumbers' viability rules, left to it
    known = region in phonenumbers.SUPPORTED_REGIONS
    if text[0] == "+":
        # ZZ (no region) reads a '+' number like any region; "001" and the like are read
        # apart by phonenumbers (the region's own metadata may be missing): its road.
        if not known and region != phonenumbers.UNKNOWN_REGION:
            return UNDECIDED
        return _international(digits, True)
    if not known:
        return None  # without a '+' phonenumbers needs a region it knows: INVALID_COUNTRY_CODE
    plan = _region_plan(region)
    if plan is None:
        return UNDECIDED
    if plan.idd is not None and (idd := plan.idd.match(digits)) is not None:
        rest = digits[idd.end() :]
        if not rest.startswith("0"):  # a country code never starts with 0
            return _international(rest, False)
    if digits.startswith(plan.country_prefix):
        return UNDECIDED  # phonenumbers weighs whether these digits are the country code
    possible = _country_plan(plan.country_code)
    if possible is None:
        return UNDECIDED
    return _finish(digits, plan, possible)
