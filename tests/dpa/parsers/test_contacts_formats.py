"""Contacts as address books export them: Google CSV (both layouts), Outlook CSV, vCard.

The samples under tests/data/real/contacts are real exports' layouts (see SOURCES.md there).
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dpa.errors import FileLineError, InputError
from dpa.identity import source_key
from dpa.parsers import ParsedRecord
from dpa.parsers.contacts import CANONICAL_COLUMNS, parse_contacts, parse_contacts_csv
from dpa.workspace import Workspace
from tests.conftest import Run

DATA = Path(__file__).parents[2] / "data"
REAL = DATA / "real" / "contacts"
WHEN = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
RICH_KEYS = {
    *CANONICAL_COLUMNS,
    "format",
    "middle_name",
    "phones",
    "emails",
    "addresses",
    "other",
}


def records(path: Path) -> list[ParsedRecord]:
    return list(parse_contacts(path, WHEN))


def write(tmp_path: Path, data: str | bytes, name: str = "contacts.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def test_the_simple_layout_keeps_its_payload_and_identity() -> None:
    # Contacts stored before these formats existed keep their source keys: these are the keys
    # the first parser gave the sample's first and last contacts.
    result = records(DATA / "contacts.csv")
    assert all(set(r.payload) == set(CANONICAL_COLUMNS) for r in result)
    assert (result[0].source_key, result[-1].source_key) == (
        "bb2755109b433088535f0a74fcebde076fb9f186bdde7cd08c9e89f3a5b50c44",
        "2ff240432ec54b3aae64f2e01d221054254853e412b9e7a168613212564a7da8",
    )
    assert all(r.source_key == source_key("phone_number", r.payload) for r in result)
    assert parse_contacts_csv is parse_contacts


def test_google_csv_older_layout() -> None:
    jan, zoe = records(REAL / "google-csv-old.csv")
    assert (jan.line, zoe.line) == (2, 4)  # Jan's note runs over two lines
    p = jan.payload
    assert set(p) == RICH_KEYS
    assert p["format"] == "google-csv"
    assert (p["name"], p["first_name"], p["last_name"]) == ("Jan Voorbeeld", "Jan", "Voorbeeld")
    assert p["note"] == "Two\nlines"
    assert p["company"] == "Voorbeeld BV"
    # `a ::: b` is two values with one label; the label's `* ` (primary) is dropped.
    assert p["phones"] == [
        {"label": "Mobile", "number": "+32 470 55 03 01"},
        {"label": "Mobile", "number": "+32 470 55 03 02"},
        {"label": "Work", "number": "+32 9 555 03 03"},
    ]
    assert p["emails"] == [
        {"label": "Home", "address": "jan@example.be"},
        {"label": "Home", "address": "jan.voorbeeld@example.org"},
    ]
    assert (p["mobile"], p["phone"], p["email"]) == (
        "+32 470 55 03 01",
        "+32 470 55 03 02",
        "jan@example.be",
    )
    assert jan.phones == ("+32 470 55 03 01", "+32 470 55 03 02", "+32 9 555 03 03")
    assert jan.emails == ("jan@example.be", "jan.voorbeeld@example.org")
    # Nothing the file holds is dropped: other columns are kept by name.
    assert {"field": "Birthday", "value": "1980-02-29"} in p["other"]
    assert {"field": "Organization 1 - Title", "value": "Zaakvoerder"} in p["other"]
    assert zoe.payload["name"] == "Zoë Exemple"
    assert zoe.payload["phone"] == "02 555 04 01" and zoe.payload["mobile"] is None


def test_google_csv_current_layout_with_bom() -> None:
    ana, support = records(REAL / "google-csv-new.csv")
    p = ana.payload
    assert (p["first_name"], p["middle_name"], p["last_name"]) == ("Ana", "Maria", "Exemplo")
    assert p["name"] == "Ana Maria Exemplo"
    assert p["company"] == "Exemplo Lda"
    assert [e["address"] for e in p["emails"]] == [
        "ana@example.pt",
        "ana.exemplo@example.com",
        "ana.home@example.net",
    ]
    assert [e["label"] for e in p["emails"]] == ["Work", "Work", "Home"]
    assert len(ana.phones) == 2
    # A company's contact without a person's name is a contact too.
    assert support.line == 4
    assert support.payload["name"] is None
    assert support.payload["company"] == "ACME Support"
    assert support.emails == ("support@acme.example",)


def test_outlook_csv_in_windows_1252() -> None:
    helene, piet = records(REAL / "outlook-windows-1252.csv")
    p = helene.payload
    assert p["format"] == "outlook-csv"
    assert p["name"] == "Hélène Lefèvre"  # Windows-1252 bytes, read as such
    assert p["city"] == "Liège"
    assert [(x["label"], x["number"]) for x in p["phones"]] == [
        ("Home Phone", "+32 2 555 01 01"),
        ("Mobile Phone", "+32 470 55 01 02"),
        ("Business Phone", "+32 2 555 01 03"),
        ("Business Fax", "+32 2 555 01 04"),
    ]
    assert (p["phone"], p["mobile"]) == ("+32 2 555 01 01", "+32 470 55 01 02")
    assert helene.emails == ("helene.lefevre@example.be", "h.lefevre@example.org")
    assert {"field": "Job Title", "value": "Gérante"} in p["other"]
    assert piet.payload["addresses"] == [
        {
            "label": "Business",
            "street": "Voorbeeldlaan 2",
            "extended": "bus 3",
            "po_box": None,
            "city": "Gent",
            "region": None,
            "postal_code": "9000",
            "country": "België",
        }
    ]
    assert piet.payload["street"] == "Voorbeeldlaan 2"


def test_outlook_in_utf8_reads_the_same(tmp_path: Path) -> None:
    data = (REAL / "outlook-windows-1252.csv").read_bytes().decode("cp1252")
    again = records(write(tmp_path, "\ufeff" + data))
    assert [r.payload for r in again] == [
        r.payload for r in records(REAL / "outlook-windows-1252.csv")
    ]


def test_gmail_vcard_export() -> None:
    (card,) = records(REAL / "gmail-single2.vcf")
    p = card.payload
    assert card.line == 1
    assert p["format"] == "vcard" and p["version"] == "3.0"
    assert (p["name"], p["first_name"], p["last_name"]) == ("VCard Test", "VCard", "Test")
    assert len(card.phones) == 11
    assert len(card.emails) == 5
    labels = {x["number"]: x["label"] for x in p["phones"]}
    assert labels["5555551115"] == "cell"
    assert labels["5555551117"] == "home,fax"
    assert labels["5555551119"] == "GRAND_CENTRAL"  # itemN.X-ABLabel
    assert labels["5555551111"] is None
    assert (p["phone"], p["mobile"]) == ("5555551111", "5555551115")
    assert p["emails"][4] == {
        "label": "CustomEmailCategory",
        "address": "customcategory@example.com",
    }
    assert len(p["addresses"]) == 5
    assert p["addresses"][1]["label"] == "home"
    assert p["addresses"][4]["label"] == "CustomAddressCategory"
    assert (p["street"], p["city"], p["postal_code"]) == ("111 Main St", "NY", "10011")
    assert p["company"] == "TheCompany"
    assert p["note"] == "note line 1\nnote line 2\nCustomField: field value"
    other = {(o["field"], o["value"]) for o in p["other"]}
    assert ("TITLE", "TheJobTitle") in other
    assert ("BDAY", "1912-06-23") in other
    # A property vobject gives no meaning to is kept as written (Apple's `\:` included).
    assert ("URL (BLOG)", "http\\://www.example3.com") in other
    assert ("X-ABRELATEDNAMES (_$!<Spouse>!$_)", "Name2") in other


def test_several_cards_with_their_lines() -> None:
    cards = records(REAL / "gmail-list.vcf")
    assert [c.line for c in cards] == [1, 7, 13]
    assert [c.payload["name"] for c in cards] == ["Arnold Smith", "Chris Beatle", "Doug White"]
    assert len({c.source_key for c in cards}) == 3


VCARDS = """\
BEGIN:VCARD\r
VERSION:4.0\r
FN:Anna Exemple\r
N:Exemple;Anna;;;\r
TEL;VALUE=uri;TYPE="voice,cell":tel:+32-470-55-06-01\r
TEL;TYPE=work:+32 2 555 06 02\r
EMAIL;TYPE=work:anna@example.org\r
ADR;TYPE=home:;;Rue de l'Exemple 6;Namur;;5000;BE\r
END:VCARD\r
\r
BEGIN:VCARD\r
VERSION:2.1\r
N;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:=C3=98degaard;J=C3=B8rn;;;\r
FN;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:J=C3=B8rn =\r
=C3=98degaard\r
TEL;CELL;PREF:+47 412 55 607\r
TEL;HOME:+47 22 55 06 08\r
END:VCARD\r
begin:vcard\r
version:3.0\r
fn:Folded\r
  Name\r
tel;type=WORK,VOICE:+32 9 555\r
  06 09\r
note:a\\, b\\nc\r
end:vcard\r
"""


def test_vcard_4_and_2_1_quoted_printable_and_folding(tmp_path: Path) -> None:
    anna, jorn, folded = records(write(tmp_path, VCARDS, "book.vcf"))
    assert (anna.line, jorn.line, folded.line) == (1, 11, 19)
    assert anna.payload["version"] == "4.0"
    assert anna.payload["phones"] == [
        {"label": "cell", "number": "+32-470-55-06-01"},
        {"label": "work", "number": "+32 2 555 06 02"},
    ]
    assert anna.payload["mobile"] == "+32-470-55-06-01"
    assert anna.payload["addresses"][0]["city"] == "Namur"
    assert jorn.payload["name"] == "Jørn Ødegaard"
    assert jorn.payload["last_name"] == "Ødegaard"
    assert [p["label"] for p in jorn.payload["phones"]] == ["cell,pref", "home"]
    assert folded.payload["name"] == "Folded Name"
    assert folded.phones == ("+32 9 555 06 09",)
    assert folded.payload["phones"][0]["label"] == "work"
    assert folded.payload["note"] == "a, b\nc"


def test_a_vcard_is_recognised_by_content_not_by_name(tmp_path: Path) -> None:
    path = write(tmp_path, "\ufeff\n" + VCARDS, "export.txt")
    assert records(path)[0].payload["name"] == "Anna Exemple"


def test_identity_is_stable_and_content_based(tmp_path: Path) -> None:
    first = records(write(tmp_path, VCARDS, "a.vcf"))
    again = records(write(tmp_path, VCARDS.replace("\r\n", "\n"), "b.vcf"))
    assert [r.source_key for r in first] == [r.source_key for r in again]
    changed = records(write(tmp_path, VCARDS.replace("06 02", "06 03"), "c.vcf"))
    assert changed[0].source_key != first[0].source_key
    assert changed[1].source_key == first[1].source_key


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        pytest.param(
            "BEGIN:VCARD\nVERSION:3.0\nFN:Jan Peeters\nTEL:0470123456\n",
            1,
            "this card is not closed (no END:VCARD)",
            id="unclosed",
        ),
        pytest.param(
            "Jan Peeters;0470123456\nBEGIN:VCARD\nFN:Jan Peeters\nEND:VCARD\n",
            1,
            "expected BEGIN:VCARD (is this a vCard file?)",
            id="named-vcf-but-not-a-card",
        ),
        pytest.param(
            "BEGIN:VCARD\nFN:Jan Peeters\nEND:VCARD\nFN:Jan Peeters\n",
            4,
            "expected BEGIN:VCARD (is this a vCard file?)",
            id="line-outside-a-card",
        ),
        pytest.param(
            "BEGIN:VCARD\nFN:Jan Peeters\nBEGIN:VCARD\nEND:VCARD\nEND:VCARD\n",
            3,
            "a card inside a card is not read",
            id="nested",
        ),
        pytest.param(
            "BEGIN:VCARD\nFN:Jan Peeters\nEND:VCALENDAR\n",
            3,
            "this END does not close the card (END:VCARD)",
            id="wrong-end",
        ),
        pytest.param(
            "BEGIN:VCARD\nVERSION:3.0\nFN:Jan Peeters\nJan Peeters 0470123456\nEND:VCARD\n",
            4,
            "not a vCard line",
            id="not-a-property",
        ),
        pytest.param(
            "BEGIN:VCARD\nVERSION:2.1\nN;ENCODING=QUOTED-PRINTABLE;CHARSET=x-bogus:Peeters=\n"
            "=C3=A9\nEND:VCARD\n",
            1,
            "this card is not a readable vCard",
            id="unknown-charset",
        ),
        pytest.param(
            "BEGIN:VCARD\nVERSION:3.0\nEND:VCARD\n",
            1,
            "card has no name, phone number, e-mail address, company, address or note",
            id="empty-card",
        ),
    ],
)
def test_vcard_errors(tmp_path: Path, text: str, line: int, reason: str) -> None:
    path = write(tmp_path, text, "book.vcf")
    with pytest.raises(FileLineError) as caught:
        records(path)
    assert str(caught.value) == f"{path}:{line}: {reason}"
    assert "0470" not in str(caught.value) and "Peeters" not in str(caught.value)


def test_vcard_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "BEGIN:VCARD\nFN:J\xe9r\xf4me\nEND:VCARD\n".encode("latin-1"), "a.vcf")
    with pytest.raises(FileLineError, match=r":2: not UTF-8$"):
        records(path)


GOOGLE = "Name,Given Name,Family Name,Notes,Phone 1 - Type,Phone 1 - Value\n"


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        pytest.param(
            GOOGLE + 'Jan Peeters,Jan,Peeters,"open note,Mobile,0470123456\n',
            2,
            "a quoted field is not closed before the end of the file",
            id="unterminated-quote",
        ),
        pytest.param(
            GOOGLE + "Jan Peeters,Jan,Peeters,,Mobile\n",
            2,
            "expected 6 columns, found 5",
            id="short-row",
        ),
        pytest.param(
            GOOGLE + 'Jan Peeters,Jan,Peeters,"a"b,Mobile,0470123456\n',
            2,
            "malformed CSV: ',' expected after '\"'",
            id="text-after-quote",
        ),
        pytest.param(
            GOOGLE + ",,,,Mobile,\n",
            2,
            "row has no name, phone number, e-mail address, company, address or note",
            id="only-a-label",
        ),
        pytest.param(
            "Name,Phone 1 - Value,phone 1 - value\n",
            1,
            "column 3 repeats 'phone 1 - value'",
            id="repeated-column",
        ),
    ],
)
def test_google_errors(tmp_path: Path, text: str, line: int, reason: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(FileLineError) as caught:
        records(path)
    assert str(caught.value) == f"{path}:{line}: {reason}"
    assert "0470" not in str(caught.value) and "Peeters" not in str(caught.value)


def test_google_header_only_and_blank_rows(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r": a header line but no contacts$"):
        records(write(tmp_path, GOOGLE + ",,,,,\n\n"))


def test_google_in_windows_1252_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, (GOOGLE + "Jérôme,,,,Mobile,0470\n").encode("cp1252"))
    with pytest.raises(FileLineError, match=r":2: not UTF-8$"):
        records(path)


def test_outlook_byte_outside_windows_1252(tmp_path: Path) -> None:
    path = write(tmp_path, b"First Name,E-mail Address\nAn,a@example.org\nB\x81,b@example.org\n")
    with pytest.raises(FileLineError, match=r":3: neither UTF-8 nor Windows-1252$"):
        records(path)


def test_outlook_semicolons(tmp_path: Path) -> None:
    (record,) = records(
        write(
            tmp_path, "First Name;Last Name;Mobile Phone;Home Phone\nAn;Janssens;0475 55 66 77;\n"
        )
    )
    assert record.payload["format"] == "outlook-csv"
    assert record.phones == ("0475 55 66 77",)


def test_an_unknown_header_is_still_refused_as_before(tmp_path: Path) -> None:
    path = write(tmp_path, "name,phone,birthday\nAn,0475,1980\n")
    with pytest.raises(FileLineError, match=r":1: column 3 is not a known column"):
        records(path)


def test_ingest_a_vcard_and_find_every_number(
    ws: Workspace, cli: Callable[..., Run], tmp_path: Path
) -> None:
    cli(
        "customer",
        "add",
        "acme",
        "--name",
        "Acme BV",
        "--contract",
        "monthly",
        "--started",
        "2024-03-01",
    )
    path = write(tmp_path, VCARDS, "book.vcf")
    out = json.loads(cli("ingest", "contacts", str(path), "--customer", "acme", "--json").stdout)
    assert (out["read"], out["added"]) == (3, 3)
    again = json.loads(cli("ingest", "contacts", str(path), "--customer", "acme", "--json").stdout)
    assert (again["added"], again["duplicates"]) == (0, 3)
    for spelling in ("0470 55 06 01", "+32 2 555 06 02", "+4722550608", "ANNA@example.org"):
        hits = json.loads(cli("subject", "find", spelling, "--json").stdout)
        assert [(h["category"], h["records"]) for h in hits] == [("phone_number", 1)], spelling


def test_an_export_returns_every_phone_and_address(
    ws: Workspace, cli: Callable[..., Run], tmp_path: Path
) -> None:
    pyrage = pytest.importorskip("pyrage")
    cli("customer", "add", "acme", "--name", "Acme BV", "--contract", "monthly", "--started", "2024-03-01")  # fmt: skip
    cli("ingest", "contacts", str(REAL / "google-csv-old.csv"), "--customer", "acme")
    cli("ingest", "contacts", str(REAL / "gmail-single2.vcf"), "--customer", "acme")
    secret = tmp_path / "pass.txt"
    secret.write_text("correct horse battery staple\n")
    secret.chmod(0o600)
    out = json.loads(
        cli(
            "export", "create", "--customer", "acme", "--passphrase-file", str(secret), "--json"
        ).stdout
    )
    plain = pyrage.passphrase.decrypt(
        Path(out["path"]).read_bytes(), "correct horse battery staple"
    )
    archive = zipfile.ZipFile(io.BytesIO(plain))
    rows = [json.loads(line) for line in archive.read("data/phone_number.jsonl").splitlines()]
    assert len(rows) == 3
    text = json.dumps(rows, ensure_ascii=False)
    for value in ("+32 470 55 03 02", "5555551121", "customcategory@example.com", "115 Main St"):
        assert value in text, value
    table = archive.read("data/phone_number.csv").decode("utf-8")
    assert "Jan Voorbeeld" in table and "VCard Test" in table
