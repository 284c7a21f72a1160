"""The master key and what is derived from it.

The master key (key-encryption key) comes from `DPA_MASTER_KEY` or from the 0600 key file
made by `dpa init`; it never enters the database. The database keeps only its fingerprint,
so a wrong key is recognised before anything is written. Everything else is encrypted under
keys the master key wraps (`dpa.keyring`).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from dpa.config import Settings
from dpa.errors import KeyFileInsecure, MasterKeyMismatch, MasterKeyMissing

__all__ = ["FieldCipher", "MasterKey", "create_key_file", "load_master_key", "read_key_file"]

KEY_BYTES = 32
_FIELD_FORMAT = b"\x01"
_NONCE_BYTES = 12


@dataclass(frozen=True, slots=True)
class MasterKey:
    """A 32-byte master key; knows its fingerprint and derives purpose keys."""

    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.secret) != KEY_BYTES:
            raise MasterKeyMissing(
                f"a master key is {KEY_BYTES} bytes (base64 encoded); this one is {len(self.secret)}"
            )

    @classmethod
    def generate(cls) -> MasterKey:
        """A fresh random master key."""
        return cls(os.urandom(KEY_BYTES))

    @classmethod
    def from_b64(cls, text: str, *, source: str) -> MasterKey:
        """Decode a base64 master key; `source` names where it came from, for the error."""
        try:
            secret = base64.b64decode(text.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise MasterKeyMissing(f"{source} is not valid base64") from None
        if len(secret) != KEY_BYTES:
            raise MasterKeyMissing(
                f"{source} must hold {KEY_BYTES} bytes in base64; it holds {len(secret)}"
            )
        return cls(secret)

    def to_b64(self) -> str:
        """The key in base64, as stored in the key file or DPA_MASTER_KEY."""
        return base64.b64encode(self.secret).decode("ascii")

    def derive(self, purpose: str, length: int = KEY_BYTES) -> bytes:
        """A key for one purpose, independent of every other purpose's key (HKDF-SHA256)."""
        hkdf = HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=purpose.encode())
        return hkdf.derive(self.secret)

    @property
    def fingerprint(self) -> str:
        """A short public name for the key (`mk-` and 16 hex digits); reveals nothing of it."""
        return "mk-" + self.derive("dpa/fingerprint/v1", 8).hex()

    def check(self, expected_fingerprint: str) -> None:
        """Raise MasterKeyMismatch unless this is the key with the expected fingerprint."""
        if not hmac.compare_digest(self.fingerprint, expected_fingerprint):
            raise MasterKeyMismatch(
                f"wrong master key: this database expects {expected_fingerprint}, "
                f"the key given is {self.fingerprint}; nothing was changed"
            )


def _check_key_file_mode(path: Path) -> None:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileInsecure(
            f"key file {path} has mode {stat.S_IMODE(mode):04o}: other users could read it; "
            f"run `chmod 600 {path}` and check who saw it"
        )


def read_key_file(path: Path) -> MasterKey:
    """A master key from a file holding its base64 (never echoes what the file holds)."""
    try:
        text = path.read_bytes().decode("ascii")
    except FileNotFoundError:
        raise MasterKeyMissing(f"key file {path} does not exist") from None
    except (UnicodeDecodeError, IsADirectoryError):
        raise MasterKeyMissing(f"key file {path} does not hold a base64 master key") from None
    return MasterKey.from_b64(text, source=f"key file {path}")


def load_master_key(settings: Settings) -> MasterKey:
    """The master key from DPA_MASTER_KEY, else from the key file (which must be 0600)."""
    if settings.master_key_b64:
        return MasterKey.from_b64(settings.master_key_b64, source="DPA_MASTER_KEY")
    path = settings.key_file
    if not path.exists():
        raise MasterKeyMissing(
            f"no master key: DPA_MASTER_KEY is not set and {path} does not exist (run `dpa init`)"
        )
    _check_key_file_mode(path)
    return read_key_file(path)


def create_key_file(path: Path, key: MasterKey) -> None:
    """Write `key` to a new file readable by its owner only; never overwrite an existing one."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(key.to_b64() + "\n")
    path.chmod(0o600)  # the umask may have removed bits, never added them; make it exact anyway


class FieldCipher:
    """AES-256-GCM for small text fields (a customer's name), bound to a label such as its row id.

    The label is associated data: a ciphertext copied onto another row does not decrypt.
    """

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, text: str, label: str) -> bytes:
        """Encrypt `text`, bound to `label`."""
        nonce = os.urandom(_NONCE_BYTES)
        return _FIELD_FORMAT + nonce + self._aead.encrypt(nonce, text.encode(), label.encode())

    def open(self, blob: bytes, label: str) -> str:
        """Decrypt what `seal` made with the same label."""
        if blob[:1] != _FIELD_FORMAT:
            raise ValueError("unknown field format")
        nonce, body = blob[1 : 1 + _NONCE_BYTES], blob[1 + _NONCE_BYTES :]
        return self._aead.decrypt(nonce, body, label.encode()).decode()
