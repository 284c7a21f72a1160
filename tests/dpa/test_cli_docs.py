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
