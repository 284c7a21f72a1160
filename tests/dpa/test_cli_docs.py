"""Every command explains itself and is documented in the README."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.main import get_command

from dpa.cli import app

README = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")


def _walk(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _walk(sub, (*path, name))


COMMANDS = list(_walk(get_command(app)))


@pytest.mark.parametrize(
    ("path", "command"), COMMANDS, ids=[" ".join(p) or "dpa" for p, _ in COMMANDS]
)
def test_every_command_and_option_has_help(path: tuple[str, ...], command: Any) -> None:
    assert (command.help or "").strip(), f"dpa {' '.join(path)} has no help text"
    for param in command.params:
        if isinstance(param, typer.core.TyperOption) and param.name not in {"help"}:
            assert (param.help or "").strip(), f"dpa {' '.join(path)} {param.opts[0]} has no help"


@pytest.mark.parametrize(
    "path",
    [p for p, c in COMMANDS if p and not getattr(c, "commands", None)],
    ids=lambda p: " ".join(p),
)
def test_every_command_is_in_the_readme(path: tuple[str, ...]) -> None:
    assert re.search(rf"dpa {' '.join(path)}\b", README), (
        f"README does not mention `dpa {' '.join(path)}`"
    )


def _documented_invocations() -> Iterator[tuple[int, list[str]]]:
    """`dpa ...` as README shows it: in backticks, and on code-block lines that run it."""
    in_code = False
    for number, line in enumerate(README.splitlines(), start=1):
        if line.startswith("```"):
            in_code = not in_code
            continue
        if in_code:
            command = line.strip().removeprefix("$ ")
            if command.startswith("dpa "):
                yield number, command.split()[1:]
            continue
        for quoted in re.findall(r"`dpa ([^`]+)`", line):
            yield number, quoted.split()


def _resolve(words: list[str]) -> str | None:
    """Why `dpa WORDS` names no command, or None when it does (options end the path)."""
    command: Any = get_command(app)
    for word in words:
        subcommands = getattr(command, "commands", None)
        if not subcommands:
            return None  # a leaf: the rest are its arguments
        if word.startswith("-") or word.isupper() or not re.fullmatch(r"[a-z][a-z0-9-]*", word):
            # `dpa --version`, `dpa export COMMAND`: an option or a placeholder, not a name.
            return None
        if word not in subcommands:
            return f"`{word}` is not a command (known: {', '.join(sorted(subcommands))})"
        command = subcommands[word]
    return None


def test_every_command_the_readme_shows_exists() -> None:
    problems = [
        f"README.md:{number}: dpa {' '.join(words)}: {why}"
        for number, words in _documented_invocations()
        if (why := _resolve(words)) is not None
    ]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("words", "named"),
    [
        pytest.param(["retention", "sweep", "--dry-run"], True, id="leaf-with-option"),
        pytest.param(["export", "COMMAND"], True, id="placeholder"),
        pytest.param(["retention", "purge"], False, id="unknown-subcommand"),
        pytest.param(["frobnicate"], False, id="unknown-command"),
    ],
)
def test_the_readme_check_tells_a_missing_command(words: list[str], named: bool) -> None:
    assert (_resolve(words) is None) is named
