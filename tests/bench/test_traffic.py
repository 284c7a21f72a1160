"""bench/traffic.py gives the traffic it promises: once-seen share, countries, spellings,
outbound and withheld shares, layouts, and the same file for the same seed."""

from __future__ import annotations

import csv
import importlib.util
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path
from types import ModuleType
from zoneinfo import ZoneInfo

import phonenumbers
import pytest

from dpa.parsers.asterisk_cdr import LAYOUTS


def _load_traffic() -> ModuleType:
    """bench/traffic.py, loaded by path (bench/ is not a package; sys.path left alone, so
    the benchmarks' module names shadow nothing in the test session)."""
    path = Path(__file__).resolve().parents[2] / "bench" / "traffic.py"
    spec = importlib.util.spec_from_file_location("bench_traffic", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


traffic = _load_traffic()
CALLS = 4000


def _read(path: Path) -> list[list[str]]:
    with path.open(newline="") as src:
        return list(csv.reader(src))


@pytest.fixture(scope="module")
def lines(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, str]]:
    path = tmp_path_factory.mktemp("traffic") / "Master.csv"
    assert traffic.write(path, traffic.Traffic(calls=CALLS)) == CALLS
    layout = LAYOUTS[18][0]
    return [dict(zip(layout, row, strict=True)) for row in _read(path)]


def _external(line: dict[str, str]) -> str:
    """The external party's number as spelled in the line ('' when withheld)."""
    if line["dcontext"] == "from-internal":
        return line["dst"]
    return "" if line["src"] in ("", "anonymous") else line["src"]


def _e164(spelled: str) -> str:
    parsed = phonenumbers.parse(spelled, "BE")
    assert phonenumbers.is_valid_number(parsed), "a generated number outside the plan"
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def test_once_seen_share(lines: list[dict[str, str]]) -> None:
    seen = Counter(_e164(n) for n in map(_external, lines) if n)
    once = sum(1 for count in seen.values() if count == 1)
    assert once / len(seen) == pytest.approx(0.5, abs=0.01)
    assert max(seen.values()) > 20  # regular correspondents call often


def test_countries_and_spellings(lines: list[dict[str, str]]) -> None:
    spelled = [n for n in map(_external, lines) if n]
    parsed = {n: phonenumbers.parse(n, "BE") for n in set(spelled)}
    countries = Counter(parsed[n].country_code for n in spelled)
    assert set(countries) == {32, 33, 31, 49}
    kinds = Counter(
        "+" if n.startswith("+") else "00" if n.startswith("00") else "national" for n in spelled
    )
    assert set(kinds) == {"+", "00", "national"}
    for n in spelled:  # only Belgian numbers in national spelling
        assert n.startswith(("+", "00")) or parsed[n].country_code == 32
    mobile = Counter(
        phonenumbers.number_type(parsed[n]) == phonenumbers.PhoneNumberType.MOBILE
        for n in spelled
        if parsed[n].country_code == 32
    )
    assert mobile[True] > 0 and mobile[False] > 0
    distinct = {_e164(n) for n in spelled}  # the mix is of the parties, not of the calls
    belgian = sum(1 for n in distinct if n.startswith("+32"))
    assert belgian / len(distinct) == pytest.approx(0.7, abs=0.03)


def test_outbound_and_withheld(lines: list[dict[str, str]]) -> None:
    outbound = [line for line in lines if line["dcontext"] == "from-internal"]
    assert len(outbound) / CALLS == pytest.approx(0.3, abs=0.03)
    assert all(line["src"].isdigit() and len(line["src"]) == 4 for line in outbound)
    inbound = [line for line in lines if line["dcontext"] == "from-pstn"]
    withheld = [line for line in inbound if line["src"] in ("", "anonymous")]
    assert len(withheld) / len(inbound) == pytest.approx(0.03, abs=0.015)
    assert {line["src"] for line in withheld} == {"", "anonymous"}


def test_span_and_order(lines: list[dict[str, str]]) -> None:
    starts = [line["start"] for line in lines]
    assert starts == sorted(starts)
    assert starts[0] >= "2025-11-03" and starts[-1] <= "2026-01-31 23:59:59"
    assert len({line["uniqueid"] for line in lines}) == CALLS
    # uniqueids begin with the UTC epoch of the call's start, as Asterisk writes them, while
    # start is the PBX's local time (dpa compares the two to detect a file written in UTC)
    zone = ZoneInfo("Europe/Brussels")
    for line in lines:
        epoch = int(line["uniqueid"].split(".")[0])
        assert f"{datetime.fromtimestamp(epoch, zone):%Y-%m-%d %H:%M:%S}" == line["start"]


@pytest.mark.parametrize("columns", [18, 21])
def test_layouts_parse(tmp_path: Path, columns: int) -> None:
    """Each layout is one dpa's parser recognises, every line a record."""
    from dpa.parsers import parse_cdr_csv

    path = tmp_path / "Master.csv"
    traffic.write(path, traffic.Traffic(calls=300, columns=columns))
    assert all(len(row) == columns for row in _read(path))
    found: list[tuple[str, ...]] = []
    records = list(parse_cdr_csv(path, ZoneInfo("Europe/Brussels"), on_layout=found.append))
    assert len(records) == 300
    assert found == [LAYOUTS[columns][0]]


def test_seed_determinism(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    traffic.write(a, traffic.Traffic(calls=500, seed=7))
    traffic.write(b, traffic.Traffic(calls=500, seed=7))
    traffic.write(c, traffic.Traffic(calls=500, seed=8))
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_parameters(tmp_path: Path) -> None:
    """Another share of once-seen numbers, mix and outbound share are honoured."""
    path = tmp_path / "Master.csv"
    params = traffic.Traffic(calls=3000, once_share=0.8, outbound=0.5, mix={"de": 1.0}, days=10)
    traffic.write(path, params)
    layout = LAYOUTS[18][0]
    rows = [dict(zip(layout, row, strict=True)) for row in _read(path)]
    seen = Counter(_e164(n) for n in map(_external, rows) if n)
    assert sum(1 for v in seen.values() if v == 1) / len(seen) == pytest.approx(0.8, abs=0.01)
    assert all(n.startswith("+49") for n in seen)
    out = sum(1 for r in rows if r["dcontext"] == "from-internal")
    assert out / 3000 == pytest.approx(0.5, abs=0.04)
    assert rows[0]["start"] >= "2026-01-22"
