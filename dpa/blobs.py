"""Encrypted blob files (audio, fax images, ID photos) under DPA_HOME/blobs.

A blob is written in chunks of CHUNK bytes so memory does not grow with file size. Each chunk
is sealed with AES-256-GCM under the record's data key, with its own random nonce; the
associated data binds the blob id, a label (the record id), the chunk's index and whether it is the last one, so
chunks cannot be reordered, dropped or moved to another blob, and a truncated file fails.
File names are random ids: they reveal nothing about the content or its owner.

Layout: MAGIC, then per chunk a 4-byte big-endian length, the 12-byte nonce and the
ciphertext with its tag.

A blob is written before the transaction that records it commits, so a process killed in
between leaves a file (or a `.part` of one) that no record will ever name. `files` lists what
is on disk in id order, so a caller can walk it beside the ids the database references
(`dpa.orphans` collects the strays); `delete` removes a blob and any unfinished `.part` of it.
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["CHUNK", "BlobCorrupt", "BlobFile", "BlobStore"]

CHUNK = 1 << 20
MAGIC = b"DPAB\x01"
_LEN = struct.Struct(">I")
_NONCE = 12
_PART = ".part"
_FOLDER = re.compile(r"[0-9a-f]{2}")
_NAME = re.compile(r"([0-9a-f]{32})(\.part)?")


class BlobCorrupt(Exception):
    """A blob file does not decrypt: damaged, truncated, or not the blob asked for."""


@dataclass(frozen=True, slots=True)
class BlobFile:
    """One file of the store as found on disk: a blob, or the unfinished `.part` of one."""

    blob_id: str
    name: str  # the file's name: the blob id, with ".part" when its writing never finished
    size: int
    modified: datetime  # the file's modification time, UTC


class BlobStore:
    """Encrypted files in one folder, two levels deep by id prefix."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, blob_id: str) -> Path:
        """Where the blob with this id lives."""
        return self.root / blob_id[:2] / blob_id

    @staticmethod
    def _ad(blob_id: str, label: str, index: int, last: bool) -> bytes:
        return f"dpa/blob/v1|{blob_id}|{label}|{index}|{int(last)}".encode()

    def write(self, blob_id: str, aead: AESGCM, source: Path, *, label: str) -> int:
        """Encrypt `source` into a new blob; return the plaintext size. Atomic: all or nothing."""
        target = self.path(blob_id)
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = target.with_name(target.name + ".part")
        size = 0
        try:
            with source.open("rb") as src, tmp.open("wb") as out:
                out.write(MAGIC)
                chunk = src.read(CHUNK)
                index = 0
                while True:
                    following = src.read(CHUNK) if chunk else b""
                    last = not following
                    nonce = os.urandom(_NONCE)
                    sealed = aead.encrypt(nonce, chunk, self._ad(blob_id, label, index, last))
                    out.write(_LEN.pack(len(sealed)) + nonce + sealed)
                    size += len(chunk)
                    if last:
                        break
                    chunk, index = following, index + 1
            tmp.replace(target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return size

    def read(self, blob_id: str, aead: AESGCM, *, label: str) -> Iterator[bytes]:
        """Decrypt a blob chunk by chunk."""
        with self.path(blob_id).open("rb") as src:
            if src.read(len(MAGIC)) != MAGIC:
                raise BlobCorrupt(f"blob {blob_id}: not a dpa blob")
            index = 0
            while True:
                header = src.read(_LEN.size)
                if len(header) < _LEN.size:
                    raise BlobCorrupt(f"blob {blob_id}: truncated after chunk {index}")
                (length,) = _LEN.unpack(header)
                nonce, sealed = src.read(_NONCE), src.read(length)
                at_end = src.peek(1) == b""
                try:
                    chunk = aead.decrypt(nonce, sealed, self._ad(blob_id, label, index, at_end))
                except InvalidTag:
                    raise BlobCorrupt(f"blob {blob_id}: chunk {index} does not decrypt") from None
                yield chunk
                if at_end:
                    return
                index += 1

    def delete(self, blob_id: str) -> None:
        """Remove a blob file, and the unfinished `.part` of one, if they exist."""
        target = self.path(blob_id)
        target.unlink(missing_ok=True)
        target.with_name(target.name + _PART).unlink(missing_ok=True)

    def exists(self, blob_id: str) -> bool:
        """Whether the blob, or an unfinished `.part` of it, is on disk."""
        target = self.path(blob_id)
        return target.exists() or target.with_name(target.name + _PART).exists()

    def files(self) -> Iterator[BlobFile]:
        """Every blob-shaped file on disk, in ascending id order (one folder in memory at a time).

        Files that are not named like a blob, in a folder of their prefix, are not the
        store's and are left out; a file removed while the listing runs is skipped.
        """
        if not self.root.is_dir():
            return
        folders = sorted(
            entry.name
            for entry in os.scandir(self.root)
            if entry.is_dir(follow_symlinks=False) and _FOLDER.fullmatch(entry.name)
        )
        for folder in folders:
            found: list[BlobFile] = []
            for entry in os.scandir(self.root / folder):
                match = _NAME.fullmatch(entry.name)
                if match is None or not match.group(1).startswith(folder):
                    continue
                if not entry.is_file(follow_symlinks=False):
                    continue
                try:
                    stat = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                modified = datetime.fromtimestamp(stat.st_mtime, UTC)
                found.append(BlobFile(match.group(1), entry.name, stat.st_size, modified))
            yield from sorted(found, key=lambda f: f.name)
