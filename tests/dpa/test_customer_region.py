"""A customer's own phone region: national numbers of a customer abroad read in its country.

The register's `default_region` (BE) reads `0470 12 34 56`; a Russian customer's PBX writes
`8 495 123-45-67` or `84951234567`, which only mean +7 495 123 45 67 when read in RU.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dpa.config import Settings
from dpa.customers import check_region, region_of
from dpa.errors import InputError
from dpa.models import Customer
from dpa.workspace import Workspace
from retention import sweeper
from tests.conftest import Run
from tests.state import snapshot

Cli = Callable[..., Run]

# Fictitious Moscow numbers (555 exchange), written the way a Russian PBX writes them.
MOSCOW = "84955551234"
MOSCOW_E164 = "+74955551234"
MOBILE = "89165554321"


def _add(cli: Cli, cid: str = "acme", *extra: str, code: int = 0) -> Run:
    return cli(
        "customer",
        "add",
        cid,
        "--name",
        f"{cid.title()} LLC",
        "--contract",
        "monthly",
        "--started",
        "2024-03-01",
        *extra,
        code=code,
    )


def _show(cli: Cli, cid: str) -> dict[str, object]:
    shown: dict[str, object] = json.loads(cli("customer", "show", cid, "--json").stdout)
    return shown


def _events(cli: Cli, cid: str) -> list[dict[str, object]]:
    events: list[dict[str, object]] = json.loads(
        cli("audit", "log", "--customer", cid, "--json").stdout
    )
    return events


def _cdr_line(src: str, dst: str, start: str, uniqueid: str) -> str:
    """One 18-column Asterisk cdr-csv line (times in the register's timezone)."""
    fields = [
        "",
        src,
        dst,
        "from-pstn",
        f'"Caller" <{src}>',
        "SIP/trunk-00000001",
        "SIP/1001-00000002",
        "Dial",
        "SIP/1001,30",
        start,
        start,
        start,
        "60",
        "58",
        "ANSWERED",
        "DOCUMENTATION",
        uniqueid,
        "",
    ]
    quoted = [
        f if n in (12, 13) else '"' + f.replace('"', '""') + '"' for n, f in enumerate(fields)
    ]
    return ",".join(quoted) + "\n"


# --- the pure part ---------------------------------------------------------------------------


@pytest.mark.parametrize("region", sorted(phonenumbers.SUPPORTED_REGIONS))
def test_every_region_phonenumbers_knows_is_accepted_in_any_case(region: str) -> None:
    assert check_region(region) == region
    assert check_region(region.lower()) == region
    assert check_region(region.title()) == region


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        pytest.param("XX", True, id="unknown-code"),
        pytest.param("UK", True, id="uk-is-gb"),
        pytest.param("ZZ", True, id="unknown-region-marker"),
        pytest.param("", False, id="empty"),
        pytest.param("RUS", False, id="alpha-3"),
        pytest.param("001", False, id="non-geographic"),
        pytest.param(" RU", False, id="leading-space"),
        pytest.param("RU\n", False, id="trailing-newline"),
        pytest.param("ÅL", False, id="non-ascii"),
        pytest.param("+74955551234", False, id="a-phone-number"),
    ],
)
def test_a_region_phonenumbers_does_not_know_is_refused_naming_the_option(
    value: str, quoted: bool
) -> None:
    with pytest.raises(InputError) as refused:
        check_region(value, "--region")
    message = str(refused.value)
    assert message.startswith("--region ")
    assert (repr(value) in message) is quoted


NOT_A_CODE = "--region must be a two-letter ISO 3166-1 alpha-2 region code, such as BE, FR or RU"


@given(st.one_of(st.text(max_size=20), st.text("abcdefghijklmnopqrstuvwxyzRUBE", max_size=3)))
def test_check_region_returns_a_known_region_or_quotes_only_a_two_letter_code(value: str) -> None:
    try:
        region = check_region(value)
    except InputError as refused:
        message = str(refused)
        if len(value) == 2 and value.isascii() and value.isalpha():
            assert message.startswith(f"--region {value!r} is not a region")
            assert value.upper() not in phonenumbers.SUPPORTED_REGIONS
        else:
            assert message == NOT_A_CODE
    else:
        assert region in phonenumbers.SUPPORTED_REGIONS and region == value.upper()


def test_region_of_is_the_customers_own_else_the_registers() -> None:
    def customer(region: str | None) -> Customer:
        return Customer(
            id="c",
            name_sealed=b"",
            contract_policy="monthly",
            started_on=date(2024, 3, 1),
            created_at=datetime(2024, 3, 1, tzinfo=UTC),
            region=region,
        )

    own, none = customer("RU"), customer(None)
    assert region_of(own, "BE") == "RU"
    assert region_of(none, "BE") == "BE"


# --- through the CLI, on both backends --------------------------------------------------------


def test_add_with_a_region_shows_and_ledgers_it(ws: Workspace, cli: Cli) -> None:
    added = json.loads(_add(cli, "ivan", "--region", "ru", "--json").stdout)
    assert (added["region"], added["phone_region"]) == ("RU", "RU")
    _add(cli, "acme")
    shown = _show(cli, "ivan")
    assert (shown["region"], shown["phone_region"]) == ("RU", "RU")
    assert "RU" in cli("customer", "show", "ivan").stdout
    default = _show(cli, "acme")
    assert (default["region"], default["phone_region"]) == (None, "BE")
    assert "register default (BE)" in cli("customer", "show", "acme").stdout
    listed = json.loads(cli("customer", "list", "--json").stdout)
    assert [(c["id"], c["region"], c["phone_region"]) for c in listed] == [
        ("acme", None, "BE"),
        ("ivan", "RU", "RU"),
    ]
    table = cli("customer", "list").stdout
    assert "phone region" in table and "register default (BE)" in table
    (event,) = _events(cli, "ivan")
    assert event["action"] == "customer.add"
    assert event["details"] == {
        "contract_policy": "monthly",
        "started_on": "2024-03-01",
        "region": "RU",
    }
    assert _events(cli, "acme")[0]["details"]["region"] is None  # type: ignore[index]


def test_set_region_changes_and_ledgers_old_and_new(ws: Workspace, cli: Cli) -> None:
    _add(cli, "ivan")
    run = cli("customer", "set-region", "ivan", "ru")
    assert "phone region now RU" in run.stdout and "from now on" in run.stdout
    assert _show(cli, "ivan")["phone_region"] == "RU"
    changed = json.loads(cli("customer", "set-region", "ivan", "KZ", "--json").stdout)
    assert (changed["region"], changed["changed"]) == ("KZ", True)
    cli("customer", "set-region", "ivan", "--default")
    shown = _show(cli, "ivan")
    assert (shown["region"], shown["phone_region"]) == (None, "BE")
    updates = [e for e in _events(cli, "ivan") if e["action"] == "customer.update"]
    assert [e["details"] for e in updates] == [
        {"region": {"old": None, "new": "RU"}, "default_region": "BE"},
        {"region": {"old": "RU", "new": "KZ"}, "default_region": "BE"},
        {"region": {"old": "KZ", "new": None}, "default_region": "BE"},
    ]
    assert "Ivan LLC" not in json.dumps(updates)
    cli("audit", "verify")


def test_setting_the_region_a_customer_has_writes_nothing(
    ws: Workspace, cli: Cli, settings: Settings
) -> None:
    _add(cli, "ivan", "--region", "RU")
    _add(cli, "acme")
    before = snapshot(settings)
    assert "already RU, unchanged" in cli("customer", "set-region", "ivan", "ru").stdout
    again = json.loads(cli("customer", "set-region", "acme", "--default", "--json").stdout)
    assert again["changed"] is False
    assert snapshot(settings) == before


def _purged(cli: Cli, ws: Workspace) -> None:
    _add(cli, "gone")
    cli("customer", "terminate", "gone", "--on", "2024-06-05")  # window closed 2024-08-31
    purged = sweeper.run(ws, actor="cron", now=datetime(2026, 11, 23, 9, 30, tzinfo=UTC))
    assert purged.customers_purged == ["gone"]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        pytest.param(
            ("customer", "add", "new", "--name", "N", "--contract", "monthly", "--started",
             "2024-01-01", "--region", "XX"),
            2, "--region 'XX' is not a region", id="add-unknown-region",
        ),
        pytest.param(
            ("customer", "add", "new", "--name", "N", "--contract", "monthly", "--started",
             "2024-01-01", "--region", ""),
            2, "--region must be a two-letter", id="add-empty-region",
        ),
        pytest.param(
            ("customer", "add", "new", "--name", "N", "--contract", "monthly", "--started",
             "2024-01-01", "--region", MOSCOW_E164),
            2, "--region must be a two-letter", id="add-number-as-region",
        ),
        pytest.param(
            ("customer", "set-region", "ivan", "RUS"), 2, "REGION must be a two-letter",
            id="set-alpha-3",
        ),
        pytest.param(
            ("customer", "set-region", "ivan"), 2, "give either a REGION or --default",
            id="set-neither",
        ),
        pytest.param(
            ("customer", "set-region", "ivan", "RU", "--default"), 2,
            "give either a REGION or --default", id="set-both",
        ),
        pytest.param(
            ("customer", "set-region", "nobody", "RU"), 3, "unknown customer 'nobody'",
            id="set-unknown-customer",
        ),
        pytest.param(
            ("customer", "set-region", "bad id!", "RU"), 3, "unknown customer",
            id="set-impossible-id",
        ),
        pytest.param(
            ("customer", "set-region", "gone", "RU"), 3, "customer 'gone' was purged on",
            id="set-purged",
        ),
        pytest.param(
            ("customer", "set-region", "gone", "--default"), 3, "was purged", id="clear-purged"
        ),
        pytest.param(
            ("subject", "find", MOSCOW_E164, "--region", "XX"), 2, "--region 'XX'",
            id="find-unknown-region",
        ),
    ],
)  # fmt: skip
def test_region_refusals_change_nothing(
    ws: Workspace, cli: Cli, settings: Settings, args: tuple[str, ...], code: int, message: str
) -> None:
    _add(cli, "ivan")
    _purged(cli, ws)
    before = snapshot(settings)
    run = cli(*args, code=code)
    assert message in run.stderr
    assert MOSCOW_E164 not in run.stderr
    assert snapshot(settings) == before


# --- the case: a Russian customer's national numbers, found by +7 ------------------------


def test_a_russian_customers_national_numbers_are_found_by_their_e164(
    ws: Workspace, cli: Cli, tmp_path: Path
) -> None:
    master = tmp_path / "Master.csv"
    master.write_text(
        _cdr_line(MOSCOW, "1001", "2026-03-28 10:15:02", "1774689302.1")
        + _cdr_line("1001", MOBILE, "2026-03-28 11:00:00", "1774692000.2"),
        encoding="utf-8",
    )
    _add(cli, "ivan", "--region", "RU")
    cli("ingest", "cdr", str(master), "--customer", "ivan")
    for spelling in ("+7 495 555-12-34", MOSCOW_E164, "0074955551234"):
        hits = json.loads(cli("subject", "find", spelling, "--json").stdout)
        assert [(h["customer_id"], h["category"], h["records"]) for h in hits] == [
            ("ivan", "cdr", 1)
        ], spelling
    # The national spelling, read in RU on request; in the register's BE it is no number.
    national = json.loads(
        cli("subject", "find", "8 (495) 555-12-34", "--region", "RU", "--json").stdout
    )
    assert [h["customer_id"] for h in national] == ["ivan"]
    assert "--region" in cli("subject", "find", "8 (495) 555-12-34", code=2).stderr
    mobile = json.loads(cli("subject", "find", "+7 916 555-43-21", "--json").stdout)
    assert [h["customer_id"] for h in mobile] == ["ivan"]


def test_without_its_own_region_a_russian_national_number_is_not_indexed(
    ws: Workspace, cli: Cli, tmp_path: Path
) -> None:
    """Why the region is needed: read in BE, `84955551234` is no possible number at all."""
    master = tmp_path / "Master.csv"
    master.write_text(_cdr_line(MOSCOW, "1001", "2026-03-28 10:15:02", "1774689302.1"))
    _add(cli, "acme")
    cli("ingest", "cdr", str(master), "--customer", "acme")
    assert "no records" in cli("subject", "find", MOSCOW_E164).stdout


def test_a_region_change_applies_to_files_ingested_after_it(
    ws: Workspace, cli: Cli, tmp_path: Path
) -> None:
    before, after = tmp_path / "before.csv", tmp_path / "after.csv"
    before.write_text(_cdr_line(MOSCOW, "1001", "2026-03-28 10:15:02", "1774689302.1"))
    after.write_text(_cdr_line(MOSCOW, "1002", "2026-03-29 10:15:02", "1774775702.3"))
    _add(cli, "ivan")
    cli("ingest", "cdr", str(before), "--customer", "ivan")
    cli("customer", "set-region", "ivan", "RU")
    cli("ingest", "cdr", str(after), "--customer", "ivan")
    hits = json.loads(cli("subject", "find", MOSCOW_E164, "--json").stdout)
    assert [(h["customer_id"], h["records"]) for h in hits] == [("ivan", 1)]


def test_subject_find_region_reads_only_national_spellings(ws: Workspace, cli: Cli) -> None:
    """A number with + (or 00) is the same whatever `--region` says; a national one is not."""
    _add(cli, "acme")
    cli("ingest", "cdr", str(Path(__file__).parents[1] / "data" / "asterisk" / "Master.csv"),
        "--customer", "acme")  # fmt: skip
    found = json.loads(cli("subject", "find", "0470 12 34 56", "--json").stdout)
    assert found and {h["customer_id"] for h in found} == {"acme"}
    for spelling, region in [("+32 470 12 34 56", "RU"), ("0470 12 34 56", "be")]:
        hits = json.loads(cli("subject", "find", spelling, "--region", region, "--json").stdout)
        assert hits == found, (spelling, region)
    # Read in RU, the Belgian national spelling is a number under +7: not this person.
    assert "no records" in cli("subject", "find", "0470 12 34 56", "--region", "RU").stdout
