"""Received faxes: HylaFAX's xferfaxlog with its recvq, Asterisk/FreePBX TIFFs, mailed PDFs.

The xferfaxlog and the sidecar come from tests/data/real/fax (SOURCES.md); the TIFF and PDF
files are built here, a few bytes each.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dpa import identity
from dpa.errors import FileLineError, InputError
from dpa.parsers.base import ParsedRecord
from dpa.parsers.fax import HylafaxScan, parse_fax_files, parse_hylafax

REAL = Path(__file__).parents[2] / "data" / "real" / "fax"
LOG = REAL / "hylafax" / "etc" / "xferfaxlog"
SIDECAR = REAL / "asterisk" / "1774689302.1.json"
BXL = ZoneInfo("Europe/Brussels")
RECV = (
    '03/27/26 10:41\tRECV\t000000012\tttyS0\trecvq/fax000000005.tif\t""\tfax\t'
    '"+32 2 555 12 34"\t"+32 2 555 98 76"\t3407912\t2\t1:02\t0:55\t""\t"DUPONT"\t'
    '"025559876"\t""\t""\t"00 00 00"\t\n'
)


def tiff_bytes(data: bytes = b"\x00", *, big_endian: bool = False) -> bytes:
    """A valid one-strip bilevel TIFF, `data` its pixels (8 per byte, one row)."""
    order = ">" if big_endian else "<"
    entries = [
        (256, 3, len(data) * 8),  # ImageWidth
        (257, 3, 1),  # ImageLength
        (258, 3, 1),  # BitsPerSample
        (259, 3, 1),  # Compression: none
        (262, 3, 0),  # PhotometricInterpretation: WhiteIsZero, as fax pages are
        (273, 4, 0),  # StripOffsets: set below
        (278, 3, 1),  # RowsPerStrip
        (279, 4, len(data)),  # StripByteCounts
    ]
    strip = 8 + 2 + 12 * len(entries) + 4
    ifd = struct.pack(f"{order}H", len(entries))
    for tag, kind, value in entries:
        value = strip if tag == 273 else value
        packed = (
            struct.pack(f"{order}HH", value, 0) if kind == 3 else struct.pack(f"{order}I", value)
        )
        ifd += struct.pack(f"{order}HHI", tag, kind, 1) + packed
    ifd += struct.pack(f"{order}I", 0)
    magic = b"MM\x00*" if big_endian else b"II*\x00"
    return magic + struct.pack(f"{order}I", 8) + ifd + data


def pdf_bytes(text: str = "fax") -> bytes:
    """A minimal PDF document (one empty page), `text` in a comment so files differ."""
    return (
        b"%PDF-1.4\n%" + text.encode() + b"\n"
        b"1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
        b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]>>endobj\n"
        b"trailer<</Root 1 0 R>>\n%%EOF\n"
    )


def hylafax_spool(root: Path, log: str | None = None) -> Path:
    """A HylaFAX spool: the real xferfaxlog (or `log`) and the recvq TIFFs it names."""
    spool = root / "hylafax"
    (spool / "etc").mkdir(parents=True)
    if log is None:
        shutil.copy(LOG, spool / "etc" / "xferfaxlog")
    else:
        (spool / "etc" / "xferfaxlog").write_text(log, encoding="utf-8")
    recvq = spool / "recvq"
    recvq.mkdir()
    (recvq / "fax000000005.tif").write_bytes(tiff_bytes(b"\x0f\xf0"))
    (recvq / "fax000000006.tif").write_bytes(tiff_bytes(b"\x55", big_endian=True))
    return spool


def hylafax(spool: Path, **options: object) -> list[ParsedRecord]:
    return list(parse_hylafax(spool, BXL, **options))  # type: ignore[arg-type]


# HylaFAX -------------------------------------------------------------------------------


def test_the_real_log_yields_one_record_per_recv_line(tmp_path: Path) -> None:
    spool = hylafax_spool(tmp_path)
    (spool / "recvq" / "fax000000007.tif").write_bytes(tiff_bytes(b"\x01"))  # being received
    scan = HylafaxScan()
    first, second = hylafax(spool, scan=scan)  # SEND and CALL lines are no fax received
    tif = spool / "recvq" / "fax000000005.tif"
    sha256 = hashlib.sha256(tif.read_bytes()).hexdigest()
    assert (first.line, first.category, first.media) == (6, "fax", tif)
    assert first.collected_at == datetime(2026, 3, 27, 9, 41, tzinfo=UTC)  # winter time
    assert first.phones == ("025559876", "+32 2 555 12 34")
    assert first.payload == {
        "start": "2026-03-27T09:41:00+00:00",
        "direction": "in",
        "caller": "025559876",
        "callee": "+32 2 555 12 34",
        "pages": 2,
        "station_id": "+32 2 555 98 76",
        "status": "SUCCESS",
        "duration": 55,
        "call_id": "000000012",
        "time_from": "xferfaxlog",
        "format": "tif",
        "sha256": sha256,
        "file": "recvq/fax000000005.tif",
    }
    assert first.source_key == identity.source_key("fax", first.payload, sha256)
    # The 29th of March 2026 is the first day of summer time: 16:05 local is 14:05 UTC.
    assert second.line == 7
    assert second.payload["start"] == "2026-03-29T14:05:00+00:00"
    assert second.payload["status"] == "RSPREC error/got DCN (sender abort)"
    assert second.payload["station_id"] == "FAX 0470 55 12 34"
    assert second.phones == ("0470551234", "+32 2 555 12 34")
    assert second.media == spool / "recvq" / "fax000000006.tif"
    assert (scan.missing, scan.unlogged) == ([], 1)


def test_the_log_is_found_under_log_or_given(tmp_path: Path) -> None:
    spool = hylafax_spool(tmp_path)
    (spool / "log").mkdir()
    (spool / "etc" / "xferfaxlog").rename(spool / "log" / "xferfaxlog")
    assert [r.line for r in hylafax(spool)] == [6, 7]
    elsewhere = tmp_path / "xferfaxlog.1"
    shutil.copy(spool / "log" / "xferfaxlog", elsewhere)
    (spool / "log" / "xferfaxlog").unlink()
    assert [r.line for r in hylafax(spool, log=elsewhere)] == [6, 7]
    with pytest.raises(InputError, match="no etc/xferfaxlog or log/xferfaxlog"):
        hylafax(spool)
    with pytest.raises(InputError, match="not a folder"):
        hylafax(elsewhere)
    with pytest.raises(InputError, match="no such file"):
        hylafax(spool, log=tmp_path / "absent")


def test_a_copy_of_the_spool_is_the_same_faxes(tmp_path: Path) -> None:
    spool = hylafax_spool(tmp_path)
    copy = tmp_path / "copy"
    shutil.copytree(spool, copy)
    assert [r.source_key for r in hylafax(spool)] == [r.source_key for r in hylafax(copy)]


def test_a_fax_faxcron_removed_refuses_the_log_unless_skipped(tmp_path: Path) -> None:
    spool = hylafax_spool(tmp_path)
    (spool / "recvq" / "fax000000005.tif").unlink()
    with pytest.raises(FileLineError) as caught:
        hylafax(spool)
    assert (caught.value.line, caught.value.file) == (6, str(spool / "etc" / "xferfaxlog"))
    assert "recvq/fax000000005.tif is not in the spool" in caught.value.reason
    scan = HylafaxScan()
    assert [r.line for r in hylafax(spool, skip_missing=True, scan=scan)] == [7]
    assert scan.missing == [6]


def test_a_log_with_no_fax_to_store_is_refused_naming_it(tmp_path: Path) -> None:
    """Regression (fuzz): every fax passed over, or no RECV line at all, was refused by the
    ingest as "the file holds no records", naming no file."""
    spool = hylafax_spool(tmp_path)
    for tif in ("fax000000005.tif", "fax000000006.tif"):
        (spool / "recvq" / tif).unlink()
    log = spool / "etc" / "xferfaxlog"
    scan = HylafaxScan()
    with pytest.raises(InputError) as caught:
        hylafax(spool, skip_missing=True, scan=scan)
    assert str(caught.value) == (
        f"{log}: no RECV line whose fax is still in recvq (2 passed over): no fax received to store"
    )
    assert scan.missing == [6, 7]
    log.write_text("".join(LOG.read_text().splitlines(keepends=True)[:5]))  # SEND and CALL
    with pytest.raises(InputError, match=r"xferfaxlog: no RECV line: no fax received to store$"):
        hylafax(spool)
    # With --quarantine a log of bad lines only is not refused here: its lines are set aside.
    log.write_text("garbage\n")
    kept: list[int] = []
    assert list(parse_hylafax(spool, BXL, on_bad_line=lambda e, raw: kept.append(e.line))) == []
    assert kept == [1]


def _line(**changes: str) -> str:
    fields = RECV.rstrip("\n").split("\t")
    names = {"date": 0, "kind": 1, "qfile": 4, "pages": 10, "jobtime": 11, "conntime": 12}
    for key, value in changes.items():
        fields[names[key]] = value
    return "\t".join(fields) + "\n"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        pytest.param(_line(date="13/27/26 10:41"), "the date is not MM/DD/YY HH:MM", id="month"),
        pytest.param(_line(date="2026-03-27 10:41"), "the date is not MM/DD/YY HH:MM", id="iso"),
        pytest.param(_line(kind="RECEIVED"), "not an xferfaxlog line", id="kind"),
        pytest.param("just some text\n", "not an xferfaxlog line", id="text"),
        pytest.param(
            "\t".join(RECV.split("\t")[:13]) + "\n",
            "a RECV line has at least 14 tab-separated fields; this one has 13",
            id="short",
        ),
        pytest.param(_line(qfile=""), "names no received file", id="no-qfile"),
        pytest.param(_line(qfile="../../etc/passwd"), "not a TIFF under recvq/", id="escape"),
        pytest.param(_line(qfile="recvq/../fax1.tif"), "not a TIFF under recvq/", id="dotdot"),
        pytest.param(_line(qfile="docq/doc12.ps"), "not a TIFF under recvq/", id="docq"),
        pytest.param(_line(pages="two"), "the page count is not", id="pages"),
        pytest.param(_line(pages="99999999"), "the page count is not", id="pages-huge"),
        pytest.param(_line(conntime="0:5"), "the connection time is not [H:]MM:SS", id="conn"),
        pytest.param(_line(conntime="1:75:00"), "the connection time", id="minutes"),
        pytest.param(_line(jobtime="soon"), "the session time is not [H:]MM:SS", id="job"),
    ],
)
def test_a_malformed_line_refuses_the_log_at_its_line(
    tmp_path: Path, line: str, reason: str
) -> None:
    spool = hylafax_spool(tmp_path, log=line + RECV)
    yielded: list[ParsedRecord] = []
    with pytest.raises(FileLineError) as caught:
        yielded.extend(parse_hylafax(spool, BXL))
    assert yielded == []
    assert caught.value.line == 1
    assert reason in caught.value.reason
    # Nothing the line holds is quoted back.
    assert "555" not in str(caught.value) and "DUPONT" not in str(caught.value)


def test_a_recvq_file_that_is_not_a_tiff_refuses_the_log(tmp_path: Path) -> None:
    spool = hylafax_spool(tmp_path)
    (spool / "recvq" / "fax000000005.tif").write_bytes(pdf_bytes())
    yielded: list[ParsedRecord] = []
    with pytest.raises(FileLineError) as caught:
        yielded.extend(parse_hylafax(spool, BXL))
    assert yielded == []
    assert caught.value.line == 6
    assert caught.value.reason == (
        "recvq/fax000000005.tif: not a TIFF file (its first bytes are not II*\\0 or MM\\0*)"
    )


def test_quarantine_sets_bad_lines_aside_and_reads_on(tmp_path: Path) -> None:
    bad = _line(pages="x")
    spool = hylafax_spool(tmp_path, log=bad + RECV + "garbage\n")
    kept: list[tuple[int, str, str]] = []
    records = list(
        parse_hylafax(spool, BXL, on_bad_line=lambda e, raw: kept.append((e.line, e.reason, raw)))
    )
    assert [r.line for r in records] == [2]
    assert [(line, raw) for line, _, raw in kept] == [(1, bad), (3, "garbage\n")]


def test_the_line_shapes_of_other_versions(tmp_path: Path) -> None:
    fields = RECV.rstrip("\n").split("\t")
    old = "\t".join(fields[:14])  # HylaFAX before 4.2: no caller id
    gofaxip = "\t".join([*fields[:14], '""DUPONT""', '""025559876""', '""', '""', '"00 00 00"'])
    hours = "\t".join([*fields[:11], "01:02:03", "00:59:59", *fields[13:]])
    blank = "\n\r\n"
    spool = hylafax_spool(tmp_path, log="\n".join([old, gofaxip, hours]) + "\n" + blank)
    first, second, third = hylafax(spool)
    assert (first.payload["caller"], first.phones) == (None, ("+32 2 555 12 34",))
    assert second.payload["caller"] == "025559876"
    assert third.payload["duration"] == 3599


def test_a_caller_name_in_latin_1_is_read(tmp_path: Path) -> None:
    spool = hylafax_spool(tmp_path)
    log = spool / "etc" / "xferfaxlog"
    log.write_bytes(RECV.replace('"DUPONT"', '"M\u00dcLLER"').encode("latin-1"))
    (record,) = hylafax(spool)
    assert record.payload["caller"] == "025559876"


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    fields=st.lists(
        st.one_of(
            st.sampled_from(
                ["RECV", "SEND", "03/27/26 10:41", "recvq/fax000000005.tif", "2", "0:55", '""']
            ),
            st.text(alphabet=st.characters(blacklist_characters="\t\n"), max_size=12),
        ),
        max_size=22,
    ),
    tail=st.binary(max_size=40),
)
def test_any_log_line_parses_or_is_refused_with_its_line(
    tmp_path_factory: pytest.TempPathFactory, fields: list[str], tail: bytes
) -> None:
    spool = hylafax_spool(tmp_path_factory.mktemp("h"))
    log = spool / "etc" / "xferfaxlog"
    log.write_bytes("\t".join(fields).encode("utf-8", "surrogatepass") + b"\n" + tail)
    try:
        records = hylafax(spool)
    except FileLineError as exc:
        assert 1 <= exc.line <= 2 + tail.count(b"\n")
        return
    except InputError:
        return
    for record in records:
        assert record.category == "fax"
        json.dumps(record.payload)


# Asterisk, FreePBX and fax-to-mail files -------------------------------------------------


def asterisk_folder(root: Path) -> Path:
    """FreePBX's /var/spool/asterisk/fax: UNIQUEID.tif with a sidecar, and one without."""
    folder = root / "fax"
    folder.mkdir()
    (folder / "1774689302.1.tif").write_bytes(tiff_bytes(b"\x11\x22"))
    shutil.copy(SIDECAR, folder / "1774689302.1.json")
    (folder / "pbx-01-1774700000.7.tif").write_bytes(tiff_bytes(b"\x33"))
    return folder


def test_a_freepbx_folder(tmp_path: Path) -> None:
    folder = asterisk_folder(tmp_path)
    with_sidecar, named = parse_fax_files([folder], BXL)
    tif = folder / "1774689302.1.tif"
    sha256 = hashlib.sha256(tif.read_bytes()).hexdigest()
    assert (with_sidecar.line, with_sidecar.media) == (1, tif)
    assert with_sidecar.collected_at == datetime(2026, 3, 28, 9, 15, 2, tzinfo=UTC)
    assert with_sidecar.phones == ("+3225559876", "025551234")
    assert with_sidecar.payload == {
        "start": "2026-03-28T09:15:02+00:00",
        "direction": "in",
        "caller": "+3225559876",
        "callee": "025551234",
        "pages": 3,
        "station_id": "+32 2 555 98 76",
        "status": "SUCCESS",
        "duration": None,
        "call_id": "1774689302.1",
        "time_from": "sidecar",
        "format": "tif",
        "sha256": sha256,
        "file": "1774689302.1.tif",
    }
    assert with_sidecar.source_key == identity.source_key("fax", with_sidecar.payload, sha256)
    # Without a sidecar the uniqueid (after an asterisk.conf systemname) dates the fax.
    assert named.line == 2
    assert named.phones == ()
    assert named.payload["start"] == "2026-03-28T12:13:20+00:00"
    assert (named.payload["call_id"], named.payload["time_from"]) == (
        "pbx-01-1774700000.7",
        "uniqueid",
    )


def test_a_sidecar_without_an_offset_is_local_time(tmp_path: Path) -> None:
    tif = tmp_path / "in.tiff"
    tif.write_bytes(tiff_bytes())
    tif.with_suffix(".json").write_text('{"start": "2026-10-25T02:30:00", "duration": 61}')
    (record,) = parse_fax_files([tif], BXL)
    assert record.payload["start"] == "2026-10-25T00:30:00+00:00"  # fold=0: summer time
    assert (record.payload["duration"], record.payload["format"]) == (61, "tiff")
    assert record.payload["file"] == "in.tiff"


def test_a_mailed_pdf_with_its_sidecar(tmp_path: Path) -> None:
    mailbox = tmp_path / "mail" / "2026-03"
    mailbox.mkdir(parents=True)
    pdf = mailbox / "fax-from-025559876.PDF"
    pdf.write_bytes(pdf_bytes())
    pdf.with_suffix(".json").write_text(
        json.dumps({"start": "2026-03-28T11:00:00Z", "caller": "025559876", "pages": 1})
    )
    (record,) = parse_fax_files([tmp_path / "mail"], BXL)
    assert record.payload["format"] == "pdf"
    assert record.payload["file"] == "2026-03/fax-from-025559876.PDF"
    assert record.phones == ("025559876",)
    assert record.media == pdf


def test_a_renamed_copy_is_the_same_fax(tmp_path: Path) -> None:
    folder = asterisk_folder(tmp_path)
    (original, _) = parse_fax_files([folder], BXL)
    moved = tmp_path / "archive"
    moved.mkdir()
    shutil.copy(folder / "1774689302.1.tif", moved / "received.tif")
    shutil.copy(SIDECAR, moved / "received.json")
    (copy,) = parse_fax_files([moved], BXL)
    assert copy.source_key == original.source_key
    assert copy.payload["file"] != original.payload["file"]


def test_the_file_time_only_when_asked(tmp_path: Path) -> None:
    tif = tmp_path / "fax-0470551234.tif"
    tif.write_bytes(tiff_bytes())
    stamp = datetime(2026, 3, 28, 12, 0, tzinfo=UTC).timestamp()
    os.utime(tif, (stamp, stamp))
    with pytest.raises(FileLineError) as caught:
        list(parse_fax_files([tmp_path], BXL))
    assert caught.value.file == f"{tmp_path}/(fax 1.tif)"  # the name holds a number: not shown
    assert "no .json sidecar and no time in the name" in caught.value.reason
    (record,) = parse_fax_files([tmp_path], BXL, collected_at="mtime")
    assert record.payload["start"] == "2026-03-28T12:00:00+00:00"
    assert record.payload["time_from"] == "mtime"


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        pytest.param(
            "a.tif", b"GIF89a", "not a TIFF file (its first bytes are not II*\\0 or MM\\0*)",
            id="gif-as-tif",
        ),
        pytest.param("a.tif", b"", "not a TIFF file", id="empty"),
        pytest.param("a.pdf", tiff_bytes(), "not a PDF file (it does not start with %PDF-)",
                     id="tiff-as-pdf"),
        pytest.param("a.TIFF", b"II+\x00\x08\x00\x00\x00", "not a TIFF file", id="bigtiff"),
    ],
)  # fmt: skip
def test_a_file_that_is_not_what_it_says_is_refused(
    tmp_path: Path, name: str, content: bytes, reason: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    path.with_suffix(".json").write_text(SIDECAR.read_text())
    with pytest.raises(FileLineError) as caught:
        list(parse_fax_files([path], BXL))
    assert (caught.value.line, caught.value.reason[: len(reason)]) == (1, reason)


@pytest.mark.parametrize(
    ("sidecar", "line", "reason"),
    [
        pytest.param("{", 1, "not valid JSON", id="json"),
        pytest.param('{\n"start": "2026-03-28T10:00:00",\n}', 3, "not valid JSON", id="comma"),
        pytest.param("[]", 1, "expected a JSON object", id="array"),
        pytest.param("{}", 1, "'start' is missing or not a string", id="no-start"),
        pytest.param('{"start": "yesterday"}', 1, "'start' is not an ISO 8601", id="start"),
        pytest.param('{"start": "0001-01-01T00:00:00"}', 1, "'start' is outside", id="year-1"),
        pytest.param(
            '{"start": "2026-03-28T10:00:00", "caller": 470551234}', 1,
            "'caller' is not a string", id="caller-number",
        ),
        pytest.param(
            '{"start": "2026-03-28T10:00:00", "pages": -1}', 1,
            "'pages' is not a whole number of pages", id="pages-negative",
        ),
        pytest.param(
            '{"start": "2026-03-28T10:00:00", "pages": true}', 1,
            "'pages' is not a whole number of pages", id="pages-bool",
        ),
        pytest.param(
            '{"start": "2026-03-28T10:00:00", "pages": 2.5}', 1,
            "'pages' is not a whole number of pages", id="pages-float",
        ),
        pytest.param(
            '{"start": "2026-03-28T10:00:00", "duration": 9999999999}', 1,
            "'duration' is more than", id="duration-huge",
        ),
    ],
)  # fmt: skip
def test_a_malformed_sidecar_is_refused_at_its_line(
    tmp_path: Path, sidecar: str, line: int, reason: str
) -> None:
    folder = tmp_path / "fax"
    folder.mkdir()
    (folder / "0470551234.tif").write_bytes(tiff_bytes())
    (folder / "0470551234.json").write_text(sidecar)
    yielded: list[ParsedRecord] = []
    with pytest.raises(FileLineError) as caught:
        yielded.extend(parse_fax_files([folder], BXL))
    assert yielded == []
    assert caught.value.file == f"{folder}/(fax 1.json)"
    assert caught.value.line == line
    assert reason in caught.value.reason
    assert "470551234" not in str(caught.value)


def test_a_folder_without_faxes_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("nothing")
    with pytest.raises(InputError, match="no faxes"):
        list(parse_fax_files([tmp_path], BXL))


def test_positions_count_every_file_in_sorted_order(tmp_path: Path) -> None:
    for folder, stamp in (("b", 1774700000), ("a", 1774600000)):
        (tmp_path / folder).mkdir()
        for seq in (2, 1):
            (tmp_path / folder / f"{stamp}.{seq}.tif").write_bytes(
                tiff_bytes(bytes([seq, ord(folder)]))
            )
    records = list(parse_fax_files([tmp_path], BXL))
    assert [r.line for r in records] == [1, 2, 3, 4]
    assert [r.payload["file"] for r in records] == [
        "a/1774600000.1.tif", "a/1774600000.2.tif", "b/1774700000.1.tif", "b/1774700000.2.tif",
    ]  # fmt: skip


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    head=st.sampled_from([b"II*\x00", b"MM\x00*", b"%PDF-", b""]),
    body=st.binary(max_size=40),
    sidecar=st.one_of(
        st.none(),
        st.binary(max_size=80),
        st.dictionaries(
            st.sampled_from(["start", "caller", "pages", "duration", "status"]),
            st.one_of(
                st.text(max_size=25),
                st.integers(min_value=-5, max_value=2**40),
                st.booleans(),
                st.none(),
                st.sampled_from(["2026-03-28T10:00:00", "2026-03-28T10:00:00+05:00"]),
            ),
        ).map(lambda d: json.dumps(d).encode()),
    ),
    suffix=st.sampled_from([".tif", ".pdf", ".TIFF"]),
)
def test_any_fax_file_parses_or_is_refused(
    tmp_path_factory: pytest.TempPathFactory,
    head: bytes,
    body: bytes,
    sidecar: bytes | None,
    suffix: str,
) -> None:
    folder = tmp_path_factory.mktemp("fax")
    (folder / f"1774689302.1{suffix}").write_bytes(head + body)
    if sidecar is not None:
        (folder / "1774689302.1.json").write_bytes(sidecar)
    try:
        records = list(parse_fax_files([folder], BXL))
    except FileLineError as exc:
        assert exc.file.startswith(str(folder))
        return
    except InputError:
        return
    (record,) = records
    json.dumps(record.payload)
    assert record.payload["format"] == suffix.lstrip(".").lower()
