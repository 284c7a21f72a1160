"""A file's reading in a worker process, beside the process that stores what it reads.

An ingest is two kinds of work: reading (parse every line, normalise its numbers, serialise
its payload: `dpa.prepare`, no key needed) and storing (digest, encrypt, insert: keys and the
database). In one process the second core of the machine is idle while a third of the time
goes to reading. `forked(items)` runs an iterator in a child process forked from this one
and yields its items here, in order, in batches of `BATCH`: the child reads ahead while
this process stores.

Forked, not spawned: the child starts as a copy of this process at that moment, with the
parser already positioned (a cursor's window into a growing file, the first record already
pulled, the layout found), so nothing has to be pickled or opened again. The child touches
neither the database nor a key; it ends by `os._exit`, closing nothing of this process's.

What the reading leaves behind besides the records (a cursor's position and line count,
`--quarantine`'s rejected lines, the zone evidence, the layout found) happens in the child's
copies of those objects: each is a `Carry`, whose state the child sends back once it has read
everything and this process adopts, so that after the loop they say what they would have
said had the file been read here. An error the reading raises (a malformed line, a file
truncated under the reader) is raised here, after the records read before it, as when
reading in line; a child that dies without a word raises `WorkerLost`. When this process
stops early (an error while storing, a refusal), the child is terminated.

The pipe between the two holds one batch at a time: a child that reads faster than this
process stores waits, so memory stays that of a batch, however long the file.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import pickle
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Protocol, TypeVar

from dpa import heap
from dpa.errors import DpaError

__all__ = ["BATCH", "OFFLOAD_BYTES", "Carry", "Offload", "WorkerLost", "forked", "worth_it"]

BATCH = 1000  # items per message from the child
# Below this many bytes to read, a worker costs more than it saves (a fork, a pipe, the
# items pickled twice): about 20,000 calls of cdr_csv.
OFFLOAD_BYTES = 4 << 20

T = TypeVar("T")


class Carry(Protocol):
    """An object the reading changes, whose state the worker sends back when it is done."""

    def carried(self) -> object:
        """The state to send back (picklable)."""

    def adopt(self, state: object) -> None:
        """Take the state the worker's copy ended with."""


@dataclass(frozen=True)
class Offload:
    """Read in a worker process (`forked`), carrying back these objects' state."""

    carry: tuple[Carry, ...] = ()


class WorkerLost(DpaError):
    """The reading worker ended without finishing or saying why (killed, out of memory):
    nothing of the file was stored. Exit code 1, as any failure that is not the input's."""

    exit_code = 1


def worth_it(size: int) -> bool:
    """Whether reading `size` bytes is worth a worker process."""
    return size >= OFFLOAD_BYTES


def forked(items: Iterator[T], carry: Sequence[Carry] = ()) -> Iterator[T]:
    """`items`, read in a child process forked at the first `next()`, in order."""
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(
        target=_read, args=(items, tuple(carry), send), name="dpa-reader", daemon=True
    )
    # Frozen, what exists now is never walked by this process's collector while the child
    # runs: a collection writes to every object it walks, and each page written here is a
    # page the child must then keep a copy of (200,000 calls: 135 MB with the child, not 165).
    finished = False
    with heap.settled():
        try:
            try:
                child.start()
            finally:
                send.close()  # the child's end: once the child is gone, recv() raises EOFError
            while True:
                try:
                    kind, value = receive.recv()
                except EOFError:
                    child.join()
                    raise WorkerLost(
                        f"the reading worker ended (exit code {child.exitcode}) before it had read "
                        "the whole file: nothing was stored; run again"
                    ) from None
                if kind == "items":
                    yield from value
                elif kind == "done":
                    for target, state in zip(carry, value, strict=True):
                        target.adopt(state)
                    finished = True
                    return
                else:
                    raise value
        finally:
            if child.pid is not None:
                if not finished:
                    # before the pipe closes: a child never writes into a closed one
                    child.terminate()
                child.join()
            receive.close()


def _read(items: Iterable[object], carry: tuple[Carry, ...], send: Connection) -> None:
    """The child: send `items` in batches, then the carried states; or the error."""
    batch: list[object] = []
    try:
        for item in items:
            batch.append(item)
            if len(batch) >= BATCH:
                send.send(("items", batch))
                batch = []
        if batch:
            send.send(("items", batch))
        send.send(("done", [target.carried() for target in carry]))
    except BaseException as error:  # every error goes to the parent, as raised
        with contextlib.suppress(OSError):  # the parent stopped listening: it knows why
            if batch:  # the items read before the error come first, as when reading in line
                send.send(("items", batch))
            send.send(("error", _sendable(error)))
    finally:
        send.close()


def _sendable(error: BaseException) -> BaseException:
    """`error` if it survives pickling as itself, else a RuntimeError that names it."""
    try:
        pickle.loads(pickle.dumps(error))  # noqa: S301 (our own bytes, just made)
    except Exception:  # whatever pickling raises, the parent must hear of it
        return RuntimeError(f"{type(error).__name__}: {error}")
    return error
