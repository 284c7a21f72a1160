"""JSON documents read from outside (recording sidecars, checkpoint files), refused whole when
dpa could not compute with them.

`json.loads` accepts more than dpa can use, and fails on some input with the wrong kind of
error: `NaN` and `Infinity`, integers of any length (and a ValueError past Python's 4,300-digit
limit), floats that overflow to infinity, lone surrogate escapes (`"\\ud800"`, which no UTF-8
writer can store), and nesting deep enough to raise RecursionError. `loads` turns each into
`JsonInvalid`, which names the line or the document path (`$.duration`, `$.calls[2]`) and never
the offending value, since a document may hold personal data.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["MAX_DEPTH", "MAX_INT", "JsonInvalid", "loads"]

MAX_INT = 2**63 - 1  # a BigInteger column, and the largest integer orjson writes
MAX_DEPTH = 64  # far deeper than any document dpa reads; far below the recursion limit


class JsonInvalid(ValueError):
    """A JSON document dpa refuses: `line` (1 when unknown) and a reason naming no value."""

    def __init__(self, line: int, reason: str) -> None:
        self.line = line
        self.reason = reason
        super().__init__(reason)


class _Refused:
    """Stands in for a value the decoder was asked to build but dpa cannot use."""

    __slots__ = ("why",)

    def __init__(self, why: str) -> None:
        self.why = why


def _integer(text: str) -> int | _Refused:
    digits = text.lstrip("-")
    if len(digits) > len(str(MAX_INT)) or abs(value := int(text)) > MAX_INT:
        return _Refused(f"is a number beyond {MAX_INT}")
    return value


def _float(text: str) -> float | _Refused:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        return _Refused("is a number too large to compute with")
    return value


def _constant(name: str) -> _Refused:
    return _Refused(f"is {name}, which is not a JSON number")


def loads(text: str) -> Any:
    """Parse `text` as JSON; JsonInvalid when it is not JSON or holds a value dpa cannot use."""
    try:
        data = json.loads(text, parse_int=_integer, parse_float=_float, parse_constant=_constant)
    except json.JSONDecodeError as exc:
        # exc.msg describes the syntax ("Expecting value"), never the text itself.
        raise JsonInvalid(exc.lineno, f"not valid JSON: {exc.msg}") from None
    except RecursionError:
        raise JsonInvalid(1, f"nested more than {MAX_DEPTH} levels deep") from None
    _check(data)
    return data


def _check(data: Any) -> None:
    """Walk the document without recursion; refuse deep nesting, refused numbers, surrogates."""
    stack: list[tuple[Any, str, int]] = [(data, "$", 0)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, _Refused):
            raise JsonInvalid(1, f"{path} {value.why}")
        if isinstance(value, str):
            _text(value, path)
            continue
        if not isinstance(value, dict | list):
            continue
        if depth >= MAX_DEPTH:
            raise JsonInvalid(1, f"nested more than {MAX_DEPTH} levels deep")
        if isinstance(value, list):
            stack.extend((item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value))
            continue
        for key, item in value.items():
            _text(key, f"{path} (a key)")
            # Keys are field names; one that is not a plain name could be data: not repeated.
            plain = key.isascii() and key.isidentifier() and len(key) <= 40
            where = f"{path}.{key}" if plain else f"{path}[...]"
            stack.append((item, where, depth + 1))


def _text(value: str, path: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise JsonInvalid(1, f"{path} holds a lone surrogate escape (not Unicode text)") from None
