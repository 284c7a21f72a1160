"""Encrypted blob files: round trip, chunking, and refusal of tampered or moved blobs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from dpa import blobs as blobs_mod
from dpa.blobs import BlobCorrupt, BlobStore


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "blobs")


@pytest.mark.parametrize(
    "size",
    [
        pytest.param(0, id="empty"),
        pytest.param(1000, id="small"),
        pytest.param(3 * 4096 + 17, id="several-chunks"),
    ],
)
def test_round_trip(
    store: BlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    monkeypatch.setattr(blobs_mod, "CHUNK", 4096)
    data = os.urandom(size)
    source = tmp_path / "audio.wav"
    source.write_bytes(data)
    aead = AESGCM(AESGCM.generate_key(bit_length=256))
    assert store.write("b" * 32, aead, source, label="rec1") == size
    stored = store.path("b" * 32).read_bytes()
    assert data[:64] not in stored or size < 64
    assert b"".join(store.read("b" * 32, aead, label="rec1")) == data


def test_wrong_label_truncation_and_wrong_key_fail(
    store: BlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(blobs_mod, "CHUNK", 4096)
    source = tmp_path / "audio.wav"
    source.write_bytes(os.urandom(10_000))
    aead = AESGCM(AESGCM.generate_key(bit_length=256))
    store.write("c" * 32, aead, source, label="rec1")
    with pytest.raises(BlobCorrupt):
        b"".join(store.read("c" * 32, aead, label="rec2"))  # moved to another record
    with pytest.raises(BlobCorrupt):
        b"".join(store.read("c" * 32, AESGCM(AESGCM.generate_key(bit_length=256)), label="rec1"))
    path = store.path("c" * 32)
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])  # cut after the first chunk or mid-chunk
    with pytest.raises(BlobCorrupt):
        b"".join(store.read("c" * 32, aead, label="rec1"))


def test_failed_write_leaves_nothing(store: BlobStore, tmp_path: Path) -> None:
    aead = AESGCM(AESGCM.generate_key(bit_length=256))
    with pytest.raises(FileNotFoundError):
        store.write("d" * 32, aead, tmp_path / "missing.wav", label="x")
    assert not store.path("d" * 32).exists()
    assert not list(store.root.rglob("*.part"))


def test_files_lists_blobs_in_id_order_and_leaves_out_what_is_not_the_stores(
    store: BlobStore, tmp_path: Path
) -> None:
    source = tmp_path / "plain"
    source.write_bytes(b"audio")
    aead = AESGCM(AESGCM.generate_key(bit_length=256))
    ids = sorted(f"{n:02x}" + "0" * 30 for n in (0xF0, 0x0A, 0x3C))
    for blob_id in ids:
        store.write(blob_id, aead, source, label="r")
    unfinished = store.path(ids[0]).with_name(ids[0][:-1] + "1.part")
    unfinished.write_bytes(b"half")
    (store.root / "notes.txt").write_text("x")
    (store.path(ids[1]).parent / ("ff" + "0" * 30)).write_bytes(b"wrong folder")
    (store.root / "zz").mkdir()
    listed = list(store.files())
    assert [f.name for f in listed] == [ids[0], unfinished.name, ids[1], ids[2]]
    assert [f.size for f in listed][1] == 4
    store.delete(ids[0][:-1] + "1")
    assert not unfinished.exists() and not store.exists(ids[0][:-1] + "1")
    assert store.exists(ids[0])
