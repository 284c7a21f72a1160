"""Start-up: `dpa` imports what the command it runs needs, not every area's engine.

Structural, not timed: which modules a fresh process holds after importing `dpa.cli`, or
when the installed console script (run as `__main__`, as the shell runs it) has run a command.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.main import get_command
from typer.testing import CliRunner

import dpa.cli
from dpa import __version__

ROOT = Path(__file__).parents[1]
DPA = Path(sys.executable).with_name("dpa")  # the installed console script

# What `import dpa.cli` leaves for the command that needs it.
LAZY = (
    "dpa.workspace",  # the store: database, keyring, ingest, parsers
    "dpa.ingest",
    "dpa.parsers",
    "dpa.audit",
    "sqlalchemy",
    "sqlmodel",
    "alembic",
    "exports",
    "retention",
    "rich.progress",
)
AREA_MODULES = {f"dpa.cli.{m}" for modules in dpa.cli._AREAS.values() for m in modules}


def _modules_after(code: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=True,
    )
    return set(done.stdout.split())


def _imported_by_console_script(*args: str, home: Path) -> tuple[set[str], str]:
    """The modules the real `dpa` script holds when it has run `args`, and its output."""
    listing = home / "modules.txt"
    wrapper = (
        "import atexit, runpy, sys\n"
        f"atexit.register(lambda: open({str(listing)!r}, 'w').write('\\n'.join(sys.modules)))\n"
        f"sys.argv = [{str(DPA)!r}, *sys.argv[1:]]\n"
        f"runpy.run_path({str(DPA)!r}, run_name='__main__')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", wrapper, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "DPA_HOME": str(home)},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return set(listing.read_text().split()), done.stdout


def _under(names: set[str], package: str) -> set[str]:
    return {n for n in names if n == package or n.startswith(f"{package}.")}


def test_importing_the_cli_imports_no_area_and_no_engine() -> None:
    loaded = _modules_after("import dpa.cli")
    assert "dpa.cli" in loaded
    for package in LAZY:
        assert not _under(loaded, package), f"importing dpa.cli imported {package}"
    assert not loaded & AREA_MODULES


def test_the_whole_command_is_there_on_use() -> None:
    loaded = _modules_after("import dpa.cli\ndpa.cli.app")
    assert loaded >= AREA_MODULES


def test_version_imports_nothing_of_the_store(tmp_path: Path) -> None:
    assert DPA.is_file(), "the console script is not installed in this environment"
    names, out = _imported_by_console_script("--version", home=tmp_path)
    assert out.strip() == f"dpa {__version__}"
    for package in LAZY:
        assert not _under(names, package), f"`dpa --version` imported {package}"
    assert not names & AREA_MODULES


def test_an_area_imports_no_other_area(tmp_path: Path) -> None:
    names, out = _imported_by_console_script("--actor", "x", "customer", "--help", home=tmp_path)
    assert "Usage: dpa customer" in out
    assert "dpa.cli.customer" in names
    others = AREA_MODULES - {"dpa.cli.customer"}
    assert not names & others
    for package in ("exports", "retention", "dpa.audit"):
        assert not _under(names, package), f"`dpa customer` imported {package}"


def test_a_sweep_from_cron_does_not_import_the_scheduler(tmp_path: Path) -> None:
    """`dpa retention schedule` imports APScheduler's scheduler when it runs, not before."""
    names, out = _imported_by_console_script("retention", "sweep", "--help", home=tmp_path)
    assert "Usage: dpa retention sweep" in out
    assert "retention.sweeper" in names
    for package in ("retention.scheduler", "apscheduler.schedulers", "apscheduler.executors"):
        assert not _under(names, package), f"`dpa retention sweep` imported {package}"


@pytest.mark.parametrize(
    ("args", "areas"),
    [
        ([], tuple(dpa.cli._AREAS)),  # no argument: the whole command's help
        (["--help"], tuple(dpa.cli._AREAS)),
        (["--version"], ()),
        (["--version", "--help"], tuple(dpa.cli._AREAS)),
        (["init"], ()),
        (["customer", "list"], ("customer",)),
        (["--actor", "dpo", "export", "list"], ("export",)),
        (["--actor=dpo", "ingest", "cdr", "--help"], ("ingest",)),
        (["--actor", "customer", "list"], tuple(dpa.cli._AREAS)),  # "customer" is the actor
        (["--actor"], tuple(dpa.cli._AREAS)),
        (["stats"], ("stats",)),
        (["bogus"], tuple(dpa.cli._AREAS)),
        (["--bogus", "customer"], tuple(dpa.cli._AREAS)),
    ],
)
def test_the_area_a_command_line_names(args: list[str], areas: tuple[str, ...]) -> None:
    assert dpa.cli._areas_for(args) == areas


def _walk(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    for name, sub in getattr(command, "commands", {}).items():
        yield from _walk(sub, (*path, name))


PATHS = [p for p in _walk(get_command(dpa.cli.app)) if p]


@pytest.mark.parametrize("path", PATHS, ids=" ".join)
def test_an_area_alone_answers_as_the_whole_command(path: tuple[str, ...]) -> None:
    """What `main` builds for one area is the whole command's, for every command's help."""
    runner = CliRunner()
    whole = runner.invoke(dpa.cli.app, [*path, "--help"], prog_name="dpa")
    assert dpa.cli._areas_for([*path, "--help"]) in ((path[0],), ())  # () for `init`
    args = [*path, "--help"]
    alone = runner.invoke(dpa.cli._build(dpa.cli._areas_for(args)), args, prog_name="dpa")
    assert whole.exit_code == 0, whole.output
    assert (alone.exit_code, alone.output) == (whole.exit_code, whole.output)


def test_the_parsers_package_loads_a_parser_when_its_name_is_used() -> None:
    loaded = _modules_after("import dpa.parsers.base")
    assert _under(loaded, "dpa.parsers") == {"dpa.parsers", "dpa.parsers.base"}
    assert not {"dpkt", "vobject"} & loaded
    loaded = _modules_after("from dpa.parsers import parse_cdr_csv")
    assert "dpa.parsers.asterisk_cdr" in loaded and "dpa.parsers.captures" not in loaded


def test_every_name_the_parsers_package_exports_is_its_modules() -> None:
    import importlib

    import dpa.parsers

    assert set(dpa.parsers.__all__) == set(dpa.parsers._MODULES)
    for name, module in dpa.parsers._MODULES.items():
        assert getattr(dpa.parsers, name) is getattr(
            importlib.import_module(f"dpa.parsers.{module}"), name
        )
    with pytest.raises(AttributeError, match="no attribute 'parse_nothing'"):
        dpa.parsers.parse_nothing  # noqa: B018
