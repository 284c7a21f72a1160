"""A streaming encryptor in the age v1 format (C2SP age spec, https://age-encryption.org/v1).

`AgeWriter` is a write-only file object: whatever is written into it (a ZIP written by
`zipfile`, typically) leaves encrypted in 64 KiB chunks, so memory stays constant and no
plaintext ever reaches the disk. Any age implementation (`age -d`, rage, pyrage) decrypts
the result.

    with AgeWriter(sink, [X25519Recipient.parse("age1...")]) as enc:
        with zipfile.ZipFile(enc, "w") as package:
            package.writestr("calls.csv", data)

Leaving the `with` block on an exception (or a failing sink) leaves the file without its
final chunk, which every decryptor refuses: a half-written export can never pass for a
whole one. Only encryption lives here; decryption is the job of the real tools.
"""

from __future__ import annotations

import base64
import hmac
import io
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, BinaryIO

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

__all__ = [
    "CHUNK_SIZE",
    "AgeWriter",
    "Recipient",
    "ScryptRecipient",
    "Stanza",
    "X25519Recipient",
]

CHUNK_SIZE = 64 * 1024
"""Plaintext bytes per payload chunk (spec, "Payload": every chunk but the last is full)."""

_VERSION_LINE = b"age-encryption.org/v1\n"
_X25519_LABEL = b"age-encryption.org/v1/X25519"
_SCRYPT_LABEL = b"age-encryption.org/v1/scrypt"
_FILE_KEY_SIZE = 16
_ZERO_NONCE = bytes(12)
# The STREAM counter is 11 bytes (spec, "Payload"); a file would have to exceed 2**104
# bytes to overflow it, but a wrapped counter would reuse nonces, so it is checked anyway.
_MAX_CHUNKS = 2**88
_BECH32_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
# Spec, "Header": an argument or stanza type is a non-empty string of VCHAR (printable ASCII).
_ARGUMENT = re.compile(r"[\x21-\x7e]+")
_LOW_ORDER = "this X25519 recipient key is a low-order point and cannot receive files"


def _b64(data: bytes) -> bytes:
    """Base64 without padding: the spec, "Conventions used in this document", forbids `=`."""
    return base64.b64encode(data).rstrip(b"=")


def _hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    """HKDF-SHA256 with a 32-byte output, as every key derivation in the spec uses."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


@dataclass(frozen=True)
class Stanza:
    """One recipient stanza of the header: a type, its arguments and a wrapped file key."""

    type: str
    args: tuple[str, ...]
    body: bytes = field(repr=False)

    def __post_init__(self) -> None:
        for part in (self.type, *self.args):
            if _ARGUMENT.fullmatch(part) is None:
                raise ValueError(
                    f"stanza {self.type!r}: type and arguments must be non-empty printable "
                    "ASCII without spaces (age spec, Header)"
                )

    def encode(self) -> bytes:
        """The stanza as it appears in the header, ending with its last body line."""
        line = b" ".join(
            [b"->", self.type.encode("ascii"), *(a.encode("ascii") for a in self.args)]
        )
        text = _b64(self.body)
        # Spec, "Header": the body is wrapped at 64 columns and the last line is always
        # shorter than 64, so a body that fills whole lines ends with an empty one.
        lines = [text[i : i + 64] for i in range(0, len(text) - len(text) % 64, 64)]
        lines.append(text[len(text) - len(text) % 64 :])
        return line + b"\n" + b"".join(body_line + b"\n" for body_line in lines)


class Recipient(ABC):
    """Someone who can decrypt the file: wraps the file key into a header stanza."""

    @abstractmethod
    def wrap(self, file_key: bytes) -> Stanza:
        """The stanza that lets this recipient recover `file_key`."""


def _bech32_polymod(values: Sequence[int]) -> int:
    checksum = 1
    for value in values:
        top = checksum >> 25
        checksum = (checksum & 0x1FFFFFF) << 5 ^ value
        for i, generator in enumerate(_BECH32_GENERATOR):
            if (top >> i) & 1:
                checksum ^= generator
    return checksum


def _bech32_hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convert_bits(data: Sequence[int], from_bits: int, to_bits: int, pad: bool) -> bytes | None:
    """Regroup `from_bits`-bit values into `to_bits`-bit ones; None if the padding is wrong."""
    accumulator = 0
    bits = 0
    out = bytearray()
    mask = (1 << to_bits) - 1
    for value in data:
        accumulator = (accumulator << from_bits) | value
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            out.append((accumulator >> bits) & mask)
    if pad:
        if bits:
            out.append((accumulator << (to_bits - bits)) & mask)
    elif bits >= from_bits or (accumulator << (to_bits - bits)) & mask:
        return None
    return bytes(out)


def _bech32_encode(hrp: str, data: bytes) -> str:
    """Bech32 (BIP 173, not Bech32m) as age uses for its recipients."""
    values = list(_convert_bits(data, 8, 5, pad=True) or b"")
    polymod = _bech32_polymod([*_bech32_hrp_expand(hrp), *values, 0, 0, 0, 0, 0, 0]) ^ 1
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_BECH32_CHARSET[v] for v in values + checksum)


def _bech32_decode(text: str) -> tuple[str, bytes]:
    """Split a Bech32 string into its human-readable part and data; ValueError if invalid.

    Messages describe the fault, never the string itself: the caller may have pasted a
    secret key by mistake.
    """
    if any(not 33 <= ord(c) <= 126 for c in text):
        raise ValueError("it contains spaces or characters outside printable ASCII")
    if text.lower() != text and text.upper() != text:
        raise ValueError("it mixes upper and lower case")
    text = text.lower()
    separator = text.rfind("1")
    if separator < 1:
        raise ValueError("it has no human-readable part before a '1' separator")
    hrp, rest = text[:separator], text[separator + 1 :]
    if len(rest) < 6:
        raise ValueError("it is too short to hold a checksum")
    bad = sorted({c for c in rest if c not in _BECH32_CHARSET})
    if bad:
        raise ValueError(f"it contains characters Bech32 does not use ({''.join(bad)!r})")
    values = [_BECH32_CHARSET.index(c) for c in rest]
    if _bech32_polymod([*_bech32_hrp_expand(hrp), *values]) != 1:
        raise ValueError("its checksum does not match (a character mistyped or missing?)")
    data = _convert_bits(values[:-6], 5, 8, pad=False)
    if data is None:
        raise ValueError("its data part has invalid padding")
    return hrp, data


@dataclass(frozen=True)
class X25519Recipient(Recipient):
    """A native age recipient: an X25519 public key, written `age1...` (spec, "X25519")."""

    public_key: bytes

    def __post_init__(self) -> None:
        if len(self.public_key) != 32:
            raise ValueError(f"an X25519 recipient key is 32 bytes, not {len(self.public_key)}")
        # Spec, "X25519 recipient stanza": a low-order point gives an all-zero shared secret
        # with every ephemeral key. Refused here, when the recipient is read from the command
        # line, rather than in `wrap`, half-way through writing a package.
        try:
            X25519PrivateKey.generate().exchange(X25519PublicKey.from_public_bytes(self.public_key))
        except ValueError:
            raise ValueError(_LOW_ORDER) from None

    @classmethod
    def parse(cls, text: str) -> X25519Recipient:
        """Read an `age1...` recipient string; ValueError saying what is wrong with it."""
        text = text.strip()
        if text.upper().startswith("AGE-SECRET-KEY-"):
            # Never echo it: this is an identity, and it belongs to nobody's command line.
            raise ValueError(
                "this is an age secret key (identity), not a recipient; "
                "give its public key (age-keygen -y KEYFILE prints it)"
            )
        try:
            hrp, data = _bech32_decode(text)
        except ValueError as error:
            raise ValueError(f"not an age recipient: {error}") from None
        if hrp != "age":
            raise ValueError(
                f"not an age X25519 recipient: its prefix is {hrp[:16]!r}, expected 'age'"
            )
        if len(data) != 32:
            raise ValueError(
                f"not an age X25519 recipient: it encodes {len(data)} bytes, expected 32"
            )
        return cls(data)

    def __str__(self) -> str:
        return _bech32_encode("age", self.public_key)

    def wrap(self, file_key: bytes) -> Stanza:
        """An `X25519` stanza: a fresh ephemeral share and the file key wrapped to it."""
        ephemeral = X25519PrivateKey.generate()
        share = ephemeral.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        try:
            shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(self.public_key))
        except ValueError:
            # Spec, "X25519 recipient stanza": an all-zero shared secret (a low-order
            # point) must be refused; cryptography raises for exactly that case.
            raise ValueError(_LOW_ORDER) from None
        wrap_key = _hkdf(shared, salt=share + self.public_key, info=_X25519_LABEL)
        body = ChaCha20Poly1305(wrap_key).encrypt(_ZERO_NONCE, file_key, None)
        return Stanza("X25519", (_b64(share).decode("ascii"),), body)


@dataclass(frozen=True)
class ScryptRecipient(Recipient):
    """A passphrase recipient (spec, "scrypt"); it must be the file's only recipient."""

    passphrase: bytes = field(repr=False)
    log_n: int = 18

    def __post_init__(self) -> None:
        if not self.passphrase:
            raise ValueError("a passphrase recipient needs a non-empty passphrase")
        # rage and age refuse work factors above what they can compute in a few seconds
        # (age: 2**22 and more by default); below 1 scrypt is undefined.
        if not 1 <= self.log_n <= 30:
            raise ValueError(f"scrypt log_n must be between 1 and 30, not {self.log_n}")

    def wrap(self, file_key: bytes) -> Stanza:
        """A `scrypt` stanza: a fresh salt, the work factor and the wrapped file key."""
        salt = os.urandom(16)
        wrap_key = Scrypt(salt=_SCRYPT_LABEL + salt, length=32, n=2**self.log_n, r=8, p=1).derive(
            self.passphrase
        )
        body = ChaCha20Poly1305(wrap_key).encrypt(_ZERO_NONCE, file_key, None)
        return Stanza("scrypt", (_b64(salt).decode("ascii"), str(self.log_n)), body)


def _header(file_key: bytes, stanzas: Sequence[Stanza]) -> bytes:
    """The whole header, MAC line included (spec, "Header" and "Header MAC")."""
    head = _VERSION_LINE + b"".join(s.encode() for s in stanzas) + b"---"
    # The MAC covers the header up to and including "---", not the space after it.
    mac_key = _hkdf(file_key, salt=b"", info=b"header")
    mac = hmac.new(mac_key, head, "sha256").digest()
    return head + b" " + _b64(mac) + b"\n"


class AgeWriter(io.BufferedIOBase):
    """A write-only, non-seekable stream that encrypts what it is given to `sink` as age v1.

    The header and payload nonce are written when it is built; each full 64 KiB of
    plaintext leaves as soon as more follows it (the last chunk must carry the final flag,
    so up to one chunk is held back); `close()` writes the final chunk. The sink is closed
    too only when `close_sink` is true. `tell()` is the count of plaintext bytes taken.
    """

    def __init__(
        self,
        sink: BinaryIO,
        recipients: Sequence[Recipient],
        *,
        close_sink: bool = False,
    ) -> None:
        super().__init__()
        # Set before anything can fail, so that __del__ of a half-built writer is quiet.
        self._sink = sink
        self._close_sink = close_sink
        self._buffer = bytearray()
        self._counter = 0
        self._position = 0
        self._broken = False
        self._closing = False
        if not recipients:
            raise ValueError("an age file needs at least one recipient")
        # Spec, "scrypt recipient stanza": it MUST be the only stanza, "to uphold an
        # expectation of authentication that is implicit in password-based encryption".
        if len(recipients) > 1 and any(isinstance(r, ScryptRecipient) for r in recipients):
            raise ValueError("a passphrase (scrypt) recipient must be the only recipient")
        file_key = os.urandom(_FILE_KEY_SIZE)
        stanzas = [r.wrap(file_key) for r in recipients]
        nonce = os.urandom(16)
        # Spec, "Payload": the payload key is bound to a fresh nonce sent after the header.
        self._aead = ChaCha20Poly1305(_hkdf(file_key, salt=nonce, info=b"payload"))
        try:
            self._emit(_header(file_key, stanzas) + nonce)
        except BaseException:
            self._broken = True
            raise

    def writable(self) -> bool:
        """Always true."""
        return True

    def seekable(self) -> bool:
        """Always false: age ciphertext is written once, front to back."""
        return False

    def readable(self) -> bool:
        """Always false."""
        return False

    def tell(self) -> int:
        """How many plaintext bytes have been written so far."""
        self._check_open()
        return self._position

    def write(self, data: ReadableBuffer, /) -> int:
        """Take all of `data`, sealing and sending every chunk known not to be the last."""
        self._check_open()
        view = memoryview(data).cast("B")
        size = len(view)
        offset = 0
        try:
            while size - offset > CHUNK_SIZE - len(self._buffer):
                # More data follows this chunk, so it is not the last one: seal it now.
                if self._buffer:
                    take = CHUNK_SIZE - len(self._buffer)
                    self._buffer += view[offset : offset + take]
                    offset += take
                    self._seal(self._buffer, final=False)
                    self._buffer.clear()
                else:
                    self._seal(view[offset : offset + CHUNK_SIZE], final=False)
                    offset += CHUNK_SIZE
            self._buffer += view[offset:]
        except BaseException:
            self._broken = True
            raise
        self._position += size
        return size

    def flush(self) -> None:
        """Flush the sink; the held-back chunk can only leave with more data or at close."""
        if self._closing:
            return  # io.IOBase.close() calls flush(); close() has flushed the sink itself
        self._check_open()
        self._sink.flush()

    def close(self) -> None:
        """Seal the final chunk (empty only when nothing was written), then close."""
        if self.closed or self._closing:
            return
        self._closing = True
        try:
            if not self._broken:
                # Spec, "Payload": the final chunk may be empty only if the whole payload is.
                self._seal(self._buffer, final=True)
                self._sink.flush()
        except BaseException:
            self._broken = True
            raise
        finally:
            self._buffer.clear()
            super().close()
            if self._close_sink:
                self._sink.close()

    def abort(self) -> None:
        """Close without the final chunk, so that no decryptor accepts what was written."""
        self._broken = True
        self.close()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()

    def __del__(self) -> None:
        # A writer dropped without close() must not be finalised into a valid-looking
        # file (io.IOBase would call close()): it stays truncated, and the sink open.
        if not self.closed:
            self._broken = True
            self._closing = True
            self._buffer.clear()
            io.BufferedIOBase.close(self)

    def _check_open(self) -> None:
        if self.closed or self._closing:
            raise ValueError("I/O operation on a closed AgeWriter")
        if self._broken:
            raise OSError("an earlier write failed; this age file is incomplete")

    def _seal(self, chunk: ReadableBuffer, *, final: bool) -> None:
        if self._counter >= _MAX_CHUNKS:
            raise OverflowError("age STREAM counter exhausted")
        # Spec, "Payload": nonce = 11-byte big-endian chunk counter || 0x01 if last else 0x00.
        nonce = self._counter.to_bytes(11, "big") + (b"\x01" if final else b"\x00")
        self._counter += 1
        self._emit(self._aead.encrypt(nonce, bytes(chunk), None))

    def _emit(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            # A raw sink may take less than it was given; BinaryIO sinks take it all.
            written = self._sink.write(view)
            if not written:  # None or 0: a non-blocking sink that is full
                raise BlockingIOError("the sink would block; AgeWriter needs a blocking sink")
            view = view[written:]
