"""Benchmark: a portability export of one customer's N CDRs and M voicemail messages.

    python bench/export.py [--backend sqlite|postgresql|both] [--calls N] [--large L]
                           [--voicemail M] [--quick] [--profile] [traffic options]

Realistic traffic (bench/traffic.py; defaults: issue 14's busy customer, N = 200,000 calls
over 90 days) and M = 200 voicemail messages; on each backend, each step in its own process,
so the peak memory of the export is its own and not its setup's:
1. setup (not timed): a fresh installation, one customer, the N CDR lines ingested through
   `dpa.ingest.ingest` in files of 200,000 lines, and M voicemail messages with small audio
   (an Asterisk spool built from tests/data/voicemail's samples) through
   `parse_voicemail_spool`; then a copy of the installation (the SQLite file, or on
   PostgreSQL `CREATE DATABASE ... TEMPLATE`) for the whole-process run;
2. the baseline (timed, its own process): the customer's rows read with raw `sqlite3` (or
   psycopg) in id order and their sealed bytes dumped to a file, which shows how fast the
   machine is in this run (a virtual machine's CPUs can vary by a quarter from minute to
   minute);
3. the export in-process (timed): `exports.builder.create` for the customer, default scope,
   to an X25519 recipient whose key the bench generates;
4. the check (not timed, a process of its own): the package decrypted with pyrage (or the `age`
   CLI), the ZIP opened, the manifest's counts and the JSONL lines compared with N and M;
5. the export as a whole process: `dpa export create --customer acme --recipient ... --json`
   on the copy, timed from spawn to exit, its records counted from its report.
Then the in-process export alone at L = 1,000,000 calls (--large; 0 skips it), for how peak
memory grows with N.
Prints seconds, CDR records per second, the ratio to the baseline, CPU time (the exporting
process, and the worker processes that open and format the batches of a big export), peak
memory (of the exporting process with its workers, shared pages counted once, sampled every
50 ms; and of the exporting process alone) and the package size, and the ratio of the two
peaks. `--profile` runs cProfile on the in-process export of N instead and prints the top 30
functions by own time. On PostgreSQL the server's memory is not counted.
Targets (issue 14): at least 50,000 CDRs/s; peak memory under 200 MB and at most 1.3 times
from N to L.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable

    from dpa.parsers import ParsedRecord

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness  # bench/ is not a package: found through sys.path
import traffic

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "tests" / "data" / "voicemail" / "default" / "1001"
AUDIO = [SAMPLES / "INBOX" / "msg0000.wav", SAMPLES / "INBOX" / "msg0001.WAV"]
AUDIO.append(SAMPLES / "Old" / "msg0000.gsm")
FILE_LINES = 200_000  # CDR lines per ingested file: one transaction each
STARTED_ON = date(2025, 1, 1)  # before the first call; the contract runs: export allowed
CUSTOMER = _harness.CUSTOMER

MESSAGE = """;
; Message Information file
;
[message]
origmailbox=1001
context=from-pstn
macrocontext=
exten=1001
rdnis=unknown
priority=2
callerchan=SIP/trunk-{n:08x}
callerid="Caller {n}" <04701{n:05d}>
origdate=Sat Mar 28 09:20:00 AM UTC 2026
origtime={origtime}
category=
msg_id={origtime}-{n:08x}
flag=
duration={duration}
"""


def _spool(root: Path, messages: int) -> Path:
    """An Asterisk voicemail spool of `messages` messages, audio copied from the samples,
    5,000 to a mailbox (app_voicemail numbers a folder's messages msg0000 to msg9999)."""
    for n in range(messages):
        audio = AUDIO[n % len(AUDIO)]
        inbox = root / "default" / f"{1001 + n // 5000}" / "INBOX"
        inbox.mkdir(parents=True, exist_ok=True)
        stem = inbox / f"msg{n % 5000:04d}"
        stem.with_suffix(".txt").write_text(
            MESSAGE.format(n=n, origtime=1774689600 + 600 * n, duration=5 + n % 40)
        )
        shutil.copyfile(audio, stem.with_suffix(audio.suffix))
    return root


def _split(source: Path, lines: int) -> list[Path]:
    """The Master.csv cut into files of at most `lines` lines (no field holds a newline)."""
    parts: list[Path] = []
    with source.open(newline="") as src:
        out = None
        for number, line in enumerate(src):
            if number % lines == 0:
                if out is not None:
                    out.close()
                parts.append(source.with_name(f"Master-{len(parts):03d}.csv"))
                out = parts[-1].open("w", newline="")
            assert out is not None
            out.write(line)
        if out is not None:
            out.close()
    return parts


def setup(target: _harness.Target, cdr: Path, cdrs: int, messages: int) -> None:
    """A fresh installation, one customer, the calls of `cdr` and `messages` voicemail messages."""
    from dpa import ingest
    from dpa.parsers import parse_cdr_csv, parse_voicemail_spool
    from dpa.workspace import Workspace

    parts = _split(cdr, FILE_LINES)
    spool = _spool(target.home.with_name(target.home.name + "-spool"), messages)
    now = datetime.now(UTC)
    settings = _harness.install(target, started_on=STARTED_ON, now=now)
    with Workspace.open(settings) as ws:
        with ws.session() as session:
            tz = ws.register(session).settings.timezone

        def store(kind: str, records: Iterable[ParsedRecord]) -> int:
            """One file's records (a lazy parser), in one transaction."""
            with ws.session() as session:
                report = ingest.ingest(
                    session,
                    ws.keyring,
                    ws.blobs,
                    ws.register(session),
                    records,
                    customer_id=CUSTOMER,
                    kind=kind,
                    actor="bench",
                    now=now,
                )
            return report.added

        added = sum(store("asterisk-cdr-csv", parse_cdr_csv(part, tz)) for part in parts)
        added += store("asterisk-voicemail", parse_voicemail_spool(spool))
    assert added == cdrs + messages, (added, cdrs, messages)
    for part in parts:
        part.unlink()
    shutil.rmtree(spool)


def export(target: _harness.Target, recipient: str) -> dict[str, Any]:
    """`exports.builder.create` of the customer's whole data, default scope."""
    from dpa.workspace import Workspace
    from exports import builder
    from exports.age import X25519Recipient

    key = X25519Recipient.parse(recipient)
    with Workspace.open(_harness.settings(target)) as ws:
        _ = ws.keyring  # opened before the clock starts, as a long-running service would have
        base = _harness.peak_mb()
        with _harness.Tree() as tree:
            began, cpu = time.perf_counter(), time.process_time()
            report = builder.create(
                ws,
                builder.ExportRequest(CUSTOMER),
                recipient=key,
                actor="bench",
                now=datetime.now(UTC),
            )
            seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
            load = os.getloadavg()[0]  # the machine's load over the last minute (`uptime`)
    workers = builder._workers() if report.records >= builder._PARALLEL_FROM else 0
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "children_cpu_seconds": tree.others_cpu_seconds,
        "workers": workers,
        "tree_peak_mb": tree.peak_kib / 1024,
        "records": report.records,
        "media_files": report.media_files,
        "size": report.size,
        "path": str(report.path),
        "base_mb": base,
        "load": load,
    }


def raw(target: _harness.Target) -> dict[str, float]:
    """The baseline: the customer's stored rows read with a raw driver and their bytes dumped.

    Every row the export reads, in the same order and batches, its sealed payload written to
    a scratch file as it is: what an export costs before decrypting, formatting, compressing,
    hashing and encrypting. Measured in the same run, it shows how fast this machine is now.
    """
    import sqlite3

    import psycopg  # noqa: F401 (imported before the clock starts, as sqlite3 is)
    import sqlalchemy  # noqa: F401 (pg_connect reads the URL with it)

    query = "SELECT id, payload FROM records WHERE customer_id = ? ORDER BY id"
    began = time.perf_counter()
    if target.url is None:
        connection: Any = sqlite3.connect(_harness.settings(target).home / "dpa.sqlite3")
        cursor = connection.execute(query, (CUSTOMER,))
    else:
        connection = _harness.pg_connect(target.url)
        cursor = connection.cursor(name="bench_raw")  # server-side, as a big read should be
        cursor.execute(query.replace("?", "%s"), (CUSTOMER,))
    rows = 0
    with tempfile.TemporaryFile(dir=target.home) as dump:
        while batch := cursor.fetchmany(2000):
            dump.write(b"".join(bytes(payload) for _, payload in batch))
            rows += len(batch)
        dump.flush()
        os.fsync(dump.fileno())
    connection.close()
    return {"seconds": time.perf_counter() - began, "rows": rows}


def verify(package: Path, identity: str, cdrs: int, messages: int) -> dict[str, int]:
    """Decrypt with an independent age implementation; the manifest and files hold N and M."""
    plain = package.with_name("package.zip")
    try:
        try:
            import pyrage  # type: ignore[import-untyped]
        except ImportError:
            if shutil.which("age") is None:
                raise SystemExit("cannot check the package: neither pyrage nor age") from None
            key = package.with_name("identity.txt")
            fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(identity + "\n")
            subprocess.run(
                ["age", "--decrypt", "-i", str(key), "-o", str(plain), str(package)], check=True
            )
            key.unlink()
        else:
            pyrage.decrypt_file(
                str(package), str(plain), [pyrage.x25519.Identity.from_str(identity)]
            )
        with zipfile.ZipFile(plain) as archive:
            document = json.loads(archive.read("manifest.json"))
            by_category = {c["category"]: c for c in document["categories"]}
            lines = {}
            for category in ("cdr", "voicemail"):
                with archive.open(f"data/{category}.jsonl") as member:
                    lines[category] = sum(1 for _ in member)
            media = sum(1 for n in archive.namelist() if n.startswith("media/voicemail/"))
    finally:
        plain.unlink(missing_ok=True)
    found = {
        "manifest_records": document["records"],
        "manifest_cdr": by_category["cdr"]["records"],
        "manifest_voicemail": by_category["voicemail"]["records"],
        "manifest_media": by_category["voicemail"]["media_files"],
        "jsonl_cdr": lines["cdr"],
        "jsonl_voicemail": lines["voicemail"],
        "media_files": media,
    }
    expected = {
        "manifest_records": cdrs + messages,
        "manifest_cdr": cdrs,
        "manifest_voicemail": messages,
        "manifest_media": messages,
        "jsonl_cdr": cdrs,
        "jsonl_voicemail": messages,
        "media_files": messages,
    }
    if found != expected or set(by_category) != {"cdr", "voicemail"}:
        raise SystemExit(f"the package does not hold what was stored: {found} != {expected}")
    return found


def child(args: argparse.Namespace) -> None:
    """Run one step in this process; the export and the check print JSON."""
    target = _harness.target_of(args)
    if args.child == "setup":
        setup(target, args.file, args.calls, args.voicemail)
        return
    if args.child == "raw":
        print(json.dumps(raw(target)))
        return
    if args.child == "verify":
        identity = sys.stdin.readline().strip()  # never on a command line
        print(json.dumps(verify(Path(args.package), identity, args.calls, args.voicemail)))
        return
    if args.child == "profile":
        import cProfile
        import pstats

        import exports.builder  # noqa: F401 (imported before profiling, as in a measurement)

        profiler = cProfile.Profile()
        profiler.enable()
        result = export(target, args.recipient)
        profiler.disable()
        stats = pstats.Stats(profiler, stream=sys.stderr)
        stats.sort_stats("tottime").print_stats(30)
    else:
        result = export(target, args.recipient)
    result["peak_mb"] = _harness.peak_mb()
    print(json.dumps(result))


def _step(
    mode: str, target: _harness.Target, cdrs: int, messages: int, *extra: str, stdin: str = ""
) -> str:
    return _harness.run(
        __file__,
        *("--child", mode, *target.args(), "--calls", str(cdrs)),
        *("--voicemail", str(messages), *extra),
        stdin=stdin,
        show_stderr=mode == "profile",
    )


def _keypair() -> tuple[str, str]:
    """A fresh age X25519 key: (recipient `age1...`, identity `AGE-SECRET-KEY-1...`)."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from exports.age import X25519Recipient, _bech32_encode

    private = X25519PrivateKey.generate()
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    identity = _bech32_encode("age-secret-key-", private.private_bytes_raw()).upper()
    return str(X25519Recipient(public)), identity


def measure(
    dbs: _harness.Databases,
    backend: str,
    params: traffic.Traffic,
    messages: int,
    *,
    profile: bool = False,
    process: bool = True,
) -> dict[str, Any]:
    """Set up (one process), read raw (another), export (another), check the package (a
    fourth); then (`process`) export with the `dpa` command on a copy."""
    cdrs = params.calls
    recipient, identity = _keypair()
    target = dbs.new(backend, "export")
    cdr = target.home.with_name(target.home.name + ".csv")
    traffic.write(cdr, params)
    began = time.perf_counter()
    _step("setup", target, cdrs, messages, "--file", str(cdr))
    setup_seconds = time.perf_counter() - began
    cdr.unlink()
    copy = dbs.clone(target, "process") if process and not profile else None
    baseline = _harness.last_json(_step("raw", target, cdrs, messages))
    mode = "profile" if profile else "export"
    result = _harness.last_json(_step(mode, target, cdrs, messages, "--recipient", recipient))
    package = str(result.pop("path"))
    _step("verify", target, cdrs, messages, "--package", package, stdin=identity + "\n")
    dbs.drop(target)
    assert result["records"] == cdrs + messages and result["media_files"] == messages, result
    assert baseline["rows"] == cdrs + messages, baseline
    result["setup_seconds"] = setup_seconds
    result["raw_seconds"] = baseline["seconds"]
    if copy is not None:
        result["startup"] = _harness.startup(copy)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        run = _harness.dpa_process(
            copy, "export", "create", "--customer", CUSTOMER, "--recipient", recipient, "--json",
            tree=True,
        )  # fmt: skip
        made = json.loads(run["stdout"])
        assert made["records"] == cdrs + messages, made
        run.pop("stdout")
        after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the `dpa` process, waited for
        run["cpu_seconds"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        run["load"] = os.getloadavg()[0]
        result["process"] = run
        dbs.drop(copy)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    _harness.add_backend_arguments(parser)
    parser.add_argument(
        "--large", type=int, default=1_000_000, help="L calls, peak memory only (0: skip)"
    )
    parser.add_argument("--voicemail", type=int, default=200, help="M voicemail messages")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 5,000 and 20,000")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the in-process export of N (to stderr)"
    )
    traffic.add_arguments(parser)
    parser.add_argument(
        "--child", choices=["setup", "raw", "export", "profile", "verify"], help=argparse.SUPPRESS
    )
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--recipient", help=argparse.SUPPRESS)
    parser.add_argument("--package", help=argparse.SUPPRESS)
    _harness.add_target_arguments(parser)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    if args.quick:
        args.calls, args.large = _harness.QUICK_CALLS, 4 * _harness.QUICK_CALLS
    params = traffic.from_args(args)
    n, m = params.calls, args.voicemail
    with (
        tempfile.TemporaryDirectory(prefix="dpa-bench-") as tmp,
        _harness.databases(Path(tmp)) as dbs,
    ):
        if args.profile:
            for backend in _harness.backends(args.backend):
                r = measure(dbs, backend, params, m, profile=True)
                print(f"{backend}: export of {n:,} CDRs + {m:,} voicemail messages under cProfile:")
                print(f"  {r['seconds']:.2f} s ({n / r['seconds']:,.0f} CDRs/s)")
            return
        print(
            f"export of one customer's N CDRs + {m:,} voicemail messages (X25519 recipient),"
            f" setup, export and check each in its own process; {traffic.describe(params)}"
        )
        for backend in _harness.backends(args.backend):
            print(f"  {backend}:")
            r = measure(dbs, backend, params, m)
            report(n, m, r)
            if args.large:
                big = measure(
                    dbs, backend, traffic.from_args(args, calls=args.large), m, process=False
                )
                report(args.large, m, big)
                growth = big["tree_peak_mb"] / r["tree_peak_mb"]
                print(
                    f"    peak memory with the workers: {big['tree_peak_mb']:.0f} MB at"
                    f" {args.large:,}, {r['tree_peak_mb']:.0f} MB at {n:,}"
                    f"  (x{growth:.2f}; target < 200 MB and <= x1.3)"
                )


def report(n: int, m: int, r: dict[str, Any]) -> None:
    print(f"    N = {n:,}")
    print(
        f"      raw read of the same rows (sealed bytes dumped): {r['raw_seconds']:.2f} s"
        f"  ({n / r['raw_seconds']:,.0f} rows/s)"
    )
    print(
        f"      dpa in-process (builder.create): {r['seconds']:7.2f} s  ({n / r['seconds']:,.0f}"
        f" CDRs/s; target >= 50,000)  ratio {r['seconds'] / r['raw_seconds']:.1f};"
        f" CPU {r['cpu_seconds']:.2f} s in the exporting process,"
        f" {r['children_cpu_seconds']:.2f} s in {r['workers']:.0f} worker processes;"
        f" load {r['load']:.1f}"
    )
    print(
        f"        peak memory: {r['tree_peak_mb']:.0f} MB with the workers (PSS)"
        f" (the exporting process alone {r['peak_mb']:.0f} MB, {r['base_mb']:.0f} MB at the"
        f" start)  package {r['size'] / 2**20:,.1f} MiB"
    )
    if "process" in r:
        print(f"      {r['startup']}")
        p = r["process"]
        print(
            f"      dpa export create, whole process: {p['seconds']:7.2f} s"
            f"  ({n / p['seconds']:,.0f} CDRs/s; target >= 50,000)"
            f"  ratio {p['seconds'] / r['raw_seconds']:.1f};"
            f" peak memory {p['tree_peak_mb']:.0f} MB with the workers (PSS),"
            f" {p['peak_mb']:.0f} MB the process alone"
        )
        print(
            f"        CPU {p['cpu_seconds']:.2f} s in the process (start-up included),"
            f" {p['children_cpu_seconds']:.2f} s in its workers; load {p['load']:.1f}"
        )
    print(
        f"      checked: decrypted, manifest and JSONL hold {n:,} CDRs and {m:,} voicemail"
        f" messages with {m:,} audio files  (setup {r['setup_seconds']:.0f} s, not timed)"
    )


if __name__ == "__main__":
    main()
