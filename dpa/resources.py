"""Files dpa ships: JSON Schemas and the default register.

The schemas live at the top of the repository (`schemas/`) and travel in the wheel as
`dpa/schemas`; this module finds them in either place, so a checkout and an installed
wheel behave the same.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, cast

__all__ = ["default_register_text", "load_schema", "schema_dir"]

_PACKAGE = Path(__file__).parent


def schema_dir() -> Path:
    """The folder holding dpa's JSON Schemas."""
    installed = _PACKAGE / "schemas"
    if installed.is_dir():
        return installed
    checkout = _PACKAGE.parent / "schemas"
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError("dpa's JSON Schemas are missing from this installation")


@cache
def load_schema(name: str) -> dict[str, Any]:
    """The JSON Schema called `name` (e.g. `register`), from `<name>.schema.json`."""
    path = schema_dir() / f"{name}.schema.json"
    return cast(dict[str, Any], json.loads(path.read_text(encoding="utf-8")))


def default_register_text() -> str:
    """The YAML text of the built-in Annex 1 register."""
    return resources.files("dpa").joinpath("data/default-register.yaml").read_text("utf-8")
