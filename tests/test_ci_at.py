"""`.ci/at DATE COMMAND`: CI's moved clock moves, and timed waits still end under it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import need_tool

AT = Path(__file__).parents[1] / ".ci" / "at"
WAIT = 120  # seconds: a guard against a hang, not a measure


@pytest.fixture(autouse=True)
def _faketime() -> None:
    if not any(Path("/usr/lib").glob("*/faketime/libfaketime.so.1")) or shutil.which("cc") is None:
        need_tool("libfaketime and a C compiler", "apt-get install faketime gcc libc6-dev")


def test_the_wall_clock_moves_and_sleeps_and_timed_waits_end() -> None:
    # A moved monotonic clock would hang the Event and Queue waits; a shifted monotonic
    # deadline would make time.sleep fail with EINVAL.
    code = (
        "import datetime, queue, threading, time\n"
        "time.sleep(0.01)\n"
        "assert not threading.Event().wait(0.01)\n"
        "try:\n"
        "    queue.Queue().get(timeout=0.01)\n"
        "except queue.Empty:\n"
        "    pass\n"
        "print(datetime.datetime.now(datetime.UTC).isoformat())\n"
    )
    out = subprocess.run(
        [str(AT), "2031-02-03 04:05:06", sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    assert out.returncode == 0, out.stderr
    moved = datetime.fromisoformat(out.stdout.strip())
    assert moved >= datetime(2031, 2, 3, 4, 5, 6, tzinfo=UTC)
    assert moved.date().isoformat() == "2031-02-03"
    assert "clock moved to 2031-02-03 04:05:06 UTC" in out.stderr


def test_the_commands_exit_code_is_kept_and_a_bad_date_refused() -> None:
    failed = subprocess.run(
        [str(AT), "2031-02-03", "sh", "-c", "exit 7"], capture_output=True, timeout=WAIT
    )
    assert failed.returncode == 7
    bad = subprocess.run(
        [str(AT), "the day after", "true"], capture_output=True, text=True, timeout=WAIT
    )
    assert bad.returncode == 2
    assert ".ci/at: not a date: the day after" in bad.stderr
    usage = subprocess.run([str(AT)], capture_output=True, text=True, timeout=WAIT)
    assert usage.returncode == 2 and "usage: .ci/at" in usage.stderr
