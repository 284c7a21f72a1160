"""Per-file ingest cursors: a run reads only what a growing file appended since the last one.

Asterisk appends one line per call to `Master.csv`; cron runs `dpa ingest cdr` on it every few
minutes. A cursor remembers, per customer and file, how far the last committed run read:
the file's device and inode, the offset (always the end of a complete line) and the number
of lines before it, and keyed digests of the file's first 4 KiB and of the 4 KiB before the
offset. `resume` opens the file, compares, and hands out the complete lines appended since:

- `new`: no cursor for this customer and path: from the start;
- `continued`: same device and inode, the file is at least as long as the offset, both
  digests match: from the offset;
- `moved`: another device or inode but both digests match (a copy fetched with rsync or scp
  replaces the inode every time; the bytes before the offset are the ones already read):
  from the offset;
- `rotated`: another inode whose content differs (logrotate's `create`): from the start;
- `truncated`: same inode, shorter than the offset (logrotate's `copytruncate`): from the start;
- `rewritten`: same inode, long enough, but a digest differs (truncated and grown again, or
  replaced in place): from the start;
- `from-start`: the caller asked to read everything again.

Reading from the start is always safe: a record's identity is its content (`dpa.identity`),
so lines read before add nothing. The digests cover the first and the last 4 KiB before the
offset, not every byte: a file edited in the middle keeps its cursor (an append-only log is
never edited there; `from_start` re-reads it).

A run reads the bytes present when it opened the file, up to their last newline (`b"\\n"`;
CRLF lines end with one too). A last line without its newline is being written: it is left
for the next run and counted (`Resume.pending_bytes`), never read as a record, unless the
caller says the file is complete (`include_partial`): then it is read, but the cursor still
stops before it, so a line the writer completes later is read again whole (and its first
reading, if it was cut, was a line the parser refused or a record the content identity tells
apart). Bytes are streamed (`os.pread` in 64 KiB chunks); nothing holds the file in memory.

`advance` stores the cursor in the caller's transaction, so records and cursor commit
together: a run killed before its commit leaves the cursor where it was and the next run
reads the same lines again. On PostgreSQL `resume` locks the cursor row (`FOR UPDATE`), so
two runs on one file take turns; on SQLite the writer's `BEGIN IMMEDIATE` does the same.

Nothing personal is stored in clear: the path (an `accountlogs` file is named after an
account code) and the head and tail bytes (call lines) are kept only as HMAC-SHA256 digests
under the installation's `blind-index` system key, with a purpose prefix of their own. A
customer's cursors go with its purge (`forget`).
"""

from __future__ import annotations

import hashlib
import hmac
import io
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TextIO, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from dpa.errors import InputError
from dpa.models import IngestCursor

__all__ = [
    "CHUNK",
    "HEAD_BYTES",
    "Predecessor",
    "Reason",
    "Resume",
    "advance",
    "find_predecessor",
    "forget",
    "path_digest",
    "resume",
]

CHUNK = 1 << 16  # bytes per read
HEAD_BYTES = 4096  # bytes compared at the start of the file and just before the offset
_TABLE: sa.Table = IngestCursor.__table__  # type: ignore[attr-defined]
_SIGN = 1 << 63  # st_dev and st_ino are unsigned 64-bit; the columns are signed BIGINT

Reason = Literal["new", "continued", "moved", "rotated", "truncated", "rewritten", "from-start"]


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= _SIGN else value


class _Window(io.RawIOBase):
    """Bytes [start, stop) of an open file, read with pread; counts the newlines it delivers."""

    def __init__(self, fd: int, label: str, start: int, stop: int) -> None:
        super().__init__()
        self._fd = fd
        self._label = label
        self.position = start
        self.stop = stop
        self.newlines = 0
        self.eof = start == stop  # an empty window is read by not reading it

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        want = min(len(buffer), self.stop - self.position, CHUNK)
        if want <= 0:
            # A buffered reader asks again only once it has handed out all it holds: the
            # reader above has now been given every byte of the window.
            self.eof = self.eof or len(buffer) > 0
            return 0
        data = os.pread(self._fd, want, self.position)
        if len(data) < want:
            # Truncated under our feet (copytruncate): what follows is not what was compared.
            raise InputError(
                f"{self._label}: the file was truncated while it was read; nothing of this run "
                "was stored: run again"
            )
        buffer[: len(data)] = data
        self.position += len(data)
        self.newlines += data.count(b"\n")
        return len(data)


class Resume:
    """One run's view of a file: where it starts, where it stops, and the bytes in between.

    A context manager holding the open file; `text()` or `binary()` streams the bytes from
    `start` to `stop` once. `first_line` is the 1-based number of the first line streamed,
    so errors name the file's true line numbers.
    """

    def __init__(
        self,
        *,
        fd: int,
        label: str,
        customer_id: str,
        path_digest: bytes,
        key: bytes,
        reason: Reason,
        start: int,
        first_line: int,
        end: int,
        stop: int,
        size: int,
        device: int,
        inode: int,
        head_at_open: bytes,
        state: str | None,
        predecessor: Predecessor | None = None,
    ) -> None:
        self.label = label
        # The rotated copy holding lines appended before the rotation that no run has read:
        # the caller reads them (`Predecessor.text()`) before this file, in this transaction.
        self.predecessor = predecessor
        self.customer_id = customer_id
        self.reason: Reason = reason
        self.start = start  # offset of the first byte read
        self.first_line = first_line
        self.end = end  # offset after the last complete line: where the cursor goes
        self.stop = stop  # offset where reading stops: `end`, or `size` with include_partial
        self.size = size  # the file's size when it was opened
        self.state = state  # what the caller stored with the cursor (when continuing)
        self._fd = fd
        self._path_digest = path_digest
        self._key = key
        self._device = device
        self._inode = inode
        self._head_at_open = head_at_open
        self._window = _Window(fd, label, start, stop)
        self._opened = False

    @property
    def pending_bytes(self) -> int:
        """Bytes after the last complete line: a line still being written (0: none)."""
        return self.size - self.end

    @property
    def empty(self) -> bool:
        """Nothing to read: no complete line was appended (and no partial one is read)."""
        return self.start == self.stop

    @property
    def exhausted(self) -> bool:
        """The stream was read to its end: every byte from `start` to `stop` was handed out."""
        return self._window.eof

    @property
    def lines_read(self) -> int:
        """Newlines streamed so far."""
        return self._window.newlines

    def summary(self) -> str:
        """Where this run started and what it left, for a person (no content, no path)."""
        where = {
            "new": "first reading, from line 1",
            "continued": f"continued at line {self.first_line}",
            "moved": f"continued at line {self.first_line} (the same bytes under a new inode)",
            "rotated": "another file at this path (rotated or replaced): read from line 1",
            "truncated": "the file is shorter than the last reading (truncated): from line 1",
            "rewritten": "the file was rewritten since the last reading: from line 1",
            "from-start": "read from line 1 (--from-start)",
        }[self.reason]
        if self.pending_bytes and self.stop == self.end:
            where += (
                f"; a last line without its newline ({self.pending_bytes} bytes) is left "
                "for the next run"
            )
        elif self.pending_bytes:
            where += (
                f"; the last line has no newline ({self.pending_bytes} bytes): read, and read "
                "again next run"
            )
        return where

    def binary(self) -> io.BufferedReader:
        """The bytes from `start` to `stop`, buffered; only one stream per run."""
        if self._opened:
            raise RuntimeError("the bytes of a Resume are streamed once")
        self._opened = True
        return io.BufferedReader(self._window, buffer_size=CHUNK)

    def text(self, encoding: str = "utf-8", errors: str = "replace") -> TextIO:
        """The same bytes as text, newlines untranslated (`newline=""`, what csv wants)."""
        return io.TextIOWrapper(self.binary(), encoding=encoding, errors=errors, newline="")

    def lines(self) -> Iterator[bytes]:
        """The lines from `start` to `stop` as bytes, each with its newline."""
        yield from self.binary()

    def carried(self) -> object:
        """Where the stream stands (`dpa.offload.Carry`: read by a worker process)."""
        window = self._window
        return (window.position, window.newlines, window.eof, self._opened)

    def adopt(self, state: object) -> None:
        """Stand where a worker's copy of this run stood when it had read its lines."""
        window = self._window
        window.position, window.newlines, window.eof, self._opened = state  # type: ignore[misc]

    def close(self) -> None:
        """Close the file (the streams hold no descriptor of their own)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Resume:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _check_unchanged(self) -> None:
        """Refuse when the start of the file changed since it was opened (truncated, regrown)."""
        if _digest(self._key, b"head", _read(self._fd, 0, _head_len(self.size))) != (
            self._head_at_open
        ):
            raise InputError(
                f"{self.label}: the file was rewritten while it was read; nothing of this run "
                "was stored: run again"
            )


def _head_len(size: int) -> int:
    return min(size, HEAD_BYTES)


def _digest(key: bytes, purpose: bytes, data: bytes) -> bytes:
    return hmac.new(key, b"dpa-cursor-" + purpose + b"\0" + data, hashlib.sha256).digest()


def _read(fd: int, offset: int, length: int) -> bytes:
    """Exactly `length` bytes at `offset` (a short read means the file shrank: b"" then)."""
    parts = []
    got = 0
    while got < length:
        data = os.pread(fd, min(CHUNK, length - got), offset + got)
        if not data:
            return b""
        parts.append(data)
        got += len(data)
    return b"".join(parts)


def _last_newline_end(fd: int, start: int, size: int) -> int:
    """The offset just after the last b"\\n" in [start, size), or `start` when there is none."""
    position = size
    while position > start:
        low = max(start, position - CHUNK)
        data = _read(fd, low, position - low)
        if not data:
            return start  # shrank meanwhile: nothing complete; the window read will tell
        found = data.rfind(b"\n")
        if found >= 0:
            return low + found + 1
        position = low
    return start


def path_digest(key: bytes, customer_id: str, path: Path) -> bytes:
    """The keyed digest naming one customer's file (its resolved absolute path)."""
    text = f"{customer_id}\0{path.resolve()}"
    return _digest(key, b"path", os.fsencode(text))


def resume(
    session: Session,
    key: bytes,
    customer_id: str,
    path: Path,
    *,
    from_start: bool = False,
    include_partial: bool = False,
) -> Resume:
    """Open `path` and decide where this run starts, against the stored cursor.

    `key` is the `blind-index` system key (`Keyring.system_key(session, "blind-index")`).
    The caller streams `Resume.text()` (or `binary()`), then calls `advance` in the same
    transaction, and closes the Resume. A path that is not a regular file is refused
    (InputError): a pipe has no offset to come back to.
    """
    label = str(path)
    digest = path_digest(key, customer_id, path)
    query = sa.select(_TABLE).where(
        _TABLE.c.customer_id == customer_id, _TABLE.c.path_digest == digest
    )
    # Lock the cursor before looking at the file: a second run on the same file waits for
    # the first to commit, then sees its cursor. FOR UPDATE locks nothing before the first
    # run has written a row, so PostgreSQL also takes a transaction advisory lock on the
    # (customer, file) pair; SQLite writers already take turns (BEGIN IMMEDIATE).
    if session.get_bind().dialect.name == "postgresql":
        lock = int.from_bytes(
            hashlib.sha256(customer_id.encode() + digest).digest()[:8], "big", signed=True
        )
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock})
    stored = session.execute(query.with_for_update()).mappings().first()
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused just below);
        # on a regular file it changes nothing.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise InputError(f"{label}: cannot open ({exc.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"{label}: not a regular file (a cursor needs a file to return to)")
        size = st.st_size
        device, inode = _signed(st.st_dev), _signed(st.st_ino)
        reason, start, first_line, state = _decide(
            fd, key, stored, size, device, inode, from_start=from_start
        )
        end = _last_newline_end(fd, start, size)
        head = _digest(key, b"head", _read(fd, 0, _head_len(size)))
        predecessor = (
            find_predecessor(key, path, stored)
            if stored is not None and reason in ("rotated", "truncated", "rewritten")
            else None
        )
        return Resume(
            predecessor=predecessor,
            fd=fd,
            label=label,
            customer_id=customer_id,
            path_digest=digest,
            key=key,
            reason=reason,
            start=start,
            first_line=first_line,
            end=end,
            stop=size if include_partial else end,
            size=size,
            device=device,
            inode=inode,
            head_at_open=head,
            state=state,
        )
    except BaseException:
        os.close(fd)
        raise


@dataclass(frozen=True, slots=True)
class Predecessor:
    """The rotated copy of a followed file that still holds lines no run has read.

    Between the last run and a rotation the writer may have appended calls: after `create`
    rotation they sit in the renamed file (same inode), after `copytruncate` in the copy
    (same bytes up to the cursor). `start`/`end` frame its complete lines past the cursor."""

    path: Path
    start: int
    end: int
    first_line: int
    state: str | None  # what the caller kept with the cursor: how its lines were read

    @property
    def pending_bytes(self) -> int:
        return self.end - self.start

    def text(self) -> io.TextIOWrapper:
        """Its unread complete lines, as text (UTF-8, undecodable bytes replaced)."""
        with self.path.open("rb") as f:
            f.seek(self.start)
            data = f.read(self.end - self.start)
        return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="replace", newline="")


# Rotated copies keep the file's name as a prefix (Master.csv.1, Master.csv-20261206);
# compressed ones cannot be read back here (logrotate: use delaycompress).
_COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".lz4", ".Z")


def find_predecessor(key: bytes, path: Path, stored: sa.RowMapping) -> Predecessor | None:
    """The rotated copy of `path` holding lines past the stored cursor, if one lies beside it.

    A candidate is a file in the same folder whose name starts with `path`'s and that is the
    followed file itself (same device and inode: renamed) or a copy of it (the same keyed
    digests of its first 4 KiB and of the 4 KiB before the cursor). It counts only when it
    holds complete lines past the cursor."""
    offset = int(stored["consumed_bytes"])
    try:
        siblings = sorted(path.parent.iterdir())
    except OSError:
        return None
    for candidate in siblings:
        name = candidate.name
        if name == path.name or not name.startswith(path.name) or name.endswith(_COMPRESSED):
            continue
        try:
            fd = os.open(candidate, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            continue
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_size <= offset:
                continue
            renamed = (_signed(st.st_dev), _signed(st.st_ino)) == (
                stored["device"],
                stored["inode"],
            )
            low = max(0, offset - HEAD_BYTES)
            copied = hmac.compare_digest(
                _digest(key, b"head", _read(fd, 0, _head_len(offset))), stored["head_digest"]
            ) and hmac.compare_digest(
                _digest(key, b"tail", _read(fd, low, offset - low)), stored["tail_digest"]
            )
            if not (renamed or copied):
                continue
            end = _last_newline_end(fd, offset, st.st_size)
            if end > offset:
                first_line = int(stored["consumed_lines"]) + 1
                return Predecessor(candidate, offset, end, first_line, stored["state"])
        finally:
            os.close(fd)
    return None


def _decide(
    fd: int,
    key: bytes,
    stored: sa.RowMapping | None,
    size: int,
    device: int,
    inode: int,
    *,
    from_start: bool,
) -> tuple[Reason, int, int, str | None]:
    """(reason, start offset, first line number, stored state) for this run."""
    if from_start:
        return "from-start", 0, 1, None
    if stored is None:
        return "new", 0, 1, None
    offset = int(stored["consumed_bytes"])
    same_file = (stored["device"], stored["inode"]) == (device, inode)
    if size < offset:
        return ("truncated" if same_file else "rotated"), 0, 1, None
    head = _digest(key, b"head", _read(fd, 0, _head_len(offset)))
    low = max(0, offset - HEAD_BYTES)
    tail = _digest(key, b"tail", _read(fd, low, offset - low))
    if not (
        hmac.compare_digest(head, stored["head_digest"])
        and hmac.compare_digest(tail, stored["tail_digest"])
    ):
        return ("rewritten" if same_file else "rotated"), 0, 1, None
    reason: Reason = "continued" if same_file else "moved"
    return reason, offset, int(stored["consumed_lines"]) + 1, stored["state"]


def advance(session: Session, run: Resume, *, now: datetime, state: str | None = None) -> None:
    """Store the cursor after `run`'s last complete line, in the caller's transaction.

    Call it once the stream was read to its end (every line was parsed): a cursor moved past
    lines nobody parsed would drop them. `state` is what the caller needs to continue the
    file later (the CDR layout as column names); it must hold no personal data.
    """
    if not run.exhausted:
        raise RuntimeError(
            "advance() before the whole window was read would skip lines nobody parsed"
        )
    run._check_unchanged()
    end = run.end
    lines = run.first_line - 1 + run.lines_read
    low = max(0, end - HEAD_BYTES)
    values = {
        "customer_id": run.customer_id,
        "path_digest": run._path_digest,
        "device": run._device,
        "inode": run._inode,
        "consumed_bytes": end,
        "consumed_lines": lines,
        "head_digest": _digest(run._key, b"head", _read(run._fd, 0, _head_len(end))),
        "tail_digest": _digest(run._key, b"tail", _read(run._fd, low, end - low)),
        "size_seen": run.size,
        "state": state,
        "updated_at": now,
    }
    dialect = session.get_bind().dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(_TABLE)
    keys = ("customer_id", "path_digest")
    session.execute(
        insert.values(**values).on_conflict_do_update(
            index_elements=[_TABLE.c[k] for k in keys],
            set_={k: v for k, v in values.items() if k not in keys},
        )
    )


def forget(session: Session, customer_id: str) -> int:
    """Delete a customer's cursors (at its purge); return how many went."""
    result = session.execute(sa.delete(_TABLE).where(_TABLE.c.customer_id == customer_id))
    return int(cast("sa.CursorResult[Any]", result).rowcount)
