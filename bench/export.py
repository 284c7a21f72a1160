"""Benchmark: a portability export of one customer's N CDRs and M voicemail messages.

    python bench/export.py [--small N] [--large N] [--voicemail M] [--profile]

For N = 100,000 and N = 1,000,000 (--small, --large) with M = 200 voicemail messages, each
step in its own process, so the peak memory of the export is its own and not its setup's:
1. setup (not timed): a fresh installation on the embedded SQLite default, one customer, N
   CDR lines (bench/ingest.py's Master.csv generator) ingested through `dpa.ingest.ingest`
   in files of 200,000 lines, and M voicemail messages with small audio (an Asterisk spool
   built from tests/data/voicemail's samples) through `parse_voicemail_spool`;
2. the baseline (timed, its own process): the customer's rows read with raw `sqlite3` in
   id order and their sealed bytes dumped to a file, which shows how fast the machine is
   in this run (a virtual machine's CPUs can vary by a quarter from minute to minute);
3. the export (timed): `exports.builder.create` for the customer, default scope, to an
   X25519 recipient whose key the bench generates;
4. the check (not timed, a process of its own): the package decrypted with pyrage (or the `age`
   CLI), the ZIP opened, the manifest's counts and the JSONL lines compared with N and M.
Prints seconds, CDR records per second, the ratio to the baseline, CPU time (the exporting
process, and the worker processes that open and format the batches of a big export), peak
memory (of the exporting process with its workers, shared pages counted once, sampled every
50 ms; and of the exporting process alone) and the package size at both N, and the ratio of
the two peaks. `--profile` runs cProfile on the export of the small N instead and prints
the top 30 functions by own time.
Targets: at least 50,000 CDRs/s; peak memory under 200 MB at 1,000,000 and at most 1.3
times the 100,000 peak.
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
import threading
import time
import zipfile
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

    from dpa.parsers import ParsedRecord

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness  # bench/ is not a package: found through sys.path
from ingest import make_cdr_file

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


def setup(workdir: Path, cdrs: int, messages: int) -> None:
    """A fresh installation, one customer, `cdrs` CDRs and `messages` voicemail messages."""
    from dpa import ingest
    from dpa.parsers import parse_cdr_csv, parse_voicemail_spool
    from dpa.workspace import Workspace

    cdr = workdir / "Master.csv"
    make_cdr_file(cdr, cdrs)
    parts = _split(cdr, FILE_LINES)
    cdr.unlink()
    spool = _spool(workdir / "spool", messages)
    now = datetime.now(UTC)
    settings = _harness.install(workdir, started_on=STARTED_ON, now=now)
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


def _tree(pid: int) -> list[int]:
    """A process and all its descendants (Linux /proc)."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                pending.extend(int(c) for c in (task / "children").read_text().split())
        except OSError:
            continue  # the process ended meanwhile
    return found


def _pss_kib(pid: int) -> int:
    """Proportional set size: a page shared by several processes (the workers are forked
    from one server process) is split among them, so a sum over processes counts it once."""
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    return next(
        (int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:")), 0
    )


def _cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime, stime


class _Tree:
    """Peak memory (PSS) of this process with its descendants, and their CPU time.

    Sampled every 50 ms in a thread: the export's worker processes are not this process's
    own children (they are forked by a server process), so `getrusage` does not see them.
    """

    def __init__(self) -> None:
        self.peak_kib = 0
        self._ticks: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            others = _tree(os.getpid())[1:]
            for pid in others:
                self._ticks[pid] = max(self._ticks.get(pid, 0), _cpu_ticks(pid))
            self.peak_kib = max(self.peak_kib, sum(map(_pss_kib, [os.getpid(), *others])))

    @property
    def others_cpu_seconds(self) -> float:
        return sum(self._ticks.values()) / os.sysconf("SC_CLK_TCK")

    def __enter__(self) -> _Tree:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def export(workdir: Path, recipient: str) -> dict[str, float | str]:
    """`exports.builder.create` of the customer's whole data, default scope."""
    from dpa.workspace import Workspace
    from exports import builder
    from exports.age import X25519Recipient

    key = X25519Recipient.parse(recipient)
    with Workspace.open(_harness.settings(workdir)) as ws:
        _ = ws.keyring  # opened before the clock starts, as a long-running service would have
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        with _Tree() as tree:
            began, cpu = time.perf_counter(), time.process_time()
            report = builder.create(
                ws,
                builder.ExportRequest(CUSTOMER),
                recipient=key,
                actor="bench",
                now=datetime.now(UTC),
            )
            seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
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
        "base_mb": base / 1024,
    }


def raw(workdir: Path) -> dict[str, float]:
    """The baseline: the customer's stored rows read with raw `sqlite3` and their bytes dumped.

    Every row the export reads, in the same order and batches, its sealed payload written to
    a scratch file as it is: what an export costs before decrypting, formatting, compressing,
    hashing and encrypting. Measured in the same run, it shows how fast this machine is now.
    """
    import sqlite3

    database = _harness.settings(workdir).home / "dpa.sqlite3"
    began = time.perf_counter()
    connection = sqlite3.connect(database)
    rows = 0
    with tempfile.TemporaryFile(dir=workdir) as dump:
        cursor = connection.execute(
            "SELECT id, payload FROM records WHERE customer_id = ? ORDER BY id", (CUSTOMER,)
        )
        while batch := cursor.fetchmany(2000):
            dump.write(b"".join(payload for _, payload in batch))
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
    if args.child == "setup":
        setup(args.dir, args.cdrs, args.voicemail)
        return
    if args.child == "raw":
        print(json.dumps(raw(args.dir)))
        return
    if args.child == "verify":
        identity = sys.stdin.readline().strip()  # never on a command line
        print(json.dumps(verify(Path(args.package), identity, args.cdrs, args.voicemail)))
        return
    if args.child == "profile":
        import cProfile
        import pstats

        import exports.builder  # noqa: F401 (imported before profiling, as in a measurement)

        profiler = cProfile.Profile()
        profiler.enable()
        result = export(args.dir, args.recipient)
        profiler.disable()
        stats = pstats.Stats(profiler, stream=sys.stderr)
        stats.sort_stats("tottime").print_stats(30)
    else:
        result = export(args.dir, args.recipient)
    result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def _step(mode: str, workdir: Path, cdrs: int, messages: int, *extra: str, stdin: str = "") -> str:
    return _harness.run(
        __file__,
        *("--child", mode, "--dir", str(workdir), "--cdrs", str(cdrs)),
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


def measure(cdrs: int, messages: int, *, profile: bool = False) -> dict[str, float]:
    """Set up (one process), export (another), check the package (a third)."""
    recipient, identity = _keypair()
    with tempfile.TemporaryDirectory(prefix="dpa-bench-") as tmp:
        workdir = Path(tmp)
        began = time.perf_counter()
        _step("setup", workdir, cdrs, messages)
        setup_seconds = time.perf_counter() - began
        baseline = _harness.last_json(_step("raw", workdir, cdrs, messages))
        mode = "profile" if profile else "export"
        out = _step(mode, workdir, cdrs, messages, "--recipient", recipient)
        result = _harness.last_json(out)
        package = str(result.pop("path"))
        _step("verify", workdir, cdrs, messages, "--package", package, stdin=identity + "\n")
    assert result["records"] == cdrs + messages and result["media_files"] == messages, result
    assert baseline["rows"] == cdrs + messages, baseline
    result["setup_seconds"] = setup_seconds
    result["raw_seconds"] = baseline["seconds"]
    return dict(result)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--small", type=int, default=100_000, help="the small N (CDRs)")
    parser.add_argument("--large", type=int, default=1_000_000, help="the large N (CDRs)")
    parser.add_argument("--voicemail", type=int, default=200, help="M voicemail messages")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the export of the small N (to stderr)"
    )
    parser.add_argument("--child", choices=["setup", "raw", "export", "profile", "verify"])
    parser.add_argument("--dir", type=Path)
    parser.add_argument("--cdrs", type=int)
    parser.add_argument("--recipient")
    parser.add_argument("--package")
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    m = args.voicemail
    if args.profile:
        result = measure(args.small, m, profile=True)
        print(f"export of {args.small:,} CDRs + {m:,} voicemail messages under cProfile:")
        print(f"  {result['seconds']:.2f} s ({args.small / result['seconds']:,.0f} CDRs/s)")
        return
    print(
        f"export of one customer's N CDRs + {m:,} voicemail messages (SQLite, X25519 recipient),"
        " setup, export and check each in its own process"
    )
    peaks = {}
    for n in (args.small, args.large):
        r = measure(n, m)
        peaks[n] = r["tree_peak_mb"]
        print(f"  N = {n:,}")
        print(
            f"    export: {r['seconds']:7.2f} s  ({n / r['seconds']:,.0f} CDRs/s; target >= 50,000);"
            f" CPU {r['cpu_seconds']:.2f} s in the exporting process,"
            f" {r['children_cpu_seconds']:.2f} s in {r['workers']:.0f} worker processes"
        )
        print(
            f"    raw read of the same rows (sqlite3, sealed bytes dumped): {r['raw_seconds']:.2f} s;"
            f" export / raw: {r['seconds'] / r['raw_seconds']:.1f}"
        )
        print(
            f"    peak memory: {r['tree_peak_mb']:.0f} MB with the workers (PSS)"
            f" (the exporting process alone {r['peak_mb']:.0f} MB, {r['base_mb']:.0f} MB at the"
            f" start)  package {r['size'] / 2**20:,.1f} MiB"
        )
        print(
            f"    checked: decrypted, manifest and JSONL hold {n:,} CDRs and {m:,} voicemail"
            f" messages with {m:,} audio files  (setup {r['setup_seconds']:.0f} s, not timed)"
        )
    growth = peaks[args.large] / peaks[args.small]
    print(
        f"  peak memory with the workers: {peaks[args.large]:.0f} MB at {args.large:,},"
        f" {peaks[args.small]:.0f} MB"
        f" at {args.small:,}  (x{growth:.2f}; target < 200 MB and <= x1.3)"
    )


if __name__ == "__main__":
    main()
