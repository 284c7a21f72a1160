"""Hostile identity documents through the real `dpa ingest id-document`.

Documents in every accepted format (PNG, JPEG, TIFF, PDF, HEIC) or not what their extension
says, their first bytes flipped or cut; sidecars in dpa's JSON or YAML with values replaced
by hostile text, huge numbers, Infinity, NaN, lone surrogates, deep nesting, edge dates,
wrong types, YAML tags, anchors and aliases, and the real Veriff decision with any of its
values replaced, fields swapped or its text cut; no sidecar, two sidecars, a sidecar alone;
with `--vendor-data email|phone` or not and `--tz` real or not.

Whatever comes in, the command exits 0, 2 or 3 without a traceback; a refusal names where
(the folder or the option), quotes neither the holder nor the document, and changes
nothing; a run that succeeds stored the records its report counts as added.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from dpa.config import Settings
from dpa.workspace import Workspace
from tests.conftest import Run, add_customer
from tests.dpa.parsers.test_iddocs import VERIFF, heic, jpeg, native, pdf, png, tiff
from tests.fuzz.hostile import FUZZ, edge_dates, hostile_numbers, hostile_text
from tests.fuzz.test_fuzz_fax import JSON_FRAGMENTS, flip, mostly, stored_as_reported, zones

IMAGES = {".png": png(), ".jpg": jpeg(), ".JPEG": jpeg(), ".tiff": tiff(), ".pdf": pdf(),
          ".heic": heic()}  # fmt: skip
SUFFIXES = [*IMAGES, ".gif", ".TIF", ".json"]
NATIVE: dict[str, Any] = native()
NATIVE_KEYS = [*NATIVE, "phones", "emails", "uploaded_at", "extra"]
VERIFF_TEXT = VERIFF.read_text(encoding="utf-8")
# What the Veriff sample names: no refusal may quote it.
VERIFF_PERSONAL = ("MORGAN", "SARAH", "sarah.morgan", "MORGA753116SM9IJ", "Snowy Ridge")
# The decision's values, as paths into it (the nested ones dpa reads, and some it drops).
VERIFF_PATHS: list[tuple[str, ...]] = [
    ("status",),
    ("verification",),
    ("verification", "id"),
    ("verification", "status"),
    ("verification", "person"),
    ("verification", "person", "firstName"),
    ("verification", "person", "lastName"),
    ("verification", "document"),
    ("verification", "document", "type"),
    ("verification", "document", "number"),
    ("verification", "document", "country"),
    ("verification", "vendorData"),
    ("verification", "decisionTime"),
    ("verification", "acceptanceTime"),
]
YAML_JUNK = [
    "!!python/object/apply:os.system ['true']",
    "!!binary AAAA",
    "&a [*a, *a]",
    "*undefined",
    "? [a, b]\n: c",
    "2026-03-28",
    "2026-03-28 10:15:00",
    "0o777",
    "0x10",
    ".inf",
    ".nan",
    "~",
    "yes",
    "'",
    '"\\ud800"',
    "[" * 200,
    "- a\n- b",
    "{a: 1, a: 2}",
    "%YAML 9.9\n---",
    "---\n---",
]
json_values = st.one_of(
    st.sampled_from(JSON_FRAGMENTS),
    hostile_text.map(json.dumps),
    hostile_numbers.filter(bool),
    edge_dates.map(lambda day: json.dumps(day.isoformat())),
    st.sampled_from(
        ['"passport"', '"pending"', '"rejected"', '"XX"', '"bel"', '["+32 470 12 34 56"]']
    ),
)


def _json_with(document: dict[str, Any], draw: st.DrawFn, keys: list[str]) -> bytes:
    """`document` as JSON, up to two of its values replaced by hostile JSON, or swapped."""
    markers: list[str] = []
    for _ in range(draw(st.integers(0, 2))):
        key = draw(st.sampled_from(keys))
        if draw(st.booleans()):
            document[key] = f"@marker{len(markers)}@"
            markers.append(draw(json_values))
        else:
            other = draw(st.sampled_from(keys))
            document[key], document[other] = document.get(other), document.get(key)
    text = json.dumps(document, indent=2)
    for number, fragment in enumerate(markers):
        text = text.replace(f'"@marker{number}@"', fragment)
    return text.encode("utf-8", "surrogatepass")


@st.composite
def veriff_decisions(draw: st.DrawFn) -> bytes:
    """The real decision with values at up to two paths replaced by hostile JSON (or removed)."""
    decision: dict[str, Any] = json.loads(VERIFF_TEXT)
    markers: list[str] = []
    for _ in range(draw(st.integers(0, 2))):
        path = draw(st.sampled_from(VERIFF_PATHS))
        target: Any = decision
        for key in path[:-1]:
            target = target.get(key) if isinstance(target, dict) else None
        if not isinstance(target, dict):
            continue
        if draw(st.integers(0, 4)) == 0:
            target.pop(path[-1], None)
        else:
            target[path[-1]] = f"@marker{len(markers)}@"
            markers.append(draw(json_values))
    text = json.dumps(decision, indent=2)
    for number, fragment in enumerate(markers):
        text = text.replace(f'"@marker{number}@"', fragment)
    return text.encode("utf-8", "surrogatepass")


@st.composite
def yaml_sidecars(draw: st.DrawFn) -> bytes:
    """dpa's sidecar as YAML, a line replaced or a value given YAML's hostile forms."""
    lines = yaml.safe_dump(dict(NATIVE), sort_keys=False, allow_unicode=True).splitlines()
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(0, len(lines) - 1))
        key = lines[at].split(":", 1)[0]
        value = draw(st.one_of(st.sampled_from(YAML_JUNK), hostile_text))
        lines[at] = draw(st.sampled_from([f"{key}: {value}", value, f"{key}:\n  {value}"]))
    return "\n".join(lines).encode("utf-8", "surrogatepass")


@st.composite
def sidecars(draw: st.DrawFn) -> tuple[str, bytes] | None:
    """No sidecar, or one (its extension and bytes): dpa's JSON or YAML, or Veriff's."""
    kind = draw(st.sampled_from(["none", "native", "yaml", "veriff", "veriff"]))
    if kind == "none":
        return None
    if kind == "native":
        suffix, data = ".json", _json_with(dict(NATIVE), draw, NATIVE_KEYS)
    elif kind == "yaml":
        suffix, data = draw(st.sampled_from([".yaml", ".yml"])), draw(yaml_sidecars())
    else:
        suffix, data = ".json", draw(veriff_decisions())
    if draw(st.integers(0, 7)) == 0:
        data = flip(draw, data)
    return suffix, data


@st.composite
def documents(draw: st.DrawFn) -> tuple[str, bytes, list[tuple[str, bytes]]]:
    """One document: its file name, its bytes, its sidecars (none, one, rarely two); half of
    them a well-formed document with dpa's sidecar or the real Veriff decision."""
    if draw(st.booleans()):
        suffix = draw(st.sampled_from(sorted(IMAGES)))
        sidecar = draw(st.sampled_from([json.dumps(NATIVE).encode(), VERIFF_TEXT.encode()]))
        return (
            draw(st.sampled_from(["doc", "passport-peeters"])) + suffix,
            IMAGES[suffix],
            [(".json", sidecar)],
        )
    stem = draw(
        st.one_of(
            st.sampled_from(["doc", "passport-peeters", "1", "scan 2026-03-28"]),
            hostile_text.filter(lambda t: "/" not in t and "\x00" not in t and t not in ("", ".")),
        )
    )
    suffix = draw(st.sampled_from(SUFFIXES))
    image = IMAGES.get(suffix, png())
    kind = draw(st.sampled_from(["own", "own", "other", "flipped"]))
    if kind == "other":
        image = draw(st.sampled_from(list(IMAGES.values())))
    elif kind == "flipped":
        image = flip(draw, image)
    found = [one for one in [draw(sidecars())] if one is not None]
    if draw(st.integers(0, 9)) == 0:
        second = draw(sidecars())
        if second is not None and second[0] not in {s for s, _ in found}:
            found.append(second)
    return stem + suffix, image, found


@pytest.fixture
def acme(ws: Workspace, cli: Callable[..., Run]) -> str:
    """One installation per test (not per example) with the customer the documents go to."""
    add_customer(cli, samples=())
    return "acme"


@FUZZ
@given(
    docs=st.lists(documents(), min_size=1, max_size=2),
    vendor=mostly(st.sampled_from([None, "email", "phone"]), st.sampled_from(["EMAIL", ""])),
    tz=zones,
    whole_folder=st.booleans(),
)
def test_hostile_id_documents_are_refused_cleanly_or_stored(
    acme: str,
    settings: Settings,
    env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
    docs: list[tuple[str, bytes, list[tuple[str, bytes]]]],
    vendor: str | None,
    tz: str | None,
    whole_folder: bool,
) -> None:
    folder = tmp_path_factory.mktemp("iddocs")
    named: set[str] = set()
    for name, image, found in docs:
        # A name is bytes on disk: what is not UTF-8 reaches dpa as surrogate escapes.
        raw = os.fsencode(folder) + b"/" + name.encode("utf-8", "surrogatepass")[-200:]
        path = folder / os.fsdecode(raw).rsplit("/", 1)[1]
        path.write_bytes(image)
        named.add(str(path))
        for suffix, data in found:
            path.with_suffix(suffix).write_bytes(data)
    paths = [str(folder)] if whole_folder else sorted(named)
    flags = [*([] if vendor is None else ["--vendor-data", vendor]),
             *([] if tz is None else ["--tz", tz])]  # fmt: skip
    run = stored_as_reported(
        settings, env, "passport_photo", "ingest", "id-document", *paths, "--customer", acme,
        *flags,
    )  # fmt: skip
    if run.exit_code == 2:
        assert any(where in run.stderr for where in (str(folder), "--tz", "--vendor-data")), (
            "a refusal says where",
            run.stderr,
        )
        leaked = [word for word in VERIFF_PERSONAL if word in run.stderr]
        assert not leaked, leaked
