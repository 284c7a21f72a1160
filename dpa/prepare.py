"""Preparing parsed records for storage: the part of an ingest that needs no key.

A parsed record becomes a `Prepared` one: its payload serialised as it will be sealed (with
its `e164` map of each phone number as written to its E.164 form) and its people as
`kind:value` texts (`phone:+3225550100`, `email:...`, `ip:...`), the very texts the blind
index digests. What follows needs the installation's keys and stays in `dpa.ingest`: the
digests, the record's identity, the encryption and the rows.

Nothing here reads a key, the clock or the database, so a big file can be parsed and
prepared in a worker process beside the one that stores (`dpa.offload`); a small one is
prepared in line. Both give the same records (`tests/dpa/test_prepare.py`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Generic, NamedTuple, TypeVar

import orjson

from dpa.identifiers import normalise_email, normalise_ip, normalise_phone
from dpa.parsers.base import ParsedRecord

__all__ = ["PHONE_CACHE", "Generations", "Normaliser", "Prepared", "prepare"]

# Phone numbers a Normaliser keeps per generation: the numbers that repeat (a customer's
# regular parties) stay cached, while the many that appear once (half the parties of real
# traffic) are dropped with their generation, so memory stays flat however long the file.
PHONE_CACHE = 8192

K = TypeVar("K")
V = TypeVar("V")


class Generations(Generic[K, V]):
    """A cache of two generations of at most `size` entries each: an entry found in the
    older one moves to the newer, and the older is dropped when the newer is full."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._newer: dict[K, V] = {}
        self._older: dict[K, V] = {}

    def __len__(self) -> int:
        return len(self._newer) + len(self._older)

    def get(self, key: K) -> tuple[bool, V | None]:
        """(True, value) when `key` is cached (then kept in the newer generation)."""
        try:
            return True, self._newer[key]
        except KeyError:
            pass
        if key in self._older:
            value = self._older[key]
            self.put(key, value)
            return True, value
        return False, None

    def put(self, key: K, value: V) -> None:
        if len(self._newer) >= self._size:
            self._older, self._newer = self._newer, {}
        self._newer[key] = value


class Normaliser:
    """E.164 forms of phone numbers as written, read in `region`, cached in `Generations`."""

    def __init__(self, region: str, size: int | None = None) -> None:
        self.region = region
        self._cache: Generations[str, str | None] = Generations(
            PHONE_CACHE if size is None else size
        )

    def phone(self, raw: str) -> str | None:
        known, e164 = self._cache.get(raw)
        if not known:
            e164 = normalise_phone(raw, self.region)
            self._cache.put(raw, e164)
        return e164

    def cached(self) -> int:
        """Numbers cached now (at most twice the generation's size)."""
        return len(self._cache)


class Prepared(NamedTuple):
    """One parsed record ready to be keyed, sealed and stored (a tuple: cheap to send from a
    worker process)."""

    line: int
    source_key: str
    category: str
    collected_at: datetime
    plain: bytes  # the payload as it is sealed: JSON, with its "e164" map
    subjects: tuple[str, ...]  # distinct `kind:value` texts: phones, then e-mails, then IPs
    media: Path | None
    extra_media: tuple[Path, ...]


def prepare(records: Iterable[ParsedRecord], region: str) -> Iterator[Prepared]:
    """Each record prepared in turn; national phone numbers are read in `region`."""
    numbers = Normaliser(region)
    for record in records:
        e164: dict[str, str] = {}
        subjects: list[str] = []
        for raw in record.phones:
            number = numbers.phone(raw)
            if number is not None:
                e164[raw] = number
                if (text := f"phone:{number}") not in subjects:
                    subjects.append(text)
        for raw in record.emails:
            email = normalise_email(raw)
            if email is not None and (text := f"email:{email}") not in subjects:
                subjects.append(text)
        for raw in record.addresses:
            ip = normalise_ip(raw)
            if ip is not None and (text := f"ip:{ip}") not in subjects:
                subjects.append(text)
        yield Prepared(
            record.line,
            record.source_key,
            record.category,
            record.collected_at,
            orjson.dumps({**record.payload, "e164": e164}),
            tuple(subjects),
            record.media,
            record.extra_media,
        )
