"""Realistic PBX traffic for the benchmarks: an Asterisk Master.csv as a busy customer's PBX writes it.

    python bench/traffic.py OUT.csv [--calls N] [--once-share S] [--outbound S] ...

Defaults (issue 14): the customer's last 90 days, 200,000 calls; half the external parties
call once (the others repeat, a few of them often); the parties are Belgian fixed and mobile
numbers, French, Dutch and German ones; Belgian numbers arrive in national (`0470...`), `+32`
and `0032` spellings, foreign ones in `+` and `00` spellings, a party's spelling chosen per
call; 3 % of inbound callers withheld (`anonymous`, or nothing); 30 % of the calls outbound
(src an extension, dst the number dialled); 18 columns (cdr_csv's stock layout with uniqueid
and userfield), or any layout of `dpa.parsers.asterisk_cdr.LAYOUTS` (21: with peeraccount,
linkedid and sequence). Calls fall in office hours mostly, ordered by start time as Asterisk
appends them, times in the PBX's local time. Every number is fictitious but valid for
`phonenumbers` (its ranges), and the same seed gives the same file byte for byte.
"""

from __future__ import annotations

import argparse
import csv
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

# cdr_csv's columns (dpa/parsers/asterisk_cdr.py: BASE, FIELDS, KNOWN), repeated here so the
# generator does not depend on the parser it feeds.
_BASE = (
    "accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel", "lastapp",
    "lastdata", "start", "answer", "end", "duration", "billsec", "disposition", "amaflags",
)  # fmt: skip
_NEW = ("peeraccount", "linkedid", "sequence")
LAYOUTS: dict[int, tuple[str, ...]] = {
    16: _BASE,
    17: (*_BASE, "uniqueid"),
    18: (*_BASE, "uniqueid", "userfield"),
    19: (*_BASE, *_NEW),
    20: (*_BASE, "uniqueid", *_NEW),
    21: (*_BASE, "uniqueid", "userfield", *_NEW),
}

# The kinds of external number, with their country code and how to draw a national
# significant number (NSN) in a range phonenumbers holds valid.
KINDS = ("be-fixed", "be-mobile", "fr", "nl", "de")
COUNTRY = {"be-fixed": "32", "be-mobile": "32", "fr": "33", "nl": "31", "de": "49"}
DEFAULT_MIX = {"be-fixed": 0.30, "be-mobile": 0.40, "fr": 0.10, "nl": 0.10, "de": 0.10}
# Belgian numbers: national, +32, 0032; foreign ones: + and 00.
DEFAULT_BE_SPELLINGS = {"national": 0.50, "plus": 0.25, "00": 0.25}
DEFAULT_FOREIGN_SPELLINGS = {"plus": 0.50, "00": 0.50}
# Withheld callers as Asterisk writes them: src `anonymous` (SIP trunks) or empty.
WITHHELD = ("anonymous", "")


# French leading digit pairs: mobile (06, 07) twice as likely as geographic (01 to 05).
_FR_PREFIXES = (
    *("61", "62", "64", "65", "66", "67", "68", "73", "75", "76", "77", "78") * 2,
    *("14", "15", "16", "17", "18", "23", "24", "32", "33", "34", "38", "41", "42", "43"),
    *("44", "45", "47", "48", "49", "51", "52", "53", "54", "55", "56", "57"),
)


def _nsn(kind: str, rng: random.Random) -> str:
    """A national significant number of `kind` (no trunk prefix, no country code)."""

    def digits(n: int) -> str:
        return "".join(str(rng.randrange(10)) for _ in range(n))

    if kind == "be-mobile":  # 047x, 048x, 049x + 6 digits
        return f"4{rng.choice('789')}{rng.randrange(10)}{digits(6)}"
    if kind == "be-fixed":  # Brussels, Antwerp, Ghent (1-digit zones) or a 2-digit zone
        zone = rng.choice(("2", "3", "92", "50", "56", "11", "16", "64", "81"))
        return f"{zone}{rng.randrange(2, 9)}{digits(6 - (len(zone) - 1))}"
    if kind == "fr":  # mobile 6/7 or geographic 1-5, 9 digits
        lead = rng.choice(_FR_PREFIXES)
        return f"{lead}{digits(7)}"
    if kind == "nl":  # mobile 6[1-5] or Amsterdam, Rotterdam, The Hague
        if rng.random() < 0.6:
            return f"6{rng.randrange(1, 6)}{digits(7)}"
        return f"{rng.choice(('20', '10', '70'))}{rng.randrange(2, 9)}{digits(6)}"
    if kind == "de":  # mobile 151x/160/17x or Berlin, Munich, Hamburg
        if rng.random() < 0.6:
            return f"{rng.choice(('1512', '1520', '1601', '1701', '1761'))}{digits(7)}"
        return f"{rng.choice(('30', '89', '40'))}{rng.randrange(2, 9)}{digits(7)}"
    raise ValueError(kind)


def spell(e164: str, spelling: str) -> str:
    """`e164` (`+CCNSN`) as a PBX writes it: national (Belgian only), `+` or `00`."""
    if spelling == "plus":
        return e164
    if spelling == "00":
        return "00" + e164[1:]
    if spelling == "national":
        assert e164.startswith("+32"), "national spelling only for Belgian numbers"
        return "0" + e164[3:]
    raise ValueError(spelling)


@dataclass(frozen=True)
class Traffic:
    """What the generated traffic looks like (defaults: issue 14's busy customer)."""

    calls: int = 200_000
    once_share: float = 0.5  # of the distinct external parties, the share calling once
    repeat_mean: float = 6.0  # calls per repeating party, on average (at least 2)
    outbound: float = 0.30  # share of calls the customer's extensions place
    withheld: float = 0.03  # share of inbound calls whose caller is withheld
    answered: float = 0.78
    mix: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    be_spellings: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_BE_SPELLINGS))
    foreign_spellings: dict[str, float] = field(
        default_factory=lambda: dict(DEFAULT_FOREIGN_SPELLINGS)
    )
    days: int = 90  # the time span
    end: datetime = datetime(2026, 1, 31, 23, 59, 59)  # PBX local time; fixed: runs compare
    columns: int = 18  # a key of LAYOUTS
    extensions: int = 40
    zone: str = "Europe/Brussels"  # the PBX's: start times local, uniqueids' epochs UTC
    seed: int = 42

    def __post_init__(self) -> None:
        if self.columns not in LAYOUTS:
            raise ValueError(f"columns must be one of {sorted(LAYOUTS)}")
        if set(self.mix) - set(KINDS) or not self.mix:
            raise ValueError(f"mix: kinds among {', '.join(KINDS)}")
        for name in ("once_share", "outbound", "withheld", "answered"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.repeat_mean < 2:
            raise ValueError("repeat_mean must be at least 2")


def _pick(rng: random.Random, shares: dict[str, float]) -> str:
    return rng.choices(list(shares), list(shares.values()))[0]


def parties(traffic: Traffic, rng: random.Random, slots: int) -> list[str]:
    """`slots` external parties (E.164), one per call that has one, in call order: a share
    `once_share` of the distinct numbers appears once, the others at least twice (heavy
    tailed: a few regular correspondents call very often)."""
    # n_once + n_rep * repeat_mean = slots, n_once / (n_once + n_rep) = once_share
    u, m = traffic.once_share, traffic.repeat_mean
    n_rep = 0 if u >= 1 else round(slots * (1 - u) / (u + (1 - u) * m))
    n_once = slots if n_rep == 0 else min(round(n_rep * u / (1 - u)), slots - 2 * n_rep)
    distinct: set[str] = set()
    numbers: list[str] = []
    while len(numbers) < n_once + n_rep:
        kind = _pick(rng, traffic.mix)
        number = f"+{COUNTRY[kind]}{_nsn(kind, rng)}"
        if number not in distinct:
            distinct.add(number)
            numbers.append(number)
    once, repeat = numbers[:n_once], numbers[n_once:]
    calls = once + repeat * 2
    extra = slots - len(calls)
    if extra > 0 and repeat:  # Zipf-like weights: the k-th regular calls ~1/k as often
        weights = [1.0 / (k + 1) ** 0.8 for k in range(len(repeat))]
        calls += rng.choices(repeat, weights, k=extra)
    rng.shuffle(calls)
    return calls


def rows(traffic: Traffic) -> Iterator[list[str]]:
    """The file's lines, in the layout `traffic.columns`, ordered by start time."""
    rng = random.Random(traffic.seed)
    n = traffic.calls
    outbound = [rng.random() < traffic.outbound for _ in range(n)]
    withheld = [not o and rng.random() < traffic.withheld for o in outbound]
    external = iter(parties(traffic, rng, sum(1 for w in withheld if not w)))
    first = traffic.end - timedelta(days=traffic.days) + timedelta(seconds=1)
    # Start times: a day of the span, an hour weighted towards office hours.
    hours = [1, 1, 1, 1, 1, 2, 4, 10, 30, 40, 40, 35, 20, 30, 40, 38, 30, 20, 10, 6, 4, 3, 2, 1]
    starts = sorted(
        first
        + timedelta(
            days=rng.randrange(traffic.days),
            hours=rng.choices(range(24), hours)[0],
            seconds=rng.randrange(3600),
        )
        for _ in range(n)
    )
    dids = [f"+322555{d:04d}" for d in range(100, 100 + max(traffic.extensions // 4, 1))]
    layout = LAYOUTS[traffic.columns]
    zone = ZoneInfo(traffic.zone)
    for i, start in enumerate(starts):
        ext = f"{1001 + rng.randrange(traffic.extensions)}"
        seq = i + 1
        uniqueid = f"{int(start.replace(tzinfo=zone).timestamp())}.{seq}"  # UTC epoch
        if outbound[i]:
            number = next(external)
            spelled = _spelled(traffic, rng, number)
            src, dst, context = ext, spelled, "from-internal"
            clid = f'"Ext {ext}" <{ext}>'
            channel, dstchannel = f"PJSIP/{ext}-{seq:08x}", f"PJSIP/trunk-{seq + 1:08x}"
            lastdata = f"PJSIP/{spelled}@trunk,60"
        else:
            dst, context = spell(rng.choice(dids), "national"), "from-pstn"
            if withheld[i]:
                src = rng.choice(WITHHELD)
                clid = '"Anonymous" <anonymous>' if src else ""
            else:
                src = _spelled(traffic, rng, next(external))
                clid = f'"{src}" <{src}>'
            channel, dstchannel = f"PJSIP/trunk-{seq:08x}", f"PJSIP/{ext}-{seq + 1:08x}"
            lastdata = f"PJSIP/{ext},30"
        r = rng.random()
        if r < traffic.answered:
            disposition = "ANSWERED"
        else:
            disposition = "NO ANSWER" if r < 0.96 else "BUSY" if r < 0.99 else "FAILED"
        ring = rng.randrange(2, 25)
        talk = int(rng.expovariate(1 / 180)) + 1 if disposition == "ANSWERED" else 0
        answer = start + timedelta(seconds=ring) if talk else None
        end = start + timedelta(seconds=ring + talk)
        value = {
            "accountcode": "",
            "src": src,
            "dst": dst,
            "dcontext": context,
            "clid": clid,
            "channel": channel,
            "dstchannel": dstchannel,
            "lastapp": "Dial",
            "lastdata": lastdata,
            "start": f"{start:%Y-%m-%d %H:%M:%S}",
            "answer": f"{answer:%Y-%m-%d %H:%M:%S}" if answer else "",
            "end": f"{end:%Y-%m-%d %H:%M:%S}",
            "duration": str(ring + talk),
            "billsec": str(talk),
            "disposition": disposition,
            "amaflags": "DOCUMENTATION",
            "uniqueid": uniqueid,
            "userfield": "",
            "peeraccount": "",
            "linkedid": uniqueid,
            "sequence": str(seq),
        }
        yield [value[name] for name in layout]


def _spelled(traffic: Traffic, rng: random.Random, e164: str) -> str:
    spellings = traffic.be_spellings if e164.startswith("+32") else traffic.foreign_spellings
    return spell(e164, _pick(rng, spellings))


def write(path: Path, traffic: Traffic) -> int:
    """Write the Master.csv (every field quoted, as cdr_csv does); the number of lines."""
    written = 0
    with path.open("w", newline="") as out:
        writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
        for line in rows(traffic):
            writer.writerow(line)
            written += 1
    return written


def _shares(text: str) -> dict[str, float]:
    """`a=0.3,b=0.7` as a dict."""
    shares = {}
    for part in text.split(","):
        name, _, share = part.partition("=")
        shares[name.strip()] = float(share)
    return shares


def add_arguments(parser: argparse.ArgumentParser, *, calls: int = 200_000) -> None:
    """The traffic's parameters as command-line options (defaults: issue 14)."""
    d = Traffic()
    group = parser.add_argument_group("traffic (bench/traffic.py)")
    group.add_argument("--calls", type=int, default=calls, help=f"calls (default {calls:,})")
    group.add_argument("--once-share", type=float, default=d.once_share)
    group.add_argument("--repeat-mean", type=float, default=d.repeat_mean)
    group.add_argument("--outbound", type=float, default=d.outbound)
    group.add_argument("--withheld", type=float, default=d.withheld)
    mix = ",".join(f"{k}={v}" for k, v in d.mix.items())
    group.add_argument("--mix", type=_shares, default=d.mix, help=f"default {mix}")
    group.add_argument("--days", type=int, default=d.days, help="the time span in days")
    group.add_argument("--columns", type=int, default=d.columns, choices=sorted(LAYOUTS))
    group.add_argument("--seed", type=int, default=d.seed)


def from_args(args: argparse.Namespace, calls: int | None = None) -> Traffic:
    """The Traffic the options of `add_arguments` describe (`calls` overrides --calls)."""
    return Traffic(
        calls=args.calls if calls is None else calls,
        once_share=args.once_share,
        repeat_mean=args.repeat_mean,
        outbound=args.outbound,
        withheld=args.withheld,
        mix=args.mix,
        days=args.days,
        columns=args.columns,
        seed=args.seed,
    )


def describe(traffic: Traffic) -> str:
    """One line naming the traffic's parameters, for the benchmarks' output."""
    mix = ", ".join(f"{k} {v:.0%}" for k, v in traffic.mix.items())
    return (
        f"{traffic.calls:,} calls over {traffic.days} days to {traffic.end:%Y-%m-%d},"
        f" {traffic.once_share:.0%} of the parties calling once, {traffic.outbound:.0%} outbound,"
        f" {traffic.withheld:.0%} of inbound withheld; {mix}; {traffic.columns}-column cdr_csv,"
        f" seed {traffic.seed}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out", type=Path)
    add_arguments(parser)
    args = parser.parse_args()
    traffic = from_args(args)
    write(args.out, traffic)
    print(describe(traffic))


if __name__ == "__main__":
    main()
