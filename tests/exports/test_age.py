"""The age writer: what it writes, the real `age` CLI and pyrage (rage) decrypt.

Nothing here decrypts with our own code: every round trip goes through an independent
implementation, so a mistake shared by writer and reader cannot hide.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from dpa.config import Settings
from exports.age import (
    CHUNK_SIZE,
    AgeWriter,
    Recipient,
    ScryptRecipient,
    Stanza,
    X25519Recipient,
    _bech32_encode,
)
from tests.conftest import Run, add_customer, need_tool
from tests.state import snapshot

pyrage = pytest.importorskip("pyrage")

SIZES = [0, 1, 65535, 65536, 65537, 3 * 65536]
SIZE_IDS = [f"{n}B" for n in SIZES]
PASSPHRASE = "correct horse battery staple"
# A fixed identity so that hypothesis examples need no function-scoped fixture.
IDENTITY = pyrage.x25519.Identity.generate()
RECIPIENT = X25519Recipient.parse(str(IDENTITY.to_public()))


@dataclass
class AgeKey:
    """A key made by the real `age-keygen`."""

    path: Path
    recipient: str


@pytest.fixture(scope="module")
def age_key(tmp_path_factory: pytest.TempPathFactory) -> AgeKey:
    """An identity file and its recipient string, from `age-keygen`."""
    if shutil.which("age") is None or shutil.which("age-keygen") is None:
        need_tool("age", "apt-get install age")
    path = tmp_path_factory.mktemp("age") / "key.txt"
    subprocess.run(["age-keygen", "-o", str(path)], check=True, capture_output=True)
    public = subprocess.run(
        ["age-keygen", "-y", str(path)], check=True, capture_output=True, text=True
    )
    return AgeKey(path, public.stdout.strip())


def age_decrypt(key: AgeKey, ciphertext: bytes) -> subprocess.CompletedProcess[bytes]:
    """Run `age -d -i KEY` on the ciphertext; the caller checks the outcome."""
    return subprocess.run(
        ["age", "-d", "-i", str(key.path)], input=ciphertext, capture_output=True, check=False
    )


def encrypt(plaintext: bytes, recipients: list[Recipient], pieces: int = 1) -> bytes:
    """Encrypt through AgeWriter, writing the plaintext in `pieces` roughly equal writes."""
    sink = io.BytesIO()
    with AgeWriter(sink, recipients) as writer:
        step = max(1, -(-len(plaintext) // pieces))
        for start in range(0, len(plaintext), step):
            writer.write(plaintext[start : start + step])
    return sink.getvalue()


def payload(size: int) -> bytes:
    """Deterministic, non-repeating-looking plaintext of `size` bytes."""
    return bytes((i * 7919 + i // 251) % 256 for i in range(size))


def header_length(ciphertext: bytes) -> int:
    """Bytes up to and including the MAC line."""
    return ciphertext.index(b"\n---") + len(b"\n--- ") + 43 + 1


# --- round trips through independent implementations -------------------------------------


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_age_cli_decrypts_x25519(age_key: AgeKey, size: int) -> None:
    plaintext = payload(size)
    ciphertext = encrypt(plaintext, [X25519Recipient.parse(age_key.recipient)], pieces=3)
    result = age_decrypt(age_key, ciphertext)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == plaintext


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_pyrage_decrypts_x25519(size: int) -> None:
    plaintext = payload(size)
    assert pyrage.decrypt(encrypt(plaintext, [RECIPIENT]), [IDENTITY]) == plaintext


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_pyrage_decrypts_passphrase(size: int) -> None:
    # The age CLI reads passphrases only from a terminal, so rage checks this one.
    plaintext = payload(size)
    ciphertext = encrypt(plaintext, [ScryptRecipient(PASSPHRASE.encode(), log_n=10)])
    assert pyrage.passphrase.decrypt(ciphertext, PASSPHRASE) == plaintext


def test_default_work_factor_is_accepted_by_rage() -> None:
    ciphertext = encrypt(b"one export", [ScryptRecipient(PASSPHRASE.encode())])
    assert b"\n-> scrypt " in ciphertext and b" 18\n" in ciphertext
    assert pyrage.passphrase.decrypt(ciphertext, PASSPHRASE) == b"one export"


@given(
    plaintext=st.binary(max_size=3 * CHUNK_SIZE + 10),
    pieces=st.integers(min_value=1, max_value=9),
)
def test_any_bytes_written_any_way_round_trip(plaintext: bytes, pieces: int) -> None:
    assert pyrage.decrypt(encrypt(plaintext, [RECIPIENT], pieces), [IDENTITY]) == plaintext


@given(
    plaintext=st.binary(max_size=2 * CHUNK_SIZE + 10),
    passphrase=st.text(min_size=1, max_size=40),
)
def test_any_bytes_and_passphrase_round_trip(plaintext: bytes, passphrase: str) -> None:
    ciphertext = encrypt(plaintext, [ScryptRecipient(passphrase.encode(), log_n=2)])
    assert pyrage.passphrase.decrypt(ciphertext, passphrase) == plaintext


def test_every_recipient_can_decrypt(age_key: AgeKey) -> None:
    recipients: list[Recipient] = [RECIPIENT, X25519Recipient.parse(age_key.recipient)]
    ciphertext = encrypt(b"for both", recipients)
    assert ciphertext.count(b"\n-> X25519 ") == 2
    assert pyrage.decrypt(ciphertext, [IDENTITY]) == b"for both"
    assert age_decrypt(age_key, ciphertext).stdout == b"for both"


def test_zip_written_through_the_writer(age_key: AgeKey, tmp_path: Path) -> None:
    members = {
        "calls.csv": b"start,caller,callee\n" * 20_000,
        "voicemail/0001.wav": os.urandom(3 * CHUNK_SIZE + 17),
        "empty.txt": b"",
    }
    target = tmp_path / "export.zip.age"
    recipient = X25519Recipient.parse(age_key.recipient)
    with (
        target.open("wb") as sink,
        AgeWriter(sink, [recipient]) as enc,
        zipfile.ZipFile(enc, "w", compression=zipfile.ZIP_DEFLATED) as package,
    ):
        for name, data in members.items():
            if name.startswith("voicemail/"):
                # Streamed member: zipfile writes a data descriptor (sink is not seekable).
                with package.open(name, "w") as member:
                    member.write(data[:1000])
                    member.write(data[1000:])
            else:
                package.writestr(name, data)
    result = age_decrypt(age_key, target.read_bytes())
    assert result.returncode == 0, result.stderr.decode()
    with zipfile.ZipFile(io.BytesIO(result.stdout)) as package:
        assert package.testzip() is None
        assert {n: package.read(n) for n in package.namelist()} == members


# --- what the ciphertext looks like ------------------------------------------------------


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_chunking(size: int) -> None:
    # Spec, Payload: full chunks, then a final one that is empty only for an empty file.
    ciphertext = encrypt(payload(size), [RECIPIENT], pieces=5)
    chunks = max(1, -(-size // CHUNK_SIZE))
    assert len(ciphertext) == header_length(ciphertext) + 16 + size + 16 * chunks


def test_header_shape() -> None:
    ciphertext = encrypt(b"x", [RECIPIENT])
    header = ciphertext[: header_length(ciphertext)].decode("ascii")
    assert re.fullmatch(
        r"age-encryption\.org/v1\n"
        r"-> X25519 [A-Za-z0-9+/]{43}\n"
        r"[A-Za-z0-9+/]{43}\n"
        r"--- [A-Za-z0-9+/]{43}\n",
        header,
    ), header


@pytest.mark.parametrize(
    ("body_size", "line_lengths"),
    [(0, [0]), (32, [43]), (47, [63]), (48, [64, 0]), (49, [64, 2]), (96, [64, 64, 0])],
    ids=["empty", "file-key", "47B", "48B-full-line", "49B", "96B-two-full-lines"],
)
def test_stanza_body_wraps_at_64_columns(body_size: int, line_lengths: list[int]) -> None:
    encoded = Stanza("test", ("a", "b"), bytes(body_size)).encode()
    lines = encoded.split(b"\n")
    assert lines[0] == b"-> test a b"
    assert lines[-1] == b""  # the last body line ends with a newline too
    assert [len(line) for line in lines[1:-1]] == line_lengths
    assert b"=" not in encoded


@pytest.mark.parametrize(
    "args",
    [("",), ("two words",), ("caf\u00e9",), ("tab\t",)],
    ids=["empty", "space", "non-ascii", "tab"],
)
def test_stanza_refuses_bad_arguments(args: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="printable ASCII"):
        Stanza("test", args, b"")


def test_writes_leave_as_soon_as_a_chunk_is_known_not_last() -> None:
    sink = io.BytesIO()
    writer = AgeWriter(sink, [RECIPIENT])
    start = len(sink.getvalue())
    writer.write(bytes(CHUNK_SIZE))
    assert len(sink.getvalue()) == start  # might be the last chunk: held back
    writer.write(b"\x00")
    assert len(sink.getvalue()) == start + CHUNK_SIZE + 16
    for _ in range(20):
        writer.write(bytes(CHUNK_SIZE))
        # Never more than one chunk of plaintext is held in memory.
        assert (
            writer.tell() - (len(sink.getvalue()) - start) // (CHUNK_SIZE + 16) * CHUNK_SIZE
            <= CHUNK_SIZE
        )
    writer.close()
    assert pyrage.decrypt(sink.getvalue(), [IDENTITY]) == bytes(21 * CHUNK_SIZE + 1)


def test_stream_is_write_only_and_not_seekable() -> None:
    writer = AgeWriter(io.BytesIO(), [RECIPIENT])
    assert writer.writable() and not writer.seekable() and not writer.readable()
    writer.write(b"abc")
    writer.write(memoryview(b"defg"))
    assert writer.tell() == 7
    with pytest.raises(io.UnsupportedOperation):
        writer.seek(0)
    with pytest.raises(io.UnsupportedOperation):
        writer.read()
    writer.close()
    with pytest.raises(ValueError, match="closed"):
        writer.write(b"more")
    writer.close()  # closing twice is harmless


@pytest.mark.parametrize("close_sink", [False, True], ids=["sink-left-open", "sink-closed"])
def test_sink_closed_only_when_asked(close_sink: bool) -> None:
    sink = io.BytesIO()
    AgeWriter(sink, [RECIPIENT], close_sink=close_sink).close()
    assert sink.closed is close_sink


# --- recipients ----------------------------------------------------------------------------


def test_recipient_strings_round_trip(age_key: AgeKey) -> None:
    for text in (age_key.recipient, str(IDENTITY.to_public())):
        assert str(X25519Recipient.parse(text)) == text
        assert str(X25519Recipient.parse(text.upper())) == text


def test_spec_example_recipient() -> None:
    # The example key pair of the age spec, "The X25519 recipient type".
    identity = pyrage.x25519.Identity.from_str(
        "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX"
    )
    text = "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj"
    recipient = X25519Recipient.parse(text)
    assert str(recipient) == text == str(identity.to_public())
    assert pyrage.decrypt(encrypt(b"spec", [recipient]), [identity]) == b"spec"


@given(secret=st.binary(min_size=32, max_size=32))
def test_any_key_encodes_and_parses_back(secret: bytes) -> None:
    # Any public key X25519 can produce (a low-order point is refused: see below).
    key = X25519PrivateKey.from_private_bytes(secret).public_key().public_bytes_raw()
    text = str(X25519Recipient(key))
    assert text.startswith("age1") and len(text) == 62
    assert X25519Recipient.parse(text).public_key == key


# Valid Bech32 around the wrong content, so each case trips exactly one check.
GOOD = str(X25519Recipient(bytes(range(32))))


def _flip_last(text: str) -> str:
    return text[:-1] + ("q" if text[-1] != "q" else "p")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_flip_last(GOOD), "checksum"),
        (GOOD[:10] + GOOD[11] + GOOD[10] + GOOD[12:], "checksum"),
        (_bech32_encode("age", bytes(31)), "31 bytes, expected 32"),
        (_bech32_encode("age", bytes(33)), "33 bytes, expected 32"),
        (_bech32_encode("agf", bytes(32)), "prefix is 'agf'"),
        (_bech32_encode("age1pq", bytes(32)), "prefix is 'age1pq'"),
        (GOOD[:5] + GOOD[5:].upper(), "mixes upper and lower case"),
        (GOOD[:-3] + "b" + GOOD[-2:], "characters Bech32 does not use"),
        (GOOD[:20] + " " + GOOD[20:], "printable ASCII"),
        ("age", "separator"),
        ("age1qqq", "too short"),
        ("", "separator"),
        ("AGE-SECRET-KEY-1" + "Q" * 58, "secret key"),
    ],
    ids=[
        "wrong-checksum",
        "swapped-characters",
        "too-short-key",
        "too-long-key",
        "wrong-hrp",
        "other-hrp",
        "mixed-case",
        "not-bech32",
        "space",
        "no-separator",
        "no-checksum",
        "empty",
        "secret-key",
    ],
)
def test_bad_recipient_is_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as error:
        X25519Recipient.parse(text)
    if len(text) > 10:
        # The message says what is wrong without repeating the key.
        assert text[6:] not in str(error.value)
        assert text[6:].lower() not in str(error.value)


# Points of small order on Curve25519 (and their non-canonical encodings): the shared
# secret with any key is all zeros (RFC 7748 section 6.1).
LOW_ORDER = {
    "zero": "00" * 32,
    "one": "01" + "00" * 31,
    "order-8-a": "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
    "order-8-b": "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
    "p-minus-1": "ec" + "ff" * 30 + "7f",
    "p": "ed" + "ff" * 30 + "7f",
    "p-plus-1": "ee" + "ff" * 30 + "7f",
}


@pytest.mark.parametrize("point", list(LOW_ORDER.values()), ids=list(LOW_ORDER))
def test_low_order_key_is_refused_when_read(point: str) -> None:
    with pytest.raises(ValueError, match="low-order"):
        X25519Recipient.parse(_bech32_encode("age", bytes.fromhex(point)))
    with pytest.raises(ValueError, match="low-order"):
        X25519Recipient(bytes.fromhex(point))


def test_export_to_a_low_order_recipient_is_refused_naming_the_option(
    cli: Callable[..., Run], settings: Settings
) -> None:
    cli("init")
    add_customer(cli, samples=("cdr",))
    before = snapshot(settings)
    point = _bech32_encode("age", bytes.fromhex(LOW_ORDER["order-8-a"]))
    run = cli("export", "create", "--customer", "acme", "--recipient", point, code=2)
    assert "--recipient" in run.stderr and "low-order" in run.stderr
    assert snapshot(settings) == before


def test_scrypt_must_be_the_only_recipient() -> None:
    with pytest.raises(ValueError, match="only recipient"):
        AgeWriter(io.BytesIO(), [ScryptRecipient(b"pw", log_n=2), RECIPIENT])


def test_recipients_are_validated_when_built() -> None:
    with pytest.raises(ValueError, match="at least one recipient"):
        AgeWriter(io.BytesIO(), [])
    with pytest.raises(ValueError, match="non-empty passphrase"):
        ScryptRecipient(b"")
    with pytest.raises(ValueError, match="between 1 and 30"):
        ScryptRecipient(b"pw", log_n=0)
    with pytest.raises(ValueError, match="32 bytes"):
        X25519Recipient(bytes(31))
    assert "hunter2" not in repr(ScryptRecipient(b"hunter2"))


# --- nothing damaged or unfinished ever decrypts ------------------------------------------


@pytest.mark.parametrize(
    "where",
    ["stanza-body", "header-mac", "payload-nonce", "first-chunk", "last-byte"],
)
def test_tampered_ciphertext_is_refused(age_key: AgeKey, where: str) -> None:
    ciphertext = bytearray(
        encrypt(payload(CHUNK_SIZE + 100), [X25519Recipient.parse(age_key.recipient)])
    )
    end = header_length(ciphertext)
    position = {
        "stanza-body": ciphertext.index(b"\n---") - 5,
        "header-mac": end - 5,
        "payload-nonce": end + 3,
        "first-chunk": end + 16 + 1000,
        "last-byte": len(ciphertext) - 1,
    }[where]
    if where in ("stanza-body", "header-mac"):
        # Another base64 letter, so that it is the MAC, not the parser, that objects.
        ciphertext[position] = ord("B") if ciphertext[position] == ord("A") else ord("A")
    else:
        ciphertext[position] ^= 0x01
    result = age_decrypt(age_key, bytes(ciphertext))
    assert result.returncode != 0
    assert len(result.stdout) <= CHUNK_SIZE  # at most the chunks verified before the fault
    with pytest.raises(pyrage.DecryptError):
        pyrage.decrypt(bytes(ciphertext), [IDENTITY])


def test_truncated_ciphertext_is_refused(age_key: AgeKey) -> None:
    ciphertext = encrypt(payload(2 * CHUNK_SIZE + 1), [X25519Recipient.parse(age_key.recipient)])
    # Drop the final chunk: what remains ends on a chunk boundary with no final flag.
    result = age_decrypt(age_key, ciphertext[: -(1 + 16)])
    assert result.returncode != 0


def test_exception_leaves_an_undecryptable_file(age_key: AgeKey) -> None:
    sink = io.BytesIO()
    with (
        pytest.raises(RuntimeError),
        AgeWriter(sink, [X25519Recipient.parse(age_key.recipient)]) as writer,
    ):
        writer.write(b"half an export")
        raise RuntimeError("database went away")
    assert writer.closed
    assert age_decrypt(age_key, sink.getvalue()).returncode != 0


def test_dropped_writer_is_not_finalised(age_key: AgeKey) -> None:
    sink = io.BytesIO()
    writer = AgeWriter(sink, [X25519Recipient.parse(age_key.recipient)])
    writer.write(b"never closed")
    del writer  # io.IOBase would close(), and so seal a file that looks whole
    assert age_decrypt(age_key, sink.getvalue()).returncode != 0
    assert not sink.closed


class FailingSink(io.BytesIO):
    """A sink that fails after a number of bytes, like a full disk."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def write(self, data: object) -> int:
        if self.tell() > self.limit:
            raise OSError(28, "No space left on device")
        return super().write(data)  # type: ignore[arg-type]


def test_failing_sink_poisons_the_writer() -> None:
    sink = FailingSink(limit=CHUNK_SIZE)
    writer = AgeWriter(sink, [RECIPIENT])
    with pytest.raises(OSError, match="No space"):
        writer.write(bytes(4 * CHUNK_SIZE))
    with pytest.raises(OSError, match="incomplete"):
        writer.write(b"more")
    sink.limit = 10**9
    writer.close()  # no final chunk after a failure
    with pytest.raises(pyrage.DecryptError):
        pyrage.decrypt(sink.getvalue(), [IDENTITY])
