"""A big export's worker processes start without the `dpa` command: no re-import of `__main__`.

Run as the installed console script, the exporting process's `__main__` is a file that
imports `dpa.cli`; a "forkserver" or "spawn" worker re-runs that file unless its start
hides it. These tests start the export's pool from such a main file, in a fresh process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]

# The body of the installed console script (.venv/bin/dpa), then the export's worker pool.
SCRIPT = """\
import json
import sys

from dpa.cli import main

if __name__ == "__main__":
    from exports import builder

    main_before = sys.modules["__main__"]
    pool = builder._pool(2)
    try:
        probe = (
            "(sorted(m for m in __import__('sys').modules if m.split('.')[0] == 'dpa' "
            "and m.startswith(('dpa.cli', 'dpa.workspace'))), "
            "'exports.builder' in __import__('sys').modules, "
            "'exports.formats' in __import__('sys').modules, "
            "'dpa.parsers' in __import__('sys').modules, "
            "getattr(__import__('sys').modules['__main__'], '__file__', None), "
            "__import__('os').getpid())"
        )
        # More jobs than workers, so that both are started and each answers at least once.
        answers = [pool.submit(eval, probe).result() for _ in range(8)]
    finally:
        pool.shutdown()
    print(json.dumps({
        "answers": answers,
        "main_restored": sys.modules["__main__"] is main_before,
        "parent_pid": __import__("os").getpid(),
    }))
"""


def _run(tmp_path: Path) -> dict[str, object]:
    script = tmp_path / "dpa"  # named like the console script, no .py
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_workers_do_not_import_the_command(tmp_path: Path) -> None:
    result = _run(tmp_path)
    answers = result["answers"]
    assert isinstance(answers, list)
    pids = {pid for *_, pid in answers}
    assert result["parent_pid"] not in pids  # the probes ran in worker processes
    for cli_modules, builder_loaded, formats_loaded, parsers_loaded, main_file, _ in answers:
        assert cli_modules == [], "a worker imported the dpa command"
        assert not builder_loaded  # the process object arrives as the standard class
        assert formats_loaded  # what the workers run, preloaded by the fork server
        assert not parsers_loaded  # every parser (vobject, yaml, ...): 0.4 s and memory
        assert main_file is None  # the console script was not re-run as __mp_main__
    assert result["main_restored"] is True
