"""Contacts CSV: header aliases, sniffed delimiter, idempotent keys, refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from dpa.errors import FileLineError, InputError
from dpa.identifiers import normalise_email, normalise_phone
from dpa.parsers import ParsedRecord, parse_contacts_csv

DATA = Path(__file__).parents[2] / "data"
WHEN = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)


def records(path: Path = DATA / "contacts.csv") -> list[ParsedRecord]:
    return list(parse_contacts_csv(path, WHEN))


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "contacts.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_fixture() -> None:
    result = records()
    assert len(result) == 6
    assert [r.line for r in result] == [2, 3, 4, 5, 6, 7]
    assert {r.category for r in result} == {"phone_number"}
    assert all(r.collected_at == WHEN for r in result)
    jan = result[0]
    assert jan.payload["name"] == "Jan Peeters"  # BOM stripped from the first header
    assert jan.payload["postal_code"] == "9000"
    assert jan.payload["company"] is None
    assert jan.phones == ("0032 470 12 34 56",)
    assert jan.emails == ("Jan.Peeters@Example.BE",)
    assert normalise_phone(jan.phones[0], "BE") == "+32470123456"
    assert normalise_email(jan.emails[0]) == "jan.peeters@example.be"


def test_non_ascii_and_quoted() -> None:
    names = [r.payload["name"] for r in records()]
    assert names == [
        "Jan Peeters",
        "Zoë Vandenbroucke",
        "Jérôme Dupont",
        "Doe, John",
        "Ørjan Ødegård",
        None,
    ]
    assert records()[2].payload["city"] == "Liège"


def test_row_with_only_an_email() -> None:
    last = records()[-1]
    assert last.phones == ()
    assert last.emails == ("Info@ACME.example",)


def test_source_keys_are_stable_and_distinct() -> None:
    keys = [r.source_key for r in records()]
    assert keys == [r.source_key for r in records()]
    assert len(set(keys)) == 6


def test_comma_delimiter_and_aliases(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "First Name,Surname,GSM,Mail,ZIP\nAn,Janssens,0475 55 66 77,an@example.be,2000\n",
    )
    (record,) = records(path)
    assert record.payload["name"] == "An Janssens"
    assert record.payload["first_name"] == "An"
    assert record.payload["mobile"] == "0475 55 66 77"
    assert record.phones == ("0475 55 66 77",)
    assert record.payload["postal_code"] == "2000"


def test_collected_at_is_converted_to_utc(tmp_path: Path) -> None:
    path = write(tmp_path, "name\nAn\n")
    (record,) = parse_contacts_csv(
        path, datetime(2026, 1, 1, 1, tzinfo=timezone(timedelta(hours=1)))
    )
    assert record.collected_at == datetime(2026, 1, 1, tzinfo=UTC)


def test_naive_collected_at_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        list(parse_contacts_csv(write(tmp_path, "name\nAn\n"), datetime(2026, 1, 1)))


def test_unknown_column_fixture() -> None:
    path = DATA / "contacts-bad.csv"
    with pytest.raises(FileLineError) as caught:
        records(path)
    assert str(caught.value) == (
        f"{path}:1: column 3 is not a known column (known: name, first_name, last_name, phone, "
        "mobile, email, street, postal_code, city, country, company, note)"
    )


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        pytest.param("", 1, "the file is empty (no header line)", id="empty"),
        pytest.param("\n", 1, "no header line", id="blank-first-line"),
        pytest.param(
            'name;phone;note\nJan Peeters;"0470123456;x\nAn;0475556677;y\n"Doe";0478;z\n',
            2,
            "a quoted field is not closed on this line (is the line cut short?)",
            id="cut-inside-a-quote",
        ),
        pytest.param(
            'name;phone\nJan Peeters;"0470"123456\n',
            2,
            "malformed CSV: ';' expected after '\"'",
            id="text-after-a-closing-quote",
        ),
        pytest.param(
            'name;phone;note\nJan Peeters;0470123456;"first line\nsecond line"\n',
            2,
            "a quoted field is not closed on this line (is the line cut short?)",
            id="field-over-two-lines",
        ),
        pytest.param(
            "name;phone;note\nJan Peeters;0470123456;x\n;\n",
            3,
            "expected 3 columns, found 2",
            id="cut-to-a-delimiter",
        ),
        pytest.param("name,,phone\n", 1, "column 2 has no name", id="blank-header"),
        pytest.param("name,Tel,phone\n", 1, "column 3 repeats 'phone'", id="repeated-column"),
        pytest.param(
            "Jan Peeters,0470123456,Birthday\n",
            1,
            "column 1 is not a known header (is the header line missing?)",
            id="headerless-not-echoed",
        ),
        pytest.param(
            "name;phone;country\nJan Peeters;0470123456;BE\n\n;;BE\n",
            4,
            "row has no name, phone number or e-mail address",
            id="empty-row",
        ),
        pytest.param(
            "name;phone\nJan Peeters;0470123456;extra\n",
            2,
            "expected 2 columns, found 3",
            id="too-many-fields",
        ),
    ],
)
def test_errors(tmp_path: Path, text: str, line: int, reason: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(FileLineError) as caught:
        records(path)
    message = str(caught.value)
    assert message == f"{path}:{line}: {reason}"
    assert "0470" not in message
    assert "Peeters" not in message


def test_a_header_without_contacts_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "name;phone\n;\n\n")
    with pytest.raises(InputError) as caught:
        records(path)
    assert str(caught.value) == f"{path}: a header line but no contacts"


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "contacts.csv"
    path.write_bytes("name\nJérôme\n".encode("latin-1"))
    with pytest.raises(FileLineError, match=r":2: not UTF-8$"):
        records(path)


def test_a_missing_header_never_echoes_a_contact(tmp_path: Path) -> None:
    path = tmp_path / "noheader.csv"
    path.write_text("Jan Peeters;Kerkstraat;Gent\n", encoding="utf-8")
    with pytest.raises(FileLineError) as caught:
        records(path)
    assert "Peeters" not in str(caught.value) and "Kerkstraat" not in str(caught.value)
